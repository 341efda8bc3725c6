"""Markdown API docs -> `NormalizedSpec`.

The convention we read (tests/data/markdown_docs/ has one file of each style):

- `# Title` (the first level-1 heading) is the title; the text under it is the description.
- An **endpoint** is a heading `METHOD /path` (any level, the path may be in backticks, text after
  it such as `— List orders` is the summary), or a heading whose section opens with a line
  `METHOD /path` (the heading is then the summary: "## Create an order" + "`POST /orders`").
- A **tool** is a heading that is an identifier: in backticks, snake_case or camelCase
  (`### search_flights`, `### \\`getWeather()\\``); a plain lowercase word (`### search`) counts
  when its section documents parameters or a JSON block.
- Sub-headings below an endpoint or tool (`#### Parameters`, `#### Response`) belong to it; the
  nearest enclosing heading that is neither (e.g. `## Orders`) becomes its tag.
- **Parameters**: a table with a name column (name / parameter / field / argument / property) and
  optional type, in / location, required and description columns; or bullets
  ``- `name` (type, required): description`` (also `**name**`, or a plain name followed by a
  parenthesis). The location comes from an `in` column, else a label above the list ("Query
  parameters", "Path parameters", "Headers", "Request body"), else the path template (`{name}` or
  `:name`), else the method: query for GET/DELETE/HEAD, JSON body fields for POST/PUT/PATCH.
  Tool parameters are arguments. Untyped parameters are strings; required when the required
  column says yes/true/✓ or the type/description says "required".
- **JSON code blocks**: a block after a label mentioning request/body/input/arguments is the
  request (a tool's input schema); response/returns/output/result labels the response; an
  unlabelled block is the request of POST/PUT/PATCH when none is known yet, else the response. A
  block that is a JSON Schema is used as is; any other JSON is an example whose schema is inferred.
  Fields listed under a response label become the response schema when no JSON block gives one.
- **Free-form docs**: `METHOD /path` lines (bullets, table rows, plain lines) outside endpoint
  sections become endpoints too (also as table rows `| GET | /orders | List orders |`), summarized
  by the rest of their line; an endpoint documented by a section wins over a mention. The line
  opening an endpoint section may follow a code sample (a `curl` call, say).

Operation ids: a tool's name; for endpoints the snake_case of method + path (as for OpenAPI).
Code blocks that are not valid JSON (docs often elide with `...`) are skipped and counted in the
extension `x-unparsed-json-blocks`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec
from envfactory_dagster.ingest.openapi_document import check_unique_operation_ids, synthesize_operation_id

MARKDOWN_SUFFIXES = (".md", ".markdown", ".mdx")

_METHODS = "GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"
_ENDPOINT = re.compile(rf"(?<![A-Za-z])\**`?\**({_METHODS})\**`?\**\s+`?(/[^\s`|)\]]*)`?", re.IGNORECASE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
_TOOL_HEADING = re.compile(r"^(`?)([A-Za-z_][\w.-]*)(?:\(\s*\))?\1$")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_BULLET_PARAM = re.compile(
    r"^(?:`([^`]+)`|\*\*`?([^*`]+)`?\*\*|([A-Za-z_][\w.\[\]]*)(?=\s*\())"  # `name` | **name** | name(
    r"\s*(?:\(([^)]*)\))?"  # (type, required)
    r"\s*(?:[:—–-]\s*)?(.*)$"  # separator, description
)
_TYPE_WORDS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("date-time", {"type": "string", "format": "date-time"}),
    ("datetime", {"type": "string", "format": "date-time"}),
    ("timestamp", {"type": "string", "format": "date-time"}),
    ("date", {"type": "string", "format": "date"}),
    ("integer", {"type": "integer"}),
    ("int", {"type": "integer"}),
    ("long", {"type": "integer"}),
    ("number", {"type": "number"}),
    ("float", {"type": "number"}),
    ("double", {"type": "number"}),
    ("decimal", {"type": "number"}),
    ("boolean", {"type": "boolean"}),
    ("bool", {"type": "boolean"}),
    ("object", {"type": "object"}),
    ("dict", {"type": "object"}),
    ("map", {"type": "object"}),
    ("string", {"type": "string"}),
    ("str", {"type": "string"}),
    ("text", {"type": "string"}),
)
_SCHEMA_TYPES = frozenset({"object", "array", "string", "integer", "number", "boolean", "null"})
_LABELS = (
    ("response", ("response", "returns", "return value", "output", "result")),
    ("path", ("path param",)),
    ("query", ("query",)),
    ("header", ("header",)),
    ("body", ("request", "body", "payload", "input", "argument", "form")),
    ("params", ("param", "field", "option")),
)


@dataclass
class _Block:
    kind: str  # "heading" | "code" | "line"
    text: str
    level: int = 0
    lang: str = ""


@dataclass
class _Section:
    """One operation's heading and the blocks below it."""

    heading: str
    method: str | None
    path: str | None
    tool: str | None
    summary: str
    tag: str | None
    blocks: list[_Block] = field(default_factory=list)


def looks_like_markdown(text: str) -> bool:
    """True for text with Markdown headings (outside code blocks): docs, not data."""
    return any(block.kind == "heading" for block in _blocks(text))


def parse_markdown_docs(text: str, fallback_title: str) -> NormalizedSpec:
    blocks = _blocks(text)
    title, description = fallback_title, ""
    first_h1 = next((i for i, b in enumerate(blocks) if b.kind == "heading" and b.level == 1), None)
    if first_h1 is not None:
        title = _plain(blocks[first_h1].text) or fallback_title
        description = _paragraph_text(_until_next_heading(blocks, first_h1 + 1))
    sections, loose_blocks, tags = _sections(blocks)
    unparsed_json = 0
    operations: list[NormalizedOperation] = []
    for section in sections:
        operation, skipped = _section_operation(section)
        operations.append(operation)
        unparsed_json += skipped
    declared = [op.operation_id for op in operations]
    check_unique_operation_ids(declared, operations)
    documented = {(op.method, op.path) for op in operations}
    for method, path, summary in _endpoint_mentions(loose_blocks):
        if (method, path) not in documented:
            documented.add((method, path))
            operations.append(
                NormalizedOperation(
                    operation_id=synthesize_operation_id(method, path),
                    method=method,
                    path=path,
                    summary=summary,
                    parameters=[_path_param(name) for name in _path_names(path)],
                )
            )
    return NormalizedSpec(
        kind="markdown",
        title=title,
        description=description,
        tags=tags,
        operations=operations,
        extensions={"x-unparsed-json-blocks": unparsed_json} if unparsed_json else {},
    )


def _blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    fence: str | None = None
    code_lines: list[str] = []
    lang = ""
    for line in text.splitlines():
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1) == fence and not fence_match.group(2):
                blocks.append(_Block("code", "\n".join(code_lines), lang=lang))
                fence, code_lines = None, []
            else:
                code_lines.append(line)
            continue
        if fence_match:
            fence, lang = fence_match.group(1), fence_match.group(2).lower()
            continue
        heading = _HEADING.match(line)
        if heading:
            blocks.append(_Block("heading", heading.group(2), level=len(heading.group(1))))
        elif line.strip():
            blocks.append(_Block("line", line.rstrip()))
    return blocks


def _sections(blocks: list[_Block]) -> tuple[list[_Section], list[_Block], dict[str, str]]:
    """Operation sections, the blocks outside them, and tags (enclosing non-operation headings)."""
    sections: list[_Section] = []
    loose: list[_Block] = []
    tags: dict[str, str] = {}
    enclosing: list[tuple[int, str]] = []  # (level, text) of open non-operation headings
    current: _Section | None = None
    current_level = 0
    for index, block in enumerate(blocks):
        if block.kind != "heading":
            (current.blocks if current else loose).append(block)
            continue
        if current is not None and block.level > current_level and not _heading_operation(blocks, index):
            current.blocks.append(block)  # a sub-heading such as "Parameters" or "Response"
            continue
        current = None
        operation = _heading_operation(blocks, index)
        if operation is None:
            while enclosing and enclosing[-1][0] >= block.level:
                enclosing.pop()
            enclosing.append((block.level, _plain(block.text)))
            loose.append(block)
            continue
        method, path, tool, summary = operation
        tag = next((text for level, text in reversed(enclosing) if level > 1 and level < block.level), None)
        if tag is not None and tag not in tags:
            tags[tag] = _paragraph_text(_until_next_heading(blocks, _heading_index(blocks, tag)))
        current, current_level = _Section(block.text, method, path, tool, summary, tag), block.level
        sections.append(current)
    return sections, loose, tags


def _heading_operation(
    blocks: list[_Block], index: int
) -> tuple[str | None, str | None, str | None, str] | None:
    """(method, path, tool, summary) when the heading at `index` opens an operation section."""
    text = blocks[index].text
    endpoint = _ENDPOINT.match(text.strip())
    if endpoint:
        rest = text.strip()[endpoint.end() :].strip(" -—–:`*")
        return endpoint.group(1).lower(), endpoint.group(2), None, rest
    following = _until_next_heading(blocks, index + 1)
    first_line = next((b.text for b in following if b.kind == "line"), "")  # code samples may precede
    opening = _ENDPOINT.match(first_line.strip()) if first_line else None
    if opening and blocks[index].level > 1:
        return opening.group(1).lower(), opening.group(2), None, _plain(text)
    tool = _TOOL_HEADING.match(text.strip())
    if tool and blocks[index].level > 1:
        name = tool.group(2)
        explicit = bool(tool.group(1)) or "_" in name or bool(re.match(r"^[a-z]+[A-Z]", name))
        if name[0].islower() and (explicit or _documents_inputs(following)):
            return None, None, name, ""
    return None


def _documents_inputs(blocks: list[_Block]) -> bool:
    return any(b.kind == "code" or b.text.lstrip().startswith("|") or _bullet_param(b.text) for b in blocks)


def _section_operation(section: _Section) -> tuple[NormalizedOperation, int]:
    """The operation a section documents, and how many of its JSON blocks were not valid JSON."""
    is_tool = section.tool is not None
    writes_body = section.method in ("post", "put", "patch")
    label = "params"
    fields: list[tuple[str, str, dict[str, Any], bool, str]] = []  # label, name, schema, required, text
    explicit_locations: dict[str, str] = {}
    request: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    prose: list[str] = []
    skipped_json = 0
    rows: list[str] = []

    def flush_table() -> None:
        for name, location, schema, required, description in _table_params(rows):
            fields.append((label, name, schema, required, description))
            if location:
                explicit_locations[name] = location
        rows.clear()

    for block in section.blocks:
        if block.kind != "line" or not block.text.lstrip().startswith("|"):
            flush_table()
        if block.kind == "code":
            parsed = _json_block(block)
            if parsed is _NOT_JSON:
                # Only blocks meant as JSON count as skipped (not shell or Python samples).
                if block.lang in ("json", "jsonc", "") and block.text.lstrip().startswith(("{", "[")):
                    skipped_json += 1
                continue
            schema = parsed if _is_json_schema(parsed) else _inferred_schema(parsed)
            if label == "response" or (
                label != "body" and (request is not None or not (writes_body or is_tool))
            ):
                response = response or schema
            else:
                request = request or schema
            continue
        if block.kind == "heading" or _is_label(block.text):
            label = _label_kind(block.text) or label
            continue
        if block.text.lstrip().startswith("|"):
            rows.append(block.text)
            continue
        bullet = _bullet_param(block.text)
        if bullet:
            fields.append((label, *bullet))
            continue
        if not _ENDPOINT.match(block.text.strip()):
            prose.append(block.text.strip())
    flush_table()

    parameters: list[NormalizedParam] = []
    body_fields: list[tuple[str, dict[str, Any], bool, str]] = []
    response_fields: list[tuple[str, dict[str, Any], bool, str]] = []
    path_names = _path_names(section.path or "")
    for field_label, name, schema, required, description in fields:
        if field_label == "response":
            response_fields.append((name, schema, required, description))
            continue
        location = (
            "argument"
            if is_tool
            else _location(name, explicit_locations.get(name), field_label, path_names, writes_body)
        )
        if location == "body":
            body_fields.append((name, schema, required, description))
        else:
            parameters.append(
                NormalizedParam(
                    name=name,
                    location=location,
                    required=required or location == "path",
                    schema=schema,
                    description=description,
                )
            )
    documented = {p.name for p in parameters}
    parameters = [_path_param(name) for name in path_names if name not in documented] + parameters
    if body_fields and request is None:
        request = _object_schema(body_fields)
    if is_tool and request is not None:
        parameters += _schema_arguments(request, {p.name for p in parameters})
        request = None
    if response is None and response_fields:
        response = _object_schema(response_fields)
    description = " ".join(prose)
    summary = section.summary or _first_sentence(description)
    operation = NormalizedOperation(
        operation_id=section.tool or synthesize_operation_id(section.method or "", section.path or ""),
        method=section.method,
        path=section.path,
        summary=summary,
        description=description,
        tags=[section.tag] if section.tag else [],
        parameters=parameters,
        request_body=request,
        response=response,
    )
    return operation, skipped_json


def _table_params(rows: list[str]) -> list[tuple[str, str | None, dict[str, Any], bool, str]]:
    """(name, location, schema, required, description) per row of a parameter table."""
    cells = [[_plain(c) for c in row.strip().strip("|").split("|")] for row in rows]
    if len(cells) < 3 or not all(set(c) <= set("-: ") for c in cells[1]):
        return []
    header = [c.lower() for c in cells[0]]

    def column(*words: str) -> int | None:
        return next((i for i, h in enumerate(header) if any(h.startswith(w) for w in words)), None)

    name_col = column("name", "parameter", "param", "field", "argument", "property", "key")
    if name_col is None:
        return []
    type_col, in_col = column("type"), column("in", "location", "where")
    required_col, description_col = (
        column("required", "req"),
        column("description", "desc", "notes", "meaning"),
    )
    params = []
    for row in cells[2:]:

        def cell(col: int | None, row: list[str] = row) -> str:
            return row[col] if col is not None and col < len(row) else ""

        name = cell(name_col).split()[0] if cell(name_col).split() else ""
        if not name:
            continue
        type_text, description = cell(type_col), cell(description_col)
        required_text = cell(required_col).lower()
        required = required_text in ("yes", "y", "true", "required", "✓", "✔", "x") or (
            required_col is None and _says_required(f"{type_text} {description}")
        )
        location = cell(in_col).lower() or None
        params.append((name, location, _type_schema(type_text), required, description))
    return params


def _bullet_param(text: str) -> tuple[str, dict[str, Any], bool, str] | None:
    """(name, schema, required, description) of a ``- `name` (type, required): text`` bullet."""
    bullet = _BULLET.match(text)
    if not bullet:
        return None
    match = _BULLET_PARAM.match(bullet.group(1).strip())
    if not match or _ENDPOINT.match(bullet.group(1).strip()):
        return None
    name = (match.group(1) or match.group(2) or match.group(3)).strip()
    if not re.fullmatch(r"[A-Za-z_$][\w.$\[\]-]*", name):
        return None
    attributes, description = match.group(4) or "", match.group(5).strip()
    return name, _type_schema(attributes), _says_required(attributes), description


def _location(name: str, explicit: str | None, label: str, path_names: list[str], writes_body: bool) -> str:
    if explicit in ("path", "query", "header", "cookie"):
        return explicit
    if explicit in ("body", "form", "formdata", "json"):
        return "body"
    if name in path_names:
        return "path"
    if label in ("path", "query", "header"):
        return label
    if label == "body":
        return "body"
    return "body" if writes_body else "query"


def _schema_arguments(schema: dict[str, Any], known: set[str]) -> list[NormalizedParam]:
    required = set(schema.get("required") or [])
    return [
        NormalizedParam(
            name=str(name),
            location="argument",
            required=name in required,
            schema=prop if isinstance(prop, dict) else {},
            description=str(prop.get("description") or "") if isinstance(prop, dict) else "",
        )
        for name, prop in (schema.get("properties") or {}).items()
        if name not in known
    ]


def _object_schema(fields: list[tuple[str, dict[str, Any], bool, str]]) -> dict[str, Any]:
    properties = {
        name: {**schema, **({"description": description} if description else {})}
        for name, schema, _, description in fields
    }
    required = [name for name, _, is_required, _ in fields if is_required]
    return {"type": "object", "properties": properties, **({"required": required} if required else {})}


def _type_schema(text: str) -> dict[str, Any]:
    words = re.findall(r"[a-z][a-z-]*", text.lower())
    is_array = "[]" in text or any(w in ("array", "list") for w in words)
    item = next((dict(schema) for word, schema in _TYPE_WORDS if word in words), None)
    if is_array:
        return {"type": "array", "items": item or {}}
    return item or {"type": "string"}


def _says_required(text: str) -> bool:
    lowered = text.lower()
    return "required" in lowered and "not required" not in lowered and "optional" not in lowered


_NOT_JSON = object()


def _json_block(block: _Block) -> Any:
    if block.lang not in ("json", "jsonc", "json5", "javascript", "js", ""):
        return _NOT_JSON
    try:
        value = json.loads(block.text)
    except json.JSONDecodeError:
        return _NOT_JSON
    return value if isinstance(value, (dict, list)) else _NOT_JSON


def _is_json_schema(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    if "$schema" in value or "$ref" in value:
        return True
    return value.get("type") in _SCHEMA_TYPES and (
        isinstance(value.get("properties"), dict) or isinstance(value.get("items"), dict) or len(value) <= 3
    )


def _inferred_schema(example: Any) -> dict[str, Any]:
    """The JSON Schema an example value is an instance of (arrays typed by their first item)."""
    if isinstance(example, dict):
        return {"type": "object", "properties": {str(k): _inferred_schema(v) for k, v in example.items()}}
    if isinstance(example, list):
        return {"type": "array", "items": _inferred_schema(example[0]) if example else {}}
    if isinstance(example, bool):
        return {"type": "boolean"}
    if isinstance(example, int):
        return {"type": "integer"}
    if isinstance(example, float):
        return {"type": "number"}
    if isinstance(example, str):
        return {"type": "string"}
    return {}


def _endpoint_mentions(blocks: list[_Block]) -> list[tuple[str, str, str]]:
    """(method, path, summary) of each `METHOD /path` written in a line outside operation sections."""
    mentions = []
    for block in blocks:
        if block.kind != "line":
            continue
        text = block.text.replace("|", " ")  # a table row: | GET | /orders | List orders |
        for match in _ENDPOINT.finditer(text):
            rest = text[: match.start()] + " " + text[match.end() :]
            summary = _plain(re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", rest)).strip(" -—–:")
            mentions.append((match.group(1).lower(), match.group(2), summary))
    return mentions


def _path_names(path: str) -> list[str]:
    """Names of the path template's parameters, `{name}` or `:name` style."""
    return [braced or colon for braced, colon in re.findall(r"\{([^}/]+)\}|(?<=/):([A-Za-z_]\w*)", path)]


def _path_param(name: str) -> NormalizedParam:
    return NormalizedParam(name=name, location="path", required=True, schema={"type": "string"})


def _is_label(text: str) -> bool:
    stripped = _plain(text)
    return (
        len(stripped) <= 60
        and (text.rstrip().endswith(":") or text.strip().startswith("**"))
        and bool(_label_kind(stripped))
    )


def _label_kind(text: str) -> str | None:
    lowered = _plain(text).lower()
    return next((kind for kind, words in _LABELS if any(w in lowered for w in words)), None)


def _until_next_heading(blocks: list[_Block], start: int) -> list[_Block]:
    out = []
    for block in blocks[start:]:
        if block.kind == "heading":
            break
        out.append(block)
    return out


def _heading_index(blocks: list[_Block], plain_text: str) -> int:
    return next(i for i, b in enumerate(blocks) if b.kind == "heading" and _plain(b.text) == plain_text) + 1


def _paragraph_text(blocks: list[_Block]) -> str:
    return " ".join(
        b.text.strip()
        for b in blocks
        if b.kind == "line" and not b.text.lstrip().startswith(("|", "-", "*", "+"))
    )


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(?:\s|$)", text)
    return (match.group(1) if match else text)[:200]


def _plain(text: str) -> str:
    """Text without code ticks, bold/italic asterisks and link URLs (underscores are kept: names)."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"`|\*+", "", text).strip()
