"""Great-expectations suites as Dagster asset checks, evaluated inside the asset's own step.

Checks run in the step that materializes the partition (not as separate check steps), because
checks on separate steps are per asset, not per partition, in Dagster; evaluating the suite on the
frame just written keeps results per partition and lets blocking checks stop what follows. The
specs are partitioned (Dagster stores each result with its partition key), and every result also
names its domain in its metadata.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import dagster as dg
import pandas as pd

from assets.metadata import as_metadata
from envfactory_dagster.quality.expectations import Expectation, validate_frame

SuiteFactory = Callable[[str], list[Expectation]]


def check_specs(
    asset: str, suite: SuiteFactory, *, blocking: bool, partitions: dg.PartitionsDefinition
) -> list[dg.AssetCheckSpec]:
    """One spec per expectation, partitioned like the asset: each result is stored with the
    partition of the run that evaluated it, so every domain has its own verdict."""
    return [
        dg.AssetCheckSpec(
            name=e.check_name,
            asset=asset,
            description=e.description,
            blocking=blocking and not e.warn_only,
            partitions_def=partitions,
        )
        for e in suite("<domain>")
    ]


def check_results(
    asset: str, suite: SuiteFactory, frame: pd.DataFrame, domain: str
) -> Iterator[dg.AssetCheckResult]:
    """Run the suite on `frame` and yield one result per check (errors reported as errors).

    An empty partition has no rows to violate anything: every check passes, saying so.
    """
    expectations = suite(domain)
    if frame.empty:
        for expectation in expectations:
            yield dg.AssetCheckResult(
                asset_key=asset,
                check_name=expectation.check_name,
                passed=True,
                metadata={"rows": 0, "domain": domain},
            )
        return
    warn_only = {e.check_name for e in expectations if e.warn_only}
    for outcome in validate_frame(frame, asset, expectations):
        metadata = {**as_metadata(outcome.detail), "domain": domain}
        if outcome.errored:
            metadata["error"] = "the expectation itself failed to evaluate"
        severity = (
            dg.AssetCheckSeverity.WARN if outcome.check_name in warn_only else dg.AssetCheckSeverity.ERROR
        )
        yield dg.AssetCheckResult(
            asset_key=asset,
            check_name=outcome.check_name,
            passed=outcome.passed,
            severity=severity,
            metadata=metadata,
        )
