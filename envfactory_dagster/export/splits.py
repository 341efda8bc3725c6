"""Train/validation split by chain, duplicate removal and look-alike decontamination of refined rows.

- Split: a chain (and so every trajectory sampled from it) falls wholly in one split, chosen by a
  seeded hash of its chain id; the same hash assigns a `pool` ("rl" for `rl_share` of the chains,
  else "sft") that gives the paper's disjoint SFT/RL division with one filter. Both exports are
  still built from every kept row (an SFT row per kept trajectory).
- Exact duplicates: the same (env, tool, arguments) call sequence; the first by id is kept.
- Near duplicates (documented measure): same sequence of tools and argument names, and Jaccard
  similarity of the lower-cased word sets of all queries >= `near_dup_threshold`.
- Decontamination: rows whose environments carry `lookalike_tags` (e.g. "bfcl:GorillaFileSystem",
  "tau2:retail") matching `contaminated_prefixes` are dropped (`decontamination="drop"`) or kept
  with their tags (`"tag"`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import ValidationError

from envfactory_dagster.lineage import canonical_json, sha256_hex
from envfactory_dagster.querygen.trajectory_model import Trajectory, TrajectoryCalls

STAGE = "splits"


def chain_fraction(chain_id: str, seed: int, salt: str) -> float:
    """A stable number in [0, 1) for a chain (same chain, seed and salt -> same number)."""
    return int(sha256_hex(f"{seed}:{salt}:{chain_id}")[:12], 16) / 16**12


def query_words(trajectory: Trajectory | TrajectoryCalls) -> set[str]:
    return {w for t in trajectory.turns for w in re.findall(r"[a-z0-9]+", t.query.lower())}


def split_and_filter(
    rows: Iterable[Mapping[str, Any]],
    envs: Iterable[Mapping[str, Any]] = (),
    *,
    validation_share: float = 0.1,
    rl_share: float = 0.37,
    seed: int,
    near_dup_threshold: float = 0.9,
    decontamination: Literal["drop", "tag"] = "drop",
    contaminated_prefixes: tuple[str, ...] = ("bfcl:", "tau2:"),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Assign split and pool, drop duplicates and contaminated rows; returns (kept, dropped, metrics)."""
    tags_of = {r["env_id"]: list(r.get("lookalike_tags") or []) for r in envs}
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    exact_seen: dict[str, str] = {}
    near_groups: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: str(r.get("id"))):
        try:
            trajectory = TrajectoryCalls.model_validate_json(row["trajectory_json"])
        except (ValidationError, KeyError) as exc:
            dropped.append({"id": row.get("id"), "stage": STAGE, "reason": f"unreadable: {exc}"})
            continue
        tags = sorted({t for e in trajectory.env_ids for t in tags_of.get(e, [])})
        contaminated = [t for t in tags if t.startswith(contaminated_prefixes)]
        if contaminated and decontamination == "drop":
            dropped.append(
                {"id": row["id"], "stage": STAGE, "reason": f"look-alike of {', '.join(contaminated)}"}
            )
            continue
        calls = [(c.env_id, c.tool, c.arguments) for t in trajectory.turns for c in t.calls]
        exact_key = sha256_hex(canonical_json(calls))
        if exact_key in exact_seen:
            dropped.append(
                {"id": row["id"], "stage": STAGE, "reason": f"exact duplicate of {exact_seen[exact_key]}"}
            )
            continue
        shape_key = canonical_json([(c[1], sorted(c[2])) for c in calls])
        words = query_words(trajectory)
        twin = next(
            (
                other
                for other, other_words in near_groups[shape_key]
                if len(words | other_words)
                and len(words & other_words) / len(words | other_words) >= near_dup_threshold
            ),
            None,
        )
        if twin is not None:
            dropped.append({"id": row["id"], "stage": STAGE, "reason": f"near duplicate of {twin}"})
            continue
        exact_seen[exact_key] = row["id"]
        near_groups[shape_key].append((row["id"], words))
        chain = trajectory.chain_id
        split = "validation" if chain_fraction(chain, seed, "split") < validation_share else "train"
        pool = "rl" if chain_fraction(chain, seed, "pool") < rl_share else "sft"
        kept.append({**row, "split": split, "pool": pool, "lookalike_tags": tags})
    reasons = defaultdict(int)
    for d in dropped:
        reasons[d["reason"].split(" of ")[0].split(":")[0]] += 1
    metrics = {
        "kept": len(kept),
        "dropped": len(dropped),
        "validation": sum(1 for r in kept if r["split"] == "validation"),
        "rl_pool": sum(1 for r in kept if r["pool"] == "rl"),
        "dropped_by_reason": dict(sorted(reasons.items())),
    }
    return kept, dropped, metrics
