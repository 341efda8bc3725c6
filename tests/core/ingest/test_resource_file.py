"""Format detection by content, YAML read as JSON data, OpenAPI/Swagger details, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.ingest.errors import ResourceParseError
from envfactory_dagster.ingest.openapi_document import document_hosts
from envfactory_dagster.ingest.resource_file import parse_resource_file

BAD_INPUTS = Path(__file__).resolve().parents[2] / "data" / "bad_inputs"

OPENAPI = """
openapi: 3.1.0
info: {title: Shop, version: 2024-01-01, license: {name: MIT}}
tags: [{name: Orders, description: Order handling}]
x-real-service: Example Shop
paths:
  /orders/{order_id}:
    parameters:
      - {name: order_id, in: path, required: true, schema: {type: string}}
      - {name: verbose, in: query, schema: {type: boolean}, description: path level}
    get:
      tags: [Orders]
      parameters:
        - {name: verbose, in: query, schema: {type: integer}, description: operation level}
      responses:
        204: {description: nothing}
        200:
          description: ok
          content:
            text/plain: {schema: {type: string}}
            application/vnd.shop+json: {schema: {$ref: "#/components/schemas/Order"}}
    post:
      operationId: updateOrder
      x-state-transition: {field: status, to: paid}
      requestBody:
        content:
          application/x-www-form-urlencoded: {schema: {type: object, properties: {form: {type: string}}}}
          application/json: {schema: {$ref: "#/components/schemas/Order"}}
      responses:
        "201": {description: ok, content: {application/json: {schema: {$ref: "#/components/schemas/Order"}}}}
components:
  schemas:
    Order:
      type: object
      properties:
        on: {type: boolean}
        created: {type: string, example: 2024-05-01T10:00:00Z}
"""


def test_openapi3_merging_media_types_and_synthesized_ids(tmp_path: Path) -> None:
    path = tmp_path / "shop.txt"  # the suffix says nothing: content decides
    path.write_text(OPENAPI)
    spec = parse_resource_file(path)
    assert (spec.kind, spec.title, spec.version, spec.license) == ("openapi3", "Shop", "2024-01-01", "MIT")
    assert spec.tags == {"Orders": "Order handling"} and spec.extensions == {"x-real-service": "Example Shop"}
    get, post = spec.operations
    assert get.operation_id == "get_orders_order_id"
    # Path-level parameters merged; the operation's own declaration of `verbose` wins.
    assert [(p.name, p.location, p.required, p.description) for p in get.parameters] == [
        ("order_id", "path", True, ""),
        ("verbose", "query", False, "operation level"),
    ]
    assert get.response["x-ref-name"] == "Order", "first 2xx with a schema, JSON-like media type"
    # YAML 1.1 quirks do not leak: `on` stays a name, timestamps stay strings.
    assert set(get.response["properties"]) == {"on", "created"}
    assert get.response["properties"]["created"]["example"] == "2024-05-01T10:00:00Z"
    assert post.request_body["x-ref-name"] == "Order", "application/json preferred over a form"
    assert post.extensions == {"x-state-transition": {"field": "status", "to": "paid"}}
    json.dumps(spec.model_dump(mode="json", by_alias=True))


def test_swagger2_body_and_form_parameters_become_request_bodies(tmp_path: Path) -> None:
    document = {
        "swagger": "2.0",
        "info": {"title": "Pets", "version": "1"},
        "paths": {
            "/pets": {
                "post": {
                    "operationId": "addPet",
                    "parameters": [{"name": "pet", "in": "body", "schema": {"$ref": "#/definitions/Pet"}}],
                    "responses": {"200": {"description": "ok", "schema": {"$ref": "#/definitions/Pet"}}},
                }
            },
            "/pets/{pet_id}/photo": {
                "put": {
                    "parameters": [
                        {"name": "pet_id", "in": "path", "required": True, "type": "integer", "minimum": 1},
                        {"name": "file", "in": "formData", "type": "file", "required": True},
                        {"name": "caption", "in": "formData", "type": "string", "description": "Alt text"},
                    ],
                    "responses": {"default": {"description": "error"}},
                }
            },
        },
        "definitions": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    path = tmp_path / "pets.json"
    path.write_text(json.dumps(document))
    spec = parse_resource_file(path)
    add, photo = spec.operations
    assert add.request_body["x-ref-name"] == "Pet" and add.response["x-ref-name"] == "Pet"
    assert spec.schemas["Pet"]["x-ref-name"] == "Pet"
    assert photo.operation_id == "put_pets_pet_id_photo" and photo.response is None
    assert photo.parameters[0].schema_ == {"type": "integer", "minimum": 1}
    assert photo.request_body == {
        "type": "object",
        "properties": {
            "file": {"type": "string", "format": "binary"},
            "caption": {"type": "string", "description": "Alt text"},
        },
        "required": ["file"],
    }


def test_mcp_listing_in_yaml_with_defs_refs(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(
        "serverInfo: {name: calendar, version: '1.2'}\n"
        "tools:\n"
        "  - name: create_event\n"
        "    description: Creates an event\n"
        "    annotations: {destructiveHint: false}\n"
        "    inputSchema:\n"
        "      type: object\n"
        "      properties: {when: {$ref: '#/$defs/Slot'}, title: {type: string}}\n"
        "      required: [when]\n"
        "      $defs: {Slot: {type: object, properties: {start: {type: string}}}}\n"
    )
    spec = parse_resource_file(path)
    assert (spec.kind, spec.title, spec.version) == ("mcp", "calendar", "1.2")
    tool = spec.operations[0]
    assert [(p.name, p.location, p.required) for p in tool.parameters] == [
        ("when", "argument", True),
        ("title", "argument", False),
    ]
    assert tool.parameters[0].schema_["x-ref-name"] == "Slot"
    assert tool.extensions == {"x-mcp-annotations": {"destructiveHint": False}}


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("openapi: 2.5\ninfo: {title: x}\npaths: {}\n", "unknown_format"),
        ('swagger: "1.2"\n', "unknown_format"),
        ("- just\n- a list\n", "unknown_format"),
        ("tools: []\n", "no_operations"),
        ("   \n\n", "empty_file"),
        ('{"openapi": "3.0.0", "paths": {"/a": "not a mapping"}}', "invalid_spec"),
    ],
)
def test_content_that_is_no_supported_document(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text(text)
    with pytest.raises(ResourceParseError) as raised:
        parse_resource_file(path)
    assert raised.value.kind == kind, raised.value.reason


def test_same_bytes_give_the_same_id_and_spec_json_wherever_they_live(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    shutil.copy(BAD_INPUTS / "shop" / "circular_but_fine.yaml", tmp_path / "a" / "tree.yaml")
    shutil.copy(BAD_INPUTS / "shop" / "circular_but_fine.yaml", tmp_path / "b" / "renamed.yaml")
    first, again, moved = (
        ingest_domain(tmp_path, "a").resources[0],
        ingest_domain(tmp_path, "a").resources[0],
        ingest_domain(tmp_path, "b").resources[0],
    )
    assert first == again
    assert first["id"] == moved["id"] == f"res_{first['content_sha256'][:16]}"
    assert first["spec_json"] == moved["spec_json"]
    assert first["resource_ids"] == [first["id"]]
    assert json.loads(first["spec_json"])["operations"][0]["operation_id"] == "getCategory"


@pytest.mark.parametrize(
    ("document", "hosts"),
    [
        ({"host": "Test.API.example.com", "basePath": "/v1"}, ["test.api.example.com"]),
        (
            {"servers": [{"url": "https://api.example.com/v2"}, {"url": "//api2.example.com:8443"}]},
            ["api.example.com", "api2.example.com"],
        ),
        ({"servers": [{"url": "/v1"}]}, []),  # relative: no host stated
    ],
)
def test_a_document_states_its_api_hosts(document: dict, hosts: list[str]) -> None:
    assert document_hosts(document) == hosts
