"""The LLM backend of graph matching: the paper's add-only refinement within each service.

`LLMLinker(gateway)` is an `LLMEdgeFn`: per service (world) it asks the `linker` role, one
request per consumer tool, which outputs of the service's other tools feed the tool's inputs,
showing the pairs the offline matchers already found. Answers naming ids that are not an output
and an input of that request are dropped and counted; a failed request is a problem, not a crash
(the offline edges stand). `build_tool_graph` then refuses pairs across services or of one tool.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.llm.errors import LLMCallError
from envfactory_dagster.llm.gateway import LLMGateway, StructuredRequest

MAX_OUTPUTS_SHOWN = 300


class GraphLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    output_id: str
    input_id: str


class GraphLinks(BaseModel):
    """The answer of the `graph_links` prompt."""

    model_config = ConfigDict(extra="forbid")

    links: list[GraphLink] = Field(default_factory=list)


def _line(node: dict[str, Any], *fields: str) -> str:
    description = str(node.get("source_description") or node.get("description") or "")[:160]
    return " | ".join([node["id"], *(str(node.get(f) or "") for f in fields), description])


class LLMLinker:
    """Proposes (output, input) pairs within one service; `problems` lists what went wrong."""

    def __init__(self, gateway: LLMGateway) -> None:
        self.gateway = gateway
        self.problems: list[str] = []
        self.proposed = 0
        self.dropped = 0

    def __call__(
        self, world: str, outputs: list[dict[str, Any]], inputs: list[dict[str, Any]]
    ) -> list[tuple[str, str]]:
        by_tool: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for node in inputs:
            by_tool[node["id"].rsplit("::in::", 1)[0]].append(node)
        requests, allowed = [], []
        for tool, tool_inputs in sorted(by_tool.items()):
            others = [o for o in outputs if not o["id"].startswith(f"{tool}::")][:MAX_OUTPUTS_SHOWN]
            if not others:
                continue
            known = [f"{o} -> {i['id']}" for i in tool_inputs for o in i.get("known_producers", [])]
            requests.append(
                StructuredRequest(
                    stage="tool_graph",
                    role="linker",
                    prompt="graph_links",
                    variables={
                        "tool": tool,
                        "inputs": "\n".join(_line(i, "name", "type") for i in tool_inputs),
                        "outputs": "\n".join(_line(o, "tool", "name", "type") for o in others),
                        "known": "\n".join(known) or "(none)",
                    },
                    output_model=GraphLinks,
                )
            )
            allowed.append(({o["id"] for o in others}, {i["id"] for i in tool_inputs}))
        pairs: list[tuple[str, str]] = []
        for result, (output_ids, input_ids) in zip(
            self.gateway.batch_structured(requests), allowed, strict=True
        ):
            if isinstance(result, LLMCallError):
                self.problems.append(f"service {world}: {result.kind}: {result.reason}"[:300])
                continue
            for link in result.value.links:
                self.proposed += 1
                if link.output_id in output_ids and link.input_id in input_ids:
                    pairs.append((link.output_id, link.input_id))
                else:
                    self.dropped += 1
        return pairs
