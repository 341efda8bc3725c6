"""`envfactory`: materialize the pipeline in-process and tell where its data lives.

    envfactory materialize [--domain D]... [--select ASSET_SELECTION] [--resources-dir DIR] [--workers N]
    envfactory submit [--domain D]... [--select ASSET_SELECTION] [--webserver URL]
    envfactory catalog
    envfactory where
    envfactory ui [--host H --port P]
    envfactory sql "SELECT * FROM README"
    envfactory audit [--domain D]... [--no-mutation]
    envfactory serve mcp --env-id ENV_ID [--transport stdio|http --port N]

A thin layer over Dagster: it builds the same definitions as the code location (the same
resource config) and runs the job `envfactory_all` in-process for each domain partition against
the Dagster instance in `$ENVFACTORY_HOME/dagster`, the one `envfactory ui` opens. `submit` queues
one run per domain on a running deployment (deploy/cluster.sh) through its webserver instead.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import re
import signal
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from envfactory_dagster.cli_progress import SESSION_TAG
from envfactory_dagster.settings import (
    DEFAULT_HOME,
    GOLD_FLOWS_ENV_VAR,
    HOME_ENV_VAR,
    catalog_path,
    envfactory_home,
    resources_dir,
)

# Telemetry off; no "join the community" sign-up modal in the UI (README "In the Dagster UI").
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
# How long `submit` waits for a (re)loading code location before it gives up.
LOCATION_LOAD_TIMEOUT_S = 300


def dagster_home(home: str) -> Path:
    """The Dagster instance directory beside the data (local even for an object-store home)."""
    base = Path(home) if "://" not in home else Path(DEFAULT_HOME).expanduser()
    path = base / "dagster"
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return path


def prepare_instance(home: str) -> None:
    """Create the Dagster instance's storage once, before worker processes open it concurrently."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    with dg.DagsterInstance.get():
        pass


def materialize_partition(
    resources_directory: str,
    home: str,
    domain: str,
    select: str | None,
    log_level: str = "WARNING",
    llm_model: str | None = None,
    llm_api_base: str | None = None,
    require_license: bool = False,
    session: str = "",
) -> tuple[str, bool, float, list[str]]:
    """Run the `envfactory_all` job (the selected assets, with their checks) for one domain
    partition, in-process; returns (domain, ok, seconds, problems): a problem is a one-line
    account of a failed blocking check or step."""
    import dagster as dg

    from envfactory_dagster.definitions import ALL_ASSETS_JOB, build_definitions

    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    started = time.perf_counter()
    defs = build_definitions(
        Path(resources_directory), home, llm_model, llm_api_base, require_license=require_license
    )
    job = defs.resolve_job_def(ALL_ASSETS_JOB)
    selection = None
    if select:
        graph = defs.resolve_asset_graph()
        selection = sorted(dg.AssetSelection.from_coercible(select).resolve(graph), key=str)
    result = job.execute_in_process(
        instance=dg.DagsterInstance.get(),
        partition_key=domain,
        asset_selection=selection,
        raise_on_error=False,
        tags={"envfactory/trigger": "cli", SESSION_TAG: session},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    problems = [] if result.success else partition_problems(result, domain, home)
    return domain, result.success, time.perf_counter() - started, problems


def partition_problems(result: object, domain: str, home: str) -> list[str]:
    """What stopped a partition, one entry per failed blocking check (asset, check, failing rows,
    what to do) or failed step (its error's first line)."""
    import dagster as dg

    problems = []
    for evaluation in result.get_asset_check_evaluations():  # type: ignore[attr-defined]
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        asset = evaluation.asset_key.to_user_string()
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        rows = metadata.get("partial_unexpected_list") or metadata.get("observed_value")
        count = metadata.get("unexpected_count")
        failing = f"failing values {rows!r}" + (f" ({count} rows)" if count is not None else "")
        problems.append(
            f"blocking check {asset}:{evaluation.check_name} failed in partition {domain}: {failing}. "
            f'What to do: read the rows with `duckdb {catalog_path(home)} -c "SELECT * FROM {asset} '
            f"WHERE domain = '{domain}'\"`, fix their source files, or rerun with --log-level INFO"
        )
    for event in result.get_step_failure_events():  # type: ignore[attr-defined]
        error = event.event_specific_data.error if event.event_specific_data else None
        message = (error.message if error else "failed").strip().splitlines()[0]
        if "asset check failed" not in message:
            problems.append(f"step {event.step_key} failed in partition {domain}: {message}")
    return problems or [f"partition {domain} failed (see the run in `dagster dev`)"]


def selection_problem(select: str, directory: Path) -> str | None:
    """Why `--select` matches nothing of the code location (unknown asset name), or None."""
    import dagster as dg

    from envfactory_dagster.definitions import build_definitions

    graph = build_definitions(directory, envfactory_home()).resolve_asset_graph()
    names = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    plain = [token.strip("+* ") for token in select.split(",")]
    unknown = [t for t in plain if re.fullmatch(r"[A-Za-z_][\w/]*", t) and t not in names]
    if unknown:
        return f"unknown asset {', '.join(map(repr, unknown))} in --select; assets: {', '.join(names)}"
    try:
        selected = dg.AssetSelection.from_string(select).resolve(graph)
    except Exception as error:  # Dagster raises several types for an unknown key or bad syntax
        first = str(error).strip().split(". ")[0] if str(error).strip() else type(error).__name__
        return f"--select {select!r} is not a valid asset selection ({first}); assets: {', '.join(names)}"
    if not selected:
        return f"--select {select!r} selects no asset; assets: {', '.join(names)}"
    return None


def selected_asset_names(select: str) -> list[str]:
    """The names of the assets an asset selection picks (what `submit` sends the webserver)."""
    import dagster as dg

    from envfactory_dagster.definitions import build_definitions

    graph = build_definitions(resources_dir(), envfactory_home()).resolve_asset_graph()
    keys = dg.AssetSelection.from_string(select).resolve(graph)
    return sorted(key.to_user_string() for key in keys if graph.get(key).is_materializable)


def _materialize(args: argparse.Namespace) -> int:
    from envfactory_dagster.ingest.authentic_resources import list_domains, resource_files

    directory = Path(args.resources_dir).expanduser().resolve() if args.resources_dir else resources_dir()
    if not directory.is_dir():
        print(f"error: resource directory {directory} does not exist", file=sys.stderr)
        return 2
    available = list_domains(directory)
    if not available:
        print(
            f"error: {directory} has no domain folders (expected one sub-folder per domain, each "
            "holding OpenAPI, Swagger, MCP or Markdown API descriptions)",
            file=sys.stderr,
        )
        return 2
    domains = args.domain or available
    unknown = sorted(set(domains) - set(available))
    if unknown:
        print(
            f"error: no domain folder {', '.join(unknown)} in {directory} (have: {', '.join(available)})",
            file=sys.stderr,
        )
        return 2
    empty = [domain for domain in domains if not resource_files(directory, domain)]
    if len(empty) == len(domains):
        print(
            f"error: no resource files in the domain folder(s) {', '.join(empty)} of {directory}",
            file=sys.stderr,
        )
        return 2
    if args.select and (problem := selection_problem(args.select, directory)):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    missing = [path for path in args.gold_flows or [] if not Path(path).expanduser().is_file()]
    if missing:
        print(f"error: gold-flow file(s) not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    if args.gold_flows:  # read by every partition's definitions, in this process and the workers
        os.environ[GOLD_FLOWS_ENV_VAR] = os.pathsep.join(
            str(Path(p).expanduser().resolve()) for p in args.gold_flows
        )
    home = envfactory_home()
    print(f"materializing {len(domains)} domain(s) from {directory} into {home}", flush=True)
    workers = max(1, min(args.workers, len(domains)))
    prepare_instance(home)
    session = uuid.uuid4().hex
    jobs = [
        (
            str(directory),
            home,
            domain,
            args.select,
            args.log_level,
            args.llm_model,
            args.llm_api_base,
            args.require_license,
            session,
        )
        for domain in domains
    ]
    with _progress(args.progress, session, domains):
        if workers == 1:
            outcomes = [materialize_partition(*job) for job in jobs]
        else:
            # spawned, not forked: the progress thread may hold an import lock at fork time, and
            # a forked worker would then wait on it forever (seen: a hang importing rich)
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=spawn) as pool:
                outcomes = list(pool.map(materialize_partition, *zip(*jobs, strict=True)))
    failed = [domain for domain, ok, _, _ in outcomes if not ok]
    for domain, ok, seconds, _ in outcomes:
        print(f"  {domain:<12} {'ok' if ok else 'FAILED'}  {seconds:6.1f} s")
    _print_catalog(home)
    for _, _, _, problems in outcomes:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    if failed:
        print(
            f"error: partitions failed: {', '.join(failed)} (see the run logs in `envfactory ui`)",
            file=sys.stderr,
        )
        return 1
    return 0


def _print_catalog(home: str) -> None:
    """Print the DuckDB catalog path; for an object-store home, build its views from the bucket first
    (steps there do not touch the catalog: they may run on other machines)."""
    from envfactory_dagster.storage.object_store import is_url

    path = catalog_path(home)
    if is_url(home):
        from envfactory_dagster.storage.duckdb_catalog import refresh

        assets = refresh(path, home)
        print(f"DuckDB catalog: {path} ({len(assets)} views over {home}; open it with "
              "envfactory_dagster.storage.duckdb_catalog.connect(path, home=home))")  # fmt: skip
    elif Path(path).exists():
        print(f"DuckDB catalog: {path}")


def _catalog(_: argparse.Namespace) -> int:
    _print_catalog(envfactory_home())
    return 0


def _submit(args: argparse.Namespace) -> int:
    from envfactory_dagster.definitions import ALL_ASSETS_JOB
    from envfactory_dagster.webserver_client import (
        WebserverError,
        launch_partition_run,
        partition_keys,
        wait_for_code_location,
        wait_for_runs,
    )

    url = args.webserver
    assets = None
    if args.select:
        if problem := selection_problem(args.select, resources_dir()):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        assets = selected_asset_names(args.select)
    try:
        location = wait_for_code_location(url, timeout_s=LOCATION_LOAD_TIMEOUT_S)
        domains = args.domain or partition_keys(url, ALL_ASSETS_JOB, location)
        started = time.perf_counter()
        run_ids = [launch_partition_run(url, ALL_ASSETS_JOB, d, assets, location) for d in domains]
        print(f"queued {len(run_ids)} run(s) on {url} (follow them in its UI)", flush=True)
        if args.no_wait:
            for domain, run_id in zip(domains, run_ids, strict=True):
                print(f"  {domain:<12} {run_id}")
            return 0
        infos = wait_for_runs(url, run_ids, timeout_s=args.timeout)
    except (WebserverError, TimeoutError) as error:  # also a code location that failed to load
        print(f"error: {error}", file=sys.stderr)
        return 1
    for info in infos:
        seconds = f"{info.seconds:6.1f} s" if info.seconds is not None else "      -"
        print(f"  {info.partition:<12} {info.status:<8} {seconds}  {info.steps} steps  {info.run_id}")
    print(f"{len(infos)} run(s) in {time.perf_counter() - started:.1f} s")
    _print_catalog(envfactory_home())
    return 0 if all(info.status == "SUCCESS" for info in infos) else 1


def _progress(enabled: bool, session: str, domains: list[str]) -> contextlib.AbstractContextManager:
    """A live line per partition (current step, row counts, outcome) read from the instance."""
    if not enabled:
        return contextlib.nullcontext()
    import dagster as dg

    from envfactory_dagster.cli_progress import LiveProgress, ProgressReader

    return LiveProgress(ProgressReader(dg.DagsterInstance.get(), session, domains))


def _where(_: argparse.Namespace) -> int:
    home = envfactory_home()
    print(f"data directory: {home}  (${HOME_ENV_VAR}, default {DEFAULT_HOME})")
    print(f"DuckDB catalog: {catalog_path(home)}")
    print(f"resource catalog: {resources_dir()}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    """Print the world-quality figures: the stored `world_quality` rows, or (for a data directory
    written before that asset existed) figures measured now from its `verified_envs`."""
    import pandas as pd

    from envfactory_dagster.quality.world_quality import format_report, world_quality_row
    from envfactory_dagster.storage.partition_store import PartitionStore

    home = envfactory_home()
    store = PartitionStore(home)
    domains = args.domain or store.domains("verified_envs")
    if not domains:
        print(f"error: no verified_envs in {home} (run `envfactory materialize` first)", file=sys.stderr)
        return 2
    rows = []
    for domain in domains:
        if store.exists("world_quality", domain) and not args.recompute:
            rows.extend(store.read("world_quality", domain).to_dict("records"))
        elif store.exists("verified_envs", domain):
            registry = store.read("verified_envs", domain).to_dict("records")
            rows.append(world_quality_row(registry, domain, mutation=not args.no_mutation))
    print(f"world quality of {home}")
    print(
        format_report(
            [
                {k: (None if pd.isna(v) else v) if not isinstance(v, list) else v for k, v in r.items()}
                for r in rows
            ]
        )
    )
    return 0


def ui_commands(host: str, port: int, daemon: bool) -> list[list[str]]:
    """The webserver (and daemon) commands of `envfactory ui`, on the installed code location."""
    location = ["-m", "envfactory_dagster.definitions"]
    commands = [[sys.executable, "-m", "dagster_webserver", *location, "-h", host, "-p", str(port)]]
    if daemon:  # schedules, sensors, automation, queued runs and backfills
        commands.append([sys.executable, "-m", "dagster._daemon", "run", *location])
    return commands


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _ui(args: argparse.Namespace) -> int:
    """Start the Dagster webserver and daemon on the instance the CLI writes to, until Ctrl-C."""
    import subprocess

    home = envfactory_home()
    instance = dagster_home(home)
    environment = {**os.environ, "DAGSTER_HOME": str(instance), HOME_ENV_VAR: home}
    print(f"Dagster instance: {instance} (telemetry off: {instance / 'dagster.yaml'})")
    print(f"data directory: {home}; resource catalog: {resources_dir()}")
    print(f"web UI: http://{args.host}:{args.port}  (Ctrl-C stops it)", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)  # a terminated `envfactory ui` stops its children too
    processes = [
        subprocess.Popen(command, env=environment)
        for command in ui_commands(args.host, args.port, not args.no_daemon)
    ]
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    failed = [p.returncode for p in processes if p.returncode not in (0, None, -15)]
    return 1 if failed else 0


def _sql(args: argparse.Namespace) -> int:
    """Run one query on the DuckDB catalog, opened read-only, and print the result as a table (for an
    object-store home, with the home's filesystem registered so its `s3://` views resolve)."""
    import duckdb

    from envfactory_dagster.storage.duckdb_catalog import connect

    home = envfactory_home()
    catalog = catalog_path(home)
    if not Path(catalog).is_file():
        print(f"error: no DuckDB catalog at {catalog} (run `envfactory materialize` first)", file=sys.stderr)
        return 2
    con = connect(catalog, read_only=True, home=home)
    try:
        relation = con.sql(args.query)
        if relation is None:
            print(f"error: not a query (the catalog is opened read-only): {args.query}", file=sys.stderr)
            return 2
        relation.show(max_rows=args.max_rows, max_col_width=args.max_col_width)
    except duckdb.Error as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        con.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="envfactory", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("materialize", help="materialize assets for domain partitions, in-process")
    run.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    run.add_argument(
        "--select", help="a Dagster asset selection, e.g. 'authentic_resources' or 'tag:...' (default: all)"
    )
    run.add_argument("--resources-dir", help="resource catalog: one sub-folder per domain (default: bundled)")
    run.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="partitions run in parallel processes"
    )
    run.add_argument(
        "--llm-model", help="litellm model string: use the LLM backend (default: offline template)"
    )
    run.add_argument("--llm-api-base", help="OpenAI-compatible endpoint for --llm-model (vLLM, Ollama, ...)")
    run.add_argument(
        "--log-level",
        default="CRITICAL",
        help="Dagster console log level (default: quiet, the CLI prints each partition's outcome and "
        "what stopped it; WARNING shows rejects, DEBUG every event)",
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no live line per partition (step, row counts) while the partitions run",
    )
    run.add_argument(
        "--require-license",
        action="store_true",
        help="a resource whose licence neither it nor a SOURCES.json manifest states fails its partition "
        "(default: its license is 'unknown', counted and reported as a warning)",
    )
    run.add_argument(
        "--gold-flows",
        action="append",
        help="a gold call-sequence file to score the tool graph against (repeatable; a domain is "
        "scored against the files whose operations it covers)",
    )
    run.set_defaults(handler=_materialize)
    # parsed by envfactory_dagster.serve (see main); listed here for `envfactory --help`
    commands.add_parser("serve", help="serve registry environments to agents (`envfactory serve mcp --help`)")
    submit = commands.add_parser(
        "submit", help="queue one run per domain on a running deployment (deploy/cluster.sh) and wait"
    )
    submit.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    submit.add_argument(
        "--select",
        help="a Dagster asset selection, e.g. '*verified_envs' (it and its upstream; default: all)",
    )
    submit.add_argument(
        "--webserver",
        default=os.environ.get("ENVFACTORY_WEBSERVER", "http://127.0.0.1:3000"),
        help="the deployment's Dagster webserver (default $ENVFACTORY_WEBSERVER or http://127.0.0.1:3000)",
    )
    submit.add_argument("--no-wait", action="store_true", help="print the run ids and return")
    submit.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for the runs")
    submit.set_defaults(handler=_submit)
    catalog = commands.add_parser(
        "catalog", help="(re)build the DuckDB catalog's views from the data home and print its path"
    )
    catalog.set_defaults(handler=_catalog)
    audit = commands.add_parser("audit", help="print the world-quality figures of each domain partition")
    audit.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    audit.add_argument("--recompute", action="store_true", help="measure from verified_envs, not stored rows")
    audit.add_argument("--no-mutation", action="store_true", help="skip the (slower) rule mutation check")
    audit.set_defaults(handler=_audit)
    ui = commands.add_parser(
        "ui", help="start the Dagster web UI and daemon on the instance the CLI runs write to"
    )
    ui.add_argument("--host", default="127.0.0.1", help="address the webserver listens on")
    ui.add_argument("--port", type=int, default=3000, help="webserver port")
    ui.add_argument(
        "--no-daemon", action="store_true", help="webserver only (no schedules, sensors, backfills)"
    )
    ui.set_defaults(handler=_ui)
    sql = commands.add_parser("sql", help="query the DuckDB catalog read-only and print a table")
    sql.add_argument("query", help='SQL, e.g. "SELECT * FROM README" or "SELECT * FROM envs_per_domain"')
    sql.add_argument("--max-rows", type=int, default=40, help="rows shown (the rest are counted)")
    sql.add_argument("--max-col-width", type=int, default=60, help="characters shown per cell")
    sql.set_defaults(handler=_sql)
    where = commands.add_parser("where", help="print the data directory and the DuckDB catalog path")
    where.set_defaults(handler=_where)
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # its own parser: `serve --help`, `serve mcp --help`
        from envfactory_dagster.serve.__main__ import main as serve_main

        return serve_main(argv[1:], prog="envfactory serve")
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
