"""Graph nodes from environment specs: one per tool, per input parameter (top-level properties of
the input schema) and per output leaf (the output schema flattened: `prop`, `obj.field`,
`arr[].field`, `data.items[].sku`).

Each parameter gets an entity-aware `normalized_name`: an id field takes its entity's name
(`order.id`, `orders[].id`, `order_id`, `orderIds` -> `order_id`; words singularized), any other
field is prefixed by its entity (`listing.title` -> `listing_title`). When the authentic resources
are given, a parameter also gets what its source document says and the spec does not: the
document's own description (`source_description`) and example values (`examples`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx
from pydantic import ValidationError

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec
from envfactory_dagster.envgen.naming import snake_case
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedSpec
from envfactory_dagster.querygen.graph.labels import label_user_provided
from envfactory_dagster.querygen.graph.model import EnvDescriptor, edge_attributes, node_attributes
from envfactory_dagster.querygen.graph.schema_names import (
    MAX_OUTPUT_DEPTH,
    examples_of,
    flatten_output_schema,
    json_type,
    normalized_name,
    scalar_item_type,
    snake_entity,
)


# -- source documents ------------------------------------------------------------------
class SourceDocuments:
    """The normalized operations of the authentic resources, by `resource_id:operation_id`."""

    def __init__(self, resources: Sequence[Mapping[str, Any]] = ()) -> None:
        self.operations: dict[str, NormalizedOperation] = {}
        self.errors: list[dict[str, Any]] = []
        for row in resources:
            try:
                raw = row["spec_json"]
                spec = (
                    NormalizedSpec.model_validate_json(raw)
                    if isinstance(raw, str | bytes)
                    else NormalizedSpec.model_validate(raw)
                )
            except (KeyError, ValidationError, ValueError) as exc:
                self.errors.append(
                    {
                        "env_id": None,
                        "stage": "tool_graph",
                        "reason": f"resource {row.get('id')}: unreadable spec_json, its document "
                        f"is not read for matching: {exc}"[:1000],
                    }
                )
                continue
            for op in spec.operations:
                self.operations[f"{row['id']}:{op.operation_id}"] = op

    def input_schema(self, source_operation: str, param: str) -> dict[str, Any]:
        """The document's schema of an input (a parameter or a body property), {} when unknown."""
        op = self.operations.get(source_operation)
        if op is None:
            return {}
        for p in op.parameters:
            if snake_case(p.name) == param or p.name == param:
                return {**p.schema_, **({"description": p.description} if p.description else {})}
        body = op.request_body or {}
        for name, schema in (body.get("properties") or {}).items():
            if isinstance(schema, dict) and (snake_case(name) == param or name == param):
                return schema
        return {}

    def lists_output(self, source_operation: str, leaf: str) -> bool | None:
        """Whether the document's response names a field `leaf` (None: no documented response)."""
        op = self.operations.get(source_operation)
        if op is None or not (op.response or {}).get("properties"):
            return None
        return bool(self.output_schema(source_operation, leaf))

    def output_schema(self, source_operation: str, leaf: str) -> dict[str, Any]:
        """The document's schema of the shallowest response field named `leaf`, {} when unknown
        (a field the environment renamed to an identifier, `exchange_rate` for `Exchange Rate`,
        is found under its document name)."""
        op = self.operations.get(source_operation)
        if op is None or not op.response:
            return {}
        wanted = snake_case(leaf)
        level: list[Mapping[str, Any]] = [op.response]
        for _ in range(MAX_OUTPUT_DEPTH + 2):
            deeper: list[Mapping[str, Any]] = []
            for schema in level:
                props = schema.get("properties") or {}
                if isinstance(props.get(leaf), dict):
                    return props[leaf]
                renamed = [s for n, s in props.items() if snake_case(n) == wanted and isinstance(s, dict)]
                if renamed:
                    return renamed[0]
                deeper += [s for s in props.values() if isinstance(s, dict)]
                if isinstance(schema.get("items"), dict):
                    deeper.append(schema["items"])
            level = [*deeper, *(s["items"] for s in deeper if isinstance(s.get("items"), dict))]
        return {}


def _documented(spec_schema: Mapping[str, Any], doc_schema: Mapping[str, Any]) -> dict[str, Any]:
    """`source_description` (the document's, when the spec's says something else) and `examples`."""
    description = re.sub(r"\s+", " ", str(doc_schema.get("description") or "")).strip()[:500]
    own = str(spec_schema.get("description") or "")
    examples = examples_of(spec_schema) or examples_of(doc_schema)
    return {
        "source_description": description if description and description[:300] != own[:300] else "",
        "examples": json.dumps(examples, sort_keys=True) if examples else "",
    }


# -- nodes -----------------------------------------------------------------------------
def tool_id(env_id: str, tool: str) -> str:
    return f"{env_id}::{tool}"


def _entity_index(spec: EnvSpec) -> dict[str, EntitySpec]:
    """Entities by every spelling an output container or a name may use (`shop_section(s)`)."""
    index: dict[str, EntitySpec] = {}
    for e in spec.entities:
        index[snake_entity(e.name)] = e
        index[snake_entity(e.collection)] = e
    return index


def add_env_nodes(g: nx.DiGraph, env: EnvDescriptor, sources: SourceDocuments) -> None:
    """Tool, input and output nodes of one environment, with `consumes` and `produces` edges."""
    spec = env.spec
    entities = {e.name: e for e in spec.entities}
    by_spelling = _entity_index(spec)
    for tool in spec.tools:
        tid = tool_id(env.env_id, tool.name)
        entity = entities.get(tool.entity or "")
        context = snake_entity(entity.name) if entity else ""
        source = tool.source_operation_id or ""
        common = {"env_id": env.env_id, "domain": env.domain, "tool": tool.name}
        g.add_node(
            tid,
            **node_attributes(
                kind="tool",
                name=tool.name,
                description=tool.description,
                action=tool.action,
                tool_kind=tool.kind,
                entity=tool.entity or "",
                source_operation=source,
                **common,
            ),
        )
        required = set(tool.input_schema.get("required") or [])
        for pname, pschema in (tool.input_schema.get("properties") or {}).items():
            if not isinstance(pschema, dict):
                continue
            binding = tool.param_fields.get(pname)
            bound = (
                next((f for f in entity.fields if f.name == binding), None) if entity and binding else None
            )
            name_key = normalized_name(
                pname if binding and binding.startswith("$") else binding or pname,
                "" if binding and binding.startswith("$") else context,
                entity.key_field if entity else None,
            )
            ref = bound.ref_entity if bound is not None else None
            entity_key = (
                f"{snake_entity(ref)}_id"
                if ref
                else (f"{context}_id" if entity and binding == entity.key_field else "")
            )
            g.add_node(
                f"{tid}::in::{pname}",
                **node_attributes(
                    kind="input",
                    name=pname,
                    type=json_type(pschema),
                    item_type=scalar_item_type(pschema),
                    format=str(pschema.get("format") or ""),
                    pattern=str(pschema.get("pattern") or ""),
                    required=pname in required,
                    description=str(pschema.get("description") or ""),
                    entity=tool.entity or "",
                    binding=binding or "",
                    normalized_name=name_key,
                    entity_key=entity_key,
                    entity_key_by="schema" if entity_key else "",
                    user_provided=label_user_provided(pname, pschema, binding, bound),
                    labelled_by="rules",
                    **_documented(pschema, sources.input_schema(source, pname)),
                    **common,
                ),
            )
            g.add_edge(
                f"{tid}::in::{pname}",
                tid,
                **edge_attributes(
                    kind="consumes", required=pname in required, provenance="schema", score=1.0
                ),
            )
        for path, container, leaf in flatten_output_schema(tool.output_schema):
            leaf_name = path.rsplit(".", 1)[-1]
            owner = (by_spelling.get(snake_entity(container)) if container else entity) or entity
            owner_ctx = snake_entity(owner.name) if owner else context
            owner_field = next((f for f in owner.fields if f.name == leaf_name), None) if owner else None
            if owner and leaf_name == owner.key_field:
                entity_key = f"{owner_ctx}_id"
            elif owner_field is not None and owner_field.ref_entity:
                entity_key = f"{snake_entity(owner_field.ref_entity)}_id"
            else:
                entity_key = ""
            g.add_node(
                f"{tid}::out::{path}",
                **node_attributes(
                    kind="output",
                    name=path,
                    type=json_type(leaf),
                    # a list's items (`any` when the document leaves them unstated)
                    item_type=json_type(leaf["items"]) if isinstance(leaf.get("items"), dict) else "",
                    format=str(leaf.get("format") or ""),
                    required=False,
                    description=str(leaf.get("description") or ""),
                    entity=owner.name if owner else "",
                    normalized_name=normalized_name(leaf_name, owner_ctx, owner.key_field if owner else None),
                    entity_key=entity_key,
                    # the form of the keys seeded states hold (`envgen.seed_data`)
                    key_example=owner.key_of(1) if owner and leaf_name == owner.key_field else "",
                    documented=sources.lists_output(source, leaf_name),
                    **_documented(leaf, sources.output_schema(source, leaf_name)),
                    **common,
                ),
            )
            g.add_edge(
                tid, f"{tid}::out::{path}", **edge_attributes(kind="produces", provenance="schema", score=1.0)
            )
