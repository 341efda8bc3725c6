"""Tool-graph recall and precision against gold call sequences, beside the baseline graph code.

Gold sets: every `<name>-spec.json` (a function-calling catalog) with a `<name>-data.json` (its
gold call sequences) below `--gold-dir` (default `../shared/goldflows/nestful`: NESTFUL's three
sets). Each catalog becomes one domain of a temporary resource catalog (a symlink, licensed from
the set's `SOURCES.json` when it has one) and goes through the product's real path: ingest ->
proposals -> specs -> code -> sandboxed verification -> registry -> graph. The graph is built
twice over the same registry: by this tree's `build_tool_graph` (with the authentic resources)
and by the baseline's, the `querygen/tool_graph.py` of `--baseline-ref` (default: the main
commit this work started from) loaded from git into this process. Figures per set (see
`querygen.graph.gold_flows`): parameter-level recall (over all gold edges, and over those whose
two ends the environments kept), tool-level prerequisite recall, precision within each
request's tools (beside it, the same figure for a graph that is exactly the union of the gold
pairs: what a graph built without the requests scores at full pair recall; and for the graph with
its mutual edges ordered by the gold: what any rule ordering them could reach), gold sequences
`validate_chain` accepts / the sampler can draw, tool -> tool out-degree, build seconds. Then the
precision-only trade: the new graph without its weak evidence (value roles, text similarity,
one-word names; `graph.matching.is_weak`), its recall and precision beside the full graph's.
Run: `.venv/bin/python benchmarks/graph_recall.py [--gold-dir DIR] [--baseline-ref REF] [-v]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.querygen.graph.gold_flows import (
    evaluate_gold_flows,
    find_gold_flow_sets,
    link_catalog,
    load_gold_flows,
)
from envfactory_dagster.querygen.graph.matching import is_weak
from envfactory_dagster.querygen.graph.model import ToolGraph, tool_of
from envfactory_dagster.querygen.tool_graph import build_tool_graph

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GOLD_DIR = REPO.parent / "shared" / "goldflows" / "nestful"
BASELINE_REF = "9db1d50"  # main before the graph of issue 15
FIGURES = (
    ("param_recall", "parameter-level recall (all gold edges)"),
    ("param_recall_kept", "parameter-level recall (gold edges whose ends the envs kept)"),
    ("prerequisite_recall", "tool-level prerequisite recall (dependent calls)"),
    ("pair_recall", "tool-level recall (distinct gold tool pairs)"),
    ("precision", "precision within request tool sets"),
    ("precision_union_of_gold", "  the same for the union of all gold pairs (ceiling)"),
    ("precision_oriented_by_gold", "  the same, mutual edges kept in the gold's direction only"),
    ("precision_forward", "precision within request tool sets, earlier -> later calls"),
    ("precision_union_of_gold_forward", "  the same for the union of all gold pairs (ceiling)"),
    ("valid_share", "gold sequences validate_chain accepts"),
    ("producible_share", "gold sequences the sampler can draw"),
)
TRADE_FIGURES = ("param_recall", "prerequisite_recall", "precision")


def baseline_module(ref: str) -> ModuleType:
    """The baseline's tool_graph module, read from git and imported under its own name."""
    source = subprocess.run(
        ["git", "show", f"{ref}:envfactory_dagster/querygen/tool_graph.py"],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_tool_graph.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_tool_graph", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_tool_graph"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def baseline_graph(baseline: ModuleType, registry: list[dict[str, Any]]) -> ToolGraph:
    """The baseline builder's edges with this tree's lookups (the samplers' interface moved on)."""
    old = baseline.build_tool_graph(registry)
    return ToolGraph.from_graph(old.graph, list(old.envs.values()), domain=old.domain)


def without_weak_edges(tg: ToolGraph, *, mutual_only: bool = False) -> ToolGraph:
    """The graph without its weak `feeds` edges (`mutual_only`: only those between two tools
    that feed each other, the symmetry no document orders), and without the tool -> tool edges
    only they made: points of the precision-only trade."""
    g = tg.graph.copy()
    weak = [
        (o, i)
        for o, i, a in g.edges(data=True)
        if a["kind"] == "feeds"
        and is_weak(a["provenance"], a["score"])
        and (not mutual_only or g.has_edge(tool_of(i), tool_of(o)))
    ]
    g.remove_edges_from(weak)
    fed = {(tool_of(o), tool_of(i)) for o, i, a in g.edges(data=True) if a["kind"] == "feeds"}
    g.remove_edges_from(
        [(a, b) for a, b, x in g.edges(data=True) if x["kind"] == "precedes" and (a, b) not in fed]
    )
    return ToolGraph.from_graph(g, list(tg.envs.values()), domain=tg.domain)


def out_degree(graph: Any) -> float:
    degrees = [len(graph.tool_successors[t]) for t in graph.tools]
    return float(statistics.median(degrees)) if degrees else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold-dir", type=Path, default=DEFAULT_GOLD_DIR)
    parser.add_argument("--baseline-ref", default=BASELINE_REF)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the missed gold edges")
    args = parser.parse_args()
    baseline = baseline_module(args.baseline_ref)
    from sklearn.feature_extraction.text import TfidfVectorizer  # both builds use it: import before timing

    TfidfVectorizer()
    sets = find_gold_flow_sets(args.gold_dir)
    if not sets:
        sys.exit(f"no <name>-spec.json with a <name>-data.json below {args.gold_dir}")
    resources_dir = Path(tempfile.mkdtemp(prefix="gold_catalogs_"))
    summary: dict[str, Any] = {}
    for gold_set in sets:
        link_catalog(gold_set, resources_dir)
        t0 = time.perf_counter()
        resources = ingest_domain(resources_dir, gold_set.domain).resources
        registry = registry_for_domain(resources_dir, gold_set.domain)
        t1 = time.perf_counter()
        requests = load_gold_flows(gold_set.gold)
        graphs = {}
        seconds = {}
        for name in ("baseline", "new"):
            start = time.perf_counter()
            graphs[name] = (
                baseline_graph(baseline, registry)
                if name == "baseline"
                else build_tool_graph(registry, resources=resources)
            )
            seconds[name] = time.perf_counter() - start
        figures = {name: evaluate_gold_flows(graph, requests) for name, graph in graphs.items()}
        tools = sum(r["tool_count"] for r in registry)
        operations = sum(r["operation_count"] for r in resources)
        print(
            f"\n## {gold_set.domain}: {operations} operations -> {len(registry)} verified environments, "
            f"{tools} tools ({t1 - t0:.1f} s); {figures['new']['covered_requests']} of "
            f"{figures['new']['requests']} requests covered, {figures['new']['gold_param_edges']} "
            f"distinct gold edges ({figures['new']['param_edges_with_both_ends']} with both ends kept)"
        )
        print(f"{'figure':<62} {'baseline':>9} {'new':>9}")
        for key, label in FIGURES:
            print(f"{label:<62} {figures['baseline'][key]:>9.3f} {figures['new'][key]:>9.3f}")
        degrees = [out_degree(graphs[name]) for name in ("baseline", "new")]
        print(f"{'median tool -> tool out-degree':<62} {degrees[0]:>9.1f} {degrees[1]:>9.1f}")
        print(f"{'graph build seconds':<62} {seconds['baseline']:>9.2f} {seconds['new']:>9.2f}")
        trade = {
            "new_no_weak_mutual": evaluate_gold_flows(
                without_weak_edges(graphs["new"], mutual_only=True), requests
            ),
            "new_strong_only": evaluate_gold_flows(without_weak_edges(graphs["new"]), requests),
        }
        print(f"{'precision-only trade: the new graph, weak evidence dropped':<62}", end="")
        print(f" {'none':>9} {'mutual':>9} {'all':>9}")
        for key, label in FIGURES:
            if key not in TRADE_FIGURES:
                continue
            cells = [figures["new"][key]] + [t[key] for t in trade.values()]
            print(f"  {label:<60}" + "".join(f" {c:>9.3f}" for c in cells))
        if args.verbose:
            for line in figures["new"]["missed_param_edges"]:
                print(f"  missed: {line}")
        summary[gold_set.domain] = {
            name: {key: figures[name][key] for key, _ in FIGURES}
            | {"median_out_degree": out_degree(graphs[name])}
            for name in graphs
        } | {name: {key: t[key] for key, _ in FIGURES} for name, t in trade.items()}
    print("\n" + json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
