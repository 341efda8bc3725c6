"""`envfactory`: materialize the pipeline in-process and tell where its data lives.

    envfactory materialize [--domain D]... [--select ASSET_SELECTION] [--resources-dir DIR] [--workers N]
    envfactory submit [--domain D]... [--select ASSET]... [--webserver URL]
    envfactory catalog [--sql QUERY]
    envfactory where
    envfactory audit [--domain D]... [--no-mutation]
    envfactory serve mcp --env-id ENV_ID [--transport stdio|http --port N]

A thin layer over Dagster: it builds the same definitions as the code location (the same
resource config), runs each domain partition with `materialize()` against the Dagster instance
in `$ENVFACTORY_HOME/dagster` (so runs also show in `dagster dev` pointed at it). `submit` queues
one run per domain on a running deployment (deploy/cluster.sh) through its webserver instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from envfactory_dagster.settings import (
    DEFAULT_HOME,
    GOLD_FLOWS_ENV_VAR,
    HOME_ENV_VAR,
    catalog_path,
    envfactory_home,
    resources_dir,
)

DAGSTER_YAML = "telemetry:\n  enabled: false\n"


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
) -> tuple[str, bool, float]:
    """Run every selected asset (with its checks) for one domain partition; returns (domain, ok, seconds)."""
    import dagster as dg

    from envfactory_dagster.definitions import build_definitions

    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    started = time.perf_counter()
    defs = build_definitions(Path(resources_directory), home, llm_model, llm_api_base)
    assets = list(defs.assets or [])
    result = dg.materialize(
        assets,
        selection=select,
        partition_key=domain,
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
        raise_on_error=False,
        tags={"envfactory/trigger": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    return domain, result.success, time.perf_counter() - started


def _materialize(args: argparse.Namespace) -> int:
    from envfactory_dagster.ingest.authentic_resources import list_domains

    directory = Path(args.resources_dir).expanduser().resolve() if args.resources_dir else resources_dir()
    if not directory.is_dir():
        print(f"error: resource directory {directory} does not exist", file=sys.stderr)
        return 2
    available = list_domains(directory)
    domains = args.domain or available
    unknown = sorted(set(domains) - set(available))
    if unknown:
        print(
            f"error: no domain folder {', '.join(unknown)} in {directory} (have: {', '.join(available)})",
            file=sys.stderr,
        )
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
    jobs = [
        (str(directory), home, domain, args.select, args.log_level, args.llm_model, args.llm_api_base)
        for domain in domains
    ]
    if workers == 1:
        outcomes = [materialize_partition(*job) for job in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(materialize_partition, *zip(*jobs, strict=True)))
    failed = [domain for domain, ok, _ in outcomes if not ok]
    for domain, ok, seconds in outcomes:
        print(f"  {domain:<12} {'ok' if ok else 'FAILED'}  {seconds:6.1f} s")
    _print_catalog(home)
    if failed:
        print(
            f"error: partitions failed: {', '.join(failed)} (see the run logs in `dagster dev`)",
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
    else:
        print(f"DuckDB catalog: {path}")


def _catalog(args: argparse.Namespace) -> int:
    home = envfactory_home()
    _print_catalog(home)
    if args.sql:
        from envfactory_dagster.storage.duckdb_catalog import query

        for row in query(catalog_path(home), args.sql, home=home):
            print("\t".join(str(value) for value in row))
    return 0


def _submit(args: argparse.Namespace) -> int:
    from envfactory_dagster.definitions import ALL_ASSETS_JOB
    from envfactory_dagster.webserver_client import (
        WebserverError,
        code_location,
        launch_partition_run,
        partition_keys,
        wait_for_runs,
    )

    url = args.webserver
    try:
        location = code_location(url)
        domains = args.domain or partition_keys(url, ALL_ASSETS_JOB, location)
        started = time.perf_counter()
        run_ids = [launch_partition_run(url, ALL_ASSETS_JOB, d, args.select, location) for d in domains]
        print(f"queued {len(run_ids)} run(s) on {url} (follow them in its UI)", flush=True)
        if args.no_wait:
            for domain, run_id in zip(domains, run_ids, strict=True):
                print(f"  {domain:<12} {run_id}")
            return 0
        infos = wait_for_runs(url, run_ids, timeout_s=args.timeout)
    except (WebserverError, TimeoutError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for info in infos:
        seconds = f"{info.seconds:6.1f} s" if info.seconds is not None else "      -"
        print(f"  {info.partition:<12} {info.status:<8} {seconds}  {info.steps} steps  {info.run_id}")
    print(f"{len(infos)} run(s) in {time.perf_counter() - started:.1f} s")
    _print_catalog(envfactory_home())
    return 0 if all(info.status == "SUCCESS" for info in infos) else 1


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


def _serve(args: argparse.Namespace) -> int:
    from envfactory_dagster.serve.__main__ import main as serve_main

    return serve_main(args.serve_args)


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
        "--log-level", default="WARNING", help="Dagster console log level (DEBUG shows every event)"
    )
    run.add_argument(
        "--gold-flows",
        action="append",
        help="a gold call-sequence file to score the tool graph against (repeatable; a domain is "
        "scored against the files whose operations it covers)",
    )
    run.set_defaults(handler=_materialize)
    serve = commands.add_parser(
        "serve", help="serve registry environments to agents (`envfactory serve mcp --help`)", add_help=False
    )
    serve.add_argument("serve_args", nargs=argparse.REMAINDER)
    serve.set_defaults(handler=_serve)
    submit = commands.add_parser(
        "submit", help="queue one run per domain on a running deployment (deploy/cluster.sh) and wait"
    )
    submit.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    submit.add_argument("--select", action="append", help="an asset to materialize (repeatable; default all)")
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
    catalog.add_argument("--sql", help="then run this read-only query and print its rows")
    catalog.set_defaults(handler=_catalog)
    audit = commands.add_parser("audit", help="print the world-quality figures of each domain partition")
    audit.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    audit.add_argument("--recompute", action="store_true", help="measure from verified_envs, not stored rows")
    audit.add_argument("--no-mutation", action="store_true", help="skip the (slower) rule mutation check")
    audit.set_defaults(handler=_audit)
    where = commands.add_parser("where", help="print the data directory and the DuckDB catalog path")
    where.set_defaults(handler=_where)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
