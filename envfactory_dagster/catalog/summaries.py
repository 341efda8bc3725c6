"""Markdown summaries with a small text bar chart, for the figures a person would rather look at.

`asset_summary(asset, frame, rows_per_domain)` returns the Markdown for the asset's
materialization metadata, or None where a table says enough.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping

import pandas as pd

BAR_WIDTH = 30


def bar_chart(counts: Mapping[str, int], title: str, unit: str) -> str:
    """`counts` as a Markdown block: one bar per label, scaled to the largest count."""
    if not counts:
        return f"**{title}**\n\n_no rows_"
    largest = max(counts.values()) or 1
    label_width = max(len(label) for label in counts)
    lines = [
        f"{label:<{label_width}} {'█' * max(1 if n else 0, round(BAR_WIDTH * n / largest)):<{BAR_WIDTH}} {n}"
        for label, n in counts.items()
    ]
    return f"**{title}** ({unit})\n\n```\n" + "\n".join(lines) + "\n```"


def _histogram(values: Iterable[int]) -> dict[str, int]:
    counts = Counter(int(v) for v in values)
    return {str(value): counts[value] for value in sorted(counts)}


def _calls_per_turn(frame: pd.DataFrame, _: Mapping[str, int]) -> str:
    values = [n for per_turn in frame["calls_per_turn"] for n in list(per_turn)]
    return bar_chart(_histogram(values), "Calls per turn", "turns")


def _envs_per_domain(_: pd.DataFrame, rows_per_domain: Mapping[str, int]) -> str:
    return bar_chart(dict(sorted(rows_per_domain.items())), "Environments per domain", "all partitions")


def _tool_degree(frame: pd.DataFrame, _: Mapping[str, int]) -> str:
    """Tool-to-tool edges (`precedes`: an output of one can fill an input of the other) per tool."""
    links = frame[frame["kind"] == "precedes"]
    degree = Counter([*links["source"], *links["target"]])
    buckets = Counter(_bucket(d) for d in degree.values())
    return bar_chart({b: buckets[b] for _, b in DEGREE_BUCKETS if buckets[b]}, "Tool graph degree", "tools")


DEGREE_BUCKETS = ((5, "1-5"), (10, "6-10"), (20, "11-20"), (40, "21-40"), (80, "41-80"), (None, "81+"))


def _bucket(degree: int) -> str:
    return next(label for high, label in DEGREE_BUCKETS if high is None or degree <= high)


def _gold_calls(frame: pd.DataFrame, _: Mapping[str, int]) -> str:
    return bar_chart(_histogram(frame["n_gold_calls"]), "Gold calls per RL task", "tasks")


SUMMARIES: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame, Mapping[str, int]], str]]] = {
    "trajectories": (("calls_per_turn",), _calls_per_turn),
    "verified_envs": ((), _envs_per_domain),
    "tool_graph": (("kind", "source", "target"), _tool_degree),
    "rl_tasks": (("n_gold_calls",), _gold_calls),
}


def asset_summary(asset: str, frame: pd.DataFrame, rows_per_domain: Mapping[str, int]) -> str | None:
    entry = SUMMARIES.get(asset)
    if entry is None:
        return None
    columns, summarize = entry
    if frame.empty or not set(columns) <= set(frame.columns):
        return None
    return summarize(frame, rows_per_domain)
