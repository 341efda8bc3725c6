"""Row guards: what a stage drops before downstream consumes it, each drop a reject with its reason.

One item's flaw (an environment without a write tool, a trajectory that does not replay) must not
fail a partition (DESIGN §4): the stage filters it, records why, and the partition's checks then
test what is left (at least one usable row; the share the guards dropped). A guard names a fact of
the row (a column the stage computed), so the same fact is what the reject table reports.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, Any]


@dataclass(frozen=True)
class RowGuard:
    """Keep a row when `keeps(row)`; otherwise reject it as `kind` with `why(row)` as the reason."""

    kind: str
    keeps: Callable[[Row], bool]
    why: Callable[[Row], str]


def apply_guards(
    rows: Sequence[Row],
    guards: Sequence[RowGuard],
    *,
    stage: str,
    id_key: str = "id",
    carry: Sequence[str] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept rows, rejects): a row failing several guards is rejected once, by the first one.

    Reject: `stage`, `item_id`, `kind`, `reason`, `resource_ids` (when the row has them), and the
    row's `carry` columns (the stage's own reject-table columns).
    """
    kept: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for row in rows:
        failed = next((g for g in guards if not g.keeps(row)), None)
        if failed is None:
            kept.append(dict(row))
            continue
        rejects.append(
            {
                "stage": stage,
                "item_id": row.get(id_key),
                "kind": failed.kind,
                "reason": failed.why(row)[:2000],
                "resource_ids": list(row.get("resource_ids") or []),
                **{key: row.get(key) for key in carry},
            }
        )
    return kept, rejects


def guard_figures(kept: int, rejects: Sequence[Row]) -> dict[str, Any]:
    """Partition figures of a guard pass: rows kept, rejected, the largest reject kind's share."""
    total = kept + len(rejects)
    by_kind = Counter(str(r["kind"]) for r in rejects)
    top_kind, top_count = by_kind.most_common(1)[0] if by_kind else (None, 0)
    return {
        "kept": kept,
        "guard_rejected": len(rejects),
        "guard_rejected_by_kind": dict(sorted(by_kind.items())),
        "guard_rejected_share": round(len(rejects) / total, 4) if total else 0.0,
        "largest_guard_reject_kind": top_kind,
        "largest_guard_reject_share": round(top_count / total, 4) if total else 0.0,
    }
