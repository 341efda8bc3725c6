"""A read-only document yields read-only environments: a POST that queries is not a write."""

from __future__ import annotations

from pathlib import Path

from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.stages import env_spec_rows
from envfactory_dagster.ingest.authentic_resources import ingest_domain

SEARCH_ONLY = """openapi: 3.0.3
info: {title: Papers, version: '1'}
paths:
  /papers/search:
    post:
      operationId: searchPapers
      summary: Search papers by query
      requestBody:
        content:
          application/json:
            schema: {type: object, properties: {query: {type: string}}, required: [query]}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: array, items: {$ref: '#/components/schemas/Paper'}}
  /papers/{paper_id}:
    get:
      operationId: getPaper
      parameters: [{name: paper_id, in: path, required: true, schema: {type: string}}]
      responses:
        '200':
          description: ok
          content: {application/json: {schema: {$ref: '#/components/schemas/Paper'}}}
    delete:
      operationId: deletePaper
      parameters: [{name: paper_id, in: path, required: true, schema: {type: string}}]
      responses: {'204': {description: deleted}}
components:
  schemas:
    Paper:
      type: object
      properties: {id: {type: string}, title: {type: string}}
"""


def _spec_rows(tmp_path: Path, text: str) -> list[dict]:
    (tmp_path / "academia").mkdir()
    (tmp_path / "academia" / "papers.yaml").write_text(text)
    resources = ingest_domain(tmp_path, "academia").resources
    proposals, _, _ = propose_environments(resources)
    rows, rejects, _ = env_spec_rows(proposals, resources)
    assert rows and not rejects
    return rows


def test_a_query_by_post_is_not_a_source_write(tmp_path: Path) -> None:
    without_delete = (
        SEARCH_ONLY.split("    delete:")[0]
        + SEARCH_ONLY.split("responses: {'204': {description: deleted}}\n")[1]
    )
    rows = _spec_rows(tmp_path, without_delete)
    assert all(r["write_tool_count"] == 0 for r in rows), "the search is read as a query"
    assert all(r["source_write_operations"] == 0 for r in rows), "so the document is read-only"


def test_a_real_write_counts(tmp_path: Path) -> None:
    rows = _spec_rows(tmp_path, SEARCH_ONLY)
    assert sum(r["source_write_operations"] for r in rows) == 1
    assert sum(r["write_tool_count"] for r in rows) == 1
