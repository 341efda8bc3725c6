"""Argument values for one call of a chain: what a user would say, or what an earlier call gave.

- An input a user would not type is bound from an earlier call's output through the graph's
  `feeds` edges, never across services (an id names a record of its own world only), preferring
  values that exist in the consumer's state and meet its transition precondition, then the
  latest call (the prerequisite the sampler placed for it), then edge score.
- A state-scoped input (`ToolGraph.from_state`) without an earlier output takes an existing row's
  key (`state` source): the user's working context, which they name.
- A user-provided input gets a value a user knows: a word, name or status of an existing row
  (`state` source) for lookups and filters, or a fresh realistic value (`user` source, Faker via
  `seed_data.field_value`) for what is created.
- An update changes something: one or two attributes of the row get a new value that differs
  from the current one (`choose_changes`); an update with nothing to change is never bound.
- Pagination and formatting inputs are rarely set (`p_optional_control`): a task is about what
  it asks for, not about page sizes.
- An optional object that declares no property is never set: a user has nothing to say of it (a
  required one gets `{}`, which queries leave unsaid: `surface.says_nothing`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from faker import Faker

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.seed_data import field_value
from envfactory_dagster.envgen.test_generation import schema_value
from envfactory_dagster.querygen.tool_graph import ToolGraph, json_type
from envfactory_dagster.querygen.trajectory_model import ArgumentSource
from envfactory_dagster.runtime.contract import Environment

_TEXT_SKIP_FORMATS = {"date-time", "date", "uri", "url", "email", "uuid"}
UPDATED_NAMES = frozenset(
    {"updated_at", "updated", "date_updated", "modified_at", "last_modified", "modified", "updated_time"}
)


class BindingError(Exception):
    """No valid value for a required input; `reason` says which."""


def path_values(output: Any, path: str) -> list[tuple[str, Any]]:
    """(concrete path, value) pairs at a flattened output path (`a.b`, `a[].b`, `a`)."""
    if "[]." in path:
        prop, field = path.split("[].", 1)
        items = output.get(prop) if isinstance(output, dict) else None
        return [
            (f"{prop}[{n}].{field}", item.get(field))
            for n, item in enumerate(items or [])
            if isinstance(item, dict)
        ]
    if "." in path:
        prop, field = path.split(".", 1)
        obj = output.get(prop) if isinstance(output, dict) else None
        return [(path, obj.get(field))] if isinstance(obj, dict) else []
    return [(path, output.get(path))] if isinstance(output, dict) else []


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def entity_of(spec: EnvSpec, tool: ToolSpec) -> EntitySpec | None:
    return next((e for e in spec.entities if e.name == tool.entity), None)


def change_candidates(tool: ToolSpec, entity: EntitySpec | None) -> dict[str, FieldSpec]:
    """Update inputs that set a plain attribute of the row (not its key, a reference or a stamp)."""
    if entity is None:
        return {}
    fields = {f.name: f for f in entity.fields}
    required = set(tool.input_schema.get("required", []))
    out = {}
    for param, bound in tool.param_fields.items():
        f = fields.get(bound)
        if (
            f is None
            or param in required
            or f.name == entity.key_field
            or f.ref_entity
            or f.name in UPDATED_NAMES
            or f.type in ("object", "array")
            or (tool.transition is not None and f.name == tool.transition.field)
        ):
            continue
        out[param] = f
    return out


def declares_nothing(schema: Mapping[str, Any]) -> bool:
    """True for an object schema that declares no property (nor a schema for extra ones)."""
    return (
        schema.get("type") == "object"
        and not schema.get("properties")
        and not isinstance(schema.get("additionalProperties"), dict)
    )


def is_attribute(entity: EntitySpec | None, binding: str) -> bool:
    """True when `binding` is a plain field of the entity (neither a reference to another row nor
    its generated id)."""
    if entity is None:
        return False
    f = next((x for x in entity.fields if x.name == binding), None)
    if f is None or f.ref_entity:
        return False
    return not (f.name == entity.key_field and entity.key_field in ("id", "uuid", "sid"))


class ArgumentBinder:
    """Binds the inputs of one call; holds the chain's records of earlier outputs."""

    def __init__(
        self,
        graph: ToolGraph,
        rng: random.Random,
        faker: Faker,
        validator: Callable[[dict[str, Any]], Callable[[Any], bool]],
        world_of_env: Mapping[str, str],
        *,
        clock: datetime,
        p_optional_output: float,
        p_optional_user: float,
        p_optional_control: float,
    ) -> None:
        self.graph, self.rng, self.faker, self.validator = graph, rng, faker, validator
        self.world_of_env, self.clock = world_of_env, clock
        self.p_optional_output, self.p_optional_user = p_optional_output, p_optional_user
        self.p_optional_control = p_optional_control
        self.records: list[tuple[int, int, str, dict[str, Any]]] = []  # (turn, call, tool_id, output)

    # -- sources ---------------------------------------------------------------------------
    def _existing_tier(self, value: Any, tool: ToolSpec, spec: EnvSpec, param: str, env: Environment) -> int:
        """2: the row exists (and meets the transition precondition), 1: no check applies, 0: missing.
        An array of ids ranks as its weakest element."""
        if isinstance(value, list):
            return min((self._existing_tier(v, tool, spec, param, env) for v in value), default=0)
        entity = entity_of(spec, tool)
        binding = tool.param_fields.get(param)
        if entity is None or binding is None or tool.action == "create":
            return 1
        if binding == entity.key_field:
            row = env.state.get(entity.collection, {}).get(value) if isinstance(value, str | int) else None
            if row is None:
                return 0
            if (
                tool.transition
                and tool.transition.from_values
                and row.get(tool.transition.field) not in tool.transition.from_values
            ):
                return 1
            return 2
        bound = next((f for f in entity.fields if f.name == binding), None)
        target = next((e for e in spec.entities if bound is not None and e.name == bound.ref_entity), None)
        if target is not None:
            return 2 if isinstance(value, str | int) and value in env.state.get(target.collection, {}) else 0
        return 1

    def from_outputs(
        self, input_id: str, tool: ToolSpec, spec: EnvSpec, env: Environment, schema: dict[str, Any]
    ) -> tuple[Any, ArgumentSource] | None:
        candidates: list[tuple[int, float, int, str, Any, int, int]] = []
        param = self.graph.node(input_id)["name"]
        validate = self.validator(schema)
        as_array = json_type(schema) == "array"
        as_text = json_type(schema) == "string"
        as_integer = json_type(schema) == "integer"
        world = self.world_of_env[self.graph.node(input_id)["env_id"]]
        for output_id, score in self.graph.input_feeds.get(input_id, ()):
            producer, path = output_id.split("::out::", 1)
            if self.world_of_env.get(producer.split("::", 1)[0]) != world:
                continue  # an id never crosses services
            for order, (turn, call, tool_id, output) in enumerate(self.records):
                if tool_id != producer:
                    continue
                for concrete, value in path_values(output, path):
                    if as_array and value is not None and not isinstance(value, list):
                        value = [value]  # a list element's id feeding an array of ids
                    if as_text and isinstance(value, int | float) and not isinstance(value, bool):
                        value = str(value)  # a number fed to an input that takes any value as data
                    elif as_text and isinstance(value, list) and all(_is_scalar(v) for v in value):
                        value = ", ".join(str(v) for v in value)  # a list written out as text
                    elif as_integer and isinstance(value, float) and value.is_integer():
                        value = int(value)  # a whole number fed to an integer operand
                    if value is None or not validate(value):
                        continue
                    tier = self._existing_tier(value, tool, spec, param, env)
                    candidates.append((tier, score, order, concrete, value, turn, call))
        if not candidates:
            return None
        best = max((c[0], c[2], c[1]) for c in candidates)
        pick = self.rng.choice([c for c in candidates if (c[0], c[2], c[1]) == best])
        _, _, _, concrete, value, turn, call = pick
        return value, ArgumentSource(kind="output", turn=turn, call=call, path=concrete)

    def row_value(
        self, spec: EnvSpec, tool: ToolSpec, param: str, env: Environment
    ) -> tuple[Any, ArgumentSource] | None:
        """A value of an existing row a user would know (for lookups, filters and searches)."""
        entity = entity_of(spec, tool)
        if entity is None:
            return None
        table = env.state.get(entity.collection) or {}
        if not table:
            return None
        key = self.rng.choice(sorted(table))
        row = table[key]
        binding = tool.param_fields.get(param, "")
        if binding == "$query":
            texts = [
                f
                for f in entity.fields
                if f.type == "string"
                and f.name != entity.key_field
                and not f.ref_entity
                and (f.format or "") not in _TEXT_SKIP_FORMATS
                and not f.enum
                and not f.pattern
                and isinstance(row.get(f.name), str)
                and any(len(w) >= 4 for w in row[f.name].split())
            ]
            if not texts:
                return None
            f = texts[0] if any(t.name in ("name", "title") for t in texts[:1]) else self.rng.choice(texts)
            word = self.rng.choice(
                [w.strip(".,;:!?\"'()") for w in row[f.name].split() if len(w.strip(".,;:!?\"'()")) >= 4]
                or [row[f.name]]
            )
            return word, ArgumentSource(
                kind="state", collection=entity.collection, key=str(key), field=f.name
            )
        if binding in row and row[binding] is not None:
            return row[binding], ArgumentSource(
                kind="state", collection=entity.collection, key=str(key), field=binding
            )
        return None

    def state_key(self, collection: str, env: Environment) -> tuple[Any, ArgumentSource] | None:
        """The key of an existing row: the working context (a plan, a workspace) the user names."""
        table = env.state.get(collection) or {}
        if not table:
            return None
        key = self.rng.choice(sorted(table))
        return key, ArgumentSource(kind="state", collection=collection, key=str(key))

    def fresh_value(
        self, spec: EnvSpec, tool: ToolSpec, param: str, schema: dict[str, Any], avoid: Any = None
    ) -> tuple[Any, ArgumentSource]:
        """A new value the user states (a title for a new row, a new price...), unlike `avoid`."""
        entity = entity_of(spec, tool)
        binding = tool.param_fields.get(param)
        bound = next((f for f in entity.fields if f.name == binding), None) if entity and binding else None
        kind = json_type(schema)
        field = bound or FieldSpec(
            name=param,
            type=kind if kind in ("string", "integer", "number", "boolean", "array", "object") else "string",  # type: ignore[arg-type]
            format=schema.get("format"),
            enum=schema.get("enum"),
            minimum=schema.get("minimum"),
            maximum=schema.get("maximum"),
            max_length=schema.get("maxLength"),
            pattern=schema.get("pattern"),
            item_type=(schema.get("items") or {}).get("type")
            if isinstance(schema.get("items"), dict)
            else None,
        )
        validate = self.validator(schema)
        value = None
        for _ in range(6):
            value = field_value(field, self.faker, self.rng, self.clock, self.rng.randint(0, 49))
            if not validate(value):
                value = schema_value(schema, spec.clock)
            if value != avoid:
                break
        return value, ArgumentSource(kind="user")

    # -- one call ------------------------------------------------------------------------------
    def bind(
        self, tool_id: str, spec: EnvSpec, tool: ToolSpec, env: Environment
    ) -> tuple[dict[str, Any], dict[str, ArgumentSource]]:
        """Arguments and their sources for one call; BindingError when a required input has no value."""
        arguments: dict[str, Any] = {}
        sources: dict[str, ArgumentSource] = {}
        properties = tool.input_schema.get("properties") or {}
        entity = entity_of(spec, tool)
        changes = change_candidates(tool, entity) if tool.action == "update" else {}
        for input_id in self.graph.tool_inputs[tool_id]:
            attrs = self.graph.node(input_id)
            param, required, user = attrs["name"], attrs["required"], attrs["user_provided"]
            if param in changes:
                continue  # chosen once the row is known (choose_changes)
            schema = properties.get(param) or {}
            if not required and declares_nothing(schema):
                continue  # an object of no declared property: a user has nothing to say of it
            binding = tool.param_fields.get(param, "")
            bound: tuple[Any, ArgumentSource] | None = None
            if not user and not required and tool.kind == "write" and tool.action != "create":
                continue  # a change is what the user asks for (choose_changes), not a copied value
            if not user and is_attribute(entity, binding) and tool.action in ("create", "update"):
                user = True  # a new row's attribute (a zip, a key) is the user's, not another row's
            if not user:
                if binding.startswith("$") and not required:
                    if self.rng.random() < self.p_optional_control:
                        bound = schema_value(schema, spec.clock), ArgumentSource(kind="user")
                elif required or self.rng.random() < self.p_optional_output:
                    bound = self.from_outputs(input_id, tool, spec, env, schema)
                scope = self.graph.from_state(input_id)
                if bound is None and required and scope:
                    bound = self.state_key(scope, env)
                if bound is None and required:
                    if binding.startswith("$"):
                        bound = schema_value(schema, spec.clock), ArgumentSource(kind="user")
                    else:
                        raise BindingError(f"{tool_id}: no earlier output supplies required input {param!r}")
            elif required or (not binding.startswith("$") and self.rng.random() < self.p_optional_user):
                if tool.action in ("create", "update") or (
                    binding != "$query" and tool.action in ("custom", "transition")
                ):
                    bound = self.fresh_value(spec, tool, param, schema)
                else:
                    bound = self.row_value(spec, tool, param, env) or (
                        self.fresh_value(spec, tool, param, schema) if required else None
                    )
            if bound is not None:
                value, source = bound
                if not self.validator(schema)(value):
                    if not required:
                        continue
                    raise BindingError(f"{tool_id}: no valid value for required input {param!r} ({value!r})")
                arguments[param], sources[param] = value, source
        if changes:
            self.choose_changes(tool, spec, entity, env, changes, arguments, sources)
        return arguments, sources

    def choose_changes(
        self,
        tool: ToolSpec,
        spec: EnvSpec,
        entity: EntitySpec | None,
        env: Environment,
        changes: dict[str, FieldSpec],
        arguments: dict[str, Any],
        sources: dict[str, ArgumentSource],
    ) -> None:
        """One or two attributes of the updated row get a new value unlike the current one."""
        key_param = next((p for p, f in tool.param_fields.items() if entity and f == entity.key_field), None)
        row = (
            env.state.get(entity.collection, {}).get(arguments.get(key_param))
            if entity is not None and key_param is not None
            else None
        ) or {}
        properties = tool.input_schema.get("properties") or {}
        names = sorted(changes)
        count = min(len(names), 1 if self.rng.random() < 0.7 else 2)
        for param in self.rng.sample(names, count):
            schema = properties.get(param) or {}
            current = row.get(changes[param].name)
            value, source = self.fresh_value(spec, tool, param, schema, avoid=current)
            if value != current and self.validator(schema)(value):
                arguments[param], sources[param] = value, source
        if not any(p in arguments for p in changes):
            raise BindingError(f"{tool.name}: no attribute of the row could be given a new value")
