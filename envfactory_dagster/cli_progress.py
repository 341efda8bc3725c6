"""A live line per partition while `envfactory materialize` runs, read from Dagster's event log.

The partitions run in worker processes against one Dagster instance; this reads that instance's
event stream (step starts, materializations with their row counts, step failures, run ends) for the
runs tagged with this CLI session, and renders one line per partition with `rich` (redrawn in
place on a terminal; a printed line per change otherwise, so logs stay readable).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

SESSION_TAG = "envfactory/cli_session"
PARTITION_TAG = "dagster/partition"


@dataclass
class PartitionLine:
    """What one partition is doing: its current step, the rows of what it materialized, its end."""

    domain: str
    step: str = "waiting"
    counts: dict[str, int] = field(default_factory=dict)
    outcome: str | None = None  # "ok" | "FAILED" once the run ended

    def text(self) -> str:
        counts = " ".join(f"{asset}={n}" for asset, n in self.counts.items())
        state = self.outcome or f"running {self.step}"
        return f"{self.domain:<12} {state:<32} {counts}"


class ProgressReader:
    """Polls the instance for this session's runs and folds their new events into lines."""

    def __init__(self, instance: Any, session: str, domains: list[str]) -> None:
        self.instance = instance
        self.session = session
        self.lines = {domain: PartitionLine(domain) for domain in domains}
        self._cursors: dict[str, str | None] = {}

    def poll(self) -> bool:
        """Read new events; True when a line changed."""
        import dagster as dg
        from dagster import DagsterEventType

        kinds = {
            DagsterEventType.STEP_START,
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.STEP_FAILURE,
            DagsterEventType.RUN_SUCCESS,
            DagsterEventType.RUN_FAILURE,
        }
        changed = False
        for record in self.instance.get_run_records(filters=dg.RunsFilter(tags={SESSION_TAG: self.session})):
            run = record.dagster_run
            line = self.lines.get(run.tags.get(PARTITION_TAG, ""))
            if line is None:
                continue
            connection = self.instance.get_records_for_run(
                run.run_id, cursor=self._cursors.get(run.run_id), of_type=kinds, limit=1000
            )
            self._cursors[run.run_id] = connection.cursor
            for event_record in connection.records:  # in the order they happened
                changed |= _fold(line, event_record.event_log_entry.dagster_event)
        return changed


def _fold(line: PartitionLine, event: Any) -> bool:
    if event is None:
        return False
    kind = event.event_type_value
    if kind == "STEP_START":
        line.step = event.step_key or line.step
    elif kind == "ASSET_MATERIALIZATION":
        materialization = event.event_specific_data.materialization
        rows = materialization.metadata.get("dagster/row_count")
        if rows is not None:
            line.counts[materialization.asset_key.to_user_string()] = int(rows.value)
    elif kind == "STEP_FAILURE":
        line.step = f"{event.step_key} failed"
    elif kind in ("RUN_SUCCESS", "RUN_FAILURE"):
        line.outcome = "ok" if kind == "RUN_SUCCESS" else "FAILED"
    else:
        return False
    return True


class LiveProgress:
    """Renders a `ProgressReader` from a background thread until `stop()`."""

    def __init__(self, reader: ProgressReader, interval: float = 1.0) -> None:
        self.reader = reader
        self.interval = interval
        self.error: str | None = None  # the last failed poll (shown; the next tick retries)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveProgress:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        from rich.console import Console
        from rich.live import Live

        console = Console()
        if not console.is_terminal:
            printed: dict[str, str] = {}
            while not self._stop.wait(self.interval):
                self._print_changes(console, printed)
            self._print_changes(console, printed)
            return
        with Live(console=console, refresh_per_second=2, transient=False) as live:
            while True:
                self._safe_poll()
                live.update(self._render())
                if self._stop.wait(self.interval):
                    self._safe_poll()
                    live.update(self._render())
                    return

    def _print_changes(self, console: Any, printed: dict[str, str]) -> None:
        self._safe_poll()
        for domain, line in self.reader.lines.items():
            text = line.text()
            if printed.get(domain) != text and line.step != "waiting":
                console.print(text, highlight=False, soft_wrap=True)
                printed[domain] = text

    def _safe_poll(self) -> None:
        try:
            self.reader.poll()
            self.error = None
        except Exception as exc:  # the display must never break a run: a busy instance is retried
            self.error = f"{type(exc).__name__}: {exc}"[:200]

    def _render(self) -> Any:
        from rich.text import Text

        lines = [line.text() for line in self.reader.lines.values()]
        if self.error:
            lines.append(f"(progress not read this tick: {self.error})")
        return Text("\n".join(lines))
