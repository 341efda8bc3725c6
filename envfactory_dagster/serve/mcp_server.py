"""Serve verified environments (one, or a task's Toolset of up to 3) as an MCP server.

Built on the MCP Python SDK's low-level `Server` (tools come from JSON Schemas, not Python
signatures), over stdio or streamable HTTP bound to 127.0.0.1 only.

What a client sees:
- tools: the environments' tools under their Toolset names, each with its input and output
  JSON Schema and read/write annotations (`readOnlyHint`); a result carries the tool's JSON
  output as `structuredContent` and as JSON text. A `ToolError` (unknown tool, invalid
  arguments, refused call) is a tool result with `isError: true` whose text and structured
  content are `{"error": {"code", "message"}}` — the agent reads it, the session goes on. Any
  other exception is an environment bug and reaches the client as a JSON-RPC error.
- state, as resources (not tools, so an agent listing tools never sees them):
  `envfactory://state/<env_id>` (application/json) is the current state of one environment.
- state loading, only with `state_tools=True` (CLI `--state-tools`): two extra tools in a
  reserved namespace, `envfactory__load_state {env_id, state}` and `envfactory__dump_state
  {env_id?}`, for harnesses that reset or inspect state between episodes over the protocol.
  A Toolset never exports such a name (classes are CapWords), so they cannot clash. Leave
  them off when a model is handed the tool list.

All sessions of one server share one Toolset (the server *is* the environment instance).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from pydantic import ValidationError

from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, seed_states

LOCALHOST = "127.0.0.1"
STATE_URI_PREFIX = "envfactory://state/"
LOAD_STATE_TOOL = "envfactory__load_state"
DUMP_STATE_TOOL = "envfactory__dump_state"
Transport = Literal["stdio", "http"]

_STATE_TOOLS = [
    types.Tool(
        name=LOAD_STATE_TOOL,
        description="Harness only: replace one environment's state (validated by its state model).",
        input_schema={
            "type": "object",
            "properties": {"env_id": {"type": "string"}, "state": {"type": "object"}},
            "required": ["env_id", "state"],
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True),
    ),
    types.Tool(
        name=DUMP_STATE_TOOL,
        description="Harness only: the current state of one environment (env_id) or of all.",
        input_schema={
            "type": "object",
            "properties": {"env_id": {"type": "string"}},
            "additionalProperties": False,
        },
        annotations=types.ToolAnnotations(read_only_hint=True),
    ),
]


def _json_result(payload: dict[str, Any], *, is_error: bool = False) -> types.CallToolResult:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return types.CallToolResult(
        content=[types.TextContent(text=text)], structured_content=payload, is_error=is_error
    )


def mcp_tools(toolset: Toolset) -> list[types.Tool]:
    """The Toolset's tools as MCP tool definitions (exported names, schemas, read/write hints)."""
    return [
        types.Tool(
            name=t["name"],
            description=t["description"],
            input_schema=t["input_schema"],
            output_schema=t["output_schema"] or None,
            annotations=types.ToolAnnotations(
                read_only_hint=t["kind"] == "read", destructive_hint=None if t["kind"] == "read" else True
            ),
        )
        for t in toolset.tool_schemas()
    ]


def build_mcp_server(toolset: Toolset, *, name: str = "envfactory", state_tools: bool = False) -> Server:
    """An MCP low-level Server over `toolset` (not started; see `serve_environment`)."""
    tools = mcp_tools(toolset) + (_STATE_TOOLS if state_tools else [])

    async def list_tools(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = params.arguments or {}
        try:
            if state_tools and params.name == LOAD_STATE_TOOL:
                return _json_result(_load_state(toolset, arguments))
            if state_tools and params.name == DUMP_STATE_TOOL:
                return _json_result(_dump_state(toolset, arguments))
            return _json_result(toolset.call(params.name, arguments))
        except ToolError as error:
            return _json_result(error.to_dict(), is_error=True)

    async def list_resources(
        ctx: ServerRequestContext, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(
            resources=[
                types.Resource(
                    name=f"state of {env.class_name} {env_id}",
                    uri=f"{STATE_URI_PREFIX}{env_id}",
                    description="Current state (database) of the environment, as JSON.",
                    mime_type="application/json",
                )
                for env_id, env in toolset.envs.items()
            ]
        )

    async def read_resource(
        ctx: ServerRequestContext, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        env_id = str(params.uri).removeprefix(STATE_URI_PREFIX)
        instance = toolset.instances.get(env_id) if str(params.uri).startswith(STATE_URI_PREFIX) else None
        if instance is None:
            raise ValueError(f"no resource {params.uri!r}; states are {STATE_URI_PREFIX}<env_id>")
        return types.ReadResourceResult(
            contents=[
                types.TextResourceContents(
                    uri=params.uri, mime_type="application/json", text=json.dumps(instance.dump_state())
                )
            ]
        )

    return Server(
        name,
        instructions="Tools of simulated, stateful environments (EnvFactory). States: resources "
        f"{STATE_URI_PREFIX}<env_id>.",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def _load_state(toolset: Toolset, arguments: Mapping[str, Any]) -> dict[str, Any]:
    env_id = arguments.get("env_id")
    instance = toolset.instances.get(env_id) if isinstance(env_id, str) else None
    if instance is None:
        raise ToolError(
            "not_found", f"no environment {env_id!r} in this server ({', '.join(toolset.instances)})"
        )
    state = arguments.get("state")
    if not isinstance(state, dict):
        raise ToolError("invalid_arguments", "state must be a JSON object")
    try:
        instance.load_state(state)
    except ValidationError as error:
        raise ToolError(
            "invalid_state", f"{env_id}: {error.error_count()} invalid field(s): {error}"
        ) from None
    return {"env_id": env_id, "loaded": True}


def _dump_state(toolset: Toolset, arguments: Mapping[str, Any]) -> dict[str, Any]:
    env_id = arguments.get("env_id")
    if env_id is None:
        return {"states": toolset.dump_states()}
    instance = toolset.instances.get(env_id)
    if instance is None:
        raise ToolError(
            "not_found", f"no environment {env_id!r} in this server ({', '.join(toolset.instances)})"
        )
    return {"states": {env_id: instance.dump_state()}}


async def run_stdio(server: Server) -> None:
    """Serve one MCP session over this process's stdin/stdout until the client closes it."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def run_http(server: Server, port: int) -> None:
    """Serve streamable HTTP at http://127.0.0.1:<port>/mcp (never another interface)."""
    import uvicorn

    app = server.streamable_http_app(host=LOCALHOST)
    config = uvicorn.Config(app, host=LOCALHOST, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def serve_environment(
    envs: Sequence[VerifiedEnvironment],
    states: Mapping[str, dict[str, Any]] | None = None,
    *,
    transport: Transport = "stdio",
    port: int = 8000,
    state_tools: bool = False,
) -> None:
    """Serve `envs` (1-3, one flat tool namespace) until the client or a signal stops it.

    `states`: world_id -> initial state (validated); default each world's verified seed state.
    """
    import anyio

    if not 1 <= len(envs) <= 3:
        raise ValueError(f"serve 1 to 3 environments at once, not {len(envs)}")
    toolset = Toolset(envs, {**seed_states(envs), **(states or {})})
    server = build_mcp_server(
        toolset, name="envfactory-" + "-".join(env.class_name for env in envs), state_tools=state_tools
    )
    if transport == "stdio":
        anyio.run(run_stdio, server)
    elif transport == "http":
        anyio.run(run_http, server, port)
    else:
        raise ValueError(f"unknown transport {transport!r}: stdio or http")
