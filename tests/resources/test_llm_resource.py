"""The LLM Dagster resource: config becomes gateway settings; a warm cache re-materializes with no calls."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import BaseModel

from envfactory_dagster.llm.gateway import LLMGateway
from envfactory_dagster.llm.testing import ScriptedLLM
from resources.llm import LLM_POOL, LLMResource


class Persona(BaseModel):
    persona: str
    scenario: str


PERSONA_VARIABLES = {"domain": "travel", "environments": [], "chain": ["search flights", "book"]}


def test_config_becomes_settings(tmp_path: Path) -> None:
    resource = LLMResource(
        models={"judge": "gpt-4o-mini"},
        api_base="http://localhost:8000/v1",
        budget_usd=2.5,
        max_concurrency=3,
    )
    settings = resource.settings(tmp_path)
    assert (settings.models, settings.api_base, settings.budget_usd) == (
        {"judge": "gpt-4o-mini"},
        "http://localhost:8000/v1",
        2.5,
    )
    gateway = resource.gateway(tmp_path)
    assert gateway.is_configured("judge") and not gateway.is_configured("coder")
    assert LLM_POOL == "llm"


def test_asset_rematerializes_from_a_warm_cache_with_zero_calls(tmp_path: Path) -> None:
    fake = ScriptedLLM(['{"persona": "a nurse", "scenario": "a trip to Lyon"}'])
    resource = LLMResource(default_model="gpt-4o-mini")
    with LLMGateway(resource.settings(tmp_path), completion_fn=fake) as warmup:
        warmup.complete_structured(
            stage="personas",
            role="query_writer",
            prompt="persona",
            variables=PERSONA_VARIABLES,
            output_model=Persona,
        )
    assert len(fake.calls) == 1

    @dg.asset(pool=LLM_POOL)
    def personas(llm: LLMResource) -> dg.MaterializeResult:
        # The resource's gateway uses litellm itself: only a cache hit can answer offline.
        with llm.gateway(tmp_path) as gateway:
            result = gateway.complete_structured(
                stage="personas",
                role="query_writer",
                prompt="persona",
                variables=PERSONA_VARIABLES,
                output_model=Persona,
            )
            return dg.MaterializeResult(
                metadata={**gateway.usage().as_metadata(), "persona": result.value.persona}
            )

    outcome = dg.materialize([personas], resources={"llm": resource})
    metadata = outcome.asset_materializations_for_node("personas")[0].metadata
    assert metadata["llm/calls"].value == 0 and metadata["llm/cache_hits"].value == 1
    assert metadata["persona"].value == "a nurse"
