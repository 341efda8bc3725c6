"""`python -m envfactory_dagster.serve mcp --env-id ID [...]`: serve registry environments over MCP.

    python -m envfactory_dagster.serve mcp --env-id ENV [--env-id ENV2 ...]
        [--transport stdio|http] [--port N] [--state FILE.json] [--state-tools] [--output-schemas]
        [--home DIR]
    python -m envfactory_dagster.serve mcp --task-id TASK [...]   # a task's environments, initial
                                                                  # states and training tool names

Reads `verified_envs` (and `rl_tasks` for --task-id) under `--home` or `$ENVFACTORY_HOME`.
HTTP binds 127.0.0.1 only; the endpoint is http://127.0.0.1:<port>/mcp. `--state FILE` holds
`{env_id: state}`. Errors go to stderr (stdout is the MCP wire under stdio).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from envfactory_dagster.settings import catalog_path, envfactory_home


def _parser(prog: str = "python -m envfactory_dagster.serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Serve registry environments to agents.")
    commands = parser.add_subparsers(dest="command", required=True)
    mcp = commands.add_parser("mcp", help="serve verified environments as an MCP server")
    source = mcp.add_mutually_exclusive_group(required=True)
    source.add_argument("--env-id", action="append", help="registry env_id (repeat for up to 3)")
    source.add_argument("--task-id", help="serve an rl_tasks row's environments from its initial states")
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    mcp.add_argument("--port", type=int, default=8000, help="HTTP port on 127.0.0.1")
    mcp.add_argument("--state", type=Path, help="JSON file {env_id: state} to start from")
    mcp.add_argument("--state-tools", action="store_true", help="add envfactory__load_state/dump_state tools")
    mcp.add_argument(
        "--output-schemas",
        action="store_true",
        help="declare outputSchema and return structuredContent (typed clients; clients then validate "
        "and parse every result). Output schemas are in each tool's _meta either way.",
    )
    mcp.add_argument("--home", help="data directory (default $ENVFACTORY_HOME)")
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from envfactory_dagster.serve.mcp_server import serve_environment
    from envfactory_dagster.serve.registry import load_rl_task_rows, load_verified_envs

    args = (_parser(prog) if prog else _parser()).parse_args(argv)
    home = args.home or envfactory_home()
    states = None
    qualify = "on_clash"
    try:
        if args.task_id:
            from envfactory_dagster.serve.rollout import coerce_rl_task

            rows = load_rl_task_rows(home, [args.task_id])
            if not rows:
                raise KeyError(f"no rl_tasks row {args.task_id!r} under {home}")
            task = coerce_rl_task(rows[0])
            env_ids, states, qualify = task.env_ids, task.initial_states, "always"
        else:
            env_ids = args.env_id
        registry = load_verified_envs(home, env_ids)
        if args.state:
            states = json.loads(args.state.read_text(encoding="utf-8"))
    except (KeyError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        hint = (
            f' (the ids: duckdb {catalog_path(home)} -c "SELECT env_id, class_name FROM verified_envs")'
            if isinstance(error, KeyError)
            else ""
        )
        print(f"error: {message}{hint}", file=sys.stderr)
        return 2
    serve_environment(
        [registry[env_id] for env_id in env_ids],
        states,
        transport=args.transport,
        port=args.port,
        state_tools=args.state_tools,
        output_schemas=args.output_schemas,
        qualify=qualify,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
