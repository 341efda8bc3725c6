"""Serve verified environments (one, or a task's Toolset of up to 3) as an MCP server.

Built on the MCP Python SDK's low-level `Server` (tools come from JSON Schemas, not Python
signatures), over stdio or streamable HTTP bound to 127.0.0.1 only. Works with mcp 1.x
(`mcp.types`, request handlers by request type) and 2.x (`mcp_types`, `on_*` handlers): the
protocol side is written once as wire-format dicts (`EnvironmentServer`), each SDK gets a thin
adapter.

What a client sees:
- tools: the environments' tools under their Toolset names, with input JSON Schema and read/write
  annotations (`readOnlyHint`). Output schemas go in the tool's `_meta["envfactory/outputSchema"]`,
  not in `outputSchema`: common clients (mcp 1.x `ClientSession.call_tool`, fastmcp 3.1) validate
  every result against a declared `outputSchema` with a metaschema check on each call, which
  costs several times the call itself.
- results: the tool's JSON output as JSON text (what a model reads). A `ToolError` (unknown tool,
  invalid arguments, refused call) is a result with `isError: true` whose text is
  `{"error": {"code", "message"}}` — the agent reads it, the session goes on. Any other exception
  is an environment bug and reaches the client as a JSON-RPC error.
- `output_schemas=True` (CLI `--output-schemas`), for typed clients: each tool declares its
  `outputSchema` and each result carries `structuredContent` too (the clients above then validate
  and parse every result; even without a schema, fastmcp 3.1 parses a structured copy on every
  call, ~1.3x the SDK client's per-call time against ~1.0x for text only, measured here).
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

import importlib.util
import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import ValidationError

from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Qualify, Toolset, seed_states

LOCALHOST = "127.0.0.1"
STATE_URI_PREFIX = "envfactory://state/"
LOAD_STATE_TOOL = "envfactory__load_state"
DUMP_STATE_TOOL = "envfactory__dump_state"
OUTPUT_SCHEMA_META = "envfactory/outputSchema"
Transport = Literal["stdio", "http"]
INSTRUCTIONS = (
    f"Tools of simulated, stateful environments (EnvFactory). States: resources {STATE_URI_PREFIX}<env_id>."
)

STATE_TOOLS = [
    {
        "name": LOAD_STATE_TOOL,
        "description": "Harness only: replace one environment's state (validated by its state model).",
        "inputSchema": {
            "type": "object",
            "properties": {"env_id": {"type": "string"}, "state": {"type": "object"}},
            "required": ["env_id", "state"],
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True},
    },
    {
        "name": DUMP_STATE_TOOL,
        "description": "Harness only: the current state of one environment (env_id) or of all.",
        "inputSchema": {
            "type": "object",
            "properties": {"env_id": {"type": "string"}},
            "additionalProperties": False,
        },
        "annotations": {"readOnlyHint": True},
    },
]


def mcp_sdk_major() -> int:
    """2 when the installed MCP SDK is 2.x (its types live in `mcp_types`), else 1."""
    return 2 if importlib.util.find_spec("mcp_types") is not None else 1


def mcp_tools(toolset: Toolset, *, output_schemas: bool = False) -> list[dict[str, Any]]:
    """The Toolset's tools as MCP tool definitions in wire format (see the module docstring)."""
    tools = []
    for t in toolset.tool_schemas():
        read = t["kind"] == "read"
        tool: dict[str, Any] = {
            "name": t["name"],
            "description": t["description"],
            "inputSchema": t["input_schema"],
            "annotations": {"readOnlyHint": read, **({} if read else {"destructiveHint": True})},
        }
        if t["output_schema"]:
            tool["_meta"] = {OUTPUT_SCHEMA_META: t["output_schema"]}
            if output_schemas:
                tool["outputSchema"] = t["output_schema"]
        tools.append(tool)
    return tools


def json_result(
    payload: dict[str, Any], *, is_error: bool = False, structured: bool = False
) -> dict[str, Any]:
    """A CallToolResult in wire format: JSON text (and, `structured`, the same as structured content)."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if structured:
        result["structuredContent"] = payload
    return result


class EnvironmentServer:
    """What the server answers, independent of the SDK version (wire-format dicts)."""

    def __init__(self, toolset: Toolset, *, state_tools: bool = False, output_schemas: bool = False) -> None:
        self.toolset = toolset
        self.state_tools = state_tools
        self.structured = output_schemas
        self.tools = mcp_tools(toolset, output_schemas=output_schemas) + (STATE_TOOLS if state_tools else [])

    def call_tool(self, name: str, arguments: dict[str, Any] | None) -> dict[str, Any]:
        arguments = arguments or {}
        try:
            if self.state_tools and name == LOAD_STATE_TOOL:
                payload = _load_state(self.toolset, arguments)
            elif self.state_tools and name == DUMP_STATE_TOOL:
                payload = _dump_state(self.toolset, arguments)
            else:
                payload = self.toolset.call(name, arguments)
        except ToolError as error:
            return json_result(error.to_dict(), is_error=True, structured=self.structured)
        return json_result(payload, structured=self.structured)

    def resources(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"state of {env.class_name} {env_id}",
                "uri": f"{STATE_URI_PREFIX}{env_id}",
                "description": "Current state (database) of the environment, as JSON.",
                "mimeType": "application/json",
            }
            for env_id, env in self.toolset.envs.items()
        ]

    def read_resource(self, uri: str) -> dict[str, Any]:
        instance = self.toolset.instances.get(uri.removeprefix(STATE_URI_PREFIX))
        if instance is None or not uri.startswith(STATE_URI_PREFIX):
            raise ValueError(f"no resource {uri!r}; states are {STATE_URI_PREFIX}<env_id>")
        text = json.dumps(instance.dump_state())
        return {"contents": [{"uri": uri, "mimeType": "application/json", "text": text}]}


def _server_v2(core: EnvironmentServer, name: str) -> Any:
    import mcp_types as types
    from mcp.server import Server

    tools = types.ListToolsResult.model_validate({"tools": core.tools})

    async def list_tools(ctx: Any, params: Any) -> Any:
        return tools

    async def call_tool(ctx: Any, params: Any) -> Any:
        return types.CallToolResult.model_validate(core.call_tool(params.name, params.arguments))

    async def list_resources(ctx: Any, params: Any) -> Any:
        return types.ListResourcesResult.model_validate({"resources": core.resources()})

    async def read_resource(ctx: Any, params: Any) -> Any:
        return types.ReadResourceResult.model_validate(core.read_resource(str(params.uri)))

    return Server(
        name,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_read_resource=read_resource,
    )


def _server_v1(core: EnvironmentServer, name: str) -> Any:
    import mcp.types as types
    from mcp.server.lowlevel import Server

    server = Server(name, instructions=INSTRUCTIONS)
    tools = types.ServerResult(types.ListToolsResult.model_validate({"tools": core.tools}))

    async def list_tools(request: Any) -> Any:
        return tools

    async def call_tool(request: Any) -> Any:
        params = request.params
        return types.ServerResult(
            types.CallToolResult.model_validate(core.call_tool(params.name, params.arguments))
        )

    async def list_resources(request: Any) -> Any:
        return types.ServerResult(types.ListResourcesResult.model_validate({"resources": core.resources()}))

    async def read_resource(request: Any) -> Any:
        result = core.read_resource(str(request.params.uri))
        return types.ServerResult(types.ReadResourceResult.model_validate(result))

    # the handlers the 1.x decorators install, minus their per-call jsonschema validation (the
    # Toolset validates arguments with compiled validators and answers a ToolError)
    server.request_handlers[types.ListToolsRequest] = list_tools
    server.request_handlers[types.CallToolRequest] = call_tool
    server.request_handlers[types.ListResourcesRequest] = list_resources
    server.request_handlers[types.ReadResourceRequest] = read_resource
    return server


def build_mcp_server(
    toolset: Toolset, *, name: str = "envfactory", state_tools: bool = False, output_schemas: bool = False
) -> Any:
    """An MCP low-level Server of the installed SDK over `toolset` (not started; see `serve_environment`)."""
    core = EnvironmentServer(toolset, state_tools=state_tools, output_schemas=output_schemas)
    return _server_v2(core, name) if mcp_sdk_major() == 2 else _server_v1(core, name)


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
    for member in toolset.worlds[toolset.envs[env_id].world_id]:  # environments of one world share it
        member.state = instance.state
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


async def run_stdio(server: Any) -> None:
    """Serve one MCP session over this process's stdin/stdout until the client closes it."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def http_app(server: Any) -> Any:
    """The ASGI app of streamable HTTP at /mcp (2.x builds it; on 1.x, its session manager)."""
    if hasattr(server, "streamable_http_app"):
        return server.streamable_http_app(host=LOCALHOST)
    from contextlib import asynccontextmanager

    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = StreamableHTTPSessionManager(app=server)

    class Endpoint:  # an ASGI app as a route endpoint (what 1.x FastMCP mounts)
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await manager.handle_request(scope, receive, send)

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        async with manager.run():
            yield

    return Starlette(routes=[Route("/mcp", endpoint=Endpoint())], lifespan=lifespan)


async def run_http(server: Any, port: int) -> None:
    """Serve streamable HTTP at http://127.0.0.1:<port>/mcp (never another interface)."""
    import uvicorn

    config = uvicorn.Config(http_app(server), host=LOCALHOST, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def serve_environment(
    envs: Sequence[VerifiedEnvironment],
    states: Mapping[str, dict[str, Any]] | None = None,
    *,
    transport: Transport = "stdio",
    port: int = 8000,
    state_tools: bool = False,
    output_schemas: bool = False,
    qualify: Qualify = "on_clash",
) -> None:
    """Serve `envs` (1-3, one flat tool namespace) until the client or a signal stops it.

    `states`: world_id -> initial state (validated); default each world's verified seed state.
    `qualify`: tool naming (see runtime/toolset.py); "always" gives an RL task's training names.
    """
    import anyio

    if not 1 <= len(envs) <= 3:
        raise ValueError(f"serve 1 to 3 environments at once, not {len(envs)}")
    toolset = Toolset(envs, {**seed_states(envs), **(states or {})}, qualify=qualify)
    server = build_mcp_server(
        toolset,
        name="envfactory-" + "-".join(env.class_name for env in envs),
        state_tools=state_tools,
        output_schemas=output_schemas,
    )
    if transport == "stdio":
        anyio.run(run_stdio, server)
    elif transport == "http":
        anyio.run(run_http, server, port)
    else:
        raise ValueError(f"unknown transport {transport!r}: stdio or http")
