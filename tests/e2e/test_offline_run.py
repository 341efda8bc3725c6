"""The README's main command (the session's `full_run`), read through one domain: every asset
materializes offline, checks pass, data replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.cli import main
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query

ASSETS_WITH_ROWS = (
    "authentic_resources",
    "env_proposals",
    "env_specs",
    "env_code",
    "env_verification",
    "verified_envs",
    "tool_graph",
    "tool_graph_nodes",
    "tool_chains",
    "trajectories",
    "refined_trajectories",
    "sft_dataset",
    "rl_tasks",
    "world_quality",
)


DOMAIN = "travel"


@pytest.fixture(scope="module")
def offline_run(full_run: Path) -> Path:
    """The main command's data; every query below reads one domain's partition of it."""
    return full_run


def test_every_asset_has_rows_with_lineage(offline_run: Path) -> None:
    catalog = catalog_path(str(offline_run))
    for asset in ASSETS_WITH_ROWS:
        [(rows, domains, runs)] = query(
            catalog,
            f"SELECT count(*), count(DISTINCT domain), count(DISTINCT dagster_run_id) "
            f"FROM \"{asset}\" WHERE domain = '{DOMAIN}'",
        )
        assert rows > 0 and domains == 1 and runs == 1, asset


def test_registry_and_data_meet_the_contract(offline_run: Path) -> None:
    catalog = catalog_path(str(offline_run))
    [(envs, tools, signatures)] = query(
        catalog,
        "SELECT count(*), sum(tool_count), count(DISTINCT tool_signature) FROM verified_envs "
        f"WHERE domain = '{DOMAIN}'",
    )
    assert envs >= 7 and signatures == envs and tools >= 6 * envs
    [(bad_replays, leaks)] = query(
        catalog,
        "SELECT count(*) FILTER (WHERE NOT replay_ok), count(*) FILTER (WHERE query_leaks_tool_name) "
        f"FROM trajectories WHERE domain = '{DOMAIN}'",
    )
    assert bad_replays == 0 and leaks == 0
    [(tasks, not_full)] = query(
        catalog,
        f"SELECT count(*), count(*) FILTER (WHERE gold_reward < 1.0) FROM rl_tasks WHERE domain = '{DOMAIN}'",
    )
    assert tasks > 0 and not_full == 0


def test_trajectory_traces_back_to_its_resource_in_one_query(offline_run: Path) -> None:
    rows = query(
        catalog_path(str(offline_run)),
        """
        SELECT t.id, v.env_id, v.code_sha256, r.source_path
        FROM trajectories t, unnest(t.env_ids) AS e(env_id)
        JOIN verified_envs v ON v.env_id = e.env_id
        JOIN authentic_resources r ON list_contains(v.resource_ids, r.id)
        WHERE t.domain = 'travel'
        LIMIT 5
        """,
    )
    assert rows and all(source.startswith(f"{DOMAIN}/") for *_, source in rows)


def test_exports_are_written(offline_run: Path) -> None:
    import datasets

    sft = offline_run / "exports" / "sft" / f"domain={DOMAIN}"
    first = json.loads((sft / "openai.jsonl").read_text().splitlines()[0])
    assert first["messages"][0]["role"] in {"system", "user"} and first["tools"]
    assert (sft / "sharegpt" / "dataset_info.json").exists()
    rl = offline_run / "exports" / "rl" / f"domain={DOMAIN}"
    for folder in (sft, rl):  # each folder's dataset card declares its Parquet splits
        assert "train" in datasets.load_dataset(str(folder))
    task = datasets.load_dataset(str(rl))["train"][0]
    assert set(task["extra_info"]["tools_kwargs"]) == {
        t["function"]["name"] for t in task["extra_info"]["tools"]
    }


def test_world_quality_is_stored_and_printed_by_audit(
    offline_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    [(currency, inverted, kill_rate)] = query(
        catalog_path(str(offline_run)),
        "SELECT currency_valid_share, inverted_pairs, mutation_kill_rate FROM world_quality "
        f"WHERE domain = '{DOMAIN}'",
    )
    assert currency >= 0.99 and inverted == 0 and kill_rate >= 0.9
    monkeypatch.setenv("ENVFACTORY_HOME", str(offline_run))
    assert main(["audit"]) == 0
    printed = capsys.readouterr().out
    assert "mutation_kill_rate" in printed and DOMAIN in printed
