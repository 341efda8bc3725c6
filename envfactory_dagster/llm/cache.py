"""Content-addressed response cache: one JSON file per request hash, written atomically, readable as a table.

The key is the sha256 of the canonical JSON of everything that determines the answer (model,
messages, sampling parameters, prompt name and version), so a warm cache replays a run with zero
provider calls, and a new prompt version or model simply misses. The endpoint (`api_base`) is not
part of the key on purpose: moving a model from one vLLM host to another keeps the cache.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.lineage import canonical_json, sha256_hex

if TYPE_CHECKING:
    import pandas as pd

CACHE_TABLE_COLUMNS = (
    "key",
    "kind",
    "model",
    "prompt_name",
    "prompt_version",
    "role",
    "stage",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "cost_known",
    "latency_s",
    "created_at",
)


class CacheEntry(BaseModel):
    """One cached provider answer and what it cost when it was first paid for."""

    model_config = ConfigDict(extra="forbid")

    key: str
    kind: str  # "completion" or "embedding"
    model: str
    prompt_name: str
    prompt_version: str
    role: str
    stage: str
    request: dict[str, Any]  # the hashed payload, kept so an entry explains itself
    text: str | None = None  # completion answer
    finish_reason: str | None = None  # "length" = the answer was cut at max_tokens
    embedding: list[float] | None = None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cost_known: bool  # False when litellm's cost map does not know the model (cost counted as 0)
    latency_s: float
    # Bookkeeping of the cache only (when the answer was bought); never copied into asset rows.
    created_at: str


def cache_key(request: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a request payload."""
    return sha256_hex(canonical_json(request))


def now_utc_iso() -> str:
    """Wall-clock timestamp for cache bookkeeping (`created_at`), never for data."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResponseCache:
    """Files `<cache_dir>/<key[:2]>/<key>.json`; safe for concurrent processes (atomic replace)."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = Path(cache_dir)
        self._known_dirs: set[Path] = set()  # shard folders already created: skips a syscall per write

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> CacheEntry | None:
        path = self.path_for(key)
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        # Writes are atomic, so an unreadable file was edited by hand: a miss, rewritten on the next put.
        try:
            return CacheEntry.model_validate_json(raw)
        except ValueError:
            return None

    def put(self, entry: CacheEntry) -> None:
        path = self.path_for(entry.key)
        if path.parent not in self._known_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._known_dirs.add(path.parent)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{entry.key[:8]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(entry.model_dump_json())
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def cache_table(cache_dir: Path) -> pd.DataFrame:
    """Every cache entry as one row (no payloads): key, model, prompt version, role, stage, tokens,
    cost, latency, created_at. Empty (with the columns) when the cache is empty or absent."""
    import pandas as pd

    rows = []
    for path in sorted(Path(cache_dir).glob("??/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue  # hand-edited file: `ResponseCache.get` treats it as a miss too
        rows.append({column: data.get(column) for column in CACHE_TABLE_COLUMNS})
    return pd.DataFrame(rows, columns=list(CACHE_TABLE_COLUMNS))
