"""Read served things from the data directory: verified environments and RL tasks.

`verified_envs` and `rl_tasks` are Parquet partitions under `$ENVFACTORY_HOME`
(`<home>/<asset>/domain=*/data.parquet`, see storage/partition_store.py). No pandas, pyarrow or
Dagster on the serving path, so an MCP server starts in about the time the MCP SDK takes to
import: an environment is read from its exported file `<home>/exports/environments/<env_id>.json`
(the registry row's loader fields; the exports write one per verified environment, and a read
from the registry writes the missing ones), else from the Parquet registry with DuckDB alone,
selecting only the rows and columns it needs (DuckDB costs ~0.4 s and ~55 MiB resident, which a
server would keep). An env_id names one version of an environment, so its file never goes stale;
the loader checks the source against its sha256 anyway. An object-store home (`s3://...`) goes
through the PartitionStore. Entry points pass `home`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from envfactory_dagster.runtime.loader import VerifiedEnvironment

VERIFIED_ENVS_ASSET = "verified_envs"
RL_TASKS_ASSET = "rl_tasks"
DATA_FILE = "data.parquet"
ENV_COLUMNS = tuple(VerifiedEnvironment.__dataclass_fields__)


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _rows(
    home: str, asset: str, *, columns: Sequence[str] = (), key: str = "", keys: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Rows of every domain partition of `asset` (only `columns` if given; only rows whose `key`
    column is in `keys` if given)."""
    if "://" in home:
        from envfactory_dagster.storage.partition_store import PartitionStore

        store = PartitionStore(home)
        rows = [r for d in store.domains(asset) for r in store.read(asset, d).to_dict(orient="records")]
        return [r for r in rows if keys is None or r.get(key) in keys]
    files = sorted(str(p) for p in Path(home, asset).glob(f"domain=*/{DATA_FILE}"))
    if not files or keys == []:
        return []
    import duckdb

    selected = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    query = f"SELECT {selected} FROM read_parquet([{', '.join(map(_quoted, files))}], union_by_name = true)"
    if keys is not None:
        query += f' WHERE "{key}" IN ({", ".join(map(_quoted, keys))})'
    with duckdb.connect(config={"autoinstall_known_extensions": False}) as connection:
        relation = connection.sql(query)
        names = relation.columns
        return [dict(zip(names, values, strict=True)) for values in relation.fetchall()]


def environment_file(home: str, env_id: str) -> Path:
    return Path(home, "exports", "environments", f"{env_id}.json")


def write_environment_files(home: str, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write each registry row's loader fields to its exported file (atomically); returns the count."""
    count = 0
    for row in rows:
        path = environment_file(home, row["env_id"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump({name: row[name] for name in ENV_COLUMNS}, out)
        os.replace(out.name, path)
        count += 1
    return count


def load_verified_envs(home: str, env_ids: Iterable[str] | None = None) -> dict[str, VerifiedEnvironment]:
    """`env_id` -> VerifiedEnvironment from the registry (all, or those in `env_ids`).

    Raises KeyError naming every requested id the registry does not hold.
    """
    wanted = None if env_ids is None else list(env_ids)
    found: dict[str, VerifiedEnvironment] = {}
    if wanted is not None and "://" not in home:
        for env_id in wanted:
            path = environment_file(home, env_id)
            if path.exists():
                found[env_id] = VerifiedEnvironment.from_row(json.loads(path.read_text(encoding="utf-8")))
    missing = None if wanted is None else [env_id for env_id in wanted if env_id not in found]
    if missing is None or missing:
        rows = _rows(home, VERIFIED_ENVS_ASSET, columns=ENV_COLUMNS, key="env_id", keys=missing)
        found.update({row["env_id"]: VerifiedEnvironment.from_row(row) for row in rows})
        if missing and "://" not in home:
            write_environment_files(home, rows)
    absent = [env_id for env_id in wanted or [] if env_id not in found]
    if absent:
        raise KeyError(f"no verified environment {', '.join(absent)} under {home}/{VERIFIED_ENVS_ASSET}")
    return found


def load_rl_task_rows(home: str, task_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The `rl_tasks` rows of every domain (all, or those in `task_ids`), nested columns as stored
    (see rollout.coerce_rl_task)."""
    return _rows(home, RL_TASKS_ASSET, key="id", keys=None if task_ids is None else list(task_ids))
