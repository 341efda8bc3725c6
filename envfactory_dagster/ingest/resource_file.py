"""One authentic resource file -> `NormalizedSpec`: read with a size limit, detect the format, parse.

The format is decided by content: a mapping with `openapi: 3.x` is OpenAPI 3, `swagger: "2.0"` is
Swagger 2, a list of function entries (bare, or under `tools` / `functions`) is a function-calling
catalog, a `tools` list of named objects with `inputSchema` is an MCP tool listing, and Markdown
(a `.md` file, or text whose structured parse is not a mapping but that has Markdown headings) is
API docs. The file name only settles ambiguity: `.json` reports JSON syntax errors, `.md` is read
as Markdown, and `#` lines in a `.yaml`/`.yml`/`.json` file are comments, never Markdown headings.
Every failure is a `ResourceParseError` with a reason naming what is wrong and an `ErrorKind`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from envfactory_dagster.ingest.errors import ResourceParseError, SpecError
from envfactory_dagster.ingest.function_catalog import catalog_tools, parse_function_catalog
from envfactory_dagster.ingest.markdown_docs import (
    MARKDOWN_SUFFIXES,
    looks_like_markdown,
    parse_markdown_docs,
)
from envfactory_dagster.ingest.mcp_listing import mcp_tools, parse_mcp_listing
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.ingest.openapi_document import parse_openapi_document

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
_DATA_SUFFIXES = (".json", ".yaml", ".yml")


class _ResourceYamlLoader(yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader):  # type: ignore[misc]
    """Safe YAML that yields JSON-compatible data: YAML 1.1 timestamps stay strings, only
    true/false are booleans (a property named `on` or `no` stays a name), and mapping keys are
    strings (`200:` response codes become "200")."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        mapping = super().construct_mapping(node, deep=deep)
        return {key if isinstance(key, str) else _yaml_key(key): value for key, value in mapping.items()}


def _yaml_key(key: Any) -> str:
    return "null" if key is None else str(key).lower() if isinstance(key, bool) else str(key)


_ResourceYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith((":timestamp", ":bool"))]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ResourceYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def parse_resource_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> NormalizedSpec:
    """Parse one authentic resource file; raises `ResourceParseError(path, reason)` on bad input."""
    return parse_resource_bytes(read_resource_bytes(path, max_bytes), path)


def read_resource_bytes(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The file's bytes; never reads more than `max_bytes` + 1 of them."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ResourceParseError(path, _too_large(size, max_bytes), "too_large")
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as error:
        raise ResourceParseError(
            path, f"cannot read the file: {error.strerror or error}", "unreadable"
        ) from error
    if len(data) > max_bytes:  # grew after stat, or a special file that reports no size
        raise ResourceParseError(path, _too_large(len(data), max_bytes, at_least=True), "too_large")
    return data


def parse_resource_bytes(data: bytes, path: Path) -> NormalizedSpec:
    """Parse the bytes of the file at `path` (used for its name and its suffix only)."""
    try:
        return _parse_text(_decode(data), path)
    except SpecError as error:
        raise ResourceParseError(path, error.reason, error.kind) from error


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(
            f"not UTF-8 text: byte 0x{data[error.start]:02x} at offset {error.start} cannot be decoded "
            "(API descriptions must be UTF-8)",
            "not_utf8",
        ) from error
    if not text.strip():
        raise SpecError(
            "the file is empty" if not data else "the file contains only whitespace", "empty_file"
        )
    return text


def _parse_text(text: str, path: Path) -> NormalizedSpec:
    suffix = path.suffix.lower()
    fallback_title = path.stem
    if suffix in MARKDOWN_SUFFIXES:
        return _require_operations(parse_markdown_docs(text, fallback_title))
    # A `#` line is a YAML comment as much as a Markdown heading: the suffix settles it when it
    # names a data format, the content does otherwise (README, .txt, no suffix).
    markdown_possible = suffix not in _DATA_SUFFIXES and looks_like_markdown(text)
    try:
        document = _load_structured(text, suffix)
    except SpecError:
        if markdown_possible:
            return _require_operations(parse_markdown_docs(text, fallback_title))
        raise
    if catalog_tools(document) is not None:
        return _require_operations(parse_function_catalog(document, fallback_title))
    if not isinstance(document, dict):
        if markdown_possible:
            return _require_operations(parse_markdown_docs(text, fallback_title))
        if document == []:
            raise SpecError("the function catalog is an empty list", "no_operations")
        raise SpecError(
            f"unknown format: the content parses as a {_type_name(document)}, not as an OpenAPI, "
            "Swagger or MCP document (a mapping), nor as a function-calling catalog (a list of "
            "function objects), nor as Markdown API docs",
            "unknown_format",
        )
    try:
        return _require_operations(_parse_document(document, fallback_title))
    except ValidationError as error:
        raise SpecError(f"the document does not fit the normalized spec: {error}", "invalid_spec") from error


def _load_structured(text: str, suffix: str) -> Any:
    json_error: SpecError | None = None
    if suffix == ".json" or text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            json_error = SpecError(
                f"invalid JSON: {error.msg} at line {error.lineno}, column {error.colno}", "invalid_json"
            )
            if suffix == ".json":
                raise json_error from error
        except RecursionError as error:
            raise SpecError("invalid JSON: nested too deeply to parse", "invalid_json") from error
    try:
        return yaml.load(text, Loader=_ResourceYamlLoader)
    except yaml.YAMLError as error:
        # Text that starts like JSON (flow-style YAML aside) is best explained by the JSON error.
        raise json_error or SpecError(f"invalid YAML: {_yaml_problem(error)}", "invalid_yaml") from error
    except RecursionError as error:
        raise SpecError("invalid YAML: nested too deeply to parse", "invalid_yaml") from error


def _parse_document(document: dict[str, Any], fallback_title: str) -> NormalizedSpec:
    if "openapi" in document:
        version = str(document["openapi"])
        if not version.startswith("3."):
            raise SpecError(
                f"unknown format: OpenAPI version {version!r} (3.x is supported)", "unknown_format"
            )
        return parse_openapi_document(document, "openapi3", fallback_title)
    if "swagger" in document:
        version = str(document["swagger"])
        if version != "2.0":
            raise SpecError(
                f"unknown format: Swagger version {version!r} (2.0 is supported)", "unknown_format"
            )
        return parse_openapi_document(document, "swagger2", fallback_title)
    if mcp_tools(document) is not None:
        return parse_mcp_listing(document, fallback_title)
    if document.get("tools") == []:
        raise SpecError("the MCP tool listing has an empty 'tools' list", "no_operations")
    keys = ", ".join(sorted(map(str, document))[:8])
    raise SpecError(
        f"unknown format: a mapping with keys [{keys}] is not an API description (expected "
        "'openapi: 3.x', 'swagger: \"2.0\"', an MCP 'tools' list of objects with a 'name', or a "
        "'tools'/'functions' list of function objects)",
        "unknown_format",
    )


def _require_operations(spec: NormalizedSpec) -> NormalizedSpec:
    if not spec.operations:
        where = {
            "openapi3": "no path has an HTTP operation",
            "swagger2": "no path has an HTTP operation",
            "mcp": "no tools",
            "functions": "no functions",
            "markdown": "no endpoint (`## GET /path`) or tool (`## tool_name`) section",
        }[spec.kind]
        raise SpecError(f"the {spec.kind} document describes no operations: {where}", "no_operations")
    return spec


def _too_large(size: int, max_bytes: int, at_least: bool = False) -> str:
    return (
        f"the file is {'at least ' if at_least else ''}{size:,} bytes, over the limit of {max_bytes:,} bytes "
        "(raise max_bytes to ingest it)"
    )


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


def _type_name(value: Any) -> str:
    return {str: "plain string", list: "list", type(None): "empty document"}.get(
        type(value), type(value).__name__
    )
