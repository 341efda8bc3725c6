"""Markdown API docs: the documented convention (tests/data/markdown_docs) and free-form docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from envfactory_dagster.ingest.errors import ResourceParseError
from envfactory_dagster.ingest.resource_file import parse_resource_file

DOCS = Path(__file__).resolve().parents[2] / "data" / "markdown_docs"


def test_endpoint_headings_tables_bullets_and_json_blocks() -> None:
    spec = parse_resource_file(DOCS / "bookshop_api.md")
    assert spec.kind == "markdown" and spec.title == "Corner Bookshop API"
    assert spec.tags == {"Books": "Everything about the catalog.", "Orders": "Placing and managing orders."}
    ops = {op.operation_id: op for op in spec.operations}
    assert list(ops) == ["get_books", "get_books_book_id", "post_orders", "post_orders_order_id_cancel"]

    list_books = ops["get_books"]
    assert list_books.summary == "List books" and list_books.tags == ["Books"]
    assert [(p.name, p.location, p.schema_["type"]) for p in list_books.parameters] == [
        ("author", "query", "string"),
        ("limit", "query", "integer"),
    ]
    # A JSON example under "Response" becomes the schema it is an instance of.
    item = list_books.response["properties"]["books"]["items"]
    assert item["properties"]["price"] == {"type": "number"} and item["properties"]["in_stock"] == {
        "type": "boolean"
    }

    assert [(p.name, p.location, p.required) for p in ops["get_books_book_id"].parameters] == [
        ("book_id", "path", True)
    ]
    place = ops["post_orders"]
    assert place.summary == "Place an order" and place.parameters == []
    assert place.request_body["required"] == ["customer_email", "book_ids"]
    assert place.request_body["properties"]["book_ids"] == {
        "type": "array",
        "items": {"type": "string"},
        "description": "The books to buy",
    }
    # A JSON block that is a JSON Schema is used as it is.
    assert place.response["properties"]["status"]["enum"] == ["pending", "paid", "cancelled"]
    cancel = ops["post_orders_order_id_cancel"]
    assert cancel.request_body["required"] == ["reason"]


def test_tool_headings_and_free_form_endpoint_lists() -> None:
    spec = parse_resource_file(DOCS / "notes_tools.md")
    ops = {op.operation_id: op for op in spec.operations}
    assert list(ops) == ["create_note", "search_notes", "get_notes_export", "delete_notes_note_id"]
    create = ops["create_note"]
    assert create.method is None and create.request_body is None
    assert [(p.name, p.location, p.required) for p in create.parameters] == [
        ("title", "argument", True),
        ("body", "argument", True),
        ("notebook_id", "argument", False),
        ("pinned", "argument", False),
    ]
    assert create.response["properties"]["note_id"] == {"type": "string"}
    search = ops["search_notes"]
    assert [(p.name, p.required, p.schema_.get("maximum")) for p in search.parameters] == [
        ("query", True, None),
        ("limit", False, 50),
    ]
    export = ops["get_notes_export"]
    assert (export.method, export.path, export.summary) == (
        "get",
        "/notes/export",
        "Export every note as JSON",
    )
    assert [p.name for p in ops["delete_notes_note_id"].parameters] == ["note_id"]


def test_markdown_is_detected_by_content_without_an_md_suffix(tmp_path: Path) -> None:
    path = tmp_path / "README"
    path.write_text("# Weather\n\n## GET /forecast/:city\n\nThe forecast for a city.\n")
    spec = parse_resource_file(path)
    assert spec.kind == "markdown" and spec.title == "Weather"
    op = spec.operations[0]
    assert (op.operation_id, [p.name for p in op.parameters]) == ("get_forecast_city", ["city"])


def test_section_headings_are_not_tools_and_docs_without_operations_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\n## Overview\n\nHow to log in.\n\n## Authentication\n\nUse a token.\n")
    with pytest.raises(ResourceParseError) as raised:
        parse_resource_file(path)
    assert raised.value.kind == "no_operations"


def test_duplicated_tool_sections_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "tools.md"
    path.write_text("# T\n\n## `ping`\n\nPing.\n\n## `ping`\n\nPing again.\n")
    with pytest.raises(ResourceParseError) as raised:
        parse_resource_file(path)
    assert raised.value.kind == "duplicate_operation_id" and "'ping'" in raised.value.reason


FREE_FORM = """# Acme Payments

Every request needs a bearer token.

| Method | Path | Description |
|---|---|---|
| GET | /v1/charges | List charges |

## Create a refund

```bash
curl -X POST https://api.acme.test/v1/refunds -d charge=ch_1
```

POST /v1/refunds

Parameters:

- charge (string, required) — the charge to refund
- amount (integer) — cents; the full charge when omitted

Response:

```json
{"id": "re_1", "amount": 500, ...}
```
"""


def test_free_form_docs_endpoint_tables_and_sections_opened_after_a_code_sample(tmp_path: Path) -> None:
    path = tmp_path / "acme.md"
    path.write_text(FREE_FORM)
    spec = parse_resource_file(path)
    refund, charges = spec.operations
    assert (refund.operation_id, refund.summary) == ("post_v1_refunds", "Create a refund")
    assert refund.request_body["required"] == ["charge"]
    assert refund.request_body["properties"]["amount"]["type"] == "integer"
    assert refund.response is None, "the elided example is not JSON: skipped, and counted"
    assert spec.extensions == {"x-unparsed-json-blocks": 1}
    assert (charges.method, charges.path, charges.summary) == ("get", "/v1/charges", "List charges")
