"""The gateway over HTTP: litellm's real request path against a local OpenAI-compatible server that
misbehaves on purpose (429 bursts, slow answers, malformed JSON, cut answers, no response_format)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from envfactory_dagster.llm.cache import cache_table
from envfactory_dagster.llm.gateway import LLMCallError, LLMGateway, LLMSettings, StructuredRequest
from envfactory_dagster.llm.testing import ScriptedOpenAIServer, ScriptedReply, replies_in_order

KEY_ENV = "SCRIPTED_LLM_KEY"
PRICED_MODEL = "openai/gpt-4o-mini"  # priced by litellm's local cost map, served by the local server


class UserQuery(BaseModel):
    query: str


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-local")


@pytest.fixture()
def open_gateways() -> Iterator[list[LLMGateway]]:
    gateways: list[LLMGateway] = []
    yield gateways
    for gateway in gateways:
        gateway.close()


def make_gateway(
    server: ScriptedOpenAIServer, cache_dir: Path, opened: list[LLMGateway], **overrides: Any
) -> LLMGateway:
    settings = LLMSettings(
        **{
            "default_model": PRICED_MODEL,
            "api_base": server.api_base,
            "api_key_env": KEY_ENV,
            "cache_dir": cache_dir,
            "retry_base_s": 0.01,
            "retry_max_s": 0.05,
            **overrides,
        }
    )
    gateway = LLMGateway(settings)
    opened.append(gateway)
    return gateway


def request(persona: str) -> StructuredRequest:
    return StructuredRequest(
        stage="trajectories",
        role="query_writer",
        prompt="user_query",
        variables={"persona": persona, "scenario": "s", "history": [], "calls": [], "user_values": {}},
        output_model=UserQuery,
    )


def ask(gateway: LLMGateway, persona: str = "a student") -> Any:
    return gateway.complete_structured(**dict(request(persona)))


def test_a_429_burst_is_retried_over_http(tmp_path: Path, open_gateways: list[LLMGateway]) -> None:
    burst = [ScriptedReply(status=429, error="Rate limit reached")] * 3
    with ScriptedOpenAIServer(replies_in_order([*burst, '{"query": "Book a van."}'])) as server:
        gateway = make_gateway(server, tmp_path, open_gateways)
        result = ask(gateway)
    assert result.value.query == "Book a van." and len(server.chat_requests) == 4
    usage = gateway.usage()
    assert (usage.calls, usage.failed_calls) == (1, 0) and usage.cost_usd > 0


def test_retries_stop_at_the_limit_and_the_error_names_the_status(
    tmp_path: Path, open_gateways: list[LLMGateway]
) -> None:
    with ScriptedOpenAIServer(lambda messages: ScriptedReply(status=429, error="slow down")) as server:
        gateway = make_gateway(server, tmp_path, open_gateways, max_retries=2)
        [error] = gateway.batch_structured([request("p")])
    assert isinstance(error, LLMCallError) and error.kind == "provider_error"
    assert "3 attempt" in error.reason and "RateLimitError" in error.reason
    assert len(server.chat_requests) == 3


def test_a_slow_answer_times_out_and_is_retried(tmp_path: Path, open_gateways: list[LLMGateway]) -> None:
    replies = [ScriptedReply(content='{"query": "late"}', delay_s=1.5), '{"query": "in time"}']
    with ScriptedOpenAIServer(replies_in_order(replies)) as server:
        gateway = make_gateway(server, tmp_path, open_gateways, timeout_s=0.4)
        assert ask(gateway).value.query == "in time"
    assert len(server.chat_requests) == 2


def test_malformed_json_is_repaired_over_http(tmp_path: Path, open_gateways: list[LLMGateway]) -> None:
    replies = ["Sure! Here is the message: {query: 'Book a van'", '```json\n{"query": "Book a van."}\n```']
    with ScriptedOpenAIServer(replies_in_order(replies)) as server:
        result = ask(make_gateway(server, tmp_path, open_gateways))
    assert result.value.query == "Book a van." and result.calls == 2
    repair = server.chat_requests[1]["messages"]
    assert repair[-2]["content"].startswith("Sure!") and "not valid" in repair[-1]["content"]


def test_budget_stops_new_calls_over_http(tmp_path: Path, open_gateways: list[LLMGateway]) -> None:
    with ScriptedOpenAIServer(lambda messages: '{"query": "q"}') as server:
        gateway = make_gateway(server, tmp_path, open_gateways, max_concurrency=1, budget_tokens=1)
        results = gateway.batch_structured([request(f"p{i}") for i in range(4)])
    kinds = [r.kind if isinstance(r, LLMCallError) else "ok" for r in results]
    assert kinds == ["ok"] + ["budget_exceeded"] * 3
    assert len(server.chat_requests) == 1 and gateway.usage().skipped_for_budget == 3
    assert len(cache_table(tmp_path)) == 1


def test_a_warm_cache_sends_nothing(tmp_path: Path, open_gateways: list[LLMGateway]) -> None:
    with ScriptedOpenAIServer(lambda messages: '{"query": "q"}') as server:
        first = make_gateway(server, tmp_path, open_gateways).batch_structured([request("a"), request("b")])
        sent = len(server.chat_requests)
        second = make_gateway(server, tmp_path, open_gateways)
        again = second.batch_structured([request("a"), request("b")])
    assert sent == 2 and len(server.chat_requests) == sent
    assert [r.value for r in again] == [r.value for r in first] and all(r.cached for r in again)
    assert (second.usage().calls, second.usage().cache_hits) == (0, 2)


def test_schema_goes_to_the_provider_when_the_model_supports_it(
    tmp_path: Path, open_gateways: list[LLMGateway]
) -> None:
    with ScriptedOpenAIServer(lambda messages: '{"query": "q"}') as server:
        ask(make_gateway(server, tmp_path, open_gateways))
        ask(make_gateway(server, tmp_path / "p", open_gateways, structured_output="prompted"))
    constrained, prompted = server.chat_requests
    assert constrained["response_format"]["json_schema"]["schema"] == UserQuery.model_json_schema()
    assert "response_format" not in prompted


def test_a_server_without_response_format_falls_back_to_prompted_json(
    tmp_path: Path, open_gateways: list[LLMGateway]
) -> None:
    with ScriptedOpenAIServer(lambda messages: '{"query": "q"}', refuse_response_format=True) as server:
        gateway = make_gateway(server, tmp_path, open_gateways, structured_output="json_schema")
        assert ask(gateway).value.query == "q"
        assert ask(gateway, "someone else").value.query == "q"
    assert ["response_format" in r for r in server.chat_requests] == [True, False, False]
    assert gateway.structured_output_mode("query_writer") == "prompted"


def test_an_answer_past_max_tokens_is_marked_truncated(
    tmp_path: Path, open_gateways: list[LLMGateway]
) -> None:
    module = "```python\n" + "x = 1\n" * 400 + "```"
    with ScriptedOpenAIServer(lambda messages: module) as server:
        gateway = make_gateway(server, tmp_path, open_gateways, max_tokens_by_role={"coder": 100})
        result = gateway.complete_text(
            stage="env_code",
            role="coder",
            prompt="env_tool_bodies",
            variables={"skeleton": "", "tools": "[]"},
        )
    assert result.truncated and len(result.text) < len(module)
    assert server.chat_requests[0]["max_tokens"] == 100
    warm = make_gateway(server, tmp_path, open_gateways, max_tokens_by_role={"coder": 100})
    assert warm.complete_text(
        stage="env_code", role="coder", prompt="env_tool_bodies", variables={"skeleton": "", "tools": "[]"}
    ).truncated  # the cache keeps the finish reason
