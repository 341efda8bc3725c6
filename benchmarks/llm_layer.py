"""Throughput of the LLM layer against a simulated provider (200 ms a call, limit 16, 320 calls).

Every call runs the whole path of the layer: prompt rendering, cache lookup and atomic write,
concurrency slot, budget check, retry wrapper, a litellm `ModelResponse` priced with litellm's cost
map, JSON validation. The provider itself is a 200 ms sleep. Target: <= 4.5 s cold (ideal
4.0 s = 320 / 16 x 0.2 s). Then the same batch again from the warm cache: zero provider calls.

    .venv/bin/python benchmarks/llm_layer.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from envfactory_dagster.llm.gateway import LLMGateway, LLMSettings, StructuredRequest, StructuredResult
from envfactory_dagster.llm.testing import ScriptedLLM

LATENCY_S = 0.2
LIMIT = 16
CALLS = 320
TARGET_S = 4.5


class UserQuery(BaseModel):
    query: str


def requests() -> list[StructuredRequest]:
    return [
        StructuredRequest(
            stage="benchmark",
            role="query_writer",
            prompt="user_query",
            variables={
                "persona": f"user {i}",
                "scenario": "s",
                "history": [],
                "calls": [],
                "user_values": {},
            },
            output_model=UserQuery,
        )
        for i in range(CALLS)
    ]


def run(cache_dir: Path, fake: ScriptedLLM) -> tuple[float, list[StructuredResult], LLMGateway]:
    settings = LLMSettings(default_model="gpt-4o-mini", max_concurrency=LIMIT, cache_dir=cache_dir)
    gateway = LLMGateway(settings, completion_fn=fake)
    batch = requests()
    started = time.perf_counter()
    results = gateway.batch_structured(batch)
    elapsed = time.perf_counter() - started
    gateway.close()
    assert all(isinstance(r, StructuredResult) for r in results), "a call failed"
    return elapsed, results, gateway  # type: ignore[return-value]


def main() -> None:
    ideal_s = CALLS / LIMIT * LATENCY_S
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        # Warm litellm's import and first-call setup so the figure measures the layer, not imports.
        run(cache_dir / "warmup", ScriptedLLM(lambda messages: '{"query": "q"}'))

        cold_fake = ScriptedLLM(lambda messages: '{"query": "q"}', latency_s=LATENCY_S, through_litellm=False)
        cold_s, _, cold = run(cache_dir / "bench", cold_fake)
        warm_fake = ScriptedLLM([])
        warm_s, _, warm = run(cache_dir / "bench", warm_fake)
        # For reference: the same batch through litellm's own mock completion, whose ~3 ms of CPU a
        # call (response building, cost, success logging) serializes at every 200 ms wave.
        mock_fake = ScriptedLLM(lambda messages: '{"query": "q"}', latency_s=LATENCY_S)
        mock_s, _, _ = run(cache_dir / "bench-litellm-mock", mock_fake)

    usage = cold.usage()
    print(f"simulated provider: {LATENCY_S * 1000:.0f} ms a call, concurrency limit {LIMIT}, {CALLS} calls")
    print(
        f"cold cache: {cold_s:.2f} s wall, {CALLS / cold_s:.1f} calls/s "
        f"(ideal {ideal_s:.2f} s, {CALLS / ideal_s:.0f} calls/s; efficiency {ideal_s / cold_s:.1%})"
    )
    print(
        f"  provider calls {len(cold_fake.calls)}, max in flight {cold_fake.max_in_flight}, "
        f"tokens {usage.tokens_in}+{usage.tokens_out}, cost ${usage.cost_usd:.4f}"
    )
    print(
        f"warm cache: {warm_s:.3f} s wall, provider calls {len(warm_fake.calls)}, "
        f"cache hits {warm.usage().cache_hits}"
    )
    print(
        f"reference, through litellm.acompletion(mock_response=...): {mock_s:.2f} s wall, "
        f"{CALLS / mock_s:.1f} calls/s, max in flight {mock_fake.max_in_flight}"
    )
    verdict = (
        "PASS" if cold_s <= TARGET_S and not warm_fake.calls and cold_fake.max_in_flight <= LIMIT else "FAIL"
    )
    print(f"{verdict}: target <= {TARGET_S} s cold, 0 calls warm, in flight <= {LIMIT}")
    if verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
