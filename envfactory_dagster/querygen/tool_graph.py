"""The tool-dependency graph of one domain: which tool outputs can feed which tool inputs.

Nodes (networkx DiGraph, ids stable across runs, see `graph.model`): tools `env_id::tool`, input
parameters `env_id::tool::in::param`, output leaves `env_id::tool::out::path`. Edges (attribute
`kind`): `consumes` input -> tool (`required`), `produces` tool -> output, `feeds` output ->
input when the output can supply the input's value (`graph.matching`: each keeps its
`provenance`, `score` and `evidence`), and `precedes` tool -> tool, one per (producer, consumer)
pair of `feeds` edges (the best score kept, `links` counting them). Edges cross environments
freely.

Every input gets `user_provided` (would a person type this value?) by offline rules
(`graph.labels`), optionally overridden by `llm_label_fn`. A required input with no producer
that is not user-provided is *unfillable* (listed in `graph_metrics()`); a required id whose
producers all need it themselves (a `plan_id` scope) is `from_state`.

With the authentic resources (`resources=`, rows of `authentic_resources`), matching also reads
what the documents say beyond the environment specs: the parameters' own descriptions and
examples, and OpenAPI response links. The graph is built once per domain (`tool_graph` asset)
and loaded by later stages with `ToolGraph.from_rows`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import networkx as nx

from envfactory_dagster.querygen.graph.labels import label_user_provided, mark_state_scoped_inputs
from envfactory_dagster.querygen.graph.matching import (
    PROVENANCE_SCORE,
    EmbedFn,
    FeedCandidates,
    LLMEdgeFn,
    TextSimilarity,
    drop_loop_backs,
    link_suffix_entity_ids,
    match_described_sources,
    match_examples,
    match_links,
    match_names,
    match_qualified_names,
    match_roles,
    match_same_names,
    match_similar_texts,
    match_with_llm,
    matchable_inputs,
    matchable_outputs,
)
from envfactory_dagster.querygen.graph.model import (
    EnvDescriptor,
    ToolGraph,
    describe_envs,
    edge_attributes,
    tool_of,
)
from envfactory_dagster.querygen.graph.nodes import SourceDocuments, add_env_nodes
from envfactory_dagster.querygen.graph.schema_names import flatten_output_schema, json_type, normalized_name
from envfactory_dagster.querygen.graph.summary import (
    graph_edges_rows,
    graph_metrics,
    graph_nodes_rows,
    out_degrees,
    render_graph_summary,
)
from envfactory_dagster.runtime.loader import VerifiedEnvironment

# inputs as node dicts -> {input node id: user_provided}
LLMLabelFn = Callable[[list[dict[str, Any]]], Mapping[str, bool]]

__all__ = [
    "PROVENANCE_SCORE",
    "EmbedFn",
    "EnvDescriptor",
    "LLMEdgeFn",
    "LLMLabelFn",
    "ToolGraph",
    "build_tool_graph",
    "describe_envs",
    "flatten_output_schema",
    "graph_edges_rows",
    "graph_metrics",
    "graph_nodes_rows",
    "json_type",
    "label_user_provided",
    "normalized_name",
    "out_degrees",
    "render_graph_summary",
]


def build_tool_graph(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
    *,
    resources: Sequence[Mapping[str, Any]] = (),
    similarity_threshold: float = 0.85,
    tfidf_threshold: float = 0.75,
    embed_fn: EmbedFn | None = None,
    llm_edge_fn: LLMEdgeFn | None = None,
    llm_label_fn: LLMLabelFn | None = None,
) -> ToolGraph:
    """The dependency graph of the given environments (registry rows or loaded environments).

    `resources`: `authentic_resources` rows the environments were cut from (their documents are
    read for descriptions, examples and links). `similarity_threshold` applies to `embed_fn`
    cosines (the paper's 0.85 with bge-m3; e.g. `lambda texts: gateway.embed(texts,
    stage="tool_graph")`), `tfidf_threshold` to the offline TF-IDF cosines. `llm_edge_fn` may add
    edges within a service. Rows without a readable spec become `ToolGraph.errors`.
    """
    descriptors, errors = describe_envs(envs)
    sources = SourceDocuments(resources)
    errors += sources.errors
    g = nx.DiGraph()
    for env in descriptors:
        add_env_nodes(g, env, sources)
    if llm_label_fn is not None:
        _apply_llm_labels(g, llm_label_fn, errors)

    link_suffix_entity_ids(g, descriptors)
    outputs, inputs = matchable_outputs(g), matchable_inputs(g)
    found = FeedCandidates(g)
    match_links(g, outputs, inputs, found, sources)
    match_names(g, outputs, inputs, found)
    match_same_names(g, outputs, inputs, found)
    match_examples(g, outputs, inputs, found)
    match_described_sources(g, outputs, inputs, found)
    match_qualified_names(g, outputs, inputs, found)
    similarity = TextSimilarity(g, outputs, inputs)
    match_roles(g, outputs, inputs, found, descriptors, similarity)
    match_similar_texts(
        g,
        similarity,
        found,
        tfidf_threshold=tfidf_threshold,
        embed_fn=embed_fn,
        similarity_threshold=similarity_threshold,
    )
    if llm_edge_fn is not None:
        match_with_llm(g, outputs, inputs, found, descriptors, llm_edge_fn, errors)

    feeds = drop_loop_backs(found.best())
    mark_state_scoped_inputs(g, descriptors, feeds)
    _add_feed_edges(g, feeds)
    return ToolGraph.from_graph(g, descriptors, errors)


def _apply_llm_labels(g: nx.DiGraph, llm_label_fn: LLMLabelFn, errors: list[dict[str, Any]]) -> None:
    inputs = [{"id": n, **a} for n, a in g.nodes(data=True) if a["kind"] == "input"]
    for node_id, value in llm_label_fn(inputs).items():
        if node_id in g and g.nodes[node_id]["kind"] == "input":
            g.nodes[node_id].update(user_provided=bool(value), labelled_by="llm")
        else:
            errors.append(
                {
                    "env_id": None,
                    "stage": "tool_graph",
                    "reason": f"user_provided label for unknown input {node_id!r} ignored",
                }
            )


def _add_feed_edges(
    g: nx.DiGraph, feeds: Mapping[tuple[str, str], tuple[str, float, tuple[str, ...]]]
) -> None:
    """`feeds` edges, and one `precedes` edge per tool pair: its best feed names and scores it."""
    pairs: dict[tuple[str, str], list[tuple[float, str, str, str]]] = {}
    for (o, i), (provenance, score, evidence) in sorted(feeds.items()):
        element = g.nodes[i]["type"] == "array" and g.nodes[o]["type"] != "array"
        g.add_edge(
            o,
            i,
            **edge_attributes(
                kind="feeds", provenance=provenance, score=score, element=element, evidence=evidence
            ),
        )
        pairs.setdefault((tool_of(o), tool_of(i)), []).append((score, provenance, o, i))
    for (a, b), links in sorted(pairs.items()):
        ranked = sorted(links, key=lambda x: (-x[0], x[2], x[3]))
        score, provenance, _, _ = ranked[0]
        evidence = [
            f"{g.nodes[o]['name']} -> {g.nodes[i]['name']} ({p} {s:.2f})" for s, p, o, i in ranked[:5]
        ]
        g.add_edge(
            a,
            b,
            **edge_attributes(
                kind="precedes", provenance=provenance, score=score, links=len(links), evidence=evidence
            ),
        )
