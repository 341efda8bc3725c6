"""JSON-schema and naming helpers of the tool graph: types, flattened output paths, entity-aware
names, key patterns and example values."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from envfactory_dagster.envgen.naming import singular, words

ID_WORDS = {"id", "ids", "uuid", "uuids", "sid", "key", "keys", "gid"}
MAX_OUTPUT_DEPTH = 4


def json_type(schema: Mapping[str, Any]) -> str:
    """The non-null JSON type of a schema (`["string", "null"]` -> `string`), `any` when absent."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and schema.get("enum"):
        kind = "string"
    return str(kind or "any")


def types_compatible(output_type: str, input_type: str) -> bool:
    return output_type == input_type or (output_type, input_type) == ("integer", "number")


def flatten_output_schema(schema: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, container, leaf schema) of every leaf of an output schema, `MAX_OUTPUT_DEPTH` deep.

    The container is the innermost named object or list holding the leaf (`""` at the top).
    """
    return list(_leaves(schema, "", "", 0))


def _leaves(
    schema: Mapping[str, Any], prefix: str, container: str, depth: int
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for prop, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        kind = json_type(sub)
        items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
        if depth < MAX_OUTPUT_DEPTH and kind == "object" and sub.get("properties"):
            yield from _leaves(sub, f"{prefix}{prop}.", prop, depth + 1)
        elif depth < MAX_OUTPUT_DEPTH and kind == "array" and items.get("properties"):
            yield from _leaves(items, f"{prefix}{prop}[].", prop, depth + 1)
        else:
            yield f"{prefix}{prop}", container, sub


def scalar_item_type(schema: Mapping[str, Any]) -> str:
    """The item type of an array of scalars (`{"type": "array", "items": {"type": "string"}}` ->
    `string`), "" for anything else."""
    items = schema.get("items")
    if json_type(schema) != "array" or not isinstance(items, dict):
        return ""
    kind = json_type(items)
    return kind if kind in ("string", "integer", "number") else ""


def snake_entity(name: str) -> str:
    """`ShopSection` / `shop_sections` -> `shop_section` (singular words joined by `_`)."""
    return "_".join(singular(w) for w in words(name))


def normalized_name(field_name: str, context_entity: str, key_field: str | None = None) -> str:
    """Entity-aware name: ids take their entity's name, other fields are prefixed by it."""
    ws = [singular(w) for w in words(field_name)]
    if not ws:
        return ""
    if field_name == key_field or ws in (["id"], ["key"], ["uuid"]):
        return f"{context_entity}_id" if context_entity else "id"
    if ws[-1] in ID_WORDS and len(ws) > 1:
        return "_".join([*ws[:-1], "id"])
    joined = "_".join(ws)
    return (
        f"{context_entity}_{joined}" if context_entity and not joined.startswith(context_entity) else joined
    )


def pattern_admits(pattern: str, key_example: str) -> bool:
    """Whether an input's `pattern` accepts the keys an entity's seeded rows have (`ho_0001` is
    refused by `^[A-Z0-9]*$`: such an edge could never bind); True when either is absent."""
    if not pattern or not key_example:
        return True
    try:
        return re.search(pattern, key_example) is not None
    except re.error:
        return True


def examples_of(schema: Mapping[str, Any]) -> list[Any]:
    """Up to three scalar example values a schema states (`example`, `examples`, `default`)."""
    found: list[Any] = []
    raw = schema.get("examples")
    for value in [schema.get("example"), *(raw if isinstance(raw, list) else [])]:
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value not in found:
            found.append(value)
    return found[:3]
