"""`tool_graph` built once from a function-calling catalog, scored against a gold-flow file, and
read back (not rebuilt) by `tool_chains` and `trajectories`."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

import assets.querygen
from envfactory_dagster.definitions import build_definitions
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from tests.core.ingest.test_function_catalog import PLAIN_FUNCTIONS


def test_the_graph_is_built_once_scored_and_loaded_downstream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    domain = tmp_path / "resources" / "rentals"
    domain.mkdir(parents=True)
    (domain / "functions.json").write_text(json.dumps(PLAIN_FUNCTIONS))
    (domain / "SOURCES.json").write_text(json.dumps([{"file": "functions.json", "license": "CC0-1.0"}]))
    gold = tmp_path / "rentals-data.json"
    gold.write_text(
        json.dumps(
            [
                {
                    "input": "Find a car in Lyon and reserve it for 3 days",
                    "output": [
                        {"name": "Rentals.FindCars", "arguments": {"pickup_city": "Lyon"}, "label": "var1"},
                        {
                            "name": "Rentals.ReserveCar",
                            "arguments": {"pickup_location": "$var1.pickup_location$", "days": 3},
                            "label": "var2",
                        },
                    ],
                }
            ]
        )
    )
    builds = []
    real_build = assets.querygen.build_tool_graph
    monkeypatch.setattr(
        assets.querygen, "build_tool_graph", lambda *a, **k: builds.append(1) or real_build(*a, **k)
    )
    home = str(tmp_path / "home")
    built = build_definitions(tmp_path / "resources", home, gold_flows=[str(gold)])
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            list(built.assets),
            partition_key="rentals",
            instance=instance,
            resources=built.resources,
            selection=dg.AssetSelection.groups("ingest", "envgen", "querygen"),
            raise_on_error=False,
        )
    assert result.success
    assert len(builds) == 1  # tool_chains and trajectories loaded the stored graph
    metadata = {
        m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node("tool_graph")
    }
    scored = metadata["tool_graph"]["gold_flows"].value["rentals-data.json"]
    assert scored["param_recall"] == 1.0 and scored["covered_requests"] == 1
    catalog = catalog_path(home)
    [(provenance, evidence)] = query(
        catalog,
        "SELECT provenance, evidence FROM tool_graph WHERE kind = 'feeds' AND source LIKE "
        "'%find_cars::out::%pickup_location' AND target LIKE '%reserve_car::in::pickup_location'",
    )
    assert provenance == "same_name" and "pickup_location" in evidence[0]
    assert query(catalog, "SELECT count(*) FROM tool_chains")[0][0] > 0
