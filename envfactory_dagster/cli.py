"""`envfactory`: materialize the pipeline in-process and tell where its data lives.

    envfactory materialize [--domain D]... [--select ASSET_SELECTION] [--resources-dir DIR] [--workers N]
    envfactory where
    envfactory audit [--domain D]... [--no-mutation]
    envfactory serve mcp --env-id ENV_ID [--transport stdio|http --port N]

A thin layer over Dagster: it builds the same definitions as the code location (the same
resource config), runs each domain partition with `materialize()` against the Dagster instance
in `$ENVFACTORY_HOME/dagster` (so runs also show in `dagster dev` pointed at it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
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
    require_license: bool = False,
    session: str = "",
) -> tuple[str, bool, float, list[str]]:
    """Run every selected asset (with its checks) for one domain partition; returns (domain, ok,
    seconds, problems): a problem is a one-line account of a failed blocking check or step."""
    import dagster as dg

    from envfactory_dagster.definitions import build_definitions

    os.environ["DAGSTER_HOME"] = str(dagster_home(home))
    started = time.perf_counter()
    defs = build_definitions(
        Path(resources_directory), home, llm_model, llm_api_base, require_license=require_license
    )
    assets = list(defs.assets or [])
    result = dg.materialize(
        assets,
        selection=select,
        partition_key=domain,
        instance=dg.DagsterInstance.get(),
        resources=defs.resources,
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
            with ProcessPoolExecutor(max_workers=workers) as pool:
                outcomes = list(pool.map(materialize_partition, *zip(*jobs, strict=True)))
    failed = [domain for domain, ok, _, _ in outcomes if not ok]
    for domain, ok, seconds, _ in outcomes:
        print(f"  {domain:<12} {'ok' if ok else 'FAILED'}  {seconds:6.1f} s")
    if Path(catalog_path(home)).exists() or "://" in home:
        print(f"DuckDB catalog: {catalog_path(home)}")
    for _, _, _, problems in outcomes:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
    if failed:
        print(f"error: partitions failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


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
    audit = commands.add_parser("audit", help="print the world-quality figures of each domain partition")
    audit.add_argument("--domain", action="append", help="a domain partition (repeatable; default: all)")
    audit.add_argument("--recompute", action="store_true", help="measure from verified_envs, not stored rows")
    audit.add_argument("--no-mutation", action="store_true", help="skip the (slower) rule mutation check")
    audit.set_defaults(handler=_audit)
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
