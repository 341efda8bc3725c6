"""The environment contract (DESIGN §3) as a small base class every environment module uses.

An environment module defines Pydantic entity models, one `State` model (the database), and
one subclass of `Environment` whose public tool methods carry `@tool(...)`. The base class gives:

- `call(name, args)`: validate `args` against the tool's input JSON Schema (compiled once per
  class with fastjsonschema), dispatch, return the tool's JSON-able dict; a bad call raises
  `ToolError` (an observation for the agent), any other exception is an environment bug;
- `load_state(dict)` (validated through the `State` model) / `dump_state()` (an independent
  JSON-able copy) that round-trip exactly;
- `reset(snapshot)`: the fast path for a state that was already validated: tables are copied
  one level deep (copy-on-write), rows are shared. Hence the one rule for tool code:
  **never mutate a row in place** — write `self.put(collection, key, {**row, ...})`.

Instances share nothing mutable, so thousands live in one process and reset in microseconds.
No clock (the state's `now` field is "now"), no randomness (the state's `seed`), no I/O.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal

import fastjsonschema
from pydantic import BaseModel

ToolKind = Literal["read", "write"]


class ToolError(Exception):
    """A tool refused the call (bad arguments, missing entity, failed precondition).

    The agent sees `{"error": {"code": ..., "message": ...}}`; it is data, not a crash.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class ToolDef:
    name: str
    description: str
    kind: ToolKind
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    method_name: str


def tool(
    *,
    kind: ToolKind,
    description: str,
    input_schema: dict[str, Any],
    output_schema: dict[str, Any],
    name: str | None = None,
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Declare a method as a tool: read/write kind, description, input and output JSON Schema."""

    def mark(method: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        method.__tool_def__ = ToolDef(  # type: ignore[attr-defined]
            name=name or method.__name__,
            description=description,
            kind=kind,
            input_schema=input_schema,
            output_schema=output_schema,
            method_name=method.__name__,
        )
        return method

    return mark


@lru_cache(maxsize=4096)
def _compiled_validator(schema_json: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(json.loads(schema_json))


class _InputValidator:
    """A tool's input validator, compiled on its first call: compiling every tool's schema when a
    class is defined cost more than the calls of a typical use (a mutant or a task touches one
    tool), and equal schemas share one compiled function."""

    __slots__ = ("_schema", "_validate")

    def __init__(self, schema: dict[str, Any]) -> None:
        self._schema = schema
        self._validate: Callable[[Any], Any] | None = None

    def __call__(self, value: Any) -> Any:
        if self._validate is None:
            try:
                self._validate = _compiled_validator(json.dumps(self._schema, sort_keys=True))
            except fastjsonschema.JsonSchemaDefinitionException as exc:  # a broken tool, not bad arguments
                raise TypeError(f"the tool's input schema does not compile: {exc}") from None
        return self._validate(value)


class Environment:
    """Base class of every environment. Subclasses set `STATE_MODEL` and define `@tool` methods."""

    STATE_MODEL: ClassVar[type[BaseModel]]
    TOOLS: ClassVar[dict[str, ToolDef]] = {}
    # name -> (input validator, unbound method); built once per class
    _DISPATCH: ClassVar[dict[str, tuple[Callable[[Any], Any], Callable[..., dict[str, Any]]]]] = {}

    __slots__ = ("state",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        tools: dict[str, ToolDef] = {}
        for klass in reversed(cls.__mro__):
            for attr in vars(klass).values():
                tool_def = getattr(attr, "__tool_def__", None)
                if tool_def is not None:
                    tools[tool_def.name] = tool_def
        cls.TOOLS = tools
        cls._DISPATCH = {
            t.name: (_InputValidator(t.input_schema), getattr(cls, t.method_name)) for t in tools.values()
        }

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        if state is None:
            self.state = self.STATE_MODEL().model_dump(mode="json")
        else:
            self.load_state(state)

    # -- state -------------------------------------------------------------------------
    def load_state(self, state: dict[str, Any]) -> None:
        """Validate `state` through the typed State model and make it this instance's state."""
        self.state = self.STATE_MODEL.model_validate(state).model_dump(mode="json")

    def dump_state(self) -> dict[str, Any]:
        """An independent, JSON-able copy of the state; `load_state(dump_state())` is exact."""
        return copy.deepcopy(self.state)

    def reset(self, snapshot: dict[str, Any]) -> None:
        """Restore an already validated state (from `dump_state`/`load_state`) in microseconds."""
        self.state = {k: v.copy() if isinstance(v, dict) else v for k, v in snapshot.items()}

    # -- calls -------------------------------------------------------------------------
    def call(self, name: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run tool `name` with JSON arguments; raises ToolError for a refused call."""
        entry = self._DISPATCH.get(name)
        if entry is None:
            raise ToolError("unknown_tool", f"no tool named {name!r}")
        validate, method = entry
        if args is None:
            args = {}
        try:
            validate(args)
        except fastjsonschema.JsonSchemaException as exc:
            raise ToolError("invalid_arguments", f"{name}: {exc.message}") from None
        return method(self, **args)

    # -- helpers for tool bodies ---------------------------------------------------------
    def table(self, collection: str) -> dict[str, dict[str, Any]]:
        return self.state[collection]

    def require(self, collection: str, key: str, entity: str) -> dict[str, Any]:
        """The row `key` of `collection`, or a `not_found` ToolError naming the entity."""
        row = self.state[collection].get(key)
        if row is None:
            raise ToolError("not_found", f"{entity} {key!r} does not exist")
        return row

    def put(self, collection: str, key: str, row: dict[str, Any]) -> dict[str, Any]:
        """Store a new row object (never a mutated shared one) and return a copy for output."""
        self.state[collection][key] = row
        return dict(row)

    def next_id(self, collection: str, prefix: str) -> str:
        """Deterministic id for a new row: prefix + per-collection counter kept in the state."""
        counters = self.state["counters"]
        number = counters.get(collection, 0) + 1
        counters[collection] = number
        return f"{prefix}{number:04d}"

    @classmethod
    def tool_list(cls) -> list[dict[str, Any]]:
        """Tool descriptions in the OpenAI / MCP shape (name, description, input/output schema)."""
        return [
            {
                "name": t.name,
                "description": t.description,
                "kind": t.kind,
                "input_schema": t.input_schema,
                "output_schema": t.output_schema,
            }
            for t in cls.TOOLS.values()
        ]
