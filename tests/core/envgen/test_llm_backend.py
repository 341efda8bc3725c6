"""The LLM backend of EnvGen with scripted model answers: proposals grounded in real operations,
every synthesized version stored and re-verified by the same sandbox."""

from __future__ import annotations

import json
from pathlib import Path

from envfactory_dagster.envgen.llm_backend import env_code_rows_llm, propose_environments_llm
from envfactory_dagster.envgen.stages import env_verification_rows, verified_env_rows
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from tests.conftest import REALWORLD
from tests.core.envgen.test_revise_loop import versions_model
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SPEC
from tests.fakes.example_env_variants import example_source_with


def gateway(tmp_path: Path, answers: list[str]) -> tuple[LLMGateway, ScriptedLLM]:
    fake = ScriptedLLM(answers)
    settings = LLMSettings(default_model="gpt-4o-mini", cache_dir=tmp_path)
    return LLMGateway(settings, completion_fn=fake, embedding_fn=fake.aembedding), fake


def test_proposals_cite_real_operations_and_unknown_ones_are_rejected(tmp_path: Path) -> None:
    resources = ingest_domain(REALWORLD, "travel").resources
    # the first operation of each hotel resource: list hotels, search offers, book
    known = [f"{r['id']}:{json.loads(r['spec_json'])['operations'][0]['operation_id']}" for r in resources]
    answer = {
        "proposals": [
            {
                "class_name": "HotelDesk",
                "title": "Hotel desk",
                "purpose": "Find and book hotels.",
                "operation_ids": known,
            },
            {
                "class_name": "Invented",
                "title": "Invented",
                "purpose": "Not in the docs.",
                "operation_ids": [f"{resources[0]['id']}:teleportGuest"],
            },
        ]
    }
    llm, fake = gateway(tmp_path, [json.dumps(answer)])
    with llm:
        rows, rejects, metrics = propose_environments_llm(resources, llm, domain="travel")
    assert [r["class_name"] for r in rows] == ["HotelDesk"]
    assert rows[0]["backend"] == "llm" and rows[0]["prompt_name"] == "env_proposal" and rows[0]["llm_model"]
    assert sorted(rows[0]["resource_ids"]) == sorted({k.partition(":")[0] for k in known})
    assert "teleportGuest" in rejects[0]["reason"]
    assert metrics["llm/calls"] == 1 and len(fake.calls) == 1


def test_every_attempt_is_stored_and_only_the_passing_version_is_registered(tmp_path: Path) -> None:
    spec_json = canonical_json(EXAMPLE_SPEC.model_dump(mode="json"))
    spec_row = {
        "id": "spec_example",
        "domain": EXAMPLE_SPEC.domain,
        "proposal_id": "prop_example",
        "class_name": EXAMPLE_SPEC.class_name,
        "spec_json": spec_json,
        "resource_ids": ["res_x"],
        "source_write_operations": 2,
    }
    llm, _ = gateway(tmp_path, [])
    llm._completion_fn = ScriptedLLM(
        versions_model([example_source_with("get_keyerror"), EXAMPLE_ENV_SOURCE])
    )
    with llm:
        codes, rejects, metrics = env_code_rows_llm([spec_row], llm, base_seed=0)
    assert not rejects and [c["attempt"] for c in codes] == [1, 2]
    assert metrics["stop_reasons"] == {"passed": 1}
    verifications, _ = env_verification_rows(codes, [spec_row])
    assert [v["passed"] for v in verifications] == [False, True]  # re-verified, same verdicts
    registry, _ = verified_env_rows(verifications, codes, [spec_row])
    assert [r["source"] for r in registry] == [codes[1]["source"]]
    assert registry[0]["backend"] == "llm" and registry[0]["prompt_version"].startswith("env_revise_bodies@")
    history = json.loads(codes[1]["revision_history_json"])
    assert [len(a["calls"]) for a in history] == [2, 1]  # every call behind every attempt is kept
    assert metrics["coder_calls"] == 3 and metrics["repair_calls"] == 0
