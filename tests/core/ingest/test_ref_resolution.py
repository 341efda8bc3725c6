"""`$ref` resolution: names kept, cycles cut, refs to nowhere or elsewhere refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from envfactory_dagster.ingest.errors import SpecError
from envfactory_dagster.ingest.ref_resolution import RefInliner
from envfactory_dagster.ingest.resource_file import parse_resource_file

BAD_INPUTS = Path(__file__).resolve().parents[2] / "data" / "bad_inputs"


def test_response_and_nested_refs_keep_the_name_they_pointed_at() -> None:
    document = {
        "components": {
            "schemas": {
                "Order": {
                    "type": "object",
                    "properties": {"customer": {"$ref": "#/components/schemas/Customer"}},
                },
                "Customer": {"type": "object", "properties": {"id": {"type": "string"}}},
            },
            "responses": {
                "OrderResponse": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}
                }
            },
        },
        "response": {"$ref": "#/components/responses/OrderResponse"},
    }
    inlined = RefInliner(document).inline(document["response"])
    order = inlined["content"]["application/json"]["schema"]
    assert order["x-ref-name"] == "Order"
    assert order["properties"]["customer"] == {
        "type": "object",
        "properties": {"id": {"type": "string"}},
        "x-ref-name": "Customer",
    }
    assert "x-ref-name" not in inlined, "a response object is not a schema: no entity name"


def test_swagger_definitions_and_json_schema_defs_are_named_too() -> None:
    document = {
        "definitions": {"Pet": {"type": "object"}},
        "$defs": {"Tag": {"type": "string"}},
        "properties": {"pet": {"$ref": "#/definitions/Pet"}, "tag": {"$ref": "#/$defs/Tag"}},
    }
    inlined = RefInliner(document).inline(document["properties"])
    assert inlined == {
        "pet": {"type": "object", "x-ref-name": "Pet"},
        "tag": {"type": "string", "x-ref-name": "Tag"},
    }


def test_circular_ref_is_cut_at_the_inner_occurrence() -> None:
    spec = parse_resource_file(BAD_INPUTS / "shop" / "circular_but_fine.yaml")
    category = spec.operations[0].response
    assert category is not None and category["x-ref-name"] == "Category"
    assert category["properties"]["parent"] == {"x-circular-ref": "Category"}
    assert category["properties"]["children"]["items"] == {"x-circular-ref": "Category"}
    # A named schema is resolved as if reached through its own ref: cut at its first recursion.
    assert spec.schemas["Category"]["properties"]["parent"] == {"x-circular-ref": "Category"}


def test_mutual_recursion_through_content_is_cut_not_refused() -> None:
    document = {
        "schemas": {
            "Employee": {"type": "object", "properties": {"team": {"$ref": "#/schemas/Team"}}},
            "Team": {"type": "object", "properties": {"lead": {"$ref": "#/schemas/Employee"}}},
        }
    }
    employee = RefInliner(document).inline_ref("#/schemas/Employee")
    assert employee["properties"]["team"]["properties"]["lead"] == {"x-circular-ref": "Employee"}


def test_sibling_keywords_of_a_ref_override_the_target() -> None:
    document = {"definitions": {"Money": {"type": "integer", "description": "cents"}}}
    inlined = RefInliner(document).inline({"$ref": "#/definitions/Money", "description": "in cents"})
    assert inlined == {"type": "integer", "description": "in cents", "x-ref-name": "Money"}


def test_literal_values_and_vendor_extensions_are_not_resolved() -> None:
    document = {"example": {"$ref": "#/nowhere"}, "x-note": {"$ref": "#/nowhere"}, "type": "object"}
    assert RefInliner(document).inline(document) == document


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("https://example.com/schemas.json#/Order", "external_ref"),
        ("common.yaml#/Order", "external_ref"),
        ("#/components/schemas/Missing", "unresolved_ref"),
    ],
)
def test_refs_that_cannot_be_resolved_are_errors_of_their_kind(ref: str, kind: str) -> None:
    with pytest.raises(SpecError) as raised:
        RefInliner({"components": {}}).inline({"$ref": ref})
    assert raised.value.kind == kind and ref in raised.value.reason


def test_shared_targets_are_inlined_identically_each_time() -> None:
    document = {
        "definitions": {"Id": {"type": "string"}},
        "a": {"$ref": "#/definitions/Id"},
        "b": {"$ref": "#/definitions/Id"},
    }
    inlined = RefInliner(document).inline({"a": document["a"], "b": document["b"]})
    assert inlined["a"] == inlined["b"] == {"type": "string", "x-ref-name": "Id"}
