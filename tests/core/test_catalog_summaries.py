"""Markdown bar charts: bars scale to the largest count, every count is printed."""

from __future__ import annotations

import pandas as pd

from envfactory_dagster.catalog.summaries import BAR_WIDTH, asset_summary, bar_chart


def bars(markdown: str) -> dict[str, int]:
    lines = markdown.split("```")[1].strip().splitlines()
    return {line.split()[0]: line.count("█") for line in lines}


def test_bars_scale_to_the_largest_count() -> None:
    chart = bar_chart({"a": 10, "b": 5, "c": 1}, "Title", "rows")
    assert bars(chart) == {"a": BAR_WIDTH, "b": BAR_WIDTH // 2, "c": 3}
    assert chart.startswith("**Title** (rows)") and all(f" {n}\n" in chart + "\n" for n in (10, 5, 1))


def test_calls_per_turn_counts_every_turn() -> None:
    frame = pd.DataFrame({"calls_per_turn": [[1, 2], [2], [3, 1, 1]]})
    chart = asset_summary("trajectories", frame, {})
    lines = chart.split("```")[1].strip().splitlines()
    assert [(line.split()[0], int(line.split()[-1])) for line in lines] == [("1", 3), ("2", 2), ("3", 1)]


def test_no_summary_where_a_table_says_enough() -> None:
    assert asset_summary("env_specs", pd.DataFrame({"id": ["x"]}), {}) is None
    assert asset_summary("trajectories", pd.DataFrame(), {}) is None
