"""Refinement and export on the bundled catalog, offline: per-stage seconds and an output digest.

For each domain: registry rows (from `--verified-envs DIR` holding `domain=*/data.parquet`, else the
template EnvGen chain of benchmarks/querygen.py without sandboxed verification) -> QueryGen
trajectories -> refine_trajectories -> split_and_filter -> build_sft_rows -> build_rl_tasks, each
stage timed (CPU seconds of this process, one core). The sha256 of the canonical JSON of every
stage's output is printed per domain, so two code versions can be checked for identical results.
Run: `.venv/bin/python benchmarks/refine_export.py [--domain D] [--verified-envs DIR] [--chains N]`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from envfactory_dagster.export.rl_tasks import build_rl_tasks
from envfactory_dagster.export.sft import build_sft_rows
from envfactory_dagster.export.splits import split_and_filter
from envfactory_dagster.ingest.authentic_resources import default_resources_dir, list_domains
from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.querygen.tool_chains import sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from envfactory_dagster.querygen.trajectories import execute_chains
from envfactory_dagster.refine.refined_trajectories import refine_trajectories
from envfactory_dagster.runtime.loader import load_environment_class

STAGES = ("refine", "split", "sft", "rl")


def verified_env_rows(domain: str, verified_envs: Path | None) -> list[dict[str, Any]]:
    """`verified_envs` rows of a domain: read from a pipeline run, or built by the template chain."""
    if verified_envs is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from querygen import registry_rows

        return registry_rows(domain)
    import pandas as pd

    path = verified_envs / f"domain={domain}" / "data.parquet"
    if not path.exists():
        return []
    frame = pd.read_parquet(path)
    return [
        {k: v.tolist() if hasattr(v, "tolist") else v for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def run_domain(envs: list[dict[str, Any]], chains: int, seed: int) -> tuple[dict[str, float], str, int]:
    """(CPU seconds per stage, digest of all outputs, number of trajectories) for one domain."""
    graph = build_tool_graph(envs)
    trajectories, _, _ = execute_chains(sample_chains(graph, seed=seed, n_chains=chains), envs, seed=seed)
    for env in envs:  # load the environment modules outside the timed stages
        load_environment_class(env["source"], env["code_sha256"], env["class_name"])
    seconds: dict[str, float] = {}
    start = time.process_time()
    refined = refine_trajectories(trajectories, envs, seed=seed)
    seconds["refine"] = time.process_time() - start
    start = time.process_time()
    split = split_and_filter(refined[0], envs, seed=seed, decontamination="tag")
    seconds["split"] = time.process_time() - start
    start = time.process_time()
    sft = build_sft_rows(split[0], envs)
    seconds["sft"] = time.process_time() - start
    start = time.process_time()
    rl = build_rl_tasks(split[0], envs)
    seconds["rl"] = time.process_time() - start
    outputs = canonical_json({"refine": refined, "split": split, "sft": sft, "rl": rl})
    return seconds, hashlib.sha256(outputs.encode()).hexdigest()[:16], len(trajectories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domain", action="append", help="domain(s) to run (default: all)")
    parser.add_argument("--verified-envs", type=Path, help="directory with domain=*/data.parquet")
    parser.add_argument("--chains", type=int, default=540)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    totals = dict.fromkeys(STAGES, 0.0)
    for domain in args.domain or list_domains(default_resources_dir()):
        envs = verified_env_rows(domain, args.verified_envs)
        if not envs:
            continue
        seconds, digest, count = run_domain(envs, args.chains, args.seed)
        for stage in STAGES:
            totals[stage] += seconds[stage]
        stages = " ".join(f"{s} {seconds[s]:.2f}s" for s in STAGES)
        print(f"{domain}: {count} trajectories | {stages} | total {sum(seconds.values()):.2f}s | {digest}")
    stages = " ".join(f"{s} {totals[s]:.2f}s" for s in STAGES)
    print(f"all domains: {stages} | total {sum(totals.values()):.2f}s")


if __name__ == "__main__":
    main()
