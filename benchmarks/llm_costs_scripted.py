"""What each trajectory-side LLM role costs per trajectory, from the ledger of a scripted HTTP run.

The template registry and chains of one domain, then the LLM stages over a local OpenAI-compatible
server with scripted answers: queries (`query_writer`: persona + one query per turn), refinement
and turn answers (`refiner`), pass@k rollouts (`solver`, k=4) and the pick among them (`judge`).
Prompt tokens are those of our real prompts (counted by the server at 4 characters a token);
answer tokens are the scripted answers', shorter than a real model's. Prices: `openai/gpt-4o-mini`.
Baseline in the same run: the same stages on the template backend cost nothing.

    .venv/bin/python benchmarks/llm_costs_scripted.py [domain] [n_chains]
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.export.passk import pass_at_k
from envfactory_dagster.export.rl_tasks import build_rl_tasks, rl_task_from_row
from envfactory_dagster.export.sft import build_sft_rows
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedOpenAIServer
from envfactory_dagster.querygen.tool_chains import sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from envfactory_dagster.querygen.trajectories import execute_chains, load_envs, rewrite_queries_llm
from envfactory_dagster.refine.refined_trajectories import refine_trajectories

CATALOG = Path(__file__).resolve().parents[1] / "envfactory_dagster" / "resource_catalog"


def scripted(messages: list[dict]) -> str:
    """Short, valid answers per prompt (the cost is in the prompts)."""
    system, prompt = messages[0]["content"], messages[-1]["content"]
    if "Values the user provides" in prompt:
        values = json.loads(prompt.split("Values the user provides in this turn:\n", 1)[1])
        tools = re.findall(r'"tool": "([a-z_0-9]+)"', prompt.split("This turn's calls", 1)[1])
        asks = " and then ".join(" ".join(t.split("_")) for t in tools)
        return json.dumps({"query": f"Please {asks}. {', '.join(str(v) for v in values.values())}."})
    if prompt.startswith("Domain:"):
        return json.dumps({"persona": "A small business owner.", "scenario": "Catching up on the week."})
    if prompt.startswith("Original message:"):
        return json.dumps(
            {"query": prompt.split("\n", 1)[0].removeprefix("Original message: "), "hidden_values": []}
        )
    if prompt.startswith("User's request:"):
        return json.dumps({"answer": "Done: I made the changes you asked for and listed what I found."})
    if prompt.startswith("Task (user messages)"):
        return json.dumps({"best": 0, "reasons": ["first"]})
    if system.startswith("You are an assistant that completes"):
        return json.dumps({"final_answer": "I could not complete this."})
    raise AssertionError(f"unexpected prompt: {prompt[:80]!r}")


def main(domain: str, n_chains: int) -> None:
    os.environ.setdefault("SCRIPTED_LLM_KEY", "sk-local")
    registry = registry_for_domain(CATALOG, domain)
    envs, _ = load_envs(registry)
    chains = [
        c for c in sample_chains(build_tool_graph(list(envs.values())), seed=0, n_chains=n_chains) if c.valid
    ]
    trajectories, _, _ = execute_chains([c.model_dump() for c in chains], list(envs.values()), seed=0)
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAIServer(scripted) as server:
        settings = LLMSettings(
            default_model="openai/gpt-4o-mini",
            api_base=server.api_base,
            api_key_env="SCRIPTED_LLM_KEY",
            cache_dir=Path(tmp),
        )
        with LLMGateway(settings) as gateway:
            written, _ = rewrite_queries_llm(trajectories, envs, gateway)
            refined, _, _ = refine_trajectories(written, registry, seed=0, backend="llm", gateway=gateway)
            build_sft_rows(refined, registry, backend="llm", gateway=gateway)
            rl_rows, _, _ = build_rl_tasks(refined, registry, backend="llm", gateway=gateway)
            tasks = [rl_task_from_row(r) for r in rl_rows]
            pass_at_k(tasks, registry, gateway, k=4)
            usage = gateway.usage()
    n = max(len(trajectories), 1)
    print(f"{domain}: {len(trajectories)} trajectories, {len(refined)} refined, {len(tasks)} RL tasks")
    for role, spent in usage.by_role.items():
        print(
            f"role {role}: {spent.calls} calls, {spent.tokens_in} in / {spent.tokens_out} out tokens, "
            f"${spent.cost_usd:.4f} total, ${spent.cost_usd / n:.5f} per trajectory"
        )
    print(f"all roles: ${usage.cost_usd:.4f}, ${usage.cost_usd / n:.5f} per trajectory; template backend: $0")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "commerce", int(sys.argv[2]) if len(sys.argv) > 2 else 20)
