"""The EnvGen assets on the LLM backend, with a scripted model behind the real gateway: the
proposer's grouping and the coder's module go through the same verification and checks."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

import resources.llm
from envfactory_dagster.definitions import build_definitions
from envfactory_dagster.envgen.codegen import generate_module
from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from tests.conftest import REALWORLD

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason="needs ../shared/realworld")


def scripted_model(operation_ids: list[str]):
    def answer(messages: list[dict]) -> str:
        prompt = messages[-1]["content"]
        if prompt.startswith("Domain:"):  # the proposer: one hotel desk over every operation
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
        spec = EnvSpec.model_validate_json(prompt.split("Environment spec (JSON):\n", 1)[1])
        return f"```python\n{generate_module(spec)}```"  # the coder writes a correct module

    return answer


def test_llm_backend_proposes_codes_and_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    travel_resources = ingest_domain(REALWORLD, "travel").resources
    operation_ids = [
        f"{r['id']}:{op['operation_id']}"
        for r in travel_resources
        for op in json.loads(r["spec_json"])["operations"]
    ]
    fake = ScriptedLLM(scripted_model(operation_ids))
    monkeypatch.setattr(
        resources.llm, "LLMGateway", lambda settings: LLMGateway(settings, completion_fn=fake)
    )
    home = str(tmp_path / "home")
    built = build_definitions(REALWORLD, home, llm_model="gpt-4o-mini")
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
        ("HotelDesk", "llm", "gpt-4o-mini")
    ]
    [(name, backend, model, prompt)] = query(
        catalog, "SELECT class_name, backend, model, prompt_version FROM verified_envs"
    )
    assert (name, backend, model) == ("HotelDesk", "llm", "gpt-4o-mini") and prompt.startswith("env_code@")
    assert len(fake.calls) == 2  # one proposal call, one coder call: the first version passed
