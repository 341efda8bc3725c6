"""Keys follow the form the document states (UUID, integer, pattern): seeded, referenced and created."""

from __future__ import annotations

import re

import pytest
from test_proposals import resource_row

from envfactory_dagster.envgen.codegen import generate_module
from envfactory_dagster.envgen.key_forms import DIGITS_PATTERN, UUID_PATTERN, key_form, with_key_form
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.seed_data import generate_state
from envfactory_dagster.envgen.spec_inference import build_env_spec
from envfactory_dagster.envgen.worlds import environment_spec, group_worlds, world_proposal
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.runtime.loader import load_environment_class


@pytest.mark.parametrize(
    "pattern", [UUID_PATTERN, DIGITS_PATTERN, r"^IN[0-9a-fA-F]{32}$", r"^[A-Z0-9]{8}$", r"^ord-\d+$"]
)
def test_a_form_numbers_a_thousand_keys_that_match_the_pattern(pattern: str) -> None:
    form = key_form(pattern, "shop/Order", "ord_")
    assert form is not None
    prefix, width, suffix = form
    keys = [f"{prefix}{n:0{width}d}{suffix}" for n in range(1, 1000)]
    assert all(re.search(pattern, k) for k in keys) and len(set(keys)) == len(keys)
    assert key_form(pattern, "other/Order", "ord_") != form or pattern == r"^ord-\d+$"


def test_a_pattern_nothing_can_be_numbered_in_is_dropped_for_the_default_form() -> None:
    assert key_form(r"^[a-z]{6}$", "s/Tag", "tag_") is None
    world = _world(_document({"type": "string", "pattern": "^[a-z]{6}$"}))
    tag = next(e for e in world.entities if e.name == "Order")
    key = next(f for f in tag.fields if f.name == "id")
    assert key.pattern is None and tag.key_of(1) == f"{tag.id_prefix}0001"
    assert with_key_form(tag, "s/Order", "ord_").key_of(2) == "ord_0002"


def _document(key_schema: dict) -> NormalizedSpec:
    order = {
        "type": "object",
        "x-ref-name": "Order",
        "properties": {"id": key_schema, "title": {"type": "string"}},
    }
    line = {
        "type": "object",
        "x-ref-name": "Line",
        "properties": {"id": key_schema, "order_id": key_schema, "sku": {"type": "string"}},
    }
    params = [NormalizedParam(name="order_id", location="path", required=True, schema=key_schema)]
    return NormalizedSpec(
        kind="openapi3",
        title="Shop",
        hosts=["api.shop.example"],
        operations=[
            NormalizedOperation(
                operation_id="list_orders",
                method="get",
                path="/orders",
                tags=["Shop"],
                response={"type": "array", "items": order},
            ),
            NormalizedOperation(
                operation_id="create_order",
                method="post",
                path="/orders",
                tags=["Shop"],
                request_body={"type": "object", "properties": {"title": {"type": "string"}}},
                response=order,
            ),
            NormalizedOperation(
                operation_id="get_order",
                method="get",
                path="/orders/{order_id}",
                tags=["Shop"],
                parameters=params,
                response=order,
            ),
            NormalizedOperation(
                operation_id="list_lines",
                method="get",
                path="/orders/{order_id}/lines",
                tags=["Shop"],
                parameters=params,
                response={"type": "array", "items": line},
            ),
        ],
    )


def _world(spec: NormalizedSpec):
    rows = [resource_row("res_shop", "commerce", spec)]
    proposals, _, _ = propose_environments(rows)
    (world,) = group_worlds(proposals, {"res_shop": spec})
    world_spec = build_env_spec(world_proposal(world), {"res_shop": spec})
    return environment_spec(world_spec, world, proposals[0])


@pytest.mark.parametrize(
    ("key_schema", "pattern"),
    [
        ({"type": "string", "format": "uuid"}, UUID_PATTERN),
        ({"type": "integer", "format": "int64"}, DIGITS_PATTERN),
        ({"type": "string", "pattern": "^OR[0-9A-F]{10}$"}, "^OR[0-9A-F]{10}$"),
    ],
)
def test_seeded_referenced_and_created_keys_follow_the_documents_form(key_schema: dict, pattern: str) -> None:
    env = _world(_document(key_schema))
    state = generate_state(env, seed=3)
    orders, lines = state["orders"], state["lines"]
    assert orders and all(re.search(pattern, k) and row["id"] == k for k, row in orders.items())
    assert all(re.search(pattern, k) for k in lines)
    assert all(row["order_id"] in orders for row in lines.values()), "foreign keys name seeded orders"
    assert not set(orders) & set(lines), "two entities never share a key"
    source = generate_module(env)
    cls = load_environment_class(source, sha256_hex(source.encode()), env.class_name)
    created = cls(state).call("create_order", {"title": "Winter order"})["order"]
    assert re.search(pattern, created["id"]) and created["id"] not in orders
