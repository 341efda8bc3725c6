"""A real run's catalog: documented columns match the Parquet files, the analyst views answer,
`envfactory sql` prints them, and a code change makes only its stage (then its downstream) stale."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from assets.catalog import compute_function
from envfactory_dagster.catalog.analyst_views import VIEWS
from envfactory_dagster.catalog.code_versions import reached_modules
from envfactory_dagster.catalog.columns import ASSET_COLUMNS, documented_columns
from envfactory_dagster.cli import main
from envfactory_dagster.definitions import ALL_ASSETS_JOB, build_definitions
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from resources.storage import _type_name
from tests.conftest import BUNDLED_CATALOG

DOMAINS = sorted(p.name for p in BUNDLED_CATALOG.iterdir() if p.is_dir())


def test_documented_columns_are_the_stored_columns_with_their_types(full_run: Path) -> None:
    for asset in ASSET_COLUMNS:
        documented = {name: type_ for name, type_, _ in documented_columns(asset)}
        seen: set[str] = set()
        for path in sorted((full_run / asset).glob("domain=*/data.parquet")):
            stored = {f.name: _type_name(f.type) for f in pq.read_schema(path)}
            assert set(stored) <= set(documented), (path, set(stored) - set(documented))
            seen |= set(stored)
            for name, real in stored.items():
                expected = {"json": {"string"}, "int64": {"int64", "double"}}.get(
                    documented[name], {documented[name]}
                )  # pandas stores an integer column with a missing value as double
                assert real in expected | {"null", "list<null>"}, (path, name, real, expected)
        # an empty partition stores no columns; over all partitions every documented one is there
        assert seen in (set(), set(documented)), (asset, set(documented) - seen)


def test_analyst_views_answer_the_common_questions(full_run: Path) -> None:
    catalog = catalog_path(str(full_run))
    listed = {name for (name,) in query(catalog, "SELECT name FROM README")}
    assert {v.name for v in VIEWS} | set(ASSET_COLUMNS) <= listed
    for view in VIEWS:  # every documented example runs
        assert query(catalog, view.example) is not None
    per_domain = dict(query(catalog, "SELECT domain, environments FROM envs_per_domain"))
    assert per_domain == dict(query(catalog, "SELECT domain, count(*) FROM verified_envs GROUP BY ALL"))
    assert sorted(per_domain) == DOMAINS
    [(trajectories,)] = query(catalog, "SELECT count(*) FROM trajectories")
    [(counted, envs)] = query(catalog, "SELECT sum(trajectories), count(*) FROM trajectories_per_env")
    assert counted >= trajectories > 0 and envs == sum(per_domain.values())
    # RL row -> resource file in one join; every task reaches a file of its own domain
    rows = query(
        catalog,
        "SELECT r.id, r.domain, e.domain, e.source_path FROM rl_tasks r "
        "JOIN env_resources e ON list_contains(r.env_ids, e.env_id)",
    )
    [(tasks,)] = query(catalog, "SELECT count(*) FROM rl_tasks")
    assert len({r[0] for r in rows}) == tasks > 0
    assert all(task_domain == env_domain for _, task_domain, env_domain, _ in rows)
    assert all((BUNDLED_CATALOG / path).is_file() or Path(path).is_file() for *_, path in rows)
    assert len(query(catalog, "SELECT * FROM rl_task_lineage")) == len(rows)


def test_sql_command_prints_a_table_and_refuses_writes(
    full_run: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVFACTORY_HOME", str(full_run))
    assert main(["sql", "SELECT domain, environments FROM envs_per_domain ORDER BY domain"]) == 0
    printed = capsys.readouterr().out
    assert all(domain in printed for domain in DOMAINS) and "environments" in printed
    assert main(["sql", "DROP VIEW rl_tasks"]) == 2
    assert "read-only" in capsys.readouterr().err
    [(tasks,)] = query(catalog_path(str(full_run)), "SELECT count(*) FROM rl_tasks")
    assert tasks > 0


def stale_keys(instance: dg.DagsterInstance, defs: dg.Definitions, partition: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(instance, graph, LoadingContextForTest(instance))
    return {
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if resolver.get_status(key, partition) == StaleStatus.STALE
    }


def downstream_of(graph, assets_def: dg.AssetsDefinition, depth: int | None = None) -> set[str]:
    selection = dg.AssetSelection.assets(*assets_def.keys).downstream(depth=depth)
    return {key.to_user_string() for key in selection.resolve(graph)}


def test_changed_stage_code_is_stale_then_its_downstream(
    full_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    shutil.copytree(full_run, home)  # the shared run stays as it is
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    defs = build_definitions(BUNDLED_CATALOG, str(home))
    graph = defs.resolve_asset_graph()
    stages = {a.op.name: a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.is_materializable}
    reach = {name: reached_modules(compute_function(a)) for name, a in stages.items()}
    # a module only one stage reads, for the stage with the most downstream assets
    candidates = [
        (len(downstream_of(graph, stages[s])), s, m)
        for s, modules in reach.items()
        for m in modules
        if sum(m in other for other in reach.values()) == 1
    ]
    _, stage, module = max(candidates)
    changed = build_definitions(BUNDLED_CATALOG, str(home), code_version_overrides={module: "# edited\n"})
    stage_keys = {k.to_user_string() for k in stages[stage].keys}
    with dg.DagsterInstance.get() as instance:
        assert stale_keys(instance, defs, "travel") == set()
        assert stale_keys(instance, changed, "travel") == stage_keys
        result = changed.resolve_job_def(ALL_ASSETS_JOB).execute_in_process(
            instance=instance, partition_key="travel", asset_selection=list(stages[stage].keys)
        )
        assert result.success
        # Dagster marks the direct dependents stale (new dependency data version); theirs follow as
        # they re-materialize: never anything upstream or beside
        after = stale_keys(instance, changed, "travel")
        assert after == downstream_of(graph, stages[stage], depth=1) - stage_keys, sorted(after)
        assert stale_keys(instance, changed, "office") == stage_keys  # other partitions untouched
