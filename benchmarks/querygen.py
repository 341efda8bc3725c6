"""QueryGen on the whole bundled catalog, offline: graph -> chains -> trajectories, timed per domain.

Registry rows are built by the template EnvGen chain, sandboxed verification included
(`envgen.stages.registry_for_domain`). Prints per-domain counts and seconds, the
acceptance figures, and replays every trajectory in a fresh process.
Run: `.venv/bin/python benchmarks/querygen.py [n_chains]`.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.ingest.authentic_resources import default_resources_dir, list_domains
from envfactory_dagster.querygen.tool_chains import compare_samplers, sample_chains
from envfactory_dagster.querygen.tool_graph import build_tool_graph, graph_metrics
from envfactory_dagster.querygen.trajectories import execute_chains
from envfactory_dagster.querygen.trajectory_quality import near_duplicate_share


def registry_rows(domain: str) -> list[dict[str, Any]]:
    return registry_for_domain(default_resources_dir(), domain)


REPLAY = """
import json, sys
from envfactory_dagster.querygen.replay import replay_matches_record
from envfactory_dagster.querygen.trajectories import load_envs
data = json.load(open(sys.argv[1]))
envs = load_envs(data["envs"])[0]
results = [(t["id"], *replay_matches_record(t["trajectory_json"], envs)) for t in data["trajectories"]]
bad = [(i, p) for i, ok, p in results if not ok]
print(json.dumps({"replayed": len(data["trajectories"]), "failed": len(bad), "first": bad[:3]}))
"""


def main(n_chains: int = 540, seed: int = 7) -> None:
    all_rows: list[dict[str, Any]] = []
    all_envs: list[dict[str, Any]] = []
    for domain in list_domains(default_resources_dir()):
        envs = registry_rows(domain)
        if not envs:
            continue
        t0 = time.perf_counter()
        graph = build_tool_graph(envs)
        t1 = time.perf_counter()
        chains = sample_chains(graph, seed=seed, n_chains=n_chains)
        t2 = time.perf_counter()
        rows, _, metrics = execute_chains(chains, envs, seed=seed, graph=graph)
        t3 = time.perf_counter()
        samplers = compare_samplers(graph, seed=seed, n_chains=n_chains)
        gm = graph_metrics(graph)
        print(
            f"{domain}: envs {len(envs)} tools {gm['tools']} feeds {gm['feed_edges_by_provenance']} "
            f"unfillable {gm['unfillable_inputs_count']} user_provided {gm['user_provided_share']} | "
            f"chains {len(chains)} -> trajectories {len(rows)} rejected {metrics['rejected_by_kind']} | "
            f"graph {t1 - t0:.2f}s chains {t2 - t1:.2f}s execution {t3 - t2:.2f}s | "
            f"valid multi-step topology {samplers['topology_valid_multistep']} vs random walk "
            f"{samplers['random_walk_valid_multistep']} of {n_chains}"
        )
        all_rows += rows
        all_envs += envs
    calls = [r["call_count"] for r in all_rows]
    print(
        json.dumps(
            {
                "trajectories": len(all_rows),
                "multi_env_share": round(sum(r["env_count"] > 1 for r in all_rows) / len(all_rows), 4),
                "median_calls": statistics.median(calls),
                "multi_turn_share": round(sum(r["turn_count"] >= 2 for r in all_rows) / len(all_rows), 4),
                "exact_duplicates": len(all_rows) - len({r["calls_signature"] for r in all_rows}),
                "near_duplicate_share": near_duplicate_share(all_rows),
                "query_leaks": sum(r["query_leaks_tool_name"] for r in all_rows),
                "missing_user_values": sum(r["missing_user_values"] for r in all_rows),
            }
        )
    )
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"trajectories": all_rows, "envs": all_envs}, handle)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", REPLAY, handle.name], capture_output=True, text=True, check=True
    )
    print("fresh-process replay:", done.stdout.strip(), f"{time.perf_counter() - t0:.1f}s")
    Path(handle.name).unlink()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 540)
