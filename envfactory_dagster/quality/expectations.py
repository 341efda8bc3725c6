"""Run a great-expectations 1.x suite (defined in code) on a DataFrame, one outcome per check.

`dagster-ge` only supports GX 0.x, so the Dagster asset checks wrap this instead. One suite run
per asset partition: every expectation maps to one named check. GX imports in ~3 s, so it is
imported here, lazily, and its ephemeral context is made once per process.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Expectation:
    """One check: a GX expectation class name (e.g. `ExpectColumnValuesToBeUnique`) + kwargs."""

    check_name: str
    expectation: str
    kwargs: dict[str, Any]
    description: str
    # A quality target rather than a guard: reported as a warning, never blocks what follows.
    warn_only: bool = False


@dataclass(frozen=True)
class CheckOutcome:
    check_name: str
    passed: bool
    errored: bool  # the expectation itself broke (bad argument, missing column): not a data verdict
    description: str
    detail: dict[str, Any] = field(default_factory=dict)


@functools.cache
def _context():
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def validate_frame(
    frame: pd.DataFrame, suite_name: str, expectations: list[Expectation]
) -> list[CheckOutcome]:
    """Validate `frame` against `expectations`; outcomes come back in the same order."""
    import great_expectations as gx

    context = _context()
    source_name = f"frames_{suite_name}"
    try:
        source = context.data_sources.get(source_name)
    except (KeyError, ValueError):
        source = context.data_sources.add_pandas(source_name)
    asset_name = f"{suite_name}_frame"
    try:
        data_asset = source.get_asset(asset_name)
    except LookupError:
        data_asset = source.add_dataframe_asset(asset_name)
    batch_name = f"{suite_name}_whole"
    try:
        batch_definition = data_asset.get_batch_definition(batch_name)
    except KeyError:
        batch_definition = data_asset.add_batch_definition_whole_dataframe(batch_name)

    suite = gx.ExpectationSuite(name=f"{suite_name}_suite")
    for expectation in expectations:
        expectation_class = getattr(gx.expectations, expectation.expectation)
        # GX returns results in its own order: the check name rides along in `meta`.
        suite.add_expectation(
            expectation_class(**expectation.kwargs, meta={"check_name": expectation.check_name})
        )
    suite = context.suites.add_or_update(suite)
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(data=batch_definition, suite=suite, name=f"{suite_name}_validation")
    )
    result = validation.run(batch_parameters={"dataframe": frame})

    results_by_check = {item.expectation_config.meta["check_name"]: item for item in result.results}
    outcomes = []
    for expectation in expectations:
        item = results_by_check[expectation.check_name]
        message = _exception_message(item.exception_info)
        detail = {
            key: item.result.get(key)
            for key in ("observed_value", "unexpected_count", "unexpected_percent", "partial_unexpected_list")
            if key in item.result
        }
        if message is not None:
            detail["exception"] = message
        outcomes.append(
            CheckOutcome(
                check_name=expectation.check_name,
                passed=bool(item.success) and message is None,
                errored=message is not None,
                description=expectation.description,
                detail=json.loads(json.dumps(detail, default=str)),
            )
        )
    return outcomes


def _exception_message(exception_info: Any) -> str | None:
    """The error message when the expectation raised; GX nests it per metric, or not."""
    if not isinstance(exception_info, dict):
        return None
    candidates = [exception_info, *(v for v in exception_info.values() if isinstance(v, dict))]
    for info in candidates:
        if info.get("raised_exception"):
            return str(info.get("exception_message") or "expectation raised")
    return None
