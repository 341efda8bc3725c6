"""Generated test cases per tool (valid, boundary, invalid), derived from the spec and the seed state.

Pure and deterministic: argument values come from the seeded rows (existing ids for key and
foreign-key parameters, real field values for filters and new rows) or from the input schema
(enums, bounds, formats). Expectations:

- `valid`: the call succeeds (the first of up to three candidate argument sets that succeeds
  counts: a row may fail a business precondition the spec states only in prose);
- `boundary`: limit values, required arguments only, the last row, a filter matching nothing —
  success or a ToolError, never another exception;
- `invalid`: wrong type, missing required argument, unknown property, unknown id, forbidden
  transition — must raise ToolError;
- `rule`: one per business rule of a write tool (rule_tests.py): a state arranged by `setup`
  operations where the rule must refuse, or must show its effect (`expect_state`).

Valid calls are arranged so every rule lets them through. Boundaries include an empty table and a
table of one row, so each tool has at least three tests that reach its body (a call the input
schema refuses proves only the schema and is not counted).
"""

from __future__ import annotations

import random
from typing import Any, Literal

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.naming import snake_case
from envfactory_dagster.envgen.rule_tests import RuleArranger
from envfactory_dagster.envgen.seed_data import pattern_is_samplable, sample_pattern

TestCategory = Literal["valid", "boundary", "invalid", "rule"]
Expectation = Literal["success", "tool_error", "no_crash"]

UNKNOWN_ID = "zz-unknown-id-999"
MAX_CANDIDATE_ROWS = 3


class ToolTest(BaseModel):
    """One generated test of one tool."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    category: TestCategory
    label: str
    arguments: list[Any]  # alternatives; `valid` passes when one succeeds, others have exactly one
    expect: Expectation
    setup: list[dict[str, Any]] = Field(default_factory=list)  # state edits before the call (rule_tests.py)
    expect_state: list[dict[str, Any]] = Field(default_factory=list)  # what must hold after a success
    rule: str | None = None  # the business rule (id) this test checks


class _Binding(BaseModel):
    """What an input parameter refers to in the state."""

    role: Literal["key", "foreign_key", "field"]
    entity: EntitySpec
    field: FieldSpec | None = None


def _rows(seed_state: dict[str, Any], entity: EntitySpec) -> list[dict[str, Any]]:
    table = seed_state.get(entity.collection) or {}
    if isinstance(table, dict):
        return [table[key] for key in sorted(table)]
    return list(table)


def _bindings(tool: ToolSpec, spec: EnvSpec) -> dict[str, _Binding]:
    """Parameter -> state binding, from `param_fields` first, then from parameter names."""
    entities = {e.name: e for e in spec.entities}
    by_fk_name = {f"{snake_case(e.name)}_{e.key_field}": e for e in spec.entities}
    entity = entities.get(tool.entity or "")
    properties = tool.input_schema.get("properties", {})
    bindings: dict[str, _Binding] = {}
    for param in properties:
        field_name = tool.param_fields.get(param)
        if entity is not None:
            if field_name is None and param in (
                entity.key_field,
                f"{snake_case(entity.name)}_{entity.key_field}",
            ):
                field_name = entity.key_field
            if field_name is None and any(f.name == param for f in entity.fields):
                field_name = param
            if field_name == entity.key_field:
                bindings[param] = _Binding(role="key", entity=entity)
                continue
            field = next((f for f in entity.fields if f.name == field_name), None)
            if field is not None:
                target = entities.get(field.ref_entity or "")
                bindings[param] = (
                    _Binding(role="foreign_key", entity=target, field=field)
                    if target is not None
                    else _Binding(role="field", entity=entity, field=field)
                )
                continue
        if param in by_fk_name:
            bindings[param] = _Binding(role="foreign_key", entity=by_fk_name[param])
    return bindings


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    return not any(True for _ in Draft202012Validator(schema).iter_errors(value))


def schema_value(schema: dict[str, Any], clock: str) -> Any:
    """A plausible valid value for a JSON Schema (enum, const, default, bounds, formats)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "integer" or kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if kind == "integer" else 0.5))
        value = max(low, 1)
        if "maximum" in schema:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    if "pattern" in schema and pattern_is_samplable(schema["pattern"]):
        return sample_pattern(schema["pattern"], random.Random(1))
    fmt = schema.get("format")
    if fmt == "date-time":
        return clock
    if fmt == "date":
        return clock[:10]
    if fmt == "email":
        return "someone@example.com"
    if fmt in ("uri", "url"):
        return "https://example.com/item"
    text = "sample"
    min_length = schema.get("minLength", 0)
    if len(text) < min_length:
        text = text + "x" * (min_length - len(text))
    if "maxLength" in schema:
        text = text[: schema["maxLength"]]
    return text


def _fresh_value(current: Any, schema: dict[str, Any], clock: str) -> Any:
    """A valid value different from `current`, for update tools (falls back to `current`)."""
    candidates: list[Any] = []
    if schema.get("enum"):
        candidates = [v for v in schema["enum"] if v != current]
    elif isinstance(current, bool):
        candidates = [not current]
    elif isinstance(current, int | float):
        candidates = [current + 1, current - 1]
    elif isinstance(current, str) and "pattern" not in schema and "format" not in schema:
        candidates = [f"{current} (updated)"]
    candidates.append(schema_value(schema, clock))
    return next((v for v in candidates if v != current and _fits(v, schema)), current)


def _arguments_for_row(
    tool: ToolSpec,
    spec: EnvSpec,
    seed_state: dict[str, Any],
    bindings: dict[str, _Binding],
    row: dict[str, Any] | None,
) -> dict[str, Any]:
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    required = set(tool.input_schema.get("required", []))
    arguments: dict[str, Any] = {}
    changes_a_field = any(
        bindings[p].role == "field" and bindings[p].field is not None for p in properties if p in bindings
    )
    for param, schema in properties.items():
        binding = bindings.get(param)
        value: Any = None
        if binding is not None and binding.role == "key" and row is not None:
            value = row.get(binding.entity.key_field)
        elif binding is not None and binding.role == "foreign_key":
            current = row.get(binding.field.name) if row is not None and binding.field is not None else None
            referenced = [r.get(binding.entity.key_field) for r in _rows(seed_state, binding.entity)]
            if tool.action == "update" and not changes_a_field:
                # a reference is all this update can change: point it at another existing row.
                # (Otherwise keep it: a reference that scopes the lookup, such as a parent id in
                # the path, must stay the row's own.)
                others = [key for key in referenced if key != current]
                value = others[0] if others else current
            elif current is not None:
                value = current
            else:
                value = referenced[0] if referenced else None
        elif binding is not None and binding.field is not None and row is not None:
            value = row.get(binding.field.name)
            if tool.action == "update" and value is not None:
                value = _fresh_value(value, schema, spec.clock)
        if value is None or not _fits(value, schema):
            if param not in required and binding is None:
                continue  # an optional knob the row says nothing about: leave it to its default
            value = schema_value(schema, spec.clock)
        arguments[param] = value
    return arguments


def _wrong_type_value(schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return "not-a-number"
    if kind == "boolean":
        return "yes"
    if kind == "array":
        return "not-a-list"
    if kind == "object":
        return "not-an-object"
    return 12345


def generate_tool_tests(spec: EnvSpec, seed_state: dict[str, Any]) -> list[ToolTest]:
    """At least three tests per tool of `spec` (valid, boundary, invalid), in spec order."""
    tests: list[ToolTest] = []
    entities = {e.name: e for e in spec.entities}
    for tool in spec.tools:
        tests.extend(_tests_for_tool(tool, spec, seed_state, entities.get(tool.entity or "")))
    return tests


def _tests_for_tool(
    tool: ToolSpec, spec: EnvSpec, seed_state: dict[str, Any], entity: EntitySpec | None
) -> list[ToolTest]:
    bindings = _bindings(tool, spec)
    properties: dict[str, Any] = tool.input_schema.get("properties", {})
    required: list[str] = [p for p in tool.input_schema.get("required", []) if p in properties]
    rows = _rows(seed_state, entity) if entity is not None else []
    transition = tool.transition
    candidates = rows
    if transition is not None and transition.from_values:
        candidates = [r for r in rows if r.get(transition.field) in transition.from_values]
    candidates = candidates[:MAX_CANDIDATE_ROWS] or [None]  # type: ignore[list-item]

    arranger = RuleArranger(spec, tool, seed_state) if tool.rules and entity is not None else None
    setups: list[dict[str, Any]] = []

    def args(row: dict[str, Any] | None) -> dict[str, Any]:
        arguments = _arguments_for_row(tool, spec, seed_state, bindings, row)
        if arranger is None or not isinstance(arguments, dict):
            return arguments
        arguments, setup = arranger.arrange(arguments, row)
        setups.extend(op for op in setup if op not in setups)
        return arguments

    alternatives = [args(row) for row in candidates]
    base = alternatives[0]
    base_setup = list(setups)
    tests = [
        ToolTest(
            tool=tool.name,
            category="valid",
            label="arguments from the seeded state",
            arguments=alternatives,
            expect="success",
            setup=base_setup,
        )
    ]

    def boundary(label: str, arguments: Any, setup: list[dict[str, Any]] | None = None) -> None:
        tests.append(
            ToolTest(
                tool=tool.name,
                category="boundary",
                label=label,
                arguments=[arguments],
                expect="no_crash",
                setup=base_setup if setup is None else setup,
            )
        )

    def invalid(label: str, arguments: Any) -> None:
        tests.append(
            ToolTest(
                tool=tool.name,
                category="invalid",
                label=label,
                arguments=[arguments],
                expect="tool_error",
                setup=base_setup,
            )
        )

    if len(alternatives) > 1 and alternatives[1] != base:
        boundary("arguments from another seeded row", alternatives[1])
    if entity is not None:
        boundary(
            f"an empty {entity.collection} table", base, [{"op": "clear", "collection": entity.collection}]
        )
        if len(rows) > 1:
            only = {"op": "keep_only", "collection": entity.collection, "key": rows[0].get(entity.key_field)}
            boundary(f"a {entity.collection} table of one row", base, [*base_setup, only])
    if len(required) < len(base):
        boundary("required arguments only", {p: base[p] for p in required if p in base})
    for param, schema in properties.items():
        if param in bindings and bindings[param].role in ("key", "foreign_key"):
            continue
        for bound in ("minimum", "maximum"):
            if bound in schema and schema.get("type") in ("integer", "number"):
                boundary(f"{param} at its {bound}", {**base, param: schema[bound]})
        if schema.get("type") == "string" and "enum" not in schema and "pattern" not in schema:
            if "minLength" in schema:
                boundary(f"{param} at its minLength", {**base, param: "a" * schema["minLength"]})
            if "maxLength" in schema:
                boundary(f"{param} at its maxLength", {**base, param: "a" * min(schema["maxLength"], 256)})
            binding = bindings.get(param)
            if (
                tool.kind == "read"
                and binding is not None
                and binding.role == "field"
                and "format" not in schema
            ):
                boundary(f"{param} matching nothing", {**base, param: "zzz no match zzz"})
    key_params = [p for p, b in bindings.items() if b.role == "key"]
    if key_params and len(rows) > 1:
        last = [
            r
            for r in rows
            if transition is None
            or not transition.from_values
            or r.get(transition.field) in transition.from_values
        ]
        if last:
            boundary("the last row of the table", args(last[-1]))
    if not any(t.category == "boundary" for t in tests):
        boundary("the valid arguments again", base)

    if properties:
        target = required[0] if required else next(iter(properties))
        invalid(f"{target} of the wrong type", {**base, target: _wrong_type_value(properties[target])})
    else:
        invalid("arguments that are not an object", ["not", "an", "object"])
    if required:
        invalid(f"missing required {required[0]}", {p: v for p, v in base.items() if p != required[0]})
    if tool.input_schema.get("additionalProperties") is False:
        invalid("an unknown property", {**base, "unexpected_property": 1})
    for param in key_params:
        invalid(f"unknown {param}", {**base, param: UNKNOWN_ID})
    for param, binding in bindings.items():
        # writes check every reference; reads check the references they require (a parent scope);
        # an argument the tool does not bind (accepted and ignored) checks nothing
        bound = param in tool.param_fields
        if binding.role == "foreign_key" and bound and (tool.kind == "write" or param in required):
            invalid(f"unknown referenced {param}", {**base, param: UNKNOWN_ID})
    if transition is not None and transition.from_values and key_params:
        forbidden = [r for r in rows if r.get(transition.field) not in transition.from_values]
        if forbidden:
            invalid(
                f"{transition.field} {forbidden[0].get(transition.field)!r} cannot become "
                f"{transition.to_value!r}",
                args(forbidden[0]),
            )
    if arranger is not None and isinstance(base, dict):
        for test in arranger.rule_tests(base, base_setup, candidates[0]):
            tests.append(
                ToolTest(
                    tool=tool.name,
                    category="rule",
                    label=test["label"],
                    arguments=[test["arguments"]],
                    expect=test["expect"],
                    setup=test["setup"],
                    expect_state=test["expect_state"],
                    rule=test["rule"],
                )
            )
    return tests
