"""The LLM EnvGen path on the bundled catalog, over HTTP, with a scripted weak model.

A local OpenAI-compatible server answers as `tests/fakes/weak_coder.py` does: proposals in chunks
of each resource's operations, then tool bodies only (never template code), with chatter, wrong
tool names, syntax errors and cut answers on some environments. Per domain it prints proposals,
environments, attempts, coder/reviser calls, repairs, truncated answers and verified environments;
then the ledger's calls, tokens and cost per role (`openai/gpt-4o-mini` prices), per environment
and per verified environment. Baseline in the same run: the template backend's verified count.

    .venv/bin/python benchmarks/llm_envgen_scripted.py [domain ...]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.fakes: the scripted weak model

from envfactory_dagster.envgen.llm_backend import env_code_rows_llm, propose_environments_llm  # noqa: E402
from envfactory_dagster.envgen.proposals import propose_environments  # noqa: E402
from envfactory_dagster.envgen.stages import (  # noqa: E402
    env_code_rows,
    env_spec_rows,
    env_verification_rows,
    verified_env_rows,
)
from envfactory_dagster.ingest.authentic_resources import ingest_domain  # noqa: E402
from envfactory_dagster.llm.config import LLMSettings  # noqa: E402
from envfactory_dagster.llm.gateway import LLMGateway  # noqa: E402
from envfactory_dagster.llm.testing import ScriptedOpenAIServer  # noqa: E402
from tests.fakes.weak_coder import answer  # noqa: E402

CATALOG = REPO / "envfactory_dagster" / "resource_catalog"
MODEL = "openai/gpt-4o-mini"


def run_domain(domain: str, gateway: LLMGateway) -> dict[str, int]:
    resources = ingest_domain(CATALOG, domain).resources
    proposals, _, _ = propose_environments_llm(resources, gateway, domain=domain)
    specs, _, _ = env_spec_rows(proposals, resources)
    codes, _, metrics = env_code_rows_llm(specs, gateway, base_seed=0)
    verifications, _ = env_verification_rows(codes, specs)
    registry, _ = verified_env_rows(verifications, codes, specs)
    histories = {c["env_spec_id"]: json.loads(c["revision_history_json"]) for c in codes}
    attempts = [a for h in histories.values() for a in h]
    template_specs, _, _ = env_spec_rows(propose_environments(resources)[0], resources)
    template_codes, _, _ = env_code_rows(template_specs, base_seed=0)
    template_checked, _ = env_verification_rows(template_codes, template_specs)
    template_registry, _ = verified_env_rows(template_checked, template_codes, template_specs)
    return {
        "proposals": len(proposals),
        "envs": len(specs),
        "attempts": len(attempts),
        "coder_calls": sum(len(a["calls"]) for a in attempts if a["role"] == "coder"),
        "reviser_calls": sum(len(a["calls"]) for a in attempts if a["role"] == "reviser"),
        "repairs": metrics["repair_calls"],
        "truncated": metrics["truncated_answers"],
        "verified": len(registry),
        "verified_first_try": sum(1 for h in histories.values() if h and h[0]["passed"]),
        "template_verified": len(template_registry),
    }


def main(domains: list[str]) -> None:
    os.environ.setdefault("SCRIPTED_LLM_KEY", "sk-local")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ScriptedOpenAIServer(answer) as server:
        settings = LLMSettings(
            default_model=MODEL, api_base=server.api_base, api_key_env="SCRIPTED_LLM_KEY", cache_dir=Path(tmp)
        )
        with LLMGateway(settings) as gateway:
            totals: dict[str, int] = {}
            for domain in domains:
                figures = run_domain(domain, gateway)
                print(domain, figures, flush=True)
                for key, value in figures.items():
                    totals[key] = totals.get(key, 0) + value
            usage = gateway.usage()
    print("total", totals)
    print(f"requests to the server: {len(server.chat_requests)}; {time.perf_counter() - started:.0f} s")
    envs, verified = max(totals["envs"], 1), max(totals["verified"], 1)
    for role, spent in usage.by_role.items():
        print(
            f"role {role}: {spent.calls} calls, {spent.tokens_in} in / {spent.tokens_out} out tokens, "
            f"${spent.cost_usd:.4f} (${spent.cost_usd / envs:.5f} per env, "
            f"${spent.cost_usd / verified:.5f} per verified env)"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(p.name for p in CATALOG.iterdir() if p.is_dir()))
