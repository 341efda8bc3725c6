"""Environment module source from an EnvSpec (template backend of `env_code`).

`generate_module(spec)` writes readable Python in the shape of `tests/fakes/example_env.py`:
Pydantic entity models (extra="forbid", Literal enums, Field constraints), a `State` model (one
`dict[str, Entity]` per collection + counters/now/seed), row-schema constants, one
`Environment` subclass with one `@tool` method per ToolSpec, and `ENVIRONMENT_CLASS`.

Tool bodies follow the action (see spec_inference): dict lookups for get/update/delete/
transition, one scan of the table for list/search/custom reads, `next_id` for new rows. Rows are
never mutated in place (`self.put(coll, key, {**row, ...})`); refused calls raise `ToolError`
(`not_found` for a missing row, a foreign key to a missing row, or a row outside the parent
named in the call; `conflict` for a duplicate natural key; `invalid_state` for a transition from
a wrong status). Business rules of a write tool (`ToolSpec.rules`, inferred by business_rules.py:
natural keys, ordered pairs, parent status, amounts within their parent, stock, what a delete does
to rows that reference the row) are emitted by codegen_rules.py as one delimited block each:
preconditions before anything is written, effects after. A new row's fields nobody set take the
referenced row's value (a rule) or a value of the field's meaning, never a pattern sample.
Updates and transitions stamp an `updated_at`-like field with the
state's `now` unless the caller sets it. Locals in tool bodies start with `_` so they never
shadow a parameter. Same spec -> byte-identical source.
"""

from __future__ import annotations

import json
import keyword
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from envfactory_dagster.envgen.codegen_rules import RuleEmitter
from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.key_forms import new_key_expression
from envfactory_dagster.envgen.naming import snake_case
from envfactory_dagster.envgen.seed_data import sample_pattern
from envfactory_dagster.envgen.spec_inference import property_schema

INDENT = "    "
_CODEGEN_CLOCK = datetime(2026, 1, 15, 9, tzinfo=UTC)
RESERVED_CLASS_NAMES = frozenset(
    {"State", "Environment", "ToolError", "BaseModel", "ConfigDict", "Field", "Any", "Literal", "tool"}
)
_PY_TYPES = {
    "string": "str",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "object": "dict[str, Any]",
}
INITIAL_STATUSES = (
    "pending",
    "draft",
    "new",
    "open",
    "active",
    "created",
    "scheduled",
    "requested",
    "submitted",
    "todo",
    "needs_action",
    "needsaction",
)
TIMESTAMP_NAMES = ("created_at", "created", "date_created", "creation_date", "created_on", "requested_at")
# what a new row holds in a required formatted field nobody set (valid for its format)
FORMAT_PLACEHOLDERS = {
    "email": "unknown@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
UPDATED_NAMES = ("updated_at", "updated", "date_updated", "modified_at", "last_modified", "modified")


class _Ref(str):
    """A name emitted verbatim inside a literal (a row-schema constant)."""


def py_literal(value: Any, indent: int = 0, width: int = 100) -> str:
    """Python source for a JSON-able value, one item per line when it does not fit."""
    if isinstance(value, _Ref):
        return str(value)
    flat = _flat_literal(value)
    if len(flat) + indent * 4 <= width or not isinstance(value, dict | list) or not value:
        return flat
    pad, inner = INDENT * indent, INDENT * (indent + 1)
    if isinstance(value, dict):
        items = [f"{inner}{_scalar(k)}: {py_literal(v, indent + 1, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    items = [f"{inner}{py_literal(v, indent + 1, width)}," for v in value]
    return "[\n" + "\n".join(items) + f"\n{pad}]"


def _flat_literal(value: Any) -> str:
    if isinstance(value, _Ref):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_flat_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flat_literal(v) for v in value) + "]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    """Python literal of a JSON scalar; strings in double quotes (JSON escapes are Python escapes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _fstring_text(value: str) -> str:
    """Literal text safe inside a generated double-quoted f-string."""
    return value.replace("\\", "/").replace('"', "'").replace("{", "{{").replace("}", "}}")


def _text(value: str) -> str:
    return _scalar(" ".join(value.split()))


def model_names(spec: EnvSpec) -> dict[str, str]:
    """Entity name -> model class name, clear of the module's other names."""
    taken = RESERVED_CLASS_NAMES | {spec.class_name}
    return {e.name: f"{e.name}Record" if e.name in taken else e.name for e in spec.entities}


def _annotation(f: FieldSpec) -> str:
    if f.enum:
        base = "Literal[" + ", ".join(_scalar(v) for v in f.enum) + "]"
    elif f.type == "array":
        base = f"list[{_PY_TYPES.get(f.item_type or '', 'Any')}]"
    else:
        base = _PY_TYPES[f.type]
    return f"{base} | None" if f.nullable else base


def _field_line(f: FieldSpec) -> str:
    constraints = []
    if f.minimum is not None and not f.enum:
        constraints.append(f"ge={f.minimum!r}")
    if f.maximum is not None and not f.enum:
        constraints.append(f"le={f.maximum!r}")
    if f.max_length is not None:
        constraints.append(f"max_length={f.max_length!r}")
    if f.pattern is not None:
        constraints.append(f"pattern={_scalar(f.pattern)}")
    annotation = _annotation(f)
    if constraints:
        default = "default=None, " if f.nullable else ""
        return f"{f.name}: {annotation} = Field({default}{', '.join(constraints)})"
    return f"{f.name}: {annotation} = None" if f.nullable else f"{f.name}: {annotation}"


def _schema_constant(entity: EntitySpec) -> str:
    return f"{snake_case(entity.name).upper()}_SCHEMA"


def _render_models(spec: EnvSpec, names: dict[str, str]) -> list[str]:
    lines: list[str] = []
    for e in spec.entities:
        lines += ["", "", f"class {names[e.name]}(BaseModel):"]
        if e.description:
            lines.append(f'{INDENT}"""{_docstring(e.description)}"""')
            lines.append("")
        lines.append(f'{INDENT}model_config = ConfigDict(extra="forbid")')
        lines += [f"{INDENT}{_field_line(f)}" for f in e.fields]
    lines += ["", "", "class State(BaseModel):", f'{INDENT}model_config = ConfigDict(extra="forbid")']
    for e in spec.entities:
        lines.append(f"{INDENT}{e.collection}: dict[str, {names[e.name]}] = Field(default_factory=dict)")
    lines += [
        f"{INDENT}counters: dict[str, int] = Field(default_factory=dict)",
        f"{INDENT}now: str = {_scalar(spec.clock)}",
        f"{INDENT}seed: int = 0",
    ]
    for e in spec.entities:
        schema = {
            "type": "object",
            "properties": {f.name: property_schema(f) for f in e.fields},
            "required": [f.name for f in e.fields],
            "additionalProperties": False,
        }
        lines += ["", "", f"{_schema_constant(e)} = {py_literal(schema)}"]
    return lines


def _docstring(text: str) -> str:
    """Text safe inside a triple-quoted docstring: one line, no quotes or backslashes."""
    return " ".join(text.replace("\\", "/").replace('"', "'").split())


def _output_literal(tool: ToolSpec, entity: EntitySpec | None) -> str:
    schema = dict(tool.output_schema)
    if entity is not None:
        ref = _Ref(_schema_constant(entity))
        props = {}
        for key, sub in schema.get("properties", {}).items():
            if sub.get("type") == "array" and sub.get("items", {}).get("properties") is not None:
                props[key] = {**sub, "items": ref}
            elif sub.get("properties") is not None:
                props[key] = ref
            else:
                props[key] = sub
        schema["properties"] = props
    return py_literal(schema, 2)


def _param_annotation(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "array":
        return "list[Any]"
    return _PY_TYPES.get(kind or "", "Any")


def _signature(tool: ToolSpec) -> str:
    props = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))
    parts = ["self"]
    parts += [f"{p}: {_param_annotation(props[p])}" for p in props if p in required]
    parts += [f"{p}: {_param_annotation(props[p])} | None = None" for p in props if p not in required]
    return ", ".join(parts)


class _Body:
    """Lines of one tool method body."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str, depth: int = 0) -> None:
        self.lines.append(f"{INDENT * (2 + depth)}{line}")


def _value_expr(param: str, f: FieldSpec) -> str:
    """The stored value of a bound parameter (numbers as float; containers copied)."""
    if f.type == "number":
        return f"float({param})"
    if f.type == "array":
        return f"[*{param}]"  # no builtin call: a parameter may be named `list`
    if f.type == "object":
        return f"{{**{param}}}"
    return param


def new_row_default(f: FieldSpec, entity: EntitySpec) -> str:
    """What a new row holds in a field no argument sets (Python source of the value)."""
    if f.enum:
        if f.nullable:
            return "None"
        initial = next((v for v in f.enum if str(v).lower() in INITIAL_STATUSES), f.enum[0])
        return _scalar(initial)
    if f.type == "string" and (f.format == "date-time" or f.name in TIMESTAMP_NAMES + UPDATED_NAMES):
        return 'self.state["now"]'
    if f.type == "string" and f.format == "date":
        return 'self.state["now"][:10]'
    if f.nullable:
        return "None"
    if f.type == "string" and f.format in FORMAT_PLACEHOLDERS:
        return _scalar(FORMAT_PLACEHOLDERS[f.format])
    if f.type == "string" and (f.examples or f.semantic in STANDARD_CODE_MEANINGS):
        return _scalar(_semantic_default(f, entity))
    if f.type == "string":
        return _scalar(sample_pattern(f.pattern, random.Random(0))) if f.pattern else '""'
    if f.type in ("integer", "number"):
        value = 0
        if f.minimum is not None and value < f.minimum:
            value = f.minimum
        if f.maximum is not None and value > f.maximum:
            value = f.maximum
        if f.type == "integer":
            return repr(math.ceil(value))
        return repr(float(value))
    return {"boolean": "False", "array": "[]", "object": "{}"}[f.type]


STANDARD_CODE_MEANINGS = frozenset({"currency_code", "country_code", "language_code", "locale", "timezone"})


def _semantic_default(f: FieldSpec, entity: EntitySpec) -> str:
    """A new row's value for a field nobody set: the document's first example, else a value of
    the field's meaning (a real currency code, never a pattern sample such as "ynb")."""
    from faker import Faker

    from envfactory_dagster.envgen.seed_data import field_value

    examples = [e for e in f.examples if isinstance(e, str)]
    if examples:
        return examples[0]
    fake = Faker("en_US")
    fake.seed_instance(0)
    value = field_value(f, fake, random.Random(0), _CODEGEN_CLOCK, 0)
    return str(value)


def _fk_check(
    body: _Body, param: str, f: FieldSpec, entities: dict[str, EntitySpec], depth: int, optional: bool
) -> None:
    target = entities.get(f.ref_entity or "")
    if target is None:
        return
    if optional:
        body.add(f"if {param} is not None:", depth)
        depth += 1
    body.add(f'self.require("{target.collection}", {param}, "{target.name}")', depth)


def _row_filter(tool: ToolSpec, entity: EntitySpec, required: set[str]) -> list[str]:
    fields = {f.name: f for f in entity.fields}
    conditions = []
    for param, fname in tool.param_fields.items():
        if fname not in fields:
            continue
        if param in required:
            conditions.append(f'_r["{fname}"] == {param}')
        else:
            conditions.append(f'({param} is None or _r["{fname}"] == {param})')
    query = next((p for p, f in tool.param_fields.items() if f == "$query"), None)
    if query is not None:
        text_fields = [
            f.name
            for f in entity.fields
            if f.type == "string"
            and not f.enum
            and not f.ref_entity
            and f.name != entity.key_field
            and f.format not in ("date", "date-time", "uri", "uuid")
        ][:6] or [entity.key_field]
        if text_fields:
            # one lower() per row over the fields joined by a unit separator (no cross-field hits)
            joined = "\\x1f".join(f"{{_r['{n}'] or ''}}" for n in text_fields)
            match = (
                f'_needle in f"{joined}".lower()'
                if len(text_fields) > 1
                else f'_needle in (_r["{text_fields[0]}"] or "").lower()'
            )

            conditions.append(match if query in required else f"(_needle is None or {match})")
    return conditions


def _render_read_rows(
    body: _Body, tool: ToolSpec, entity: EntitySpec, entities: dict[str, EntitySpec]
) -> None:
    required = set(tool.input_schema.get("required", []))
    fields = {f.name: f for f in entity.fields}
    for param, fname in tool.param_fields.items():
        f = fields.get(fname)
        if f is not None and f.ref_entity and param in required:
            _fk_check(body, param, f, entities, 0, optional=False)
        elif fname == entity.key_field and param in required:
            body.add(f'self.require("{entity.collection}", {param}, "{entity.name}")')
    query = next((p for p, f in tool.param_fields.items() if f == "$query"), None)
    if query is not None:
        body.add(
            f"_needle = {query}.lower()"
            if query in required
            else f"_needle = None if {query} is None else {query}.lower()"
        )
    conditions = _row_filter(tool, entity, required)
    source = f'self.table("{entity.collection}").values()'
    if conditions:
        body.add("_rows = [")
        body.add("dict(_r)", 1)
        body.add(f"for _r in {source}", 1)
        body.add(f"if {conditions[0]}", 1)
        for cond in conditions[1:]:
            body.add(f"and {cond}", 1)
        body.add("]")
    else:
        body.add(f"_rows = [dict(_r) for _r in {source}]")
    limit = next((p for p, f in tool.param_fields.items() if f == "$limit"), None)
    rows = "_rows" if limit is None else f"_rows if {limit} is None else _rows[:{limit}]"
    body.add(f'return {{"{entity.collection}": {rows}}}')


def updated_stamp_field(tool: ToolSpec, entity: EntitySpec) -> str | None:
    """The `updated_at`-like field an update or transition sets to the state's `now`, unless the
    caller sets it."""
    if tool.action not in ("update", "transition"):
        return None
    bound_fields = set(tool.param_fields.values())
    return next(
        (
            f.name
            for f in entity.fields
            if f.name in UPDATED_NAMES and f.type == "string" and not f.enum and f.name not in bound_fields
        ),
        None,
    )


def _scope_checks(body: _Body, tool: ToolSpec, entity: EntitySpec, key_param: str, scopes: list[str]) -> None:
    """A row addressed under a parent (`/plans/{plan_id}/accounts/{account_id}`) must belong to it."""
    for param in scopes:
        field = tool.param_fields[param]
        body.add(f'if _row["{field}"] != {param}:')
        message = f'f"{entity.name} {{{key_param}!r}} does not exist under {field} {{{param}!r}}"'
        body.add(f'raise ToolError("not_found", {message})', 1)


def tool_signature_line(tool: ToolSpec) -> str:
    """The tool method's `def` line (unindented): its parameters are the input schema's properties."""
    return f"def {tool.name}({_signature(tool)}) -> dict[str, Any]:"


def tool_header_lines(
    tool: ToolSpec, entities: dict[str, EntitySpec], *, schema_constants: bool = True
) -> list[str]:
    """The `@tool(...)` decorator with the spec's schemas, and the `def` line. With
    `schema_constants`, a row schema in the output is written as its module constant (readable;
    equal to the spec's when the spec's output schemas are built from its entities, as inference
    does); without, every schema is the spec's verbatim."""
    entity = entities[tool.entity] if tool.entity else None
    if entity is None:
        raise ValueError(f"tool {tool.name}: no entity")
    output = _output_literal(tool, entity) if schema_constants else py_literal(tool.output_schema, 2)
    return [
        f"{INDENT}@tool(",
        f'{INDENT * 2}kind="{tool.kind}",',
        f"{INDENT * 2}description={_text(tool.description)},",
        f"{INDENT * 2}input_schema={py_literal(tool.input_schema, 2)},",
        f"{INDENT * 2}output_schema={output},",
        f"{INDENT})",
        f"{INDENT}{tool_signature_line(tool)}",
    ]


def _render_tool_body(tool: ToolSpec, entities: dict[str, EntitySpec], spec: EnvSpec) -> list[str]:
    entity = entities[tool.entity] if tool.entity else None
    if entity is None:
        raise ValueError(f"tool {tool.name}: no entity")
    body = _Body()
    rules = RuleEmitter(spec, tool, entity, body.add)
    fields = {f.name: f for f in entity.fields}
    required = set(tool.input_schema.get("required", []))
    key_param = next(
        (p for p, f in tool.param_fields.items() if f == entity.key_field and p in required), None
    )
    snake = snake_case(entity.name)
    coll = entity.collection
    action = tool.action
    if action in ("get", "update", "delete", "transition") and key_param is None:
        raise ValueError(f"tool {tool.name}: {action} needs a key parameter bound to {entity.key_field}")

    scopes = [
        p
        for p, f in tool.param_fields.items()
        if p in required and p != key_param and f in fields and fields[f].ref_entity
    ]
    if action == "get" and scopes:
        body.add(f'_row = self.require("{coll}", {key_param}, "{entity.name}")')
        _scope_checks(body, tool, entity, key_param, scopes)
        body.add(f'return {{"{snake}": dict(_row)}}')
    elif action == "get":
        body.add(f'return {{"{snake}": dict(self.require("{coll}", {key_param}, "{entity.name}"))}}')
    elif action in ("list", "search") or (action == "custom" and tool.kind == "read"):
        _render_read_rows(body, tool, entity, entities)
    elif action == "create" or action == "custom":
        bound = {fname: param for param, fname in tool.param_fields.items() if fname in fields}
        for fname, param in bound.items():
            if fname != entity.key_field:
                _fk_check(body, param, fields[fname], entities, 0, optional=param not in required)
        if entity.key_field in bound:
            key_arg = bound[entity.key_field]
            body.add(f'if {key_arg} in self.table("{coll}"):')
            body.add(f'raise ToolError("conflict", f"{entity.name} {{{key_arg}!r}} already exists")', 1)
            body.add(f"_key = {key_arg}")
        elif not tool.rules:
            body.add(f"_key = {new_key_expression(entity)}")
        body.add("_row = {")
        for f in entity.fields:
            if f.name == entity.key_field:
                value = "_key" if entity.key_field in bound or not tool.rules else "None"
            elif f.name in bound:
                param = bound[f.name]
                value = _value_expr(param, f)
                if param not in required and (value != param or not f.nullable):
                    default = "None" if f.nullable else new_row_default(f, entity)
                    value = f"{default} if {param} is None else {value}"
            else:
                value = new_row_default(f, entity)
            body.add(f'"{f.name}": {value},', 1)
        body.add("}")
        out_key = "request" if action == "custom" else snake
        if tool.rules:
            rules.create_checks()
            if entity.key_field not in bound:
                body.add(f"_key = {new_key_expression(entity)}")
                body.add(f'_row["{entity.key_field}"] = _key')
            body.add(f'_stored = self.put("{coll}", _key, _row)')
            rules.create_effects()
            body.add(f'return {{"{out_key}": _stored}}')
        else:
            body.add(f'return {{"{out_key}": self.put("{coll}", _key, _row)}}')
    elif action in ("update", "transition"):
        body.add(f'_row = self.require("{coll}", {key_param}, "{entity.name}")')
        _scope_checks(body, tool, entity, key_param, scopes)
        transition = tool.transition
        if transition is not None and transition.from_values:
            allowed = tuple(transition.from_values)
            listed = _fstring_text(" or ".join(str(v) for v in allowed))
            members = ", ".join(_scalar(v) for v in allowed) + ("," if len(allowed) == 1 else "")
            body.add(f'if _row["{transition.field}"] not in ({members}):')
            message = f'f"{entity.name} {{{key_param}!r}} is {{_row[{transition.field!r}]}}, not {listed}"'
            body.add(f'raise ToolError("invalid_state", {message})', 1)
        rules.row_checks()
        changes = {transition.field: _scalar(transition.to_value)} if transition is not None else {}
        body.add(
            f"_changes: dict[str, Any] = {{{', '.join(f'{_scalar(k)}: {v}' for k, v in changes.items())}}}"
        )
        for param, fname in tool.param_fields.items():
            if fname not in fields or param == key_param or fname in changes or param in scopes:
                continue
            body.add(f"if {param} is not None:")
            _fk_check(body, param, fields[fname], entities, 1, optional=False)
            body.add(f'_changes["{fname}"] = {_value_expr(param, fields[fname])}', 1)
        stamp = updated_stamp_field(tool, entity)
        rules.change_checks(key_param)
        if stamp is not None:
            body.add(f'_changes["{stamp}"] = self.state["now"]')
        if any(r.kind == "move_children_status" for r in tool.rules):
            body.add(f'_stored = self.put("{coll}", {key_param}, {{**_row, **_changes}})')
            rules.transition_effects(key_param)
            body.add(f'return {{"{snake}": _stored}}')
        else:
            body.add(f'return {{"{snake}": self.put("{coll}", {key_param}, {{**_row, **_changes}})}}')
    elif action == "delete":
        if scopes:
            body.add(f'_row = self.require("{coll}", {key_param}, "{entity.name}")')
            _scope_checks(body, tool, entity, key_param, scopes)
        else:
            body.add(f'self.require("{coll}", {key_param}, "{entity.name}")')
        rules.delete_rules(key_param)
        body.add(f'del self.table("{coll}")[{key_param}]')
        body.add(f'return {{"deleted": True, "id": {key_param}}}')
    else:
        raise ValueError(f"tool {tool.name}: unsupported action {action}")
    return body.lines


def generate_module(spec: EnvSpec) -> str:
    """Readable, deterministic Python source of the environment module for `spec`."""
    return render_module(spec, _render_tool_body, made_by="a generated environment (template backend)")


ToolBodyWriter = Callable[[ToolSpec, dict[str, EntitySpec], EnvSpec], list[str]]


def render_module(
    spec: EnvSpec, tool_body: ToolBodyWriter, *, made_by: str, schema_constants: bool = True
) -> str:
    """The module frame (imports, entity models, State, row schemas, the class with each tool's
    decorator and signature, ENVIRONMENT_CLASS) with each tool body written by `tool_body`."""
    if not spec.class_name.isidentifier() or keyword.iskeyword(spec.class_name):
        raise ValueError(f"environment class name {spec.class_name!r} is not a Python identifier")
    names = model_names(spec)
    entities = {e.name: e for e in spec.entities}
    tool_names = [t.name for t in spec.tools]
    if len(tool_names) != len(set(tool_names)):
        raise ValueError(f"environment {spec.class_name}: tool names are not unique")
    header = [
        f'"""{_docstring(spec.title)}: {made_by}.',
        "",
        f"{_docstring(spec.description)}",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import Any, Literal",
        "",
        "from pydantic import BaseModel, ConfigDict, Field",
        "",
        "from envfactory_dagster.runtime.contract import Environment, ToolError, tool",
    ]
    lines = header + _render_models(spec, names)
    lines += [
        "",
        "",
        f"class {spec.class_name}(Environment):",
        f'{INDENT}"""{_docstring(spec.description) or spec.class_name}"""',
        "",
        f"{INDENT}STATE_MODEL = State",
        f"{INDENT}__slots__ = ()",
    ]
    for t in spec.tools:
        lines.append("")
        lines += tool_header_lines(t, entities, schema_constants=schema_constants) + tool_body(
            t, entities, spec
        )
    lines += ["", "", f"ENVIRONMENT_CLASS = {spec.class_name}", ""]
    return "\n".join(lines)
