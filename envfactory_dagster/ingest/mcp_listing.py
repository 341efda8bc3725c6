"""MCP tool listings (`{"tools": [{name, description, inputSchema, outputSchema?}]}`) -> `NormalizedSpec`.

Accepts the `tools/list` result as saved by MCP clients, bare or inside a JSON-RPC response
(`{"result": {"tools": [...]}}`); the server's name comes from `server_info`/`serverInfo`/`name`.
Each tool's `inputSchema` is a JSON Schema document of its own: its local refs (`#/$defs/...`)
resolve against it. Its properties become `argument` parameters; `outputSchema` is the response; the tool's
MCP `annotations` (read-only, destructive hints) are kept as the extension `x-mcp-annotations`.
"""

from __future__ import annotations

from typing import Any

from envfactory_dagster.ingest.errors import SpecError
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec
from envfactory_dagster.ingest.openapi_document import check_unique_operation_ids
from envfactory_dagster.ingest.ref_resolution import RefInliner

# Keys that only served `$ref` resolution or dialect selection, dropped once refs are inlined.
_RESOLUTION_KEYS = ("$defs", "definitions", "$schema", "$id")


def mcp_tools(document: dict[str, Any]) -> list[Any] | None:
    """The `tools` list if `document` is an MCP tool listing, else None."""
    result = document.get("result")
    holder = result if isinstance(result, dict) and "tools" in result else document
    tools = holder.get("tools")
    if isinstance(tools, list) and tools and all(isinstance(t, dict) and "name" in t for t in tools):
        return tools
    return None


def parse_mcp_listing(document: dict[str, Any], fallback_title: str) -> NormalizedSpec:
    tools = mcp_tools(document)
    if tools is None:
        raise SpecError("not an MCP tool listing: no non-empty 'tools' list of objects with a 'name'")
    server = document.get("server_info") or document.get("serverInfo") or {}
    server = server if isinstance(server, dict) else {}
    operations = [_tool_operation(tool) for tool in tools]
    check_unique_operation_ids([op.operation_id for op in operations], operations)
    return NormalizedSpec(
        kind="mcp",
        title=str(server.get("title") or server.get("name") or document.get("name") or "").strip()
        or fallback_title,
        version=str(server.get("version") or document.get("version") or ""),
        description=str(document.get("description") or server.get("instructions") or ""),
        license=str(document["license"]) if isinstance(document.get("license"), str) else None,
        operations=operations,
        extensions={str(k): v for k, v in document.items() if str(k).startswith("x-")},
    )


def _tool_operation(tool: dict[str, Any]) -> NormalizedOperation:
    name = str(tool["name"]).strip()
    if not name:
        raise SpecError("a tool with an empty name")
    input_schema = _resolved_schema(tool.get("inputSchema", tool.get("input_schema")), name, "inputSchema")
    output_schema = _resolved_schema(
        tool.get("outputSchema", tool.get("output_schema")), name, "outputSchema"
    )
    properties = (input_schema or {}).get("properties") or {}
    required = set((input_schema or {}).get("required") or [])
    parameters = [
        NormalizedParam(
            name=str(arg),
            location="argument",
            required=arg in required,
            schema=schema if isinstance(schema, dict) else {},
            description=str(schema.get("description") or "") if isinstance(schema, dict) else "",
        )
        for arg, schema in properties.items()
    ]
    annotations = tool.get("annotations")
    return NormalizedOperation(
        operation_id=name,
        summary=str(tool.get("title") or (annotations or {}).get("title") or ""),
        description=str(tool.get("description") or ""),
        parameters=parameters,
        response=output_schema,
        extensions={
            **({"x-mcp-annotations": annotations} if isinstance(annotations, dict) else {}),
            **{str(k): v for k, v in tool.items() if str(k).startswith("x-")},
        },
    )


def _resolved_schema(schema: Any, tool: str, key: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise SpecError(f"tool {tool!r}: {key} is a {type(schema).__name__}, not a JSON Schema object")
    try:
        inlined = RefInliner(schema).inline(schema)
    except SpecError as error:
        raise SpecError(f"tool {tool!r} {key}: {error.reason}", error.kind) from error
    return {k: v for k, v in inlined.items() if k not in _RESOLUTION_KEYS}
