"""Re-run sandboxed verification on every environment of the registry; prints the pass rate.

    ENVFACTORY_HOME=... .venv/bin/python benchmarks/reverify_registry.py

Issue 4 asks that re-running verification on the registry passes 100%: a version admitted once
must pass again (same module, same seed state, same generated tests).
"""

from __future__ import annotations

import json
import time

import pandas as pd

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.verification import verify_batch
from envfactory_dagster.settings import envfactory_home
from envfactory_dagster.storage.partition_store import PartitionStore


def main() -> None:
    store = PartitionStore(envfactory_home())
    registry = pd.concat([store.read("verified_envs", d) for d in store.domains("verified_envs")])
    items = [
        (EnvSpec.model_validate_json(r.spec_json), r.source, json.loads(r.seed_state_json))
        for r in registry.itertuples()
    ]
    started = time.perf_counter()
    reports = verify_batch(items)
    seconds = time.perf_counter() - started
    same_digest = sum(
        rep.replay_digest == d for rep, d in zip(reports, registry["replay_digest"], strict=True)
    )
    passed = sum(r.passed for r in reports)
    print(f"environments: {len(reports)}  passed again: {passed} ({passed / len(reports):.0%})")
    print(f"same replay digest as when admitted: {same_digest}/{len(reports)}")
    print(f"{seconds:.1f} s in one sandbox worker ({seconds / len(reports) * 1000:.0f} ms per environment)")
    for report in reports:
        if not report.passed:
            print(f"  FAILED {report.class_name}: {report.failures[:2]}")


if __name__ == "__main__":
    main()
