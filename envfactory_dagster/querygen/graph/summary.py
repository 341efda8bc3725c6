"""The graph as rows (`tool_graph` edges, `tool_graph_nodes`), metrics and a Markdown summary."""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from typing import Any

from envfactory_dagster.lineage import content_id
from envfactory_dagster.querygen.graph.model import EDGE_ATTRIBUTES, NODE_ATTRIBUTES, ToolGraph


def graph_nodes_rows(tg: ToolGraph) -> list[dict[str, Any]]:
    """One row per node: `id`, every attribute of `NODE_ATTRIBUTES` (null where empty) and
    `unfillable` (a required input nothing fills)."""
    unfillable = set(tg.unfillable_inputs())
    return [
        {
            "id": node_id,
            **{key: (None if a[key] == "" else a[key]) for key in NODE_ATTRIBUTES},
            "unfillable": node_id in unfillable,
        }
        for node_id, a in sorted(tg.graph.nodes(data=True))
    ]


def graph_edges_rows(tg: ToolGraph) -> list[dict[str, Any]]:
    """One row per edge: id, domain, env_id (of the source), target_env_id, source, target, name,
    every attribute of `EDGE_ATTRIBUTES` (`evidence` a list of sentences), cross_env."""
    g = tg.graph
    rows = []
    for s, t, a in sorted(g.edges(data=True), key=lambda e: (e[0], e[1])):
        rows.append(
            {
                "id": content_id([s, t, a["kind"]], "edge_"),
                "domain": tg.domain,
                "env_id": g.nodes[s]["env_id"],
                "target_env_id": g.nodes[t]["env_id"],
                "source": s,
                "target": t,
                "name": f"{g.nodes[s]['name']} -> {g.nodes[t]['name']}",
                **{key: a[key] for key in EDGE_ATTRIBUTES},
                "evidence": list(a["evidence"]),
                "score": float(a["score"]),
                "cross_env": g.nodes[s]["env_id"] != g.nodes[t]["env_id"],
            }
        )
    return rows


def out_degrees(tg: ToolGraph) -> dict[str, float]:
    """Tool -> tool edges per tool: median, mean and maximum out-degree."""
    degrees = [len(tg.tool_successors[t]) for t in tg.tools]
    if not degrees:
        return {"median": 0.0, "mean": 0.0, "max": 0.0}
    return {
        "median": float(statistics.median(degrees)),
        "mean": round(statistics.mean(degrees), 2),
        "max": float(max(degrees)),
    }


def graph_metrics(tg: ToolGraph) -> dict[str, Any]:
    """Counts for asset metadata: edges by kind and provenance, out-degrees, unfillable inputs,
    user-provided share."""
    g = tg.graph
    by_kind: Counter[str] = Counter()
    by_provenance: Counter[str] = Counter()
    cross = 0
    per_env: dict[str, Counter[str]] = defaultdict(Counter)
    for s, t, a in g.edges(data=True):
        by_kind[a["kind"]] += 1
        if a["kind"] == "feeds":
            by_provenance[a["provenance"]] += 1
            cross += g.nodes[s]["env_id"] != g.nodes[t]["env_id"]
        per_env[g.nodes[s]["env_id"]]["edges"] += 1
    for _, a in g.nodes(data=True):
        per_env[a["env_id"]]["nodes"] += 1
    inputs = [a for _, a in g.nodes(data=True) if a["kind"] == "input"]
    unfillable = tg.unfillable_inputs()
    return {
        "envs": len(tg.envs),
        "tools": len(tg.tools),
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "edges_by_kind": dict(sorted(by_kind.items())),
        "feed_edges_by_provenance": dict(sorted(by_provenance.items())),
        "cross_env_feed_edges": cross,
        "tool_edges": by_kind["precedes"],
        "tool_out_degree": out_degrees(tg),
        "inputs": len(inputs),
        "user_provided_share": round(sum(bool(a["user_provided"]) for a in inputs) / len(inputs), 4)
        if inputs
        else 0.0,
        "state_scoped_inputs": sorted(n for n, a in g.nodes(data=True) if a.get("from_state")),
        "unfillable_inputs_count": len(unfillable),
        "unfillable_inputs": unfillable,
        "per_env": {env: dict(c) for env, c in sorted(per_env.items())},
        "errors": len(tg.errors),
    }


def _mermaid_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def render_graph_summary(tg: ToolGraph, *, max_edges_per_env: int = 25) -> str:
    """Markdown for asset metadata: a table per environment and a Mermaid chart of tool -> tool edges."""
    g = tg.graph
    unfillable = set(tg.unfillable_inputs())
    lines = [
        f"### Tool graph `{tg.domain}`: {len(tg.envs)} environments, {len(tg.tools)} tools",
        "",
        "| environment | tools | inputs | user-provided | unfillable | edges in | edges out (cross-env) |",
        "|---|---|---|---|---|---|---|",
    ]
    for env_id, env in sorted(tg.envs.items()):
        tools = tg.tools_by_env.get(env_id, [])
        inputs = [i for t in tools for i in tg.tool_inputs[t]]
        within = sum(1 for t in tools for s in tg.tool_successors[t] if g.nodes[s]["env_id"] == env_id)
        cross = sum(1 for t in tools for s in tg.tool_successors[t] if g.nodes[s]["env_id"] != env_id)
        lines.append(
            f"| {env.spec.class_name} (`{env_id}`) | {len(tools)} | {len(inputs)} | "
            f"{sum(g.nodes[i]['user_provided'] for i in inputs)} | {len(unfillable & set(inputs))} | "
            f"{within} | {cross} |"
        )
    for env_id, env in sorted(tg.envs.items()):
        edges = sorted(
            ((a, b, g.edges[a, b]) for a in tg.tools_by_env.get(env_id, []) for b in tg.tool_successors[a]),
            key=lambda e: (-e[2]["score"], e[0], e[1]),
        )[:max_edges_per_env]
        if not edges:
            continue
        lines += ["", f"#### {env.spec.class_name}", "```mermaid", "graph LR"]
        for a, b, attrs in edges:
            label = (
                g.nodes[b]["tool"]
                if g.nodes[b]["env_id"] == env_id
                else f"{tg.envs[g.nodes[b]['env_id']].spec.class_name}.{g.nodes[b]['tool']}"
            )
            lines.append(
                f"  {_mermaid_id(a)}[{g.nodes[a]['tool']}] -->|{attrs['provenance']}| "
                f"{_mermaid_id(b)}[{label}]"
            )
        lines.append("```")
    return "\n".join(lines)
