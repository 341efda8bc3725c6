"""MCP serving speed: session start time and tool calls per second over stdio.

    .venv/bin/python benchmarks/serve_mcp.py [--calls N] [--sessions K]

Serves the ShopOrders fixture environment (tests/fakes/example_env.py) from a temporary registry
with `python -m envfactory_dagster.serve mcp` and drives it with the MCP SDK's stdio client.
Session start = spawn + initialize + first tools/list; calls = sequential `get_order` calls
(read, one round trip each) and `create_order` calls (write). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import pandas as pd
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from envfactory_dagster.lineage import sha256_hex  # noqa: E402
from envfactory_dagster.storage.partition_store import PartitionStore  # noqa: E402
from tests.fakes.example_env_spec import EXAMPLE_ENV_SOURCE, EXAMPLE_SEED_STATE, EXAMPLE_SPEC  # noqa: E402

ENV_ID = "env_shoporders_bench"


def write_registry(home: str) -> None:
    row = {
        "env_id": ENV_ID,
        "class_name": "ShopOrders",
        "source": EXAMPLE_ENV_SOURCE,
        "code_sha256": sha256_hex(EXAMPLE_ENV_SOURCE),
        "spec_json": EXAMPLE_SPEC.model_dump_json(),
        "seed_state_json": json.dumps(EXAMPLE_SEED_STATE),
        "domain": "commerce",
    }
    PartitionStore(home).write("verified_envs", "commerce", pd.DataFrame([row]))


async def one_session(home: str, calls: int) -> dict[str, float]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "envfactory_dagster.serve", "mcp", "--env-id", ENV_ID, "--home", home],
        cwd=str(REPO),
        env={"PYTHONPATH": str(REPO)},
    )
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        ready = time.perf_counter()
        for _ in range(calls):
            await session.call_tool("get_order", {"order_id": "ord_0001"})
        reads_done = time.perf_counter()
        for _ in range(calls):
            await session.call_tool("create_order", {"customer_id": "cus_0001", "total": 1.0})
        writes_done = time.perf_counter()
    return {
        "start_s": ready - started,
        "read_calls_per_s": calls / (reads_done - ready),
        "write_calls_per_s": calls / (writes_done - reads_done),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        write_registry(home)
        runs = [anyio.run(one_session, home, args.calls) for _ in range(args.sessions)]
    summary = {
        key: round(statistics.median(run[key] for run in runs), 3)
        for key in ("start_s", "read_calls_per_s", "write_calls_per_s")
    }
    print(json.dumps({"sessions": args.sessions, "calls_per_kind": args.calls, **summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
