"""The EnvGen assets on the LLM backend, with a scripted model behind a local OpenAI-compatible
server (litellm's real HTTP path): the proposer's grouping and the coder's tool bodies (written
like a weak model's, never the template's) go through the same verification and checks."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from envfactory_dagster.definitions import build_definitions
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.llm.testing import ScriptedOpenAIServer
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from tests.conftest import REALWORLD
from tests.fakes import weak_coder

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason="needs ../shared/realworld")


def scripted_model(operation_ids: list[str]):
    def answer(messages: list[dict]):
        if messages[-1]["content"].startswith("Domain:"):  # the proposer: one hotel desk over every operation
            return json.dumps(
                {
                    "proposals": [
                        {
                            "class_name": "HotelDesk",
                            "title": "Hotel desk",
                            "purpose": "Find hotels, compare offers, book a stay.",
                            "operation_ids": operation_ids,
                        }
                    ]
                }
            )
        return weak_coder.answer(messages)  # tool bodies only, written like a weak model

    return answer


def test_llm_backend_proposes_codes_and_verifies_over_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    travel_resources = ingest_domain(REALWORLD, "travel").resources
    operation_ids = [
        f"{r['id']}:{op['operation_id']}"
        for r in travel_resources
        for op in json.loads(r["spec_json"])["operations"]
    ]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    home = str(tmp_path / "home")
    with ScriptedOpenAIServer(scripted_model(operation_ids)) as server:
        built = build_definitions(
            REALWORLD, home, llm_model="openai/gpt-4o-mini", llm_api_base=server.api_base
        )
        with dg.instance_for_test() as instance:
            result = dg.materialize(
                list(built.assets),
                partition_key="travel",
                instance=instance,
                resources=built.resources,
                selection=dg.AssetSelection.groups("ingest", "envgen"),
            )
    assert result.success
    catalog = catalog_path(home)
    assert query(catalog, "SELECT class_name, backend, llm_model FROM env_proposals") == [
        ("HotelDesk", "llm", "openai/gpt-4o-mini")
    ]
    codes = query(
        catalog,
        "SELECT attempt, prompt_version, source, revision_history_json FROM env_code ORDER BY attempt",
    )
    assert codes and all(p.startswith(("env_tool_bodies@", "env_revise_bodies@")) for _, p, _, _ in codes)
    assert "NotImplementedError" not in codes[-1][2]  # every tool body written
    history = json.loads(codes[-1][3])
    assert len(history) == len(codes)  # every attempt is stored, each with the calls behind it
    sent = sum(len(a["calls"]) for a in history) + 1  # + the proposal
    assert len(server.chat_requests) == sent  # every call went over HTTP
    verified = query(catalog, "SELECT class_name, backend, model, prompt_version FROM verified_envs")
    assert verified == [("HotelDesk", "llm", "openai/gpt-4o-mini", verified[0][3])]
