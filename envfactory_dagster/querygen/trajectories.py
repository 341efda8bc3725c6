"""The `trajectories` stage: execute sampled chains into trajectory rows, with rejects and figures.

Execution of one chain is `execution` (one run per chain, the only one; the blocking check
replays it once more); the queries of the template backend come from `query_templates`, those of
the LLM backend from `write_queries_llm` (persona, then per-turn queries, held to the same checks).
Rows carry the figures the checks read: turns, calls, requested calls, the share of calls per turn,
and problems that must never pass (no-op writes, ids crossing services).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from envfactory_dagster.lineage import content_id
from envfactory_dagster.querygen.execution import ChainExecutor, ChainRejected, changes_something
from envfactory_dagster.querygen.query_templates import (
    missing_user_values,
    query_leaks_tool_name,
    write_queries_llm,
)
from envfactory_dagster.querygen.tool_chains import Chain
from envfactory_dagster.querygen.tool_graph import ToolGraph, build_tool_graph
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.querygen.trajectory_quality import drop_exact_duplicates
from envfactory_dagster.runtime.loader import VerifiedEnvironment


def load_envs(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
) -> tuple[dict[str, VerifiedEnvironment], list[dict[str, Any]]]:
    """Loaded environments by env_id, and error rows for rows whose code does not load."""
    loaded: dict[str, VerifiedEnvironment] = {}
    errors: list[dict[str, Any]] = []
    for env in envs:
        venv = env if isinstance(env, VerifiedEnvironment) else None
        env_id = str(env.env_id if venv else env.get("env_id"))  # type: ignore[union-attr]
        try:
            venv = venv or VerifiedEnvironment.from_row(env)  # type: ignore[arg-type]
            _ = venv.env_class, venv.spec
        except (KeyError, ValueError, SyntaxError, ImportError, ValidationError) as exc:
            errors.append(
                {
                    "env_id": env_id,
                    "stage": "trajectories",
                    "reason": f"environment {env_id} does not load: {exc}"[:1000],
                }
            )
            continue
        loaded[env_id] = venv
    return loaded, errors


def cross_service_ids(trajectory: Trajectory) -> list[str]:
    """Argument values that are ids of another service than the call's: taken from another
    service's output, or naming a row that exists only in another world's state."""
    found = []
    worlds = trajectory.env_worlds
    keys = {
        world: {
            k
            for name, table in state.items()
            if name != "counters" and isinstance(table, dict)
            for k in table
        }
        for world, state in trajectory.initial_states.items()
    }
    for turn in trajectory.turns:
        for call in turn.calls:
            own = worlds[call.env_id]
            for argument, source in call.argument_sources.items():
                if source.kind == "output" and source.turn is not None and source.call is not None:
                    producer = trajectory.turns[source.turn].calls[source.call]
                    if worlds[producer.env_id] != own:
                        found.append(f"turn {turn.index} {call.tool}.{argument} from {producer.tool}")
            for argument, value in call.arguments.items():
                if not isinstance(value, str) or value in keys.get(own, ()):
                    continue
                if any(value in k for w, k in keys.items() if w != own):
                    found.append(
                        f"turn {turn.index} {call.tool}.{argument}={value!r} names another service's row"
                    )
    return found


def noop_writes(trajectory: Trajectory, write_tools: set[tuple[str, str]]) -> int:
    """Write calls whose recorded state diff changes nothing but a timestamp."""
    return sum(
        1
        for turn in trajectory.turns
        for call in turn.calls
        if (call.env_id, call.tool) in write_tools and not changes_something(call.state_diff)
    )


def trajectory_row(
    trajectory: Trajectory,
    chain: Chain | None = None,
    *,
    write_tools: set[tuple[str, str]] | None = None,
    length_cap: int = 10,
) -> dict[str, Any]:
    """The `trajectories` row: flat lineage and quality columns beside `trajectory_json`."""
    tool_names = {c.tool for t in trajectory.turns for c in t.calls}
    param_names = {p for t in trajectory.turns for c in t.calls for p in c.arguments}
    calls_per_turn = [len(t.calls) for t in trajectory.turns]
    return {
        "id": trajectory.id,
        "domain": trajectory.domain,
        "chain_id": trajectory.chain_id,
        "seed": trajectory.seed,
        "env_ids": trajectory.env_ids,
        "world_ids": list(dict.fromkeys(trajectory.env_worlds[e] for e in trajectory.env_ids)),
        "sampler": chain.sampler if chain else None,
        "backend": trajectory.backend,
        "model": trajectory.model,
        "prompt_version": trajectory.prompt_version,
        "persona": trajectory.persona,
        "turn_count": len(trajectory.turns),
        "call_count": sum(calls_per_turn),
        "calls_per_turn": calls_per_turn,
        "requested_calls": sum(len(t.targets) for t in trajectory.turns),
        "at_length_cap": sum(calls_per_turn) >= length_cap,
        "env_count": len(trajectory.env_ids),
        "query_leaks_tool_name": any(
            query_leaks_tool_name(t.query, tool_names, param_names) for t in trajectory.turns
        ),
        "missing_user_values": sum(len(missing_user_values(t.query, t.calls)) for t in trajectory.turns),
        "noop_writes": noop_writes(trajectory, write_tools or set()),
        "cross_service_ids": len(cross_service_ids(trajectory)),
        "calls_signature": exact_duplicate_key(trajectory),
        "trajectory_json": trajectory.model_dump_json(),
    }


def exact_duplicate_key(trajectory: Trajectory) -> str:
    """Hash of the calls with their arguments (environment, tool, arguments, in order)."""
    return content_id([[c.env_id, c.tool, c.arguments] for t in trajectory.turns for c in t.calls], "calls_")


def execute_chains(
    chains: Sequence[Chain | Mapping[str, Any]],
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
    *,
    seed: int,
    graph: ToolGraph | None = None,
    state_pool_size: int = 4,
    attempts: int = 3,
    p_optional_output: float = 0.5,
    p_optional_user: float = 0.25,
    p_optional_control: float = 0.1,
    length_cap: int = 10,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Execute chains into trajectory rows; (rows, rejected rows with reasons, metrics).

    `chains`: `Chain` models or `tool_chains` rows; `envs`: `verified_envs` rows or loaded
    environments; `graph`: the `ToolGraph` the chains were sampled from (built from `envs` when
    omitted). A chain whose execution is rejected is retried up to `attempts` times with other
    seeded choices (initial state from the pool, argument values); the first reason is kept.
    Invalid chains, failing calls and exact duplicates (same calls, same arguments)
    become rejected rows, counted by kind in the metrics.
    """
    loaded, errors = load_envs(envs)
    graph = graph or build_tool_graph(list(loaded.values()))
    executor = ChainExecutor(
        loaded,
        graph,
        seed=seed,
        state_pool_size=state_pool_size,
        p_optional_output=p_optional_output,
        p_optional_user=p_optional_user,
        p_optional_control=p_optional_control,
    )
    write_tools = {(e, t.name) for e, env in loaded.items() for t in env.spec.tools if t.kind == "write"}
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = list(errors)
    kinds: Counter[str] = Counter()
    for raw in chains:
        chain = (
            raw
            if isinstance(raw, Chain)
            else Chain.model_validate({k: raw[k] for k in Chain.model_fields if k in raw})
        )
        base = {"chain_id": chain.id, "domain": chain.domain, "seed": chain.seed, "stage": "trajectories"}
        if not chain.valid:
            kinds["invalid_chain"] += 1
            rejected.append(
                {
                    **base,
                    "kind": "invalid_chain",
                    "reason": f"chain {chain.id} is not valid: {'; '.join(chain.problems)}",
                }
            )
            continue
        try:
            trajectory = executor.execute(chain, attempts)
        except ChainRejected as exc:
            kinds[exc.kind] += 1
            rejected.append({**base, "kind": exc.kind, "reason": f"chain {chain.id}: {exc.reason}"})
            continue
        row = trajectory_row(trajectory, chain, write_tools=write_tools, length_cap=length_cap)
        if row[
            "query_leaks_tool_name"
        ]:  # the template hit a name (e.g. a one-word tool name): drop, never keep
            kinds["query_leak"] += 1
            rejected.append(
                {
                    **base,
                    "kind": "query_leak",
                    "reason": f"chain {chain.id}: a query names a tool or parameter",
                }
            )
            continue
        rows.append(row)
    rows, duplicates = drop_exact_duplicates(rows)
    kinds["exact_duplicate"] += len(duplicates)
    rejected += duplicates
    metrics = {
        "chains": len(chains),
        "trajectories": len(rows),
        "rejected": sum(kinds.values()),
        "rejected_by_kind": dict(sorted(kinds.items())),
        "reject_share_by_kind": {k: round(v / len(chains), 4) for k, v in sorted(kinds.items())}
        if chains
        else {},
        "env_load_errors": len(errors),
        **shape_figures(rows),
        "query_leaks": sum(r["query_leaks_tool_name"] for r in rows),
        "missing_user_values": sum(r["missing_user_values"] for r in rows),
    }
    return rows, rejected, metrics


def shape_figures(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sizes of the kept trajectories: calls per turn, turns per trajectory, share at the cap."""
    if not rows:
        return {"median_calls_per_turn": 0, "median_turns": 0, "at_length_cap_share": 0.0}
    per_turn = [n for r in rows for n in r["calls_per_turn"]]
    turns = [r["turn_count"] for r in rows]
    return {
        "median_calls_per_turn": statistics.median(per_turn),
        "median_turns": statistics.median(turns),
        "median_calls": statistics.median(r["call_count"] for r in rows),
        "at_length_cap_share": round(sum(bool(r["at_length_cap"]) for r in rows) / len(rows), 4),
        "multi_turn_share": round(sum(t >= 2 for t in turns) / len(rows), 4),
        "multi_env_share": round(sum(r["env_count"] > 1 for r in rows) / len(rows), 4),
        "multi_service_share": round(sum(len(r["world_ids"]) > 1 for r in rows) / len(rows), 4),
        "calls_per_turn_distribution": dict(sorted(Counter(per_turn).items())),
        "turns_distribution": dict(sorted(Counter(turns).items())),
    }


def partition_figures(
    rows: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]], chains: int
) -> dict[str, Any]:
    """One row of figures for the partition checks: how much of what was sampled survived, the
    largest reject share, sizes, and the problems a kept trajectory must never have."""
    kinds = Counter(r["kind"] for r in rejected if r.get("kind"))
    return {
        "trajectories": len(rows),
        "kept_share": round(len(rows) / chains, 4) if chains else 1.0,
        "max_reject_share": round(max(kinds.values()) / chains, 4) if kinds and chains else 0.0,
        "largest_reject_kind": kinds.most_common(1)[0][0] if kinds else "",
        **{k: v for k, v in shape_figures(rows).items() if not isinstance(v, dict)},
        "noop_writes": sum(int(r["noop_writes"]) for r in rows),
        "cross_service_ids": sum(int(r["cross_service_ids"]) for r in rows),
    }


def rewrite_queries_llm(
    rows: list[dict[str, Any]], envs: Mapping[str, VerifiedEnvironment], gateway: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """LLM backend of the queries: a persona, then each turn's query, for every trajectory row.

    The calls, states and ids stay those of the executed chain; a turn whose LLM query leaks a
    name or misses a user value keeps its template query, and a provider failure keeps the whole
    trajectory's template queries. Returns the rows (rebuilt) and the problems found.
    """
    from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError

    specs = {env_id: env.spec for env_id, env in envs.items()}
    out, problems = [], []
    for row in rows:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        try:
            updated, found = write_queries_llm(trajectory, gateway, specs)
        except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
            problems.append(f"{trajectory.id}: template queries kept ({type(exc).__name__}: {exc})")
            out.append(row)
            continue
        problems += [f"{trajectory.id} {p}" for p in found]
        out.append(
            {
                **row,
                **trajectory_row(updated),
                "sampler": row.get("sampler"),
                "noop_writes": row["noop_writes"],
            }
        )
    return out, problems
