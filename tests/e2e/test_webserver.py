"""The Dagster webserver on 127.0.0.1 launches a partition materialization through GraphQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from envfactory_dagster.webserver_client import LAUNCH_RUN, graphql
from tests.conftest import BUNDLED_CATALOG, REALWORLD
from tests.local_s3 import free_port

RUN_STATUS = "query Status($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"
LOCATIONS = "{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"


@pytest.mark.skipif(not (REALWORLD / "utilities").is_dir(), reason="needs ../shared/realworld")
def test_launch_partition_run_through_graphql(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    # Runs start at once (no daemon queue), telemetry off.
    (dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\nrun_coordinator:\n"
        "  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "ENVFACTORY_HOME": str(tmp_path / "home"),
        "ENVFACTORY_RESOURCES_DIR": str(REALWORLD),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-m", "envfactory_dagster.definitions",
         "-h", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                assert server.poll() is None, "webserver exited"
                assert time.monotonic() < deadline, "webserver did not answer in 90 s"
                time.sleep(0.5)
        location = graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"][0]["name"]
        params = {
            "selector": {
                "repositoryLocationName": location,
                "repositoryName": "__repository__",
                "jobName": "envfactory_all",
                "assetSelection": [{"path": ["authentic_resources"]}],
            },
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "utilities"}]},
        }
        launched = graphql(url, LAUNCH_RUN, {"params": params})["launchRun"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        status = None
        while status not in {"SUCCESS", "FAILURE", "CANCELED"}:
            assert time.monotonic() < deadline + 120, f"run still {status}"
            time.sleep(1)
            status = graphql(url, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
        assert status == "SUCCESS"
        assert (tmp_path / "home" / "authentic_resources" / "domain=utilities" / "data.parquet").exists()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)


RUNS = """{ runsOrError(filter: {pipelineName: "envfactory_all"}) {
  ... on Runs { results { status tags { key value } } } } }"""
ASSET_NODES = """{ assetNodes {
  assetKey { path } isMaterializable kinds opVersion opNames groupName
  owners { ... on TeamAssetOwner { team } ... on UserAssetOwner { email } }
  metadataEntries { label ... on TableSchemaMetadataEntry { schema { columns { name type description } } } }
  partitionStats { numMaterialized numPartitions }
  assetChecksOrError { ... on AssetChecks { checks { name } } }
} }"""
CHECK_EXECUTIONS = """query Executions($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 100) { partition status } }"""


def start_ui(port: int, home: Path) -> subprocess.Popen:
    """The README's UI command (`envfactory ui`), webserver and daemon, on the CLI's instance."""
    env = {**os.environ, "ENVFACTORY_HOME": str(home)}
    for name in ("DAGSTER_HOME", "ENVFACTORY_RESOURCES_DIR"):
        env.pop(name, None)
    command = [sys.executable, "-m", "envfactory_dagster.cli", "ui", "--port", str(port)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def wait_for_webserver(port: int, server: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
            return
        except OSError:
            assert server.poll() is None, "webserver exited"
            assert time.monotonic() < deadline, f"webserver did not answer in {seconds} s"
            time.sleep(0.5)


def stop(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(40)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def test_ui_shows_the_cli_runs_checks_and_catalog(full_run: Path) -> None:
    """Acceptance of issue 13: the CLI's work as the UI sees it, through GraphQL."""
    domains = sorted(p.name for p in BUNDLED_CATALOG.iterdir() if p.is_dir())
    assert not list(Path.cwd().glob(".tmp_dagster_home_*"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_ui(port, full_run)
    try:
        wait_for_webserver(port, server)
        runs = graphql(url, RUNS)["runsOrError"]["results"]
        partitions = sorted(
            tag["value"] for run in runs for tag in run["tags"] if tag["key"] == "dagster/partition"
        )
        assert partitions == domains and {run["status"] for run in runs} == {"SUCCESS"}
        nodes = [n for n in graphql(url, ASSET_NODES)["assetNodes"] if n["isMaterializable"]]
        versions_by_stage: dict[str, set[str]] = {}
        for node in nodes:
            name = node["assetKey"]["path"][-1]
            assert {"python", "parquet", "duckdb"} <= set(node["kinds"]), name
            assert [o["team"] for o in node["owners"]] == [f"envfactory-{node['groupName']}"], name
            [schema] = [e["schema"] for e in node["metadataEntries"] if e["label"] == "dagster/column_schema"]
            assert schema["columns"] and all(c["description"] for c in schema["columns"]), name
            assert node["partitionStats"] == {"numMaterialized": 7, "numPartitions": 7}, name
            versions_by_stage.setdefault(node["opNames"][0], set()).add(node["opVersion"])
            for check in node["assetChecksOrError"].get("checks", [])[:2]:
                executions = graphql(
                    url, CHECK_EXECUTIONS, {"key": {"path": [name]}, "check": check["name"]}
                )["assetCheckExecutions"]
                assert sorted(e["partition"] for e in executions) == domains, (name, check)
        assert len(nodes) >= 17
        # one code version per stage (a multi-asset's outputs share it), distinct across stages
        assert all(len(v) == 1 for v in versions_by_stage.values())
        assert len({n["opVersion"] for n in nodes}) == len(versions_by_stage) >= 12
    finally:
        stop(server)
