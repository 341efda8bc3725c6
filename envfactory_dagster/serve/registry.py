"""Read served things from the data directory: verified environments and RL tasks.

`verified_envs` and `rl_tasks` are Parquet partitions under `$ENVFACTORY_HOME`
(`<home>/<asset>/domain=*/data.parquet`, see storage/partition_store.py). Entry points pass `home`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.storage.partition_store import PartitionStore

VERIFIED_ENVS_ASSET = "verified_envs"
RL_TASKS_ASSET = "rl_tasks"


def _rows(home: str, asset: str) -> list[dict[str, Any]]:
    store = PartitionStore(home)
    rows: list[dict[str, Any]] = []
    for domain in store.domains(asset):
        rows.extend(store.read(asset, domain).to_dict(orient="records"))
    return rows


def load_verified_envs(home: str, env_ids: Iterable[str] | None = None) -> dict[str, VerifiedEnvironment]:
    """`env_id` -> VerifiedEnvironment from the registry (all, or those in `env_ids`).

    Raises KeyError naming every requested id the registry does not hold.
    """
    wanted = None if env_ids is None else list(env_ids)
    found = {
        row["env_id"]: VerifiedEnvironment.from_row(row)
        for row in _rows(home, VERIFIED_ENVS_ASSET)
        if wanted is None or row["env_id"] in wanted
    }
    missing = [env_id for env_id in wanted or [] if env_id not in found]
    if missing:
        raise KeyError(f"no verified environment {', '.join(missing)} under {home}/{VERIFIED_ENVS_ASSET}")
    return found


def load_rl_task_rows(home: str) -> list[dict[str, Any]]:
    """The `rl_tasks` rows of every domain (nested columns as stored; see rollout.coerce_rl_task)."""
    return _rows(home, RL_TASKS_ASSET)
