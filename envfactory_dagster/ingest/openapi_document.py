"""OpenAPI 3.x and Swagger 2.0 documents -> `NormalizedSpec`.

One operation per (path, HTTP method). Parameters declared on the path item are merged with the
operation's own (the operation wins on the same name and location). The JSON request body becomes
`request_body`: OpenAPI 3 `requestBody` (application/json, else the first JSON-like media type,
else a form media type, whose fields are an object schema too), Swagger 2 `in: body` schema or
`in: formData` fields gathered into an object schema. `response` is the schema of the first 2xx
response that has one; `links` are the OpenAPI 3 links of the 2xx responses that name an
`operationId` (the data flow the document states: `userId: $response.body#/id`). A missing
operationId is synthesized as snake_case method + path
(`get /orders/{order_id}/items` -> `get_orders_order_id_items`); operationIds the document
declares twice are an error, since later stages key tools by them.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from envfactory_dagster.ingest.errors import SpecError
from envfactory_dagster.ingest.normalized_spec import (
    NormalizedLink,
    NormalizedOperation,
    NormalizedParam,
    NormalizedSpec,
    ResourceKind,
)
from envfactory_dagster.ingest.ref_resolution import RefInliner

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PARAM_LOCATIONS = ("path", "query", "header", "cookie")
_FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# Swagger 2 non-body parameters carry their schema keywords inline.
_SWAGGER_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "default", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "multipleOf", "collectionFormat",
)  # fmt: skip


def parse_openapi_document(
    document: dict[str, Any], kind: ResourceKind, fallback_title: str
) -> NormalizedSpec:
    """Normalize an OpenAPI 3.x (`kind="openapi3"`) or Swagger 2.0 (`kind="swagger2"`) document."""
    inliner = RefInliner(document)
    info = _mapping(document.get("info"), "info")
    paths = _mapping(document.get("paths"), "paths")
    operations: list[NormalizedOperation] = []
    declared_ids: list[str] = []
    for path, raw_item in paths.items():
        if not isinstance(raw_item, dict):
            raise SpecError(f"paths[{path!r}] is not a mapping")
        item = inliner.inline(raw_item)
        shared_params = item.get("parameters") or []
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if not isinstance(operation, dict):
                raise SpecError(f"{method.upper()} {path}: the operation is not a mapping")
            operations.append(_operation(kind, str(path), method, operation, shared_params))
            if str(operation.get("operationId") or "").strip():
                declared_ids.append(operations[-1].operation_id)
    check_unique_operation_ids(declared_ids, operations)
    _deduplicate_synthesized_ids(operations)
    schemas_key = ("components", "schemas") if kind == "openapi3" else ("definitions",)
    raw_schemas = document
    for key in schemas_key:
        raw_schemas = _mapping(raw_schemas.get(key) if isinstance(raw_schemas, dict) else None, key)
    pointer = "#/" + "/".join(schemas_key)
    schemas = {
        str(name): inliner.inline_ref(f"{pointer}/{_escape_pointer(str(name))}") for name in raw_schemas
    }
    return NormalizedSpec(
        kind=kind,
        title=str(info.get("title") or "").strip() or fallback_title,
        version=str(info.get("version") or ""),
        description=str(info.get("description") or ""),
        license=_license(info.get("license")),
        tags={
            str(tag["name"]): str(tag.get("description") or "")
            for tag in document.get("tags") or []
            if isinstance(tag, dict) and "name" in tag
        },
        operations=operations,
        schemas=schemas,
        extensions=_extensions(document),
        hosts=document_hosts(document),
    )


def document_hosts(document: dict[str, Any]) -> list[str]:
    """The API hosts a document states: Swagger 2 `host`, OpenAPI 3 `servers[].url` (server
    variables in the host are left as written; a relative url states no host)."""
    urls = [str(document["host"])] if isinstance(document.get("host"), str) else []
    urls += [str(s.get("url")) for s in document.get("servers") or [] if isinstance(s, dict) and s.get("url")]
    hosts = []
    for url in urls:
        netloc = url.split("//", 1)[1] if "//" in url else url if "/" not in url else ""
        host = netloc.split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0].lower()
        if host and "." in host:
            hosts.append(host)
    return list(dict.fromkeys(hosts))


def synthesize_operation_id(method: str, path: str) -> str:
    """Deterministic snake_case id from method and path: `get /a/{b_id}` -> `get_a_b_id`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", f"{method} {path}")
    return re.sub(r"[^a-z0-9]+", "_", words.lower()).strip("_")


def _operation(
    kind: ResourceKind, path: str, method: str, operation: dict[str, Any], shared_params: list[Any]
) -> NormalizedOperation:
    where = f"{method.upper()} {path}"
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for param in [*_list(shared_params), *_list(operation.get("parameters"))]:
        if not isinstance(param, dict) or "name" not in param or "in" not in param:
            raise SpecError(f"{where}: a parameter without 'name' and 'in': {param!r}"[:300])
        merged[(str(param["name"]), str(param["in"]))] = param
    parameters: list[NormalizedParam] = []
    form_fields: list[dict[str, Any]] = []
    request_body: dict[str, Any] | None = None
    for (name, location), param in merged.items():
        if location in _PARAM_LOCATIONS:
            parameters.append(
                NormalizedParam(
                    name=name,
                    location=location,
                    required=bool(param.get("required")) or location == "path",
                    schema=_parameter_schema(param),
                    description=str(param.get("description") or ""),
                )
            )
        elif kind == "swagger2" and location == "body":
            request_body = param.get("schema") if isinstance(param.get("schema"), dict) else {}
        elif kind == "swagger2" and location == "formData":
            form_fields.append(param)
        else:
            raise SpecError(f"{where}: parameter {name!r} has an unknown location 'in: {location}'")
    if kind == "openapi3":
        request_body = _openapi3_request_body(operation.get("requestBody"))
    elif form_fields and request_body is None:
        request_body = _form_fields_schema(form_fields)
    return NormalizedOperation(
        operation_id=str(operation.get("operationId") or "").strip() or synthesize_operation_id(method, path),
        method=method,
        path=path,
        summary=str(operation.get("summary") or ""),
        description=str(operation.get("description") or ""),
        tags=[str(tag) for tag in _list(operation.get("tags"))],
        parameters=parameters,
        request_body=request_body,
        response=_success_response_schema(kind, operation.get("responses")),
        links=_response_links(operation.get("responses")) if kind == "openapi3" else [],
        extensions=_extensions(operation),
    )


def _parameter_schema(param: dict[str, Any]) -> dict[str, Any]:
    if isinstance(param.get("schema"), dict):
        return param["schema"]
    content = param.get("content")
    if isinstance(content, dict):
        for media in content.values():
            if isinstance(media, dict) and isinstance(media.get("schema"), dict):
                return media["schema"]
    return {key: param[key] for key in _SWAGGER_SCHEMA_KEYS if key in param}


def _form_fields_schema(fields: list[dict[str, Any]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for field in fields:
        schema = _parameter_schema(field)
        if schema.get("type") == "file":
            schema = {**schema, "type": "string", "format": "binary"}
        if field.get("description"):
            schema = {**schema, "description": field["description"]}
        properties[str(field["name"])] = schema
    required = [str(f["name"]) for f in fields if f.get("required")]
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def _media_rank(media_type: str) -> int | None:
    """Preference among media types of a body; None for the ones whose schema is not JSON-shaped."""
    base = media_type.split(";")[0].strip().lower()
    if base == "application/json":
        return 0
    if "json" in base:
        return 1
    if base in _FORM_MEDIA_TYPES:
        return 2
    return 3 if base == "*/*" else None


def _media_schema(content: Any) -> dict[str, Any] | None:
    """The schema of the preferred media type of a `content` map, if any."""
    if not isinstance(content, dict):
        return None
    ranked = sorted(
        (rank, position, media_type)
        for position, media_type in enumerate(content)
        if (rank := _media_rank(str(media_type))) is not None
    )
    for _, _, media_type in ranked:
        media = content[media_type]
        if isinstance(media, dict) and isinstance(media.get("schema"), dict):
            return media["schema"]
    return None


def _openapi3_request_body(request_body: Any) -> dict[str, Any] | None:
    if not isinstance(request_body, dict):
        return None
    return _media_schema(request_body.get("content"))


def _success_response_schema(kind: ResourceKind, responses: Any) -> dict[str, Any] | None:
    if not isinstance(responses, dict):
        return None
    success = sorted(str(code) for code in responses if str(code).startswith("2"))
    by_code = {str(code): response for code, response in responses.items()}
    for code in success:
        response = by_code[code]
        if not isinstance(response, dict):
            continue
        if kind == "swagger2":
            schema = response.get("schema")
            if isinstance(schema, dict):
                return schema
        else:
            schema = _media_schema(response.get("content"))
            if schema is not None:
                return schema
    return None


def _response_links(responses: Any) -> list[NormalizedLink]:
    """Links of the 2xx responses that name an operation by `operationId` (an `operationRef`
    points into documents and is not followed)."""
    links: list[NormalizedLink] = []
    for code, response in (responses if isinstance(responses, dict) else {}).items():
        if not str(code).startswith("2") or not isinstance(response, dict):
            continue
        for link in (response.get("links") or {}).values() if isinstance(response.get("links"), dict) else []:
            if isinstance(link, dict) and isinstance(link.get("operationId"), str):
                parameters = link.get("parameters") if isinstance(link.get("parameters"), dict) else {}
                links.append(
                    NormalizedLink(
                        operation_id=link["operationId"],
                        parameters={str(k): str(v) for k, v in parameters.items() if isinstance(v, str)},
                    )
                )
    return links


def check_unique_operation_ids(declared_ids: list[str], operations: list[NormalizedOperation]) -> None:
    """Raise `duplicate_operation_id` naming every id the document declares more than once."""
    duplicates = sorted(op_id for op_id, n in Counter(declared_ids).items() if n > 1)
    if not duplicates:
        return
    where = {
        op_id: [
            f"{op.method.upper()} {op.path}" if op.method and op.path else f"entry {position + 1}"
            for position, op in enumerate(operations)
            if op.operation_id == op_id
        ]
        for op_id in duplicates
    }
    detail = "; ".join(f"{op_id!r} on {', '.join(routes)}" for op_id, routes in where.items())
    raise SpecError(f"duplicated operationId(s): {detail}", "duplicate_operation_id")


def _deduplicate_synthesized_ids(operations: list[NormalizedOperation]) -> None:
    """A synthesized id may equal a declared one: suffix the later one, deterministically."""
    seen: set[str] = set()
    for op in operations:
        candidate, n = op.operation_id, 2
        while candidate in seen:
            candidate, n = f"{op.operation_id}_{n}", n + 1
        op.operation_id = candidate
        seen.add(candidate)


def _license(license_info: Any) -> str | None:
    if isinstance(license_info, dict):
        return (
            str(license_info.get("name") or license_info.get("identifier") or license_info.get("url") or "")
            or None
        )
    return str(license_info) if license_info else None


def _extensions(node: dict[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in node.items() if str(k).startswith("x-")}


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"'{name}' is a {type(value).__name__}, not a mapping")
    return value


def _list(value: Any) -> list[Any]:
    """A list field; a lone value (a common slip: `tags: Orders`) counts as a list of one."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _escape_pointer(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")
