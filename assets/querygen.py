"""Stage group `querygen`: tool-dependency graph -> sampled chains -> executed multi-turn trajectories."""

# No `from __future__ import annotations` here: Dagster reads the `context` annotation at runtime.

from collections import Counter

import dagster as dg
import pandas as pd

from assets.checks import check_results, check_specs
from assets.frames import records
from assets.metadata import as_metadata
from envfactory_dagster.lineage import CODE_VERSION, derived_seed
from envfactory_dagster.llm.config import cache_dir_for_home
from envfactory_dagster.quality.guards import apply_guards
from envfactory_dagster.quality.suites import (
    tool_chains_partition_suite,
    tool_chains_suite,
    trajectories_partition_suite,
    trajectories_suite,
)
from envfactory_dagster.querygen.graph.gold_flows import gold_flow_metrics
from envfactory_dagster.querygen.graph.llm_linking import LLMLinker
from envfactory_dagster.querygen.replay import replay_matches_record
from envfactory_dagster.querygen.tool_chains import chain_rows, compare_samplers, sample_chains
from envfactory_dagster.querygen.tool_graph import (
    ToolGraph,
    build_tool_graph,
    graph_edges_rows,
    graph_metrics,
    graph_nodes_rows,
    render_graph_summary,
)
from envfactory_dagster.querygen.trajectories import (
    execute_chains,
    load_envs,
    partition_figures,
    rewrite_queries_llm,
)
from envfactory_dagster.querygen.trajectory_quality import near_duplicate_flags, trajectory_guards
from resources.llm import LLM_POOL, LLMResource
from resources.settings import EnvFactorySettings

GROUP = "querygen"


class ToolChainsConfig(dg.Config):
    """Right-sized, topology-aware sampling (`querygen.tool_chains`; the paper's resolution with
    task sizes drawn from a distribution instead of a fixed cap)."""

    n_chains: int = 700
    max_envs: int = 3
    max_worlds: int = 2
    max_depth: int = 2
    max_nodes: int = 10
    max_calls_per_turn: int = 4
    p_skip_optional: float = 0.6
    p_skip_satisfied: float = 0.6
    p_second_service: float = 0.15


def _tool_graph(
    envs: list[dict], resources: list[dict], settings: EnvFactorySettings, llm: LLMResource
) -> tuple[ToolGraph, dict]:
    """The graph of a domain, and the LLM usage that built it. With the LLM backend, matching adds
    embedding similarity (an `embedder` model) and the add-only refinement within each service
    (a `linker` model)."""
    if settings.backend != "llm":
        return build_tool_graph(envs, resources=resources), {}
    with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
        embedder = gateway.is_configured("embedder")
        linker = LLMLinker(gateway) if gateway.is_configured("linker") else None
        graph = build_tool_graph(
            envs,
            resources=resources,
            embed_fn=(lambda texts: gateway.embed(texts, stage="tool_graph")) if embedder else None,
            llm_edge_fn=linker,
        )
        usage = gateway.usage().as_metadata()
    if linker is not None:
        usage.update(
            llm_links_proposed=linker.proposed,
            llm_links_dropped=linker.dropped,
            llm_link_problems=linker.problems[:50],
        )
    return graph, usage


def _stored_graph(edges: pd.DataFrame, nodes: pd.DataFrame, verified_envs: pd.DataFrame) -> ToolGraph:
    """The graph as `tool_graph` materialized it (built once per domain, read by the stages after)."""
    return ToolGraph.from_rows(records(edges), records(nodes), records(verified_envs))


def build_querygen_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    common = {"partitions_def": partitions, "group_name": GROUP, "code_version": CODE_VERSION}

    @dg.multi_asset(
        outs={
            "tool_graph": dg.AssetOut(
                description="Edges of the tool-dependency graph (param->tool, tool->param, tool->tool, "
                "param->param) with provenance and score.",
                code_version=CODE_VERSION,
            ),
            "tool_graph_nodes": dg.AssetOut(
                description="Nodes of the tool-dependency graph: tools and flattened parameters, with "
                "`user_provided` labels on inputs.",
                code_version=CODE_VERSION,
            ),
        },
        partitions_def=partitions,
        group_name=GROUP,
        pool=LLM_POOL,
    )
    def tool_graph(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        verified_envs: pd.DataFrame,
        authentic_resources: pd.DataFrame,
    ):
        """Matching that reads the API documents: entity-aware names, keys, the documents' own
        links, examples and descriptions that name a source tool, value roles and TF-IDF similarity
        (offline), plus embeddings and add-only LLM links within each service with the LLM backend.
        Every edge keeps its evidence. Gold-flow files (setting `gold_flows`) covering the domain
        are scored here."""
        graph, usage = _tool_graph(records(verified_envs), records(authentic_resources), settings, llm)
        metadata = {**graph_metrics(graph), **usage}
        gold = gold_flow_metrics(graph, settings.gold_flows)
        if gold:
            metadata["gold_flows"] = gold
        yield dg.Output(
            pd.DataFrame(graph_edges_rows(graph)),
            output_name="tool_graph",
            metadata={**as_metadata(metadata), "summary": dg.MetadataValue.md(render_graph_summary(graph))},
        )
        yield dg.Output(pd.DataFrame(graph_nodes_rows(graph)), output_name="tool_graph_nodes")

    @dg.asset(
        **common,
        check_specs=check_specs("tool_chains", tool_chains_suite, blocking=True, partitions=partitions)
        + check_specs("tool_chains", tool_chains_partition_suite, blocking=True, partitions=partitions),
    )
    def tool_chains(
        context: dg.AssetExecutionContext,
        config: ToolChainsConfig,
        settings: EnvFactorySettings,
        tool_graph: pd.DataFrame,
        tool_graph_nodes: pd.DataFrame,
        verified_envs: pd.DataFrame,
    ):
        """Seeded topology-aware chains split into turns; invalid draws are counted, not kept."""
        graph = _stored_graph(tool_graph, tool_graph_nodes, verified_envs)
        seed = derived_seed(settings.seed, context.partition_key, "tool_chains")
        options = config.model_dump(exclude={"n_chains"})
        chains = sample_chains(graph, seed=seed, n_chains=config.n_chains, **options)
        valid = [c for c in chains if c.valid]
        comparison = compare_samplers(graph, seed=seed, n_chains=config.n_chains, **options)
        frame = pd.DataFrame(chain_rows(valid))
        figures = {"chains": len(valid), "valid_share": round(len(valid) / len(chains), 4) if chains else 1.0}
        metadata = {
            **figures,
            "sampled": len(chains),
            "invalid_dropped": len(chains) - len(valid),
            "sampler_comparison": comparison,
        }
        yield dg.Output(frame, metadata=as_metadata(metadata))
        yield from check_results("tool_chains", tool_chains_suite, frame, context.partition_key)
        yield from check_results(
            "tool_chains", tool_chains_partition_suite, pd.DataFrame([figures]), context.partition_key
        )

    @dg.multi_asset(
        outs={
            "trajectories": dg.AssetOut(
                description="Executed multi-turn trajectories: initial states, per-turn user query, gold "
                "calls with argument sources, outputs, state diffs, final states.",
                code_version=CODE_VERSION,
            ),
            "trajectory_rejects": dg.AssetOut(
                description="Chains whose execution was rejected (tool error, unbound input, leak, "
                "duplicate), each with its reason.",
                code_version=CODE_VERSION,
            ),
        },
        partitions_def=partitions,
        group_name=GROUP,
        pool=LLM_POOL,
        check_specs=check_specs("trajectories", trajectories_suite, blocking=True, partitions=partitions)
        + check_specs("trajectories", trajectories_partition_suite, blocking=True, partitions=partitions),
    )
    def trajectories(
        context: dg.AssetExecutionContext,
        settings: EnvFactorySettings,
        llm: LLMResource,
        tool_chains: pd.DataFrame,
        tool_graph: pd.DataFrame,
        tool_graph_nodes: pd.DataFrame,
        verified_envs: pd.DataFrame,
    ):
        """Per turn a user query. Template: first person, values from the state, never a tool or
        parameter name. LLM: a persona, then per-turn queries, held to the same checks."""
        envs, _ = load_envs(records(verified_envs))
        seed = derived_seed(settings.seed, context.partition_key, "trajectories")
        graph = _stored_graph(tool_graph, tool_graph_nodes, verified_envs)  # the chains' graph
        rows, rejects, metrics = execute_chains(
            records(tool_chains), list(envs.values()), seed=seed, graph=graph
        )
        if settings.backend == "llm":
            with llm.gateway(cache_dir_for_home(settings.home)) as gateway:
                rows, problems = rewrite_queries_llm(rows, envs, gateway)
                metrics.update({**gateway.usage().as_metadata(), "llm_query_problems": problems[:50]})
        for row in rows:
            row["replay_ok"] = replay_matches_record(row["trajectory_json"], envs)[0]
        flags = near_duplicate_flags(rows)
        for row, flag in zip(rows, flags, strict=True):
            row["near_duplicate"] = flag
        metrics["near_duplicate_share"] = round(sum(flags) / len(flags), 4) if flags else 0.0
        rows, dropped = apply_guards(
            rows, trajectory_guards(), stage="trajectories", carry=("id", "chain_id", "domain", "seed")
        )
        rejects += dropped
        metrics["rejected_by_kind"] = dict(
            Counter(metrics["rejected_by_kind"]) + Counter(r["kind"] for r in dropped)
        )
        frame = pd.DataFrame(rows)
        figures = partition_figures(rows, rejects, len(tool_chains))
        yield dg.Output(frame, output_name="trajectories", metadata=as_metadata({**metrics, **figures}))
        yield dg.Output(
            pd.DataFrame(rejects),
            output_name="trajectory_rejects",
            metadata=as_metadata({"dagster/row_count": len(rejects), **metrics["rejected_by_kind"]}),
        )
        yield from check_results("trajectories", trajectories_suite, frame, context.partition_key)
        yield from check_results(
            "trajectories", trajectories_partition_suite, pd.DataFrame([figures]), context.partition_key
        )

    return [tool_graph, tool_chains, trajectories]
