"""Function-calling tool catalogs -> `NormalizedSpec` (kind `functions`).

A catalog is what LLM function calling and tool hubs publish: a list of tools, bare or under a
`tools` / `functions` key of a mapping. Each tool is either
- OpenAI style, `{"type": "function", "function": {name, description, parameters}}`, or
- a plain function doc, `{name, description, <inputs>, <outputs>}`.

Inputs: `parameters` or `arguments` (location `argument`), and the HTTP-shaped
`path_parameters` / `query_parameters` some hubs write for a wrapped endpoint (locations `path` /
`query`). Each is either a JSON Schema object (`{type: object, properties, required}`) or a flat
mapping name -> property where a property may say `required: true`. Outputs: `response`,
`output_parameters`, `returns` or `outputs`, a schema or such a flat mapping, becoming an object
schema (the response). Tools with an `inputSchema` / `input_schema` are MCP (or Anthropic)
listings, read by `mcp_listing`.

Property spellings seen in catalogs are normalized to JSON Schema: type names `float`/`double`
-> `number`, `int` -> `integer`, `str` -> `string`, `bool` -> `boolean`, `list` -> `array`,
`dict` -> `object`, `file` -> a `binary` string (an unknown type name is dropped, the property
stays untyped); a non-empty `allowed_values` / `possible_values` -> `enum`; `default_value` ->
`default`. A stated HTTP method, endpoint and host are kept as the operation's `x-http-method`,
`x-endpoint` and `x-host` (the environment builder reads a GET as a read); the service the host
names (`api.stripe.com` -> `stripe`), or else the `Service.` prefix of a dotted name
(`Hotels.ReserveHotel`), becomes the operation's tag, so the
functions of one service form one workflow group. An entry repeated verbatim is read once; two
different functions of one name are a `duplicate_operation_id` error.
"""

from __future__ import annotations

from typing import Any

from envfactory_dagster.ingest.errors import SpecError
from envfactory_dagster.ingest.normalized_spec import (
    NormalizedOperation,
    NormalizedParam,
    NormalizedSpec,
    ParamLocation,
)
from envfactory_dagster.ingest.openapi_document import check_unique_operation_ids

_INPUT_KEYS: tuple[tuple[str, ParamLocation], ...] = (
    ("parameters", "argument"),
    ("arguments", "argument"),
    ("path_parameters", "path"),
    ("query_parameters", "query"),
)
_OUTPUT_KEYS = ("response", "output_parameters", "returns", "outputs")
_MCP_INPUT_KEYS = ("inputSchema", "input_schema")
_TYPE_NAMES = {
    "string": "string",
    "str": "string",
    "text": "string",
    "integer": "integer",
    "int": "integer",
    "long": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "object": "object",
    "dict": "object",
    "null": "null",
}


def catalog_tools(document: Any) -> list[Any] | None:
    """The list of tool entries if `document` is a function-calling catalog, else None.

    A catalog is a list (or a `tools` / `functions` list of a mapping) whose entries are mappings
    and at least one of which is a function: OpenAI `{"type": "function", "function": {...}}`, or
    a named entry with one of the input or output keys above. Entries that are not functions
    stay in the list: the parser reports them by position.
    """
    if isinstance(document, dict):
        holder = next(
            (document[k] for k in ("tools", "functions") if isinstance(document.get(k), list)), None
        )
    else:
        holder = document
    if not isinstance(holder, list) or not holder:
        return None
    if any(isinstance(entry, dict) and set(_MCP_INPUT_KEYS) & set(entry) for entry in holder):
        return None
    if any(_is_function_entry(entry) for entry in holder):
        return holder
    return None


def _is_function_entry(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    if entry.get("type") == "function" and isinstance(entry.get("function"), dict):
        return True
    keys = {key for key, _ in _INPUT_KEYS} | set(_OUTPUT_KEYS)
    return isinstance(entry.get("name"), str) and bool(keys & set(entry))


def parse_function_catalog(document: Any, fallback_title: str) -> NormalizedSpec:
    """Normalize a function-calling catalog (see the module docstring); `SpecError` on bad entries."""
    tools = catalog_tools(document)
    if tools is None:
        raise SpecError("not a function-calling catalog: no list of function entries")
    operations: list[NormalizedOperation] = []
    for position, entry in enumerate(tools, start=1):
        operation = _operation(entry, position)
        # catalogs assembled from several sources repeat a function verbatim: one copy is kept;
        # two different functions under one name stay an error
        if operation not in operations:
            operations.append(operation)
    check_unique_operation_ids([op.operation_id for op in operations], operations)
    meta = document if isinstance(document, dict) else {}
    return NormalizedSpec(
        kind="functions",
        title=str(meta.get("title") or meta.get("name") or "").strip() or fallback_title,
        version=str(meta.get("version") or ""),
        description=str(meta.get("description") or ""),
        license=str(meta["license"]) if isinstance(meta.get("license"), str) else None,
        operations=operations,
        extensions={str(k): v for k, v in meta.items() if str(k).startswith("x-")},
    )


def _operation(entry: Any, position: int) -> NormalizedOperation:
    where = f"catalog entry {position}"
    if not isinstance(entry, dict):
        raise SpecError(f"{where} is a {type(entry).__name__}, not a function object")
    function = entry.get("function") if entry.get("type") == "function" else entry
    if not isinstance(function, dict):
        raise SpecError(f"{where}: 'function' is a {type(function).__name__}, not an object")
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SpecError(f"{where} has no function name (a non-empty 'name' string)")
    name = name.strip()
    where = f"function {name!r}"
    parameters: list[NormalizedParam] = []
    for key, location in _INPUT_KEYS:
        if function.get(key) is None:
            continue
        schema = _object_schema(function[key], f"{where}: '{key}'")
        required = set(schema.get("required") or [])
        for pname, pschema in (schema.get("properties") or {}).items():
            parameters.append(
                NormalizedParam(
                    name=str(pname),
                    location=location,
                    required=pname in required or location == "path",
                    schema=pschema,
                    description=str(pschema.get("description") or ""),
                )
            )
    names = [p.name for p in parameters]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SpecError(f"{where}: parameter(s) {duplicated} declared twice")
    output_key = next((k for k in _OUTPUT_KEYS if function.get(k) is not None), None)
    response = _object_schema(function[output_key], f"{where}: '{output_key}'") if output_key else None
    http = {
        f"x-{key}": str(function[source])
        for key, source in (("http-method", "method"), ("endpoint", "endpoint"), ("host", "host"))
        if isinstance(function.get(source), str) and function[source].strip()
    }
    if "x-http-method" in http:
        http["x-http-method"] = http["x-http-method"].upper()
    namespace, dot, _ = name.rpartition(".")
    tag = _service_of_host(http.get("x-host", "")) or (namespace if dot and namespace else "")
    return NormalizedOperation(
        operation_id=name,
        summary=str(function.get("title") or ""),
        description=str(function.get("description") or ""),
        tags=[tag] if tag else [],
        parameters=parameters,
        response=response,
        extensions={**http, **{str(k): v for k, v in function.items() if str(k).startswith("x-")}},
    )


def _service_of_host(host: str) -> str:
    """The service a host names: its first label after `api.` / `www.` (`api.stripe.com` -> stripe)."""
    labels = [label for label in host.lower().split(".") if label]
    while len(labels) > 2 and labels[0] in ("api", "www"):
        labels = labels[1:]
    return labels[0] if labels else ""


def _object_schema(value: Any, where: str) -> dict[str, Any]:
    """An object JSON Schema from a schema or a flat `name -> property` mapping."""
    if not isinstance(value, dict):
        raise SpecError(f"{where} is a {type(value).__name__}, not an object of named parameters")
    if _is_schema_object(value):
        schema = _property(value, where)
        schema.setdefault("type", "object")
        return schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    for pname, prop in value.items():
        if not isinstance(prop, dict):
            raise SpecError(f"{where}: parameter {pname!r} is a {type(prop).__name__}, not an object")
        if prop.get("required") is True:
            required.append(str(pname))
        properties[str(pname)] = _property(prop, f"{where}.{pname}")
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def _is_schema_object(value: dict[str, Any]) -> bool:
    """`{type: object, properties: {...}}` (or properties alone, not themselves a parameter)."""
    if value.get("type") == "object":
        return True
    return isinstance(value.get("properties"), dict) and not isinstance(value.get("type"), dict)


def _property(prop: dict[str, Any], where: str) -> dict[str, Any]:
    """One property in JSON Schema spelling (see the module docstring), nested ones included."""
    out: dict[str, Any] = {}
    for key, raw in prop.items():
        if key == "required" and isinstance(raw, bool):
            continue  # the catalog's per-property flag: the parent's `required` list says it
        if key == "type":
            kinds = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
            normalized = [_TYPE_NAMES.get(str(k).strip().lower()) for k in kinds]
            if any(str(k).strip().lower() == "file" for k in kinds):
                out.update(type="string", format="binary")
            elif [k for k in normalized if k]:
                known = list(dict.fromkeys(k for k in normalized if k))
                out["type"] = known[0] if len(known) == 1 else known
        elif key in ("allowed_values", "possible_values"):
            if isinstance(raw, list) and raw and "enum" not in prop:
                out["enum"] = list(raw)
        elif key == "default_value":
            out.setdefault("default", raw)
        elif key == "properties" and isinstance(raw, dict):
            out["properties"] = {
                str(name): _property(sub, f"{where}.{name}") if isinstance(sub, dict) else {}
                for name, sub in raw.items()
            }
        elif key == "items" and isinstance(raw, dict):
            out["items"] = _property(raw, f"{where}[]")
        else:
            out[key] = raw
    if "properties" in out:
        nested_required = [
            n
            for n, sub in prop["properties"].items()
            if isinstance(sub, dict) and sub.get("required") is True
        ]
        if nested_required and not isinstance(out.get("required"), list):
            out["required"] = nested_required
        out.setdefault("type", "object")
    return out
