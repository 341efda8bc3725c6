"""The tool graph as an object: a networkx DiGraph plus the lookups samplers and executors read.

Node ids (stable across runs): tool `env_id::tool`; input `env_id::tool::in::param`; output
`env_id::tool::out::path` (`prop`, `obj.field`, `arr[].field`, deeper paths likewise). Every node
carries every attribute of `NODE_ATTRIBUTES` (empty when it does not apply to its kind), every
edge every attribute of `EDGE_ATTRIBUTES`, so the graph round-trips through its rows:
`ToolGraph.from_rows(graph_edges_rows(g), graph_nodes_rows(g), envs) == g`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import ValidationError

from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.runtime.loader import VerifiedEnvironment

# attribute -> its empty value (strings are "", flags None where they do not apply)
NODE_ATTRIBUTES: dict[str, Any] = {
    "kind": "",  # tool / input / output
    "env_id": "",
    "domain": "",
    "name": "",  # tool name, parameter name or output path
    "tool": "",
    "description": "",
    "action": "",  # tools: the spec's action (get, list, create ...)
    "tool_kind": "",  # tools: read / write
    "source_operation": "",  # tools: `resource_id:operation_id` of the document operation
    "type": "",  # parameters: JSON type
    "item_type": "",  # inputs: scalar item type of an array
    "format": "",
    "pattern": "",
    "required": None,  # inputs: required by the tool
    "entity": "",  # the entity a parameter belongs to
    "normalized_name": "",  # entity-aware name (`order_id`, `listing_title`)
    "entity_key": "",  # `<entity>_id` when the parameter is that entity's key (spec metadata)
    "entity_key_by": "",  # how `entity_key` was decided: schema / suffix
    "binding": "",  # inputs: the entity field (or `$query`, `$limit`) the input binds to
    "user_provided": None,  # inputs: would a person type this value?
    "labelled_by": "",  # inputs: rules / llm
    "from_state": "",  # inputs: collection a state-scoped id is read from
    "key_example": "",  # outputs: the form of the keys seeded states hold (`ord_0001`)
    "source_description": "",  # parameters: the document's own description, when it differs
    "examples": "",  # parameters: the document's example values, canonical JSON list
    "documented": None,  # outputs: the source document's response lists the field (None: no response known)
}
EDGE_ATTRIBUTES: dict[str, Any] = {
    "kind": "",  # consumes (input -> tool), produces (tool -> output), feeds, precedes
    "provenance": "",  # the strongest evidence (`schema` for consumes / produces)
    "score": 0.0,
    "required": None,  # consumes: the input is required
    "element": None,  # feeds: a list element's value fills an array input (one-element array)
    "links": None,  # precedes: how many feeds edges the tool pair has
    "evidence": (),  # feeds / precedes: why the edge exists, one sentence per matcher
}
_STRING_NODE_ATTRIBUTES = frozenset(k for k, v in NODE_ATTRIBUTES.items() if v == "")


def node_attributes(**given: Any) -> dict[str, Any]:
    """A node's attribute dict: every attribute, the given ones set (unknown names are a bug)."""
    unknown = sorted(set(given) - set(NODE_ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown tool graph node attributes {unknown}")
    return {**NODE_ATTRIBUTES, **given}


def edge_attributes(**given: Any) -> dict[str, Any]:
    unknown = sorted(set(given) - set(EDGE_ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown tool graph edge attributes {unknown}")
    attrs = {**EDGE_ATTRIBUTES, **given}
    attrs["evidence"] = tuple(attrs["evidence"])
    return attrs


def tool_of(node_id: str) -> str:
    """The tool id (`env::tool`) of a tool or parameter node id."""
    env_id, tool, *_ = node_id.split("::", 2)
    return f"{env_id}::{tool}"


@dataclass(frozen=True)
class EnvDescriptor:
    env_id: str
    domain: str
    spec: EnvSpec
    world_id: str  # the service whose single state the environment uses (`envgen.worlds`): value
    # roles and the LLM refinement stay within a world


def describe_envs(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
) -> tuple[list[EnvDescriptor], list[dict[str, Any]]]:
    """Environment descriptors (id, domain, spec) and error rows for entries without a readable spec."""
    out: list[EnvDescriptor] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for env in envs:
        env_id = str(env.env_id if isinstance(env, VerifiedEnvironment) else env.get("env_id"))
        try:
            if isinstance(env, VerifiedEnvironment):
                spec = env.spec
            else:
                raw = env["spec_json"]
                spec = (
                    EnvSpec.model_validate_json(raw)
                    if isinstance(raw, str | bytes)
                    else EnvSpec.model_validate(raw)
                )
        except (KeyError, ValidationError, ValueError) as exc:
            errors.append(_error(env_id, f"environment {env_id}: unreadable spec_json: {exc}"))
            continue
        if env_id in seen:
            errors.append(_error(env_id, f"environment {env_id}: listed twice, second entry ignored"))
            continue
        seen.add(env_id)
        row = {} if isinstance(env, VerifiedEnvironment) else env
        domain = str(row.get("domain") or spec.domain)
        world = str(row.get("world_id") or spec.world_id or env_id)  # no world: the env owns its state
        out.append(EnvDescriptor(env_id, domain, spec, world))
    return sorted(out, key=lambda d: d.env_id), errors


def _error(env_id: str | None, reason: str) -> dict[str, Any]:
    return {"env_id": env_id, "stage": "tool_graph", "reason": reason[:1000]}


@dataclass(eq=False)
class ToolGraph:
    """The dependency graph plus the lookups the samplers and the executor need."""

    graph: nx.DiGraph
    domain: str
    envs: dict[str, EnvDescriptor]
    errors: list[dict[str, Any]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    tool_inputs: dict[str, list[str]] = field(default_factory=dict)
    input_producers: dict[str, list[str]] = field(default_factory=dict)  # input -> producer tools
    input_feeds: dict[str, list[tuple[str, float]]] = field(
        default_factory=dict
    )  # input -> [(output, score)], best first
    tool_successors: dict[str, list[str]] = field(default_factory=dict)
    tools_by_env: dict[str, list[str]] = field(default_factory=dict)
    # per-tool lookups the samplers ask for hundreds of thousands of times per partition
    tool_env: dict[str, str] = field(default_factory=dict)
    tool_world: dict[str, str] = field(default_factory=dict)
    tool_specs: dict[str, ToolSpec] = field(default_factory=dict)

    @classmethod
    def from_graph(
        cls,
        g: nx.DiGraph,
        descriptors: Sequence[EnvDescriptor],
        errors: list[dict[str, Any]] | None = None,
        domain: str | None = None,
    ) -> ToolGraph:
        """The graph with its lookups computed from the nodes and edges."""
        tg = cls(
            graph=g,
            domain=domain if domain is not None else (descriptors[0].domain if descriptors else ""),
            envs={d.env_id: d for d in descriptors},
            errors=list(errors or []),
        )
        tg.tools = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "tool")
        for t in tg.tools:
            tg.tool_inputs[t] = sorted(p for p in g.predecessors(t) if g.nodes[p]["kind"] == "input")
            tg.tool_successors[t] = sorted(s for s in g.successors(t) if g.nodes[s]["kind"] == "tool")
            env_id = g.nodes[t]["env_id"]
            tg.tools_by_env.setdefault(env_id, []).append(t)
            tg.tool_env[t] = env_id
            if env_id in tg.envs:
                spec = tg.envs[env_id].spec
                tg.tool_world[t] = spec.world_id or env_id
                name = t.partition("::")[2]
                tg.tool_specs[t] = next(x for x in spec.tools if x.name == name)
        for i in sorted(n for n, a in g.nodes(data=True) if a["kind"] == "input"):
            sources = sorted(
                ((o, g.edges[o, i]["score"]) for o in g.predecessors(i)), key=lambda x: (-x[1], x[0])
            )
            tg.input_feeds[i] = sources
            tg.input_producers[i] = sorted({tool_of(o) for o, _ in sources})
        return tg

    @classmethod
    def from_rows(
        cls,
        edge_rows: Sequence[Mapping[str, Any]],
        node_rows: Sequence[Mapping[str, Any]],
        envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
    ) -> ToolGraph:
        """The graph stored as `tool_graph` (edges) and `tool_graph_nodes` rows, for `envs`.

        Nodes of an environment that `envs` does not hold (a registry re-materialized after the
        graph) are dropped with an error naming it, as are the edges that touch them.
        """
        descriptors, errors = describe_envs(envs)
        known = {d.env_id for d in descriptors}
        g = nx.DiGraph()
        missing: set[str] = set()
        for row in node_rows:
            env_id = str(row["env_id"])
            if env_id not in known:
                missing.add(env_id)
                continue
            attrs = {
                key: ("" if row.get(key) is None else str(row[key]))
                if key in _STRING_NODE_ATTRIBUTES
                else (None if row.get(key) is None else bool(row[key]))  # the flags
                for key in NODE_ATTRIBUTES
            }
            g.add_node(str(row["id"]), **attrs)
        errors += [
            _error(env_id, f"tool graph rows of environment {env_id} ignored: it is not in the registry")
            for env_id in sorted(missing)
        ]
        for row in edge_rows:
            source, target = str(row["source"]), str(row["target"])
            if source not in g or target not in g:
                continue
            attrs = {key: row.get(key, default) for key, default in EDGE_ATTRIBUTES.items()}
            attrs["score"] = float(attrs["score"])
            for flag in ("required", "element"):
                attrs[flag] = None if attrs[flag] is None else bool(attrs[flag])
            attrs["links"] = None if attrs["links"] is None else int(attrs["links"])
            attrs["evidence"] = tuple(str(e) for e in (attrs["evidence"] or ()))
            g.add_edge(source, target, **attrs)
        domain = descriptors[0].domain if descriptors else str(next(iter(node_rows), {}).get("domain") or "")
        return cls.from_graph(g, descriptors, errors, domain)

    def __eq__(self, other: object) -> bool:
        """Same nodes and edges with the same attributes, same environments and lookups."""
        if not isinstance(other, ToolGraph):
            return NotImplemented
        return (
            self.domain == other.domain
            and set(self.envs) == set(other.envs)
            and dict(self.graph.nodes(data=True)) == dict(other.graph.nodes(data=True))
            and {(s, t): a for s, t, a in self.graph.edges(data=True)}
            == {(s, t): a for s, t, a in other.graph.edges(data=True)}
            and self.tool_inputs == other.tool_inputs
            and self.input_feeds == other.input_feeds
            and self.tool_successors == other.tool_successors
        )

    __hash__ = None  # type: ignore[assignment]

    def node(self, node_id: str) -> dict[str, Any]:
        return self.graph.nodes[node_id]

    def env_of(self, node_id: str) -> str:
        env_id = self.tool_env.get(node_id)
        return env_id if env_id is not None else self.graph.nodes[node_id]["env_id"]

    def world_of(self, tool_id: str) -> str:
        """The world (service) whose state a tool's environment uses."""
        world = self.tool_world.get(tool_id)
        if world is None:
            env_id = self.env_of(tool_id)
            world = self.envs[env_id].spec.world_id or env_id
        return world

    def tool_spec(self, tool_id: str) -> ToolSpec:
        spec = self.tool_specs.get(tool_id)
        if spec is None:
            env_id, _, name = tool_id.partition("::")
            spec = next(t for t in self.envs[env_id].spec.tools if t.name == name)
        return spec

    def user_provided(self, input_id: str) -> bool:
        return bool(self.graph.nodes[input_id]["user_provided"])

    def required(self, input_id: str) -> bool:
        return bool(self.graph.nodes[input_id]["required"])

    def from_state(self, input_id: str) -> str:
        """The collection a state-scoped input is read from ("" for any other input)."""
        return str(self.graph.nodes[input_id].get("from_state") or "")

    def unfillable_inputs(self) -> list[str]:
        """Required inputs that no tool produces, a user would not type and the state does not scope."""
        return sorted(
            i
            for inputs in self.tool_inputs.values()
            for i in inputs
            if self.required(i)
            and not self.user_provided(i)
            and not self.from_state(i)
            and not self.input_producers.get(i)
        )
