"""Content-hash ids and the lineage columns every asset row carries.

Convention (every asset follows it): `domain`, a content-hash `id`, parent ids
(`resource_ids`, `env_id`, `chain_id`, ...) produced by the core; `dagster_run_id`,
`code_version` and `created_at` stamped by the IO manager at write time, so ids stay
reproducible while runs stay traceable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Bumped when a stage's output for the same input changes; recorded on every row.
CODE_VERSION = "2026.11.25"

RUN_LINEAGE_COLUMNS = ("dagster_run_id", "code_version", "created_at")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the byte form every hash is taken over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def content_id(value: Any, prefix: str = "", length: int = 16) -> str:
    """Stable id of a JSON-able value: `prefix` + the first `length` hex digits of its sha256."""
    return f"{prefix}{sha256_hex(canonical_json(value))[:length]}"


def derived_seed(*parts: Any) -> int:
    """A 31-bit seed derived from a base seed and ids, so each item gets its own stable stream."""
    return int(sha256_hex(canonical_json(list(parts)))[:8], 16) & 0x7FFFFFFF
