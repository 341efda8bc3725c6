"""Quality measures of trajectories for the great-expectations checks: duplicates and near-duplicates.

Per-trajectory fields (`query_leaks_tool_name`, `turn_count`, `call_count`, `env_count`) are columns
of the `trajectories` rows (`trajectories.trajectory_row`). Here:

- exact duplicate: the same calls (environment, tool, arguments, in order) as another trajectory
  (`trajectories.exact_duplicate_key`); `drop_exact_duplicates` keeps the first of each.
- near duplicate (our documented measure): the Jaccard similarity of two trajectories' shingle
  sets is >= 0.8, where the set holds one shingle per call (`env::tool`), one per argument
  (`tool|name=value`) and one per word 3-gram of the queries (lower-cased). The share is the
  fraction of trajectories that have a near duplicate earlier in the list (so a pair counts once).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.quality.guards import RowGuard
from envfactory_dagster.querygen.trajectory_model import Trajectory

NEAR_DUPLICATE_JACCARD = 0.8


def _as_trajectory(item: Trajectory | Mapping[str, Any]) -> Trajectory:
    if isinstance(item, Trajectory):
        return item
    return (
        Trajectory.model_validate_json(item["trajectory_json"])
        if "trajectory_json" in item
        else Trajectory.model_validate(item)
    )


def shingles(trajectory: Trajectory) -> set[str]:
    """The shingle set of the near-duplicate measure."""
    out: set[str] = set()
    for turn in trajectory.turns:
        for call in turn.calls:
            out.add(f"call:{call.env_id}::{call.tool}")
            out.update(f"arg:{call.tool}|{k}={canonical_json(v)}" for k, v in call.arguments.items())
        tokens = re.findall(r"[a-z0-9]+", turn.query.lower())
        out.update("q:" + " ".join(tokens[i : i + 3]) for i in range(max(0, len(tokens) - 2)))
    return out


def near_duplicate_flags(
    trajectories: Sequence[Trajectory | Mapping[str, Any]], threshold: float = NEAR_DUPLICATE_JACCARD
) -> list[bool]:
    """Per trajectory: does an earlier one in the list have shingle Jaccard >= `threshold` with it?"""
    import numpy as np
    from scipy import sparse

    sets = [shingles(_as_trajectory(t)) for t in trajectories]
    if len(sets) < 2:
        return [False] * len(sets)
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for r, items in enumerate(sets):
        for s in items:
            rows.append(r)
            cols.append(vocabulary.setdefault(s, len(vocabulary)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sets), len(vocabulary))
    )
    inter = (matrix @ matrix.T).tocoo()
    sizes = np.asarray([len(s) for s in sets], dtype=np.float32)
    flags = [False] * len(sets)
    for i, j, n in zip(inter.row.tolist(), inter.col.tolist(), inter.data.tolist(), strict=True):
        if j < i and n / (sizes[i] + sizes[j] - n) >= threshold:
            flags[i] = True
    return flags


def near_duplicate_share(
    trajectories: Sequence[Trajectory | Mapping[str, Any]], threshold: float = NEAR_DUPLICATE_JACCARD
) -> float:
    """Share of trajectories with an earlier near duplicate (shingle Jaccard >= `threshold`)."""
    flags = near_duplicate_flags(trajectories, threshold)
    return round(sum(flags) / len(flags), 4) if flags else 0.0


def drop_exact_duplicates(
    rows: Sequence[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept rows, rejected rows with reasons): the first trajectory of each `calls_signature` stays."""
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    first: dict[str, str] = {}
    for row in rows:
        key = row["calls_signature"]
        if key in first:
            dropped.append(
                {
                    "id": row["id"],
                    "chain_id": row.get("chain_id"),
                    "domain": row.get("domain"),
                    "stage": "trajectories",
                    "kind": "exact_duplicate",
                    "reason": f"trajectory {row['id']}: same calls and arguments as {first[key]}",
                }
            )
        else:
            first[key] = row["id"]
            kept.append(dict(row))
    return kept, dropped


def trajectory_guards() -> list[RowGuard]:
    """What keeps an executed trajectory out of the partition (each a reject with its reason):
    a replay that differs from the record, a kept write that changed nothing, an id taken across
    services, a near-duplicate of an earlier trajectory."""
    return [
        RowGuard(
            "replay_mismatch",
            lambda r: bool(r["replay_ok"]),
            lambda r: (
                f"trajectory {r['id']}: replaying its calls from its initial states differs from the record"
            ),
        ),
        RowGuard(
            "noop_write",
            lambda r: int(r["noop_writes"]) == 0,
            lambda r: f"trajectory {r['id']}: {r['noop_writes']} write call(s) left the state as it was",
        ),
        RowGuard(
            "cross_service_id",
            lambda r: int(r["cross_service_ids"]) == 0,
            lambda r: (
                f"trajectory {r['id']}: {r['cross_service_ids']} argument(s) take an id of another service"
            ),
        ),
        RowGuard(
            "near_duplicate",
            lambda r: not r["near_duplicate"],
            lambda r: f"trajectory {r['id']}: a near-duplicate (shingle Jaccard >= 0.8) of an earlier one",
        ),
    ]
