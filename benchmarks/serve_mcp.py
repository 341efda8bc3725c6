"""MCP serving cost on a real registry environment: start time, server RSS, per-call latency.

    .venv/bin/python benchmarks/serve_mcp.py [--env-id ID] [--calls N] [--sessions K]
        [--home DIR] [--server-repo DIR] [--server-python PY]

Serves one `verified_envs` environment of `--home` (default $ENVFACTORY_HOME; default env: the one
with the most tools) over stdio with `python -m envfactory_dagster.serve mcp` and drives it with
each client installed here: the MCP SDK's `ClientSession` (1.x or 2.x, whichever is installed) and
fastmcp's `Client` (fastmcp 3.1 runs on mcp 1.x: install it with `pip install -e . fastmcp==3.1.0`
in a separate environment). Start = spawn + initialize + first tools/list, beside the time a bare
interpreter takes to import the SDK's server side (its floor); RSS = the server
process's resident memory after the calls; per call = median of sequential read calls with valid
arguments from the environment's seed state. Figures: median over sessions (clients alternate
sessions) and the best session (on a shared machine, the least disturbed one). `--server-repo`
serves another checkout's code (the baseline); `--server-python` another interpreter (an mcp 2.x
server for mcp 1.x clients).

Targets (issue 16): start <= 1.5 s, RSS <= 100 MiB, fastmcp per call <= 1.5x the SDK client's.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from envfactory_dagster.envgen.test_generation import generate_tool_tests  # noqa: E402
from envfactory_dagster.serve.registry import load_verified_envs  # noqa: E402
from envfactory_dagster.settings import envfactory_home  # noqa: E402


def read_calls(env: Any) -> list[tuple[str, dict[str, Any]]]:
    """Valid read calls of `env` from its seed state (the verifier's generated valid tests)."""
    kinds = {t.name: t.kind for t in env.spec.tools}
    tests = generate_tool_tests(env.spec, env.seed_state)
    return [(t.tool, t.arguments[0]) for t in tests if t.category == "valid" and kinds[t.tool] == "read"]


def child_rss_mib() -> float:
    """Resident memory of this process's newest child (the stdio server)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            children.append(int(entry.name))
    if not children:
        return float("nan")
    status = Path(f"/proc/{max(children)}/status").read_text()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kib / 1024


def sdk_import_s(args: argparse.Namespace, repeats: int = 3) -> float:
    """Wall time of a bare interpreter importing the MCP SDK's server side: the floor of any start."""
    import subprocess

    command = [args.server_python or sys.executable, "-c", "import mcp.server.lowlevel, mcp.server.stdio"]
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        subprocess.run(command, check=True)
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def server_args(args: argparse.Namespace) -> tuple[str, list[str], dict[str, str]]:
    command = args.server_python or sys.executable
    argv = ["-m", "envfactory_dagster.serve", "mcp", "--env-id", args.env_id, "--home", args.home]
    return command, argv, {**os.environ, "PYTHONPATH": args.server_repo}


async def sdk_session(args: argparse.Namespace, calls: list[tuple[str, dict[str, Any]]]) -> dict[str, float]:
    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    command, argv, env = server_args(args)
    params = StdioServerParameters(command=command, args=argv, cwd=args.server_repo, env=env)
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.list_tools()
        ready = time.perf_counter()
        latencies = []
        for name, arguments in calls:
            begin = time.perf_counter()
            result = await session.call_tool(name, arguments)
            latencies.append(time.perf_counter() - begin)
            assert not getattr(result, "is_error", getattr(result, "isError", False)), result
        rss = child_rss_mib()
    return {"start_s": ready - started, "call_ms": statistics.median(latencies) * 1000, "rss_mib": rss}


async def fastmcp_session(
    args: argparse.Namespace, calls: list[tuple[str, dict[str, Any]]]
) -> dict[str, float]:
    from fastmcp import Client
    from fastmcp.client.transports import StdioTransport

    command, argv, env = server_args(args)
    client = Client(StdioTransport(command=command, args=argv, env=env, cwd=args.server_repo))
    started = time.perf_counter()
    async with client:
        await client.list_tools()
        ready = time.perf_counter()
        latencies = []
        for name, arguments in calls:
            begin = time.perf_counter()
            await client.call_tool(name, arguments)  # raises on an error result
            latencies.append(time.perf_counter() - begin)
        rss = child_rss_mib()
    return {"start_s": ready - started, "call_ms": statistics.median(latencies) * 1000, "rss_mib": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(Path(envfactory_home()).expanduser()))
    parser.add_argument("--env-id", default=None)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--server-repo", default=str(REPO))
    parser.add_argument("--server-python", default=None)
    args = parser.parse_args()
    envs = load_verified_envs(args.home)
    if not envs:
        print(f"no verified_envs under {args.home}: run `envfactory materialize` first", file=sys.stderr)
        return 2
    env = (
        envs[args.env_id] if args.env_id else max(envs.values(), key=lambda e: (len(e.spec.tools), e.env_id))
    )
    args.env_id = env.env_id
    reads = read_calls(env)
    calls = [reads[i % len(reads)] for i in range(args.calls)]
    clients = {"mcp_sdk": sdk_session}
    if importlib.util.find_spec("fastmcp") is not None:
        clients["fastmcp"] = fastmcp_session
    import mcp

    figures: dict[str, Any] = {
        "env": f"{env.class_name} {env.env_id} ({len(env.spec.tools)} tools)",
        "server_repo": args.server_repo,
        "server_python": args.server_python or sys.executable,
        "client_mcp_version": getattr(mcp, "__version__", None) or importlib.metadata.version("mcp"),
        "sdk_import_floor_s": round(sdk_import_s(args), 3),
    }
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in clients}
    for _ in range(args.sessions):  # clients take turns, so both see the same machine load
        for label, session in clients.items():
            runs[label].append(anyio.run(session, args, calls))
    for label, sessions in runs.items():  # median over sessions, and the best session (least disturbed)
        figures[label] = {k: round(statistics.median(r[k] for r in sessions), 3) for k in sessions[0]}
        figures[label].update(
            {f"best_{k}": round(min(r[k] for r in sessions), 3) for k in ("start_s", "call_ms")}
        )
    if "fastmcp" in figures:
        fast, sdk = figures["fastmcp"], figures["mcp_sdk"]
        figures["fastmcp_over_sdk_per_call"] = round(fast["call_ms"] / sdk["call_ms"], 2)
        figures["fastmcp_over_sdk_per_call_best"] = round(fast["best_call_ms"] / sdk["best_call_ms"], 2)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
