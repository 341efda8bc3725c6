"""A domain folder of authentic resource files -> `authentic_resources` rows + `resource_errors` rows.

Files: every regular file below `<resources_dir>/<domain>/`, recursively, sorted by path, except
hidden ones (a name starting with `.`, or inside a hidden folder) and the `SOURCES.json` manifest.
A file that cannot be parsed becomes an error row with its reason; the others still become rows.

License: the document's own (`info.license`), else the `license` of the file's entry in a
`SOURCES.json` manifest (a list of `{file, license, ...}`, `file` relative to the folder holding
the manifest) at the resources-dir root or in the domain folder, else `"unknown"`: most vendor
documents state none, and a missing licence is a recorded fact (counted in the metrics, reported by
a warning check, blocking only when the `require_license` setting asks for it), not a stop.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.ingest.errors import ErrorKind, ResourceParseError
from envfactory_dagster.ingest.resource_file import (
    DEFAULT_MAX_BYTES,
    parse_resource_bytes,
    read_resource_bytes,
)
from envfactory_dagster.lineage import canonical_json, sha256_hex

SOURCES_MANIFEST = "SOURCES.json"
UNKNOWN_LICENSE = "unknown"


class IngestResult(BaseModel):
    """What `ingest_domain` produced: resource rows, error rows and counters for asset metadata."""

    model_config = ConfigDict(extra="forbid")

    resources: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    metrics: dict[str, Any]


def default_resources_dir() -> Path:
    """The bundled resource catalog (`envfactory_dagster/resource_catalog`)."""
    return Path(__file__).resolve().parents[1] / "resource_catalog"


def list_domains(resources_dir: Path) -> list[str]:
    """Domain names: the sorted sub-folders of `resources_dir`, hidden ones skipped."""
    return sorted(p.name for p in resources_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def resource_files(resources_dir: Path, domain: str) -> list[Path]:
    """The files of one domain that ingestion reads, sorted by their path relative to `resources_dir`."""
    domain_dir = resources_dir / domain
    return sorted(
        (
            path
            for path in domain_dir.rglob("*")
            if path.is_file()
            and not any(part.startswith(".") for part in path.relative_to(domain_dir).parts)
            and not (path.name == SOURCES_MANIFEST and path.parent == domain_dir)
        ),
        key=lambda path: path.relative_to(resources_dir).as_posix(),
    )


def ingest_domain(resources_dir: Path, domain: str, max_bytes: int = DEFAULT_MAX_BYTES) -> IngestResult:
    """Parse every file of `<resources_dir>/<domain>/` into one row each (or one error row each).

    Resource row: `id` ("res_" + 16 hex of the sha256 of the file bytes), `domain`, `kind`, `title`,
    `source_path` (posix, relative to `resources_dir`), `license`, `operation_count`,
    `content_sha256`, `size_bytes`, `spec_json` (the `NormalizedSpec`, canonical JSON) and
    `resource_ids` (`[id]`: a resource is its own lineage root). Error row: `domain`,
    `source_path`, `reason`, `error_kind` (see `errors.ErrorKind`). Files over `max_bytes` are
    error rows read no further than the limit.
    """
    licenses, errors = _manifest_licenses(resources_dir, domain)
    resources: list[dict[str, Any]] = []
    files = resource_files(resources_dir, domain)
    for path in files:
        source_path = path.relative_to(resources_dir).as_posix()
        try:
            data = read_resource_bytes(path, max_bytes)
            spec = parse_resource_bytes(data, path)
        except ResourceParseError as error:
            errors.append(_error_row(domain, source_path, error.reason, error.kind))
            continue
        except Exception as error:  # a parser bug must not sink the partition: record it by name
            reason = f"the parser failed unexpectedly: {type(error).__name__}: {error}"
            errors.append(_error_row(domain, source_path, reason[:2000], "internal_error"))
            continue
        content_sha256 = sha256_hex(data)
        resource_id = f"res_{content_sha256[:16]}"
        resources.append(
            {
                "id": resource_id,
                "domain": domain,
                "kind": spec.kind,
                "title": spec.title,
                "source_path": source_path,
                "license": spec.license or licenses.get(source_path) or UNKNOWN_LICENSE,
                "operation_count": len(spec.operations),
                "content_sha256": content_sha256,
                "size_bytes": len(data),
                "spec_json": canonical_json(spec.model_dump(mode="json", by_alias=True)),
                "resource_ids": [resource_id],
            }
        )
    metrics = {
        "files_seen": len(files),
        "parsed": len(resources),
        "errors": len(errors),
        "errors_by_kind": dict(sorted(Counter(e["error_kind"] for e in errors).items())),
        "operations": sum(r["operation_count"] for r in resources),
        "unknown_license": sum(r["license"] == UNKNOWN_LICENSE for r in resources),
    }
    return IngestResult(resources=resources, errors=errors, metrics=metrics)


def _error_row(domain: str, source_path: str, reason: str, error_kind: ErrorKind) -> dict[str, Any]:
    return {"domain": domain, "source_path": source_path, "reason": reason, "error_kind": error_kind}


def _manifest_licenses(resources_dir: Path, domain: str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """source_path -> license from the SOURCES.json manifests at the root and in the domain folder.

    A manifest that cannot be read as JSON is an error row (its licenses are then unknown, and the
    `license_known` data-quality check names the rows that end up without one).
    """
    licenses: dict[str, str] = {}
    errors: list[dict[str, Any]] = []
    for folder in (resources_dir, resources_dir / domain):
        manifest = folder / SOURCES_MANIFEST
        if not manifest.is_file():
            continue
        manifest_path = manifest.relative_to(resources_dir).as_posix()
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            reason = f"the {SOURCES_MANIFEST} manifest cannot be read as JSON: {error}"
            errors.append(_error_row(domain, manifest_path, reason, "invalid_json"))
            continue
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("file") and entry.get("license"):
                relative = (folder / str(entry["file"])).relative_to(resources_dir).as_posix()
                licenses[relative] = str(entry["license"])
    return licenses, errors
