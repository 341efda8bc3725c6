"""The bundled resource catalog follows its authoring conventions (resource_catalog/README.md)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

CATALOG = Path(__file__).resolve().parents[2] / "envfactory_dagster" / "resource_catalog"
DOMAINS = ("commerce", "finance", "travel", "office", "lifestyle", "academia", "utilities")
METHODS = ("get", "post", "put", "patch", "delete")


def catalog_files() -> list[Path]:
    return sorted(p for d in DOMAINS for p in (CATALOG / d).glob("*.yaml"))


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, op)
        for path, item in doc.get("paths", {}).items()
        for method, op in item.items()
        if method in METHODS
    ]


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_domain_has_at_least_four_services(domain: str) -> None:
    assert len(list((CATALOG / domain).glob("*.yaml"))) >= 4


@pytest.mark.parametrize("path", catalog_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_document_follows_the_conventions(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert str(doc["openapi"]).startswith("3."), "OpenAPI 3 document"
    info = doc["info"]
    assert info["title"] and len(info["description"]) > 40 and info["license"]["name"] == "Apache-2.0"
    assert info.get("x-real-service")
    schemas = doc["components"]["schemas"]
    ops = operations(doc)
    op_ids = [op["operationId"] for _, _, op in ops]
    assert len(op_ids) == len(set(op_ids)), "operationIds are unique"
    declared_tags = {t["name"] for t in doc["tags"]}
    per_tag = Counter()
    for method, route, op in ops:
        assert len(op.get("tags", [])) == 1 and op["tags"][0] in declared_tags, op["operationId"]
        assert op.get("summary") and op.get("description"), op["operationId"]
        ok = {c for c in op["responses"] if str(c).startswith("2")}
        assert ok, f"{op['operationId']} has a 2xx response"
        for param in re.findall(r"{(\w+)}", route):
            assert param.endswith("_id"), f"path parameter {param} of {route} is named <entity>_id"
        per_tag[op["tags"][0]] += 1
        transition = op.get("x-state-transition")
        if transition:
            assert method == "post", op["operationId"]
            target = _schema_of_response(op, schemas)
            field = schemas[target]["properties"][transition["field"]]
            allowed = set(field["enum"])
            assert transition["to"] in allowed and set(transition.get("from", [])) <= allowed, op[
                "operationId"
            ]
    for tag, count in per_tag.items():
        assert 6 <= count <= 14, f"tag {tag} has {count} operations (6-14 make one environment)"
    assert len(per_tag) >= 3, "at least three workflow areas (tags) per service"
    for name, schema in schemas.items():
        props = schema.get("properties", {})
        for prop_name, prop in props.items():
            target = prop.get("x-foreign-key")
            if target:
                assert target in schemas, f"{name}.{prop_name} references unknown {target}"
    transitions = sum(1 for _, _, op in ops if op.get("x-state-transition"))
    assert transitions >= 2, "state transitions (cancel, pay, archive, ...) are described"


def _schema_of_response(op: dict, schemas: dict) -> str:
    for code, response in op["responses"].items():
        if str(code).startswith("2"):
            ref = response["content"]["application/json"]["schema"]["$ref"]
            return ref.rsplit("/", 1)[-1]
    raise AssertionError(op["operationId"])
