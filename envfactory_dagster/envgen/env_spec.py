"""The environment spec: state schema + tools + seed recipe, the input of code generation.

Produced by `env_specs` (template inference from a normalized spec, or the LLM backend),
consumed by code generation, seed data, verification and QueryGen. Stored as JSON in the
`env_specs` rows (`spec_json`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

FieldType = Literal["string", "integer", "number", "boolean", "array", "object"]
ToolKind = Literal["read", "write"]
ToolAction = Literal["get", "list", "search", "create", "update", "delete", "transition", "custom"]


class FieldSpec(BaseModel):
    """One column of an entity table."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: FieldType
    description: str = ""
    required: bool = True
    nullable: bool = False
    format: str | None = None  # date, date-time, email, uri, ...
    enum: list[Any] | None = None
    ref_entity: str | None = None  # foreign key: name of the referenced entity
    item_type: FieldType | None = None  # for arrays of scalars
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    max_length: int | None = None
    seed_hint: str | None = None  # a Faker provider name or "words", "sentence", ...
    on_delete: Literal["cascade", "restrict", "set_null"] | None = None  # x-on-delete of a foreign key
    unique: bool = False  # the document says no two rows share a value (x-unique, "unique")
    examples: list[Any] = Field(default_factory=list)  # the document's own example values
    semantic: str | None = None  # the field's meaning (field_semantics.MEANINGS), decided once
    semantic_reason: str = ""  # why the field got that meaning (readable by users)


class EntitySpec(BaseModel):
    """One table of the environment's state."""

    model_config = ConfigDict(extra="forbid")

    name: str  # PascalCase singular, e.g. "Order"
    collection: str  # state key, snake_case plural, e.g. "orders"
    key_field: str = "id"
    id_prefix: str = ""  # prefix of generated ids, e.g. "ord_"
    # a key is id_prefix + counter zero-padded to id_width + id_suffix (`envgen.key_forms`)
    id_width: int = 4
    id_suffix: str = ""
    description: str = ""
    fields: list[FieldSpec]
    status_field: str | None = None  # the enum field that state transitions move
    role: Literal["primary", "context"] = "primary"  # context = referenced lookup, seeded, read by FK

    def key_of(self, number: int) -> str:
        """The key numbered `number` (seeds count from 1; `counters` continue after them)."""
        return f"{self.id_prefix}{number:0{self.id_width}d}{self.id_suffix}"


class StateTransition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    from_values: list[Any]  # allowed current values; empty = any
    to_value: Any


RuleKind = Literal[
    "unique_key",
    "ordered_fields",
    "parent_status",
    "parent_not_stopped",
    "frozen_when_stopped",
    "within_parent_amount",
    "accumulate_parent",
    "set_parent_status",
    "stock_available",
    "take_stock",
    "default_from_parent",
    "restrict_delete",
    "cascade_delete",
    "set_null_on_delete",
    "move_children_status",
]


class BusinessRule(BaseModel):
    """One business rule of a write tool, inferred from the document (envgen/business_rules.py).

    Code generation emits it as one delimited block (`# rule <tool>.<id>`), tests check it, and
    the mutation check breaks it in a copy of the module to prove the tests notice.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = ""  # R1, R2, ... within the tool
    kind: RuleKind
    statement: str  # what holds, in words
    evidence: str  # what in the document it was inferred from
    field: str | None = None  # the field of the tool's entity it reads or writes
    other_field: str | None = None  # the second field (a pair's later field, the parent's field)
    target_entity: str | None = None  # the related entity (parent or child)
    via: str | None = None  # the foreign-key field linking the two (on the child)
    values: list[Any] = Field(default_factory=list)  # allowed or movable values
    value: Any = None  # the value written (a status), or the status field written


class PerformedBy(BaseModel):
    """Who runs a tool when it is not the assistant, and why (envgen/user_only.py).

    `rule`: "mark" (the document says so: `x-performed-by: user`) or "secret_input_heuristic" (an
    offline heuristic: a required input is a secret the user holds, such as a one-time code);
    `evidence`: the field that decided, in words a user can check against the document."""

    model_config = ConfigDict(extra="forbid")

    by: Literal["user"] = "user"
    rule: Literal["mark", "secret_input_heuristic"]
    evidence: str
    secret_inputs: list[str] = Field(default_factory=list)  # inputs the assistant must never see


class ToolSpec(BaseModel):
    """One tool: a method of the environment class."""

    model_config = ConfigDict(extra="forbid")

    name: str  # snake_case, unique within the environment
    description: str
    kind: ToolKind
    action: ToolAction
    entity: str | None = None  # EntitySpec.name the tool acts on
    input_schema: dict[str, Any]  # JSON Schema, type object
    output_schema: dict[str, Any]  # JSON Schema, type object with named properties
    # input parameter -> entity field it binds to (key, filter, create/update value)
    param_fields: dict[str, str] = Field(default_factory=dict)
    preconditions: list[str] = Field(default_factory=list)  # human-readable, checked by code
    effects: list[str] = Field(default_factory=list)  # human-readable, checked by verification
    transition: StateTransition | None = None
    rules: list[BusinessRule] = Field(default_factory=list)  # inferred business rules (write tools)
    source_operation_id: str | None = None
    # set only for a tool the user runs (physical action, a secret); stored only when set, so the
    # spec of every other tool (and its content id) is what it was before the field existed
    performed_by: PerformedBy | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_performer(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if data.get("performed_by") is None:
            data.pop("performed_by", None)
        return data


class EnvSpec(BaseModel):
    """A complete environment description."""

    model_config = ConfigDict(extra="forbid")

    class_name: str  # PascalCase, unique within the domain
    title: str
    description: str
    domain: str
    entities: list[EntitySpec]
    tools: list[ToolSpec]
    seed_rows: dict[str, int] = Field(default_factory=dict)  # collection -> rows to seed (5..50)
    clock: str = "2026-01-15T09:00:00Z"  # the environment's "now", a state field, never the wall clock
    resource_ids: list[str] = Field(default_factory=list)
    proposal_id: str | None = None
    # The world (one per source service) whose single state this environment reads and writes;
    # "" = the environment owns its state alone (`envgen.worlds`).
    world_id: str = ""
    service: str = ""  # the service's display name ("Shopify"), for queries and personas
