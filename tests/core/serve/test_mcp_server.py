"""The MCP SDK's own client lists tools and runs a gold chain against a served environment."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from envfactory_dagster.serve.mcp_server import (
    DUMP_STATE_TOOL,
    LOAD_STATE_TOOL,
    OUTPUT_SCHEMA_META,
    STATE_URI_PREFIX,
)
from tests.core.serve.conftest import ENV_ID, GOLD_CHAIN, expected_final_state
from tests.fakes.example_env_spec import EXAMPLE_SEED_STATE

REPO = Path(__file__).resolve().parents[3]
SHOP_TOOLS = {"search_customers", "list_orders", "get_order", "create_order", "cancel_order"}


def server_command(home: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "envfactory_dagster.serve",
        "mcp",
        "--env-id",
        ENV_ID,
        "--home",
        home,
        *extra,
    ]


def payload(result: Any) -> dict:
    """A result's JSON (the text every result carries; structured content must say the same)."""
    value = json.loads(result.content[0].text)
    assert result.structured_content in (None, value)
    return value


async def run_gold_chain(session: ClientSession, *, output_schemas: bool = False) -> dict:
    """List tools, run the chain, probe a tool error; returns the final state read as a resource."""
    await session.initialize()
    tools = {tool.name: tool for tool in (await session.list_tools()).tools}
    assert set(tools) >= SHOP_TOOLS
    assert tools["create_order"].input_schema["required"] == ["customer_id", "total"]
    assert tools["get_order"].meta[OUTPUT_SCHEMA_META]["required"] == ["order"]
    # declared for validation only on request (clients validate every result against it)
    assert (tools["get_order"].output_schema is not None) == output_schemas
    assert tools["get_order"].annotations.read_only_hint is True

    results = [await session.call_tool(name, arguments) for name, arguments in GOLD_CHAIN]
    assert [r.is_error for r in results] == [False, False, False]
    assert payload(results[0])["order"]["id"] == "ord_0005"
    assert json.loads(results[2].content[0].text)["order"]["status"] == "cancelled"
    assert all((r.structured_content is not None) == output_schemas for r in results)

    refused = await session.call_tool("cancel_order", {"order_id": "ord_0005"})  # already cancelled
    assert refused.is_error
    assert payload(refused)["error"]["code"] == "invalid_state"
    bad_arguments = await session.call_tool("get_order", {"order": 1})
    assert bad_arguments.is_error and payload(bad_arguments)["error"]["code"] == "invalid_arguments"

    uris = [str(r.uri) for r in (await session.list_resources()).resources]
    assert uris == [f"{STATE_URI_PREFIX}{ENV_ID}"]
    contents = (await session.read_resource(uris[0])).contents
    return json.loads(contents[0].text)


async def test_stdio_client_runs_gold_chain(registry_home: str) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=server_command(registry_home)[1:],
        cwd=str(REPO),
        env={"PYTHONPATH": str(REPO)},
    )
    with anyio.fail_after(60):
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            final_state = await run_gold_chain(session)
            names = {tool.name for tool in (await session.list_tools()).tools}
    assert final_state == expected_final_state()
    assert LOAD_STATE_TOOL not in names  # harness tools only on request


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {process.stderr.read().decode()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"no server on 127.0.0.1:{port} after {timeout}s")


async def test_streamable_http_client_runs_gold_chain_and_loads_state(registry_home: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        server_command(
            registry_home, "--transport", "http", "--port", str(port), "--state-tools", "--output-schemas"
        ),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_port(port, process)
        with anyio.fail_after(60):
            async with (
                streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
                ClientSession(read, write) as session,
            ):
                final_state = await run_gold_chain(session, output_schemas=True)
                dumped = await session.call_tool(DUMP_STATE_TOOL, {"env_id": ENV_ID})
                assert payload(dumped)["states"][ENV_ID] == final_state

                loaded = await session.call_tool(
                    LOAD_STATE_TOOL, {"env_id": ENV_ID, "state": EXAMPLE_SEED_STATE}
                )
                assert not loaded.is_error
                again = await session.call_tool("get_order", {"order_id": "ord_0005"})
                assert again.is_error and payload(again)["error"]["code"] == "not_found"
                invalid = await session.call_tool(LOAD_STATE_TOOL, {"env_id": ENV_ID, "state": {"orders": 3}})
                assert invalid.is_error and payload(invalid)["error"]["code"] == "invalid_state"
        assert final_state == expected_final_state()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
