"""Spec inference: entities, keys, foreign keys, actions and schemas from normalized specs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_proposals import hotel_specs, resource_row, shop_spec

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.spec_inference import EnvSpecError, build_env_spec, locate_entity_schema
from envfactory_dagster.ingest.authentic_resources import ingest_domain, list_domains
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec

REALWORLD = Path(
    os.environ.get("ENVFACTORY_REALWORLD_DIR", Path(__file__).resolve().parents[4] / "shared" / "realworld")
)


def specs_for(rows: list[dict], specs: list[NormalizedSpec]) -> dict[str, NormalizedSpec]:
    return {row["id"]: spec for row, spec in zip(rows, specs, strict=True)}


def shop_env_specs() -> dict[str, EnvSpec]:
    spec = shop_spec()
    rows = [resource_row("res_shop", "commerce", spec)]
    proposals, _, _ = propose_environments(rows)
    return {p["class_name"]: build_env_spec(p, {"res_shop": spec}) for p in proposals}


def test_entities_keys_foreign_keys_and_roles() -> None:
    orders = shop_env_specs()["AcmeOrders"]
    entities = {e.name: e for e in orders.entities}
    assert [e.name for e in orders.entities] == ["Customer", "Order"], "referenced entity first"
    assert entities["Customer"].role == "context" and entities["Order"].role == "primary"
    order = entities["Order"]
    assert order.key_field == "id" and order.collection == "orders" and order.status_field == "status"
    fields = {f.name: f for f in order.fields}
    assert fields["customer_id"].ref_entity == "Customer"
    assert fields["status"].enum == ["pending", "paid", "shipped", "cancelled"]
    assert fields["total"].minimum == 0 and fields["created_at"].format == "date-time"
    assert fields["sku_code"].pattern == "^[A-Z]{3}-[0-9]{4}$"


def test_actions_schemas_and_transition() -> None:
    tools = {t.name: t for t in shop_env_specs()["AcmeOrders"].tools}
    assert {n: t.action for n, t in tools.items()} == {
        "list_orders": "list",
        "search_orders": "search",
        "get_order": "get",
        "create_order": "create",
        "update_order": "update",
        "delete_order": "delete",
        "cancel_order": "transition",
    }
    cancel = tools["cancel_order"]
    assert cancel.transition is not None and cancel.transition.to_value == "cancelled"
    assert set(cancel.transition.from_values) == {"pending", "paid", "shipped"}
    assert tools["get_order"].input_schema["required"] == ["order_id"]
    assert tools["get_order"].output_schema["required"] == ["order"]
    assert tools["list_orders"].output_schema["properties"]["orders"]["type"] == "array"
    assert tools["list_orders"].param_fields == {"status": "status", "limit": "$limit"}
    assert tools["search_orders"].param_fields == {"q": "$query"}
    assert tools["delete_order"].output_schema["required"] == ["deleted", "id"]
    create = tools["create_order"]
    assert create.input_schema["required"] == ["customer_id", "total"]
    assert create.input_schema["additionalProperties"] is False
    assert any("Customer" in p for p in create.preconditions)
    assert all(
        t.kind == ("read" if t.action in ("get", "list", "search") else "write") for t in tools.values()
    )


def test_child_collection_gets_the_parent_foreign_key() -> None:
    customers = shop_env_specs()["AcmeCustomers"]
    child = next(t for t in customers.tools if t.name == "list_customer_orders")
    assert child.action == "list" and child.entity == "Order"
    assert child.param_fields["customer_id"] == "customer_id" and child.input_schema["required"] == [
        "customer_id"
    ]


def test_read_only_resource_is_marked_and_gets_no_write_tool() -> None:
    specs = hotel_specs()[:2]
    rows = [resource_row(f"res_{i}", "travel", s) for i, s in enumerate(specs)]
    proposals, _, _ = propose_environments(rows)
    env = build_env_spec(proposals[0], specs_for(rows, specs))
    assert all(t.kind == "read" for t in env.tools)
    assert "Read-only" in env.description


def test_mcp_listing_without_output_schemas() -> None:
    path = {"type": "string", "description": "A file path."}
    spec = NormalizedSpec(
        kind="mcp",
        title="notes-server",
        operations=[
            NormalizedOperation(
                operation_id="read_note",
                description="Read a note.",
                parameters=[NormalizedParam(name="path", location="argument", required=True, schema=path)],
            ),
            NormalizedOperation(
                operation_id="write_note",
                description="Write a note.",
                parameters=[
                    NormalizedParam(name="path", location="argument", required=True, schema=path),
                    NormalizedParam(
                        name="content", location="argument", required=True, schema={"type": "string"}
                    ),
                ],
            ),
            NormalizedOperation(operation_id="list_notes", description="List notes."),
            NormalizedOperation(
                operation_id="sync_everything",
                description="Push all notes upstream.",
                parameters=[NormalizedParam(name="force", location="argument", schema={"type": "boolean"})],
            ),
        ],
    )
    proposals, _, _ = propose_environments([resource_row("res_mcp", "utilities", spec)])
    env = build_env_spec(proposals[0], {"res_mcp": spec})
    tools = {t.name: t for t in env.tools}
    assert tools["list_notes"].action == "list" and tools["write_note"].action == "create"
    note = next(e for e in env.entities if e.name == "Note")
    # write_note makes rows, so notes get generated ids and `path` is an ordinary field ...
    assert note.key_field == "id" and {"path", "content"} <= {f.name for f in note.fields}
    # ... which read_note filters on (a custom read: rows whose path equals the argument)
    assert tools["read_note"].action == "custom" and tools["read_note"].kind == "read"
    assert tools["read_note"].param_fields == {"path": "path"}
    sync = tools["sync_everything"]
    assert sync.action == "custom" and sync.kind == "write" and sync.entity == "SyncEverythingRequest"
    assert "recorded" in sync.description


def test_unknown_operation_is_a_clear_error() -> None:
    proposal = {"id": "prop_x", "class_name": "X", "operation_ids": ["res_shop:nope"]}
    with pytest.raises(EnvSpecError, match=r"prop_x.*nope"):
        build_env_spec(proposal, {"res_shop": shop_spec()})


def realworld_env_specs() -> dict[str, list[EnvSpec]]:
    """Resource source_path -> the env specs citing it, over every real-world file."""
    by_file: dict[str, list[EnvSpec]] = {}
    for domain in list_domains(REALWORLD):
        result = ingest_domain(REALWORLD, domain)
        specs = {r["id"]: NormalizedSpec.model_validate_json(r["spec_json"]) for r in result.resources}
        paths = {r["id"]: r["source_path"] for r in result.resources}
        proposals, errors, _ = propose_environments(result.resources)
        assert errors == []
        for proposal in proposals:
            env = build_env_spec(proposal, specs)
            for rid in env.resource_ids:
                by_file.setdefault(paths[rid], []).append(env)
        for path in paths.values():
            by_file.setdefault(path, [])
    return by_file


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"no real-world resources at {REALWORLD}")
def test_every_realworld_file_yields_specs_with_object_schemas() -> None:
    by_file = realworld_env_specs()
    assert len(by_file) == 10
    for path, envs in by_file.items():
        assert envs, f"{path} yields no environment"
        for env in envs:
            assert env.tools
            for tool in env.tools:
                assert (
                    tool.input_schema["type"] == "object"
                    and tool.input_schema["additionalProperties"] is False
                )
                assert tool.output_schema["type"] == "object" and tool.output_schema["properties"], tool.name


def test_an_object_with_its_own_ids_is_the_entity_not_its_one_nested_object() -> None:
    nested = {"type": "object", "properties": {"entityId": {"type": "string"}, "kind": {"type": "string"}}}
    airport = {
        "type": "object",
        "properties": {"skyId": {"type": "string"}, "entityId": {"type": "string"}, "navigation": nested},
    }
    located, is_list = locate_entity_schema(airport)
    assert "skyId" in located["properties"] and not is_list
    # an object whose only id sits in its one nested object is a wrapper: descend into it
    wrapper = {"type": "object", "properties": {"label": {"type": "string"}, "navigation": nested}}
    assert set(locate_entity_schema(wrapper)[0]["properties"]) == {"entityId", "kind"}
    # and a `data` list stays a wrapper even beside key-like scalars
    listed = {
        "type": "object",
        "properties": {"requestId": {"type": "string"}, "data": {"type": "array", "items": nested}},
    }
    assert locate_entity_schema(listed) == (nested, True)


def _catalog_env(*operations: NormalizedOperation) -> EnvSpec:
    spec = NormalizedSpec(kind="functions", title="catalog", operations=list(operations))
    proposals, _, _ = propose_environments([resource_row("res_cat", "finance", spec)])
    return build_env_spec(proposals[0], {"res_cat": spec})


def test_a_document_field_whose_name_is_no_identifier_is_kept_in_snake_case() -> None:
    text = {"type": "string"}
    env = _catalog_env(
        NormalizedOperation(
            operation_id="get_exchange_rate",
            description="Exchange rate of two currencies.",
            parameters=[NormalizedParam(name="from_currency", location="argument", schema=text)],
            response={
                "type": "object",
                "properties": {
                    "Exchange Rate": {"type": "string", "description": "The exchange rate"},
                    "Bid Price": text,
                    "bid_price": {"type": "number"},  # taken: the renamed `Bid Price` gives way
                    "@@": text,  # nothing of the name is left
                },
            },
        )
    )
    fields = {f.name: f for e in env.entities for f in e.fields}
    assert fields["exchange_rate"].description == "The exchange rate"
    assert fields["bid_price"].type == "number"
    rows = env.tools[0].output_schema["properties"]
    assert "exchange_rate" in next(iter(rows.values()))["items"]["properties"]


def test_an_id_a_parameter_states_as_a_string_is_a_string_in_every_entity() -> None:
    def product(extra: str) -> dict:
        return {
            "type": "object",
            "properties": {"product_id": {"type": "number"}, extra: {"type": "string"}},
        }

    env = _catalog_env(
        NormalizedOperation(
            operation_id="search_products",
            description="Search products.",
            parameters=[NormalizedParam(name="q", location="argument", schema={"type": "string"})],
            response={"type": "array", "items": product("title")},
        ),
        NormalizedOperation(
            operation_id="get_product_offers",
            description="Offers of a product.",
            parameters=[
                NormalizedParam(
                    name="product_id", location="argument", required=True, schema={"type": "string"}
                )
            ],
            response={"type": "array", "items": product("store")},
        ),
    )
    ids = [f for e in env.entities for f in e.fields if f.name == "product_id"]
    assert len(ids) == 2 and all(f.type == "string" for f in ids)
    offers = next(t for t in env.tools if t.name == "get_product_offers")
    assert offers.input_schema["properties"]["product_id"]["type"] == "string"


def _openapi_env(*operations: NormalizedOperation) -> EnvSpec:
    spec = NormalizedSpec(kind="openapi3", title="Library", operations=list(operations))
    rows = [resource_row("res_lib", "academia", spec)]
    proposals, _, _ = propose_environments(rows)
    specs = [build_env_spec(p, {"res_lib": spec}) for p in proposals]
    assert len(specs) == 1
    return specs[0]


def _item_op(operation_id: str, method: str, path: str, **extra: object) -> NormalizedOperation:
    params = [
        NormalizedParam(name=seg[1:-1], location="path", required=True, schema={"type": "string"})
        for seg in path.split("/")
        if seg.startswith("{")
    ]
    return NormalizedOperation(
        operation_id=operation_id, method=method, path=path, tags=["Library"], parameters=params, **extra
    )


def test_operations_on_one_item_path_and_its_children_act_on_one_entity() -> None:
    """`/articles/{ArticleId}` answers a fuller view (`ArticleComplete`), its PUT answers warnings,
    its DELETE nothing: all three act on the Article the key names, which the list returns and the
    child path's parameter (in another case) refers to."""
    article = {
        "type": "object",
        "x-ref-name": "Article",
        "properties": {"id": {"type": "string"}, "title": {"type": "string"}},
    }
    complete = {
        **article,
        "x-ref-name": "ArticleComplete",
        "properties": {**article["properties"], "doi": {"type": "string"}},
    }
    warnings = {"type": "object", "x-ref-name": "LocationWarnings", "properties": {"id": {"type": "string"}}}
    author = {"type": "object", "x-ref-name": "Author", "properties": {"id": {"type": "string"}}}
    env = _openapi_env(
        _item_op("list_articles", "get", "/articles", response={"type": "array", "items": article}),
        _item_op("get_article", "get", "/articles/{ArticleId}", response=complete),
        _item_op(
            "update_article",
            "put",
            "/articles/{ArticleId}",
            request_body={"type": "object", "properties": {"title": {"type": "string"}}},
            response=warnings,
        ),
        _item_op("delete_article", "delete", "/articles/{ArticleId}"),
        _item_op(
            "list_article_authors",
            "get",
            "/articles/{ArticleId}/authors",
            response={"type": "array", "items": author},
        ),
    )
    tools = {t.name: t for t in env.tools}
    for name in ("get_article", "update_article", "delete_article", "list_articles"):
        assert tools[name].entity == "Article", name
    for name in ("get_article", "update_article", "delete_article"):
        assert tools[name].param_fields["article_id"] == "id", tools[name].param_fields
    entities = {e.name: e for e in env.entities}
    assert "doi" in {f.name for f in entities["Article"].fields}, "the view's fields are the article's"
    assert not {"ArticleComplete", "LocationWarnings"} & set(entities)
    fk = next(f for f in entities["Author"].fields if f.name == "article_id")
    assert fk.ref_entity == "Article"
