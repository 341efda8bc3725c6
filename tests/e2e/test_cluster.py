"""The cluster deployment (deploy/cluster.sh): 2 partitions through the Celery executor on 2 workers,
Postgres instance storage and an `s3://` data home on a local S3-compatible server. Every asset's
content equals an in-process run of the same partitions; the runs are visible through GraphQL.

Kept cheap for CI: one deployment (2 workers started once) serves every assertion, and the runs
materialize the assets up to `verified_envs` (ingest, EnvGen and verification: 6 steps, two of them
on the `llm` pool) of one small document per domain. The later stages add steps of the same kind
(a step on a worker reading and writing the bucket); object-store exports are tested on their own
(tests/core/storage/test_object_store.py).

Needs Debian's redis-server and postgresql (`bash deploy/cluster.sh install`, which the README's
test command runs) and the `cluster` extra (in `dev`). Without them it fails, naming what is missing,
rather than skip unnoticed; `pytest -m "not cluster"` leaves it out on purpose.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from envfactory_dagster.cli import main
from envfactory_dagster.definitions import ALL_ASSETS_JOB, build_definitions
from envfactory_dagster.serve.registry import load_verified_envs
from envfactory_dagster.settings import catalog_path
from envfactory_dagster.storage.duckdb_catalog import query
from envfactory_dagster.storage.partition_store import PartitionStore
from envfactory_dagster.webserver_client import graphql, run_info
from resources.llm import LLM_POOL
from tests.conftest import BUNDLED_CATALOG, REPO
from tests.local_s3 import free_port, s3_server

# The two smallest bundled documents, one per domain: every selected stage still produces rows.
DOCUMENTS = {"finance": "alpaca_trading.yaml", "lifestyle": "spotify_web.yaml"}
SELECTION = "*verified_envs"  # verified_envs and everything upstream of it
BUCKET = "envfactory-cluster"
pytestmark = pytest.mark.cluster
AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
LINEAGE_COLUMNS = {"dagster_run_id", "code_version", "created_at"}
STEP_TIMES = """
query Steps($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { stepStats { stepKey startTime endTime } } }
}
"""
POOL_LIMITS = "{ instance { concurrencyLimits { concurrencyKey slotCount } } }"
RUN_LOGS = """
query Logs($runId: ID!) {
  logsForRun(runId: $runId, limit: 5000) {
    ... on EventConnection {
      events {
        __typename
        ... on EngineEvent { stepKey metadataEntries { label ... on TextMetadataEntry { text } } }
      }
    }
  }
}
"""


def missing_prerequisites() -> list[str]:
    missing = [name for name in ("redis-server",) if shutil.which(name) is None]
    if not list(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        missing.append("postgresql")
    for module in ("dagster_celery", "dagster_postgres", "s3fs", "moto"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


@pytest.fixture(scope="module")
def prerequisites() -> None:
    missing = missing_prerequisites()
    if missing:
        pytest.fail(
            f"the cluster test needs {', '.join(missing)}: run `bash deploy/cluster.sh install` "
            "(Debian packages; root or sudo) and `pip install -e '.[dev]'`, "
            'or leave it out with `pytest -m "not cluster"`',
            pytrace=False,
        )


@pytest.fixture(scope="module")
def resource_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("resources")
    for domain, document in DOCUMENTS.items():
        (root / domain).mkdir()
        shutil.copy(BUNDLED_CATALOG / domain / document, root / domain / document)
    return root


@pytest.fixture(scope="module")
def cluster(
    prerequisites: None, resource_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict]:
    """A running deployment; yields the environment a shell gets from `source $STATE/env`."""
    # Postgres runs as its own user when we are root: the state directory must be reachable.
    state = Path(tempfile.mkdtemp(prefix="envfactory-cluster-"))
    state.chmod(0o711)
    user_home = tmp_path_factory.mktemp("user_home")
    with s3_server(BUCKET) as s3_env:
        env = {
            **os.environ,
            **s3_env,
            "HOME": str(user_home),  # local catalogs of the s3 home land here, not in ~
            "PYTHON": sys.executable,
            "ENVFACTORY_CLUSTER_DIR": str(state),
            "ENVFACTORY_HOME": f"s3://{BUCKET}/home",
            "ENVFACTORY_RESOURCES_DIR": str(resource_dir),
            "ENVFACTORY_REDIS_PORT": str(free_port()),
            "ENVFACTORY_PG_PORT": str(free_port()),
            "ENVFACTORY_WEBSERVER_PORT": str(free_port()),
            "ENVFACTORY_CODE_SERVER_PORT": str(free_port()),
            # one `llm` slot for the whole instance: the two runs' LLM steps must take turns
            "ENVFACTORY_LLM_POOL_LIMIT": "1",
        }
        env.pop("ENVFACTORY_LLM_MODEL", None)
        script = ["bash", str(REPO / "deploy" / "cluster.sh")]
        try:
            subprocess.run([*script, "start", "--workers", "2"], env=env, check=True, timeout=600)
            for line in (state / "env").read_text().splitlines():
                if line.startswith("export "):
                    key, value = line.removeprefix("export ").split("=", 1)
                    env[key] = value.strip("'")
            yield env
        finally:
            subprocess.run([*script, "stop"], env=env, timeout=300)
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def submitted(cluster: dict) -> list[str]:
    """`envfactory submit` of both domains; returns the run ids it printed."""
    command = ["submit", "--select", SELECTION, "--timeout", "1200"]
    done = subprocess.run(
        [sys.executable, "-m", "envfactory_dagster.cli", *command],
        env=cluster, capture_output=True, text=True, timeout=1300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return [line.split()[-1] for line in done.stdout.splitlines() if " steps " in line]


@pytest.fixture(scope="module")
def in_process_home(resource_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    home = tmp_path_factory.mktemp("in_process_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVFACTORY_HOME", str(home))
        patch.delenv("ENVFACTORY_LLM_MODEL", raising=False)
        assert (
            main(
                ["materialize", "--resources-dir", str(resource_dir), "--workers", "1", "--select", SELECTION]
            )
            == 0
        )
    return str(home)


def content(store: PartitionStore, asset: str, domain: str) -> list[str]:
    """What a partition holds: its sorted `id`s, or (rows without ids, e.g. early rejects) its sorted
    rows as JSON, lineage columns left out."""
    frame = store.read(asset, domain)
    if "id" in frame.columns and frame["id"].notna().all():
        return sorted(frame["id"])
    rows = frame.drop(columns=[c for c in frame.columns if c in LINEAGE_COLUMNS])
    return sorted(json.dumps(row, sort_keys=True, default=str) for row in rows.to_dict(orient="records"))


def selected_job(resource_dir: Path, home: str) -> dg.JobDefinition:
    """The job as the runs executed it: `envfactory_all` subset to SELECTION."""
    defs = build_definitions(resource_dir, home)
    keys = dg.AssetSelection.from_string(SELECTION).resolve(defs.resolve_asset_graph())
    return defs.resolve_job_def(ALL_ASSETS_JOB).get_subset(asset_selection=set(keys))


def test_runs_are_visible_through_graphql_with_steps_on_both_workers(
    cluster: dict, submitted: list[str], resource_dir: Path
) -> None:
    url = cluster["ENVFACTORY_WEBSERVER"]
    job = selected_job(resource_dir, cluster["ENVFACTORY_HOME"])
    infos = [run_info(url, run_id) for run_id in submitted]
    assert sorted(info.partition for info in infos) == sorted(DOCUMENTS)
    assert all(info.status == "SUCCESS" and info.steps == len(job.graph.node_dict) for info in infos)
    workers = set()
    for run_id in submitted:
        events = graphql(url, RUN_LOGS, {"runId": run_id})["logsForRun"]["events"]
        for event in events:
            for entry in event.get("metadataEntries") or []:
                if entry["label"] == "Celery worker":
                    workers.add(entry["text"].split("@")[0])
    assert workers == {"w1", "w2"}  # steps ran on both Celery workers


def test_llm_pool_limit_holds_across_workers_and_runs(
    cluster: dict, submitted: list[str], resource_dir: Path
) -> None:
    """With one `llm` slot in the instance, no two LLM steps ran at once, whichever run or worker."""
    url = cluster["ENVFACTORY_WEBSERVER"]
    limits = graphql(url, POOL_LIMITS)["instance"]["concurrencyLimits"]
    assert {(limit["concurrencyKey"], limit["slotCount"]) for limit in limits} >= {(LLM_POOL, 1)}
    job = selected_job(resource_dir, cluster["ENVFACTORY_HOME"])
    llm_steps = {name for name, node in job.graph.node_dict.items() if node.definition.pool == LLM_POOL}
    spans = sorted(
        (step["startTime"], step["endTime"], run_id, step["stepKey"])
        for run_id in submitted
        for step in graphql(url, STEP_TIMES, {"runId": run_id})["runOrError"]["stepStats"]
        if step["stepKey"] in llm_steps
    )
    assert len(spans) == len(llm_steps) * len(submitted) and len(llm_steps) >= 2
    for before, after in itertools.pairwise(spans):
        assert before[1] <= after[0], f"{before[2:]} and {after[2:]} held the llm pool at once"


def test_runs_are_stored_in_postgres(cluster: dict, submitted: list[str]) -> None:
    import psycopg2

    connection = psycopg2.connect(
        host=cluster["DAGSTER_PG_HOST"],
        port=int(cluster["DAGSTER_PG_PORT"]),
        dbname=cluster["DAGSTER_PG_DB"],
        user=cluster["DAGSTER_PG_USERNAME"],
        password=cluster["DAGSTER_PG_PASSWORD"],
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (submitted,))
            assert sorted(cursor.fetchall()) == sorted((run_id, "SUCCESS") for run_id in submitted)
    finally:
        connection.close()


def test_every_asset_matches_an_in_process_run(
    cluster: dict,
    submitted: list[str],
    in_process_home: str,
    resource_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key in AWS_VARIABLES:
        monkeypatch.setenv(key, cluster[key])
    local, remote = PartitionStore(in_process_home), PartitionStore(cluster["ENVFACTORY_HOME"])
    selected = {
        key.to_user_string()
        for key in selected_job(resource_dir, in_process_home).asset_layer.selected_asset_keys
    }
    assert remote.assets() == local.assets() and set(local.assets()) >= selected
    for asset in local.assets():
        for domain in DOCUMENTS:
            assert content(remote, asset, domain) == content(local, asset, domain), (asset, domain)
    # what `envfactory serve` loads from the bucket's registry is what it loads from the local one
    served_locally, served_from_bucket = load_verified_envs(in_process_home), load_verified_envs(remote.home)
    assert served_locally == served_from_bucket and served_locally


def test_duckdb_catalog_of_the_bucket_counts_the_same_rows(
    cluster: dict, in_process_home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`envfactory catalog` builds the s3 home's catalog (under the user's home) and `envfactory sql`
    reads the bucket through it: the same rows as the in-process run's catalog."""
    sql = "SELECT domain, environments, tools FROM envs_per_domain ORDER BY 1"  # an analyst view
    local_rows = query(catalog_path(in_process_home), sql)
    assert [domain for domain, *_ in local_rows] == sorted(DOCUMENTS)
    with pytest.MonkeyPatch.context() as patch:
        for key in ("HOME", "ENVFACTORY_HOME", *AWS_VARIABLES):
            patch.setenv(key, cluster[key])
        assert main(["catalog"]) == 0
        assert (
            query(catalog_path(cluster["ENVFACTORY_HOME"]), sql, home=cluster["ENVFACTORY_HOME"])
            == local_rows
        )
        capsys.readouterr()
        assert main(["sql", sql]) == 0
    printed = capsys.readouterr().out
    for row in local_rows:
        line = next(line for line in printed.splitlines() if f" {row[0]} " in line)
        assert [str(value) for value in row] == line.replace("│", " ").split(), line


def test_the_cluster_instance_reuses_its_database_connections(
    cluster: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """deploy/dagster.yaml's storages keep their connections (envfactory_dagster/cluster_storage.py);
    dagster-postgres's own open one per query, which the same reads show."""
    import sqlalchemy
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from envfactory_dagster.cluster_storage import PooledPostgresEventLogStorage, PooledPostgresRunStorage
    from envfactory_dagster.cluster_worker import worker_instance

    for key in (
        "DAGSTER_HOME",
        *(f"DAGSTER_PG_{part}" for part in ("USERNAME", "PASSWORD", "HOST", "PORT", "DB")),
    ):
        monkeypatch.setenv(key, cluster[key])

    def connections_for_reads(run_storage: object, event_storage: object) -> int:
        opened = []
        for storage in (run_storage, event_storage):
            sqlalchemy.event.listen(storage._engine, "connect", lambda *_: opened.append(1))
        for _ in range(10):
            run_storage.get_runs(limit=1)
            event_storage.get_latest_materialization_events([dg.AssetKey("ingest")])
        return len(opened)

    instance = dg.DagsterInstance.get()  # built from $DAGSTER_HOME/dagster.yaml, as every cluster process
    assert isinstance(instance.run_storage, PooledPostgresRunStorage)
    assert isinstance(instance.event_log_storage, PooledPostgresEventLogStorage)
    assert connections_for_reads(instance.run_storage, instance.event_log_storage) <= 2
    url = instance.run_storage.postgres_url
    unpooled = PostgresRunStorage(url), PostgresEventLogStorage(url)
    assert connections_for_reads(*unpooled) >= 20  # one or more per read
    # a Celery worker process keeps one instance, on the pooled storage, for every step it runs
    assert worker_instance(instance.get_ref()) is worker_instance(instance.get_ref())
    assert isinstance(worker_instance(instance.get_ref()).event_log_storage, PooledPostgresEventLogStorage)


LOCATION_METADATA = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name displayMetadata { key value } } } } }"
)


def test_one_code_server_serves_the_webserver_and_the_daemon(cluster: dict, submitted: list[str]) -> None:
    """deploy/workspace.yaml points both at the code server cluster.sh starts, which also started the
    runs: neither starts a code server of its own (the daemon would replace its own every 60 s)."""
    run_dir = Path(cluster["ENVFACTORY_CLUSTER_DIR"]) / "run"
    group_of = {
        int((run_dir / f"{name}.pid").read_text()): name for name in ("webserver", "daemon", "code-server")
    }
    code_servers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pgid = int(stat.read_text().rsplit(")", 1)[1].split()[2])
            command = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # ended while we looked
        if pgid in group_of and b"api" in command and b"grpc" in command:  # `dagster api grpc`
            code_servers.append(group_of[pgid])
    assert code_servers == ["code-server"]
    entries = graphql(cluster["ENVFACTORY_WEBSERVER"], LOCATION_METADATA)["workspaceOrError"][
        "locationEntries"
    ]
    assert [
        ({item["key"]: item["value"] for item in entry["displayMetadata"]}.get("port"), entry["name"])
        for entry in entries
    ] == [(cluster["ENVFACTORY_CODE_SERVER_PORT"], "envfactory")]


def test_the_cluster_processes_do_not_ignore_the_stop_signal(cluster: dict) -> None:
    """`stop` sends SIGTERM. A script's background command starts with SIGINT ignored, and Dagster
    gives SIGTERM SIGINT's handler: the code server (and its runs' orchestrators) ignored SIGTERM
    until `stop` killed them 30 s later. The workers are Celery's: its worker process handles
    SIGTERM itself (a warm shutdown), whatever the `dagster-celery worker start` process above it
    ignores (seen once ignoring SIGTERM, in a run under nohup)."""
    run_dir = Path(cluster["ENVFACTORY_CLUSTER_DIR"]) / "run"
    stop_signals = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
    for name in ("code-server", "webserver", "daemon"):
        pid = (run_dir / f"{name}.pid").read_text().strip()
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        ignored = int(next(line for line in status if line.startswith("SigIgn:")).split()[1], 16)
        assert not ignored & stop_signals, f"{name} ignores SIGTERM or SIGINT (SigIgn {ignored:#x})"
