"""The LLM gateway against a scripted provider: cache, retries, repair, budget, concurrency, costs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from envfactory_dagster.llm.cache import cache_table
from envfactory_dagster.llm.gateway import (
    LLMCallError,
    LLMGateway,
    LLMNotConfigured,
    LLMOutputError,
    LLMProviderError,
    LLMSettings,
    StructuredRequest,
    StructuredResult,
    is_transient,
)
from envfactory_dagster.llm.testing import RATE_LIMITED, SERVER_ERROR, ScriptedLLM

PRICED_MODEL = "gpt-4o-mini"  # in litellm's local cost map
MOCK_TOKENS_PER_CALL = 30  # litellm's mock response reports 10 prompt + 20 completion tokens


class UserQuery(BaseModel):
    query: str


def query_variables(persona: str = "a student") -> dict[str, Any]:
    return {"persona": persona, "scenario": "moving flats", "history": [], "calls": [], "user_values": {}}


OPEN_GATEWAYS: list[LLMGateway] = []


@pytest.fixture(autouse=True)
def close_gateways() -> Iterator[None]:
    yield
    while OPEN_GATEWAYS:
        OPEN_GATEWAYS.pop().close()


def make_gateway(cache_dir: Path, fake: ScriptedLLM, **overrides: Any) -> LLMGateway:
    settings = LLMSettings(
        default_model=PRICED_MODEL, cache_dir=cache_dir, retry_base_s=0.001, retry_max_s=0.01, **overrides
    )
    gateway = LLMGateway(settings, completion_fn=fake, embedding_fn=fake.aembedding)
    OPEN_GATEWAYS.append(gateway)
    return gateway


def ask(gateway: LLMGateway, persona: str = "a student") -> StructuredResult:
    return gateway.complete_structured(
        stage="trajectories",
        role="query_writer",
        prompt="user_query",
        variables=query_variables(persona),
        output_model=UserQuery,
    )


def request(persona: str) -> StructuredRequest:
    return StructuredRequest(
        stage="trajectories",
        role="query_writer",
        prompt="user_query",
        variables=query_variables(persona),
        output_model=UserQuery,
    )


def test_cache_miss_then_hit_with_zero_provider_calls(tmp_path: Path) -> None:
    first = ScriptedLLM(['{"query": "Book me a van for Saturday."}'])
    miss = ask(make_gateway(tmp_path, first))
    assert (miss.cached, len(first.calls)) == (False, 1)
    assert miss.value == UserQuery(query="Book me a van for Saturday.")
    assert miss.cost_usd > 0 and miss.tokens_in > 0

    warm = ScriptedLLM([])  # any provider call would fail the test
    gateway = make_gateway(tmp_path, warm)
    hit = ask(gateway)
    assert hit.cached and hit.value == miss.value and warm.calls == []
    assert (hit.tokens_in, hit.cost_usd) == (miss.tokens_in, miss.cost_usd)
    usage = gateway.usage()
    assert (usage.calls, usage.cache_hits, usage.cost_usd) == (0, 1, 0.0)
    assert usage.cached_cost_usd == pytest.approx(miss.cost_usd)

    other = ScriptedLLM(['{"query": "Other."}'])
    assert not ask(make_gateway(tmp_path, other), persona="a pensioner").cached  # new messages, new key
    assert len(other.calls) == 1


def test_cache_is_a_table(tmp_path: Path) -> None:
    ask(make_gateway(tmp_path, ScriptedLLM(['{"query": "q"}'])))
    table = cache_table(tmp_path)
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["model"], row["prompt_name"], row["prompt_version"]) == (PRICED_MODEL, "user_query", "1")
    assert (row["role"], row["stage"], row["tokens_in"], row["tokens_out"]) == (
        "query_writer",
        "trajectories",
        10,
        20,
    )
    assert row["cost_usd"] > 0 and row["created_at"]
    assert cache_table(tmp_path / "absent").empty


def test_warm_batch_makes_zero_provider_calls(tmp_path: Path) -> None:
    personas = [f"person {i}" for i in range(6)]
    cold = ScriptedLLM(lambda messages: '{"query": "hi"}')
    assert all(
        isinstance(r, StructuredResult)
        for r in make_gateway(tmp_path, cold).batch_structured([request(p) for p in personas])
    )
    warm = ScriptedLLM([])
    results = make_gateway(tmp_path, warm).batch_structured([request(p) for p in personas])
    assert warm.calls == [] and all(isinstance(r, StructuredResult) and r.cached for r in results)


def test_rate_limited_twice_then_success(tmp_path: Path) -> None:
    fake = ScriptedLLM([RATE_LIMITED, RATE_LIMITED, '{"query": "ok"}'])
    gateway = make_gateway(tmp_path, fake)
    result = ask(gateway)
    assert result.value.query == "ok"
    assert len(fake.calls) == 3
    assert (gateway.usage().calls, gateway.usage().failed_calls) == (1, 0)


def test_retries_are_bounded_then_fail_clearly(tmp_path: Path) -> None:
    fake = ScriptedLLM([SERVER_ERROR] * 3)
    with pytest.raises(LLMProviderError, match=r"stage 'trajectories', model 'gpt-4o-mini'.*3 attempt"):
        ask(make_gateway(tmp_path, fake, max_retries=2))
    assert len(fake.calls) == 3


def test_non_transient_errors_are_not_retried(tmp_path: Path) -> None:
    bad_request = ValueError("bad request")
    bad_request.status_code = 400  # type: ignore[attr-defined]
    fake = ScriptedLLM([bad_request])
    with pytest.raises(LLMProviderError, match="1 attempt"):
        ask(make_gateway(tmp_path, fake))
    assert len(fake.calls) == 1


def test_transient_classification() -> None:
    def with_status(code: int) -> Exception:
        exc = Exception(str(code))
        exc.status_code = code  # type: ignore[attr-defined]
        return exc

    assert [is_transient(with_status(c)) for c in (429, 500, 503, 400, 401, 404)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    assert is_transient(TimeoutError())


def test_malformed_json_is_repaired_with_the_validation_error(tmp_path: Path) -> None:
    fake = ScriptedLLM(['Sure! {"query": 5}', '```json\n{"query": "fixed"}\n```'])
    result = ask(make_gateway(tmp_path, fake))
    assert result.value.query == "fixed" and result.calls == 2
    repair = fake.calls[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": 'Sure! {"query": 5}'}
    assert "query: Input should be a valid string" in repair[-1]["content"]
    assert result.tokens_out == 40  # both answers are accounted for


def test_malformed_json_fails_clearly_after_the_repair_budget(tmp_path: Path) -> None:
    fake = ScriptedLLM(["no json here", "still none"])
    with pytest.raises(LLMOutputError) as caught:
        ask(make_gateway(tmp_path, fake, repair_retries=1))
    message = str(caught.value)
    assert "stage 'trajectories'" in message and "model 'gpt-4o-mini'" in message
    assert "no JSON object found" in message
    assert len(fake.calls) == 2


def test_budget_stop_keeps_partial_results(tmp_path: Path) -> None:
    fake = ScriptedLLM(lambda messages: '{"query": "q"}')
    gateway = make_gateway(tmp_path, fake, max_concurrency=1, budget_tokens=2 * MOCK_TOKENS_PER_CALL)
    results = gateway.batch_structured([request(f"p{i}") for i in range(5)])
    assert [type(r).__name__ for r in results] == ["StructuredResult"] * 2 + ["LLMCallError"] * 3
    assert all(isinstance(r, LLMCallError) and r.kind == "budget_exceeded" for r in results[2:])
    assert "token budget spent: 60 tokens used of 60" in results[2].reason
    assert [r.index for r in results[2:]] == [2, 3, 4]
    assert len(fake.calls) == 2
    usage = gateway.usage()
    assert (usage.budget_exceeded, usage.skipped_for_budget, usage.calls) == (True, 3, 2)
    assert len(cache_table(tmp_path)) == 2  # the bought answers are kept for the next run


def test_usd_budget(tmp_path: Path) -> None:
    fake = ScriptedLLM(lambda messages: '{"query": "q"}')
    gateway = make_gateway(tmp_path, fake, max_concurrency=1, budget_usd=1e-9)
    results = gateway.batch_structured([request(f"p{i}") for i in range(3)])
    assert isinstance(results[0], StructuredResult)
    assert [r.kind for r in results[1:] if isinstance(r, LLMCallError)] == ["budget_exceeded"] * 2
    assert "USD budget spent" in results[1].reason


def test_calls_in_flight_never_exceed_the_limit(tmp_path: Path) -> None:
    fake = ScriptedLLM(lambda messages: '{"query": "q"}', latency_s=0.05)
    gateway = make_gateway(tmp_path, fake, max_concurrency=4)
    results = gateway.batch_structured([request(f"p{i}") for i in range(20)])
    assert all(isinstance(r, StructuredResult) for r in results)
    assert fake.max_in_flight == 4  # calls overlap up to the limit and never pass it


def test_batch_preserves_order_and_reports_bad_items(tmp_path: Path) -> None:
    def echo_persona(messages: list[dict[str, Any]]) -> str:
        return json.dumps({"query": messages[1]["content"].split("\n")[0]})

    fake = ScriptedLLM(echo_persona)
    gateway = make_gateway(tmp_path, fake)
    bad = StructuredRequest(
        stage="trajectories", role="query_writer", prompt="user_query", variables={}, output_model=UserQuery
    )
    results = gateway.batch_structured([request("p0"), bad, request("p2")])
    assert results[0].value.query == "Persona: p0" and results[2].value.query == "Persona: p2"
    assert isinstance(results[1], LLMCallError) and results[1].kind == "bad_request"
    assert "missing variables" in results[1].reason and results[1].index == 1


def test_unconfigured_role_names_the_role(tmp_path: Path) -> None:
    gateway = LLMGateway(LLMSettings(models={"coder": PRICED_MODEL}, cache_dir=tmp_path))
    assert gateway.is_configured("coder") and not gateway.is_configured("judge")
    with pytest.raises(LLMNotConfigured, match="'judge'"):
        gateway.model_for("judge")
    with pytest.raises(ValueError, match="unknown LLM role"):
        gateway.is_configured("poet")


def test_per_role_model_and_endpoint(tmp_path: Path) -> None:
    MODEL = "hosted_vllm/qwen2.5-7b"
    fake = ScriptedLLM(lambda messages: '{"query": "q"}')
    gateway = make_gateway(
        tmp_path,
        fake,
        models={"query_writer": MODEL},
        api_base="http://hosted.example/v1",
        api_bases={"query_writer": "http://localhost:8000/v1"},
    )
    result = ask(gateway)
    assert result.model == MODEL
    assert (fake.calls[0]["model"], fake.calls[0]["api_base"]) == (MODEL, "http://localhost:8000/v1")
    assert result.lineage() == {
        "llm_model": MODEL,
        "prompt_name": "user_query",
        "prompt_version": "1",
    }


def test_unknown_model_costs_zero_and_is_flagged(tmp_path: Path) -> None:
    fake = ScriptedLLM(['{"query": "q"}'])
    gateway = make_gateway(tmp_path, fake, models={"query_writer": "openai/my-finetune"})
    assert ask(gateway).cost_usd == 0.0
    assert gateway.usage().unknown_cost_models == ["openai/my-finetune"]
    assert gateway.usage().as_metadata()["llm/unknown_cost_models"] == "openai/my-finetune"


def test_complete_text_returns_code(tmp_path: Path) -> None:
    fake = ScriptedLLM(["Here it is:\n```python\nENVIRONMENT_CLASS = None\n```\n"])
    result = make_gateway(tmp_path, fake).complete_text(
        stage="env_code",
        role="coder",
        prompt="env_tool_bodies",
        variables={"skeleton": "", "tools": {"class_name": "X"}},
    )
    assert result.code == "ENVIRONMENT_CLASS = None\n"
    assert "class_name" in fake.calls[0]["messages"][1]["content"]


def test_prompt_role_mismatch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="for roles \\['coder'\\], not 'judge'"):
        make_gateway(tmp_path, ScriptedLLM([])).complete_text(
            stage="s", role="judge", prompt="env_tool_bodies", variables={"skeleton": "", "tools": "[]"}
        )


def test_embeddings_are_cached_per_text(tmp_path: Path) -> None:
    fake = ScriptedLLM([])
    gateway = make_gateway(tmp_path, fake, models={"embedder": "text-embedding-3-small"})
    vectors = gateway.embed(["refund id", "order id", "refund id"], stage="tool_graph")
    assert fake.embedding_calls == [["refund id", "order id"]]
    assert vectors[0] == vectors[2] == fake.vector("refund id") and vectors[1] != vectors[0]

    warm = ScriptedLLM([])
    again = make_gateway(tmp_path, warm, models={"embedder": "text-embedding-3-small"})
    assert again.embed(["order id", "refund id"], stage="tool_graph") == [vectors[1], vectors[0]]
    assert warm.embedding_calls == [] and again.usage().cache_hits == 2


def test_async_api_shares_the_limit(tmp_path: Path) -> None:
    import asyncio

    fake = ScriptedLLM(lambda messages: '{"query": "q"}', latency_s=0.02)
    gateway = make_gateway(tmp_path, fake, max_concurrency=2)

    async def run() -> list[StructuredResult]:
        return await asyncio.gather(
            *(
                gateway.acomplete_structured(
                    stage="s",
                    role="query_writer",
                    prompt="user_query",
                    variables=query_variables(f"p{i}"),
                    output_model=UserQuery,
                )
                for i in range(6)
            )
        )

    assert len(asyncio.run(run())) == 6
    assert fake.max_in_flight == 2
