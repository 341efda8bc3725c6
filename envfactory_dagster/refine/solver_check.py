"""Solver acceptance of a refined query (the LLM path): the query is kept only if a rollout of the
`solver` role, with the real tools on fresh environments from the turn's start states, reaches the
turn's gold end state from it.

The solver reads what a policy would: each earlier kept turn's user message with its calls and
their results (training names, as the RL tasks name tools), then the query under test. Only the
end state decides (the solver may take another route to it); the reward's tolerance applies to
numbers. Offline (no solver model) a query is accepted by its proofs alone (refined_trajectories).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from envfactory_dagster.export.passk import solve
from envfactory_dagster.export.reward import values_equal
from envfactory_dagster.export.rl_task_model import RewardSpec
from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError
from envfactory_dagster.querygen.replay import Replay
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.template_refiner import TurnRefinement
from envfactory_dagster.runtime.toolset import Toolset

SOLVER_MAX_STEPS = RewardSpec().max_calls  # the paper's 15 iterations


def solver_conversation(
    trajectory: Trajectory, turn: int, query: str, earlier_queries: Sequence[str], names: dict
) -> list[dict[str, Any]]:
    """Earlier kept turns (message, calls, results), then `query`. `names`: (env_id, tool) -> name."""
    conversation: list[dict[str, Any]] = []
    for position, earlier in enumerate(earlier_queries):
        conversation.append({"role": "user", "content": earlier})
        for call in trajectory.turns[position].calls:
            conversation.append(
                {
                    "tool_call": {"name": names[(call.env_id, call.tool)], "arguments": call.arguments},
                    "result": canonical_json(call.output),
                }
            )
    conversation.append({"role": "user", "content": query})
    return conversation


def solver_verdict(
    trajectory: Trajectory,
    turn: int,
    query: str,
    earlier_queries: Sequence[str],
    replay: Replay,
    envs: Sequence[Any],
    gateway: Any,
    *,
    stage: str,
    max_steps: int = SOLVER_MAX_STEPS,
) -> str | None:
    """None when the solver reaches the turn's gold end state from `query`, else why not (the
    worlds left in another state, the calls it made). LLM errors propagate to the caller."""
    toolset = Toolset.from_snapshots(envs, replay.turn_states[turn], qualify="always")
    names = {target: name for name, target in toolset.names.items()}
    calls, _, _ = solve(
        toolset.openai_tools(),
        solver_conversation(trajectory, turn, query, earlier_queries, names),
        toolset,
        gateway,
        stage=stage,
        max_steps=max_steps,
    )
    gold = replay.turn_states[turn + 1] if turn + 1 < len(trajectory.turns) else replay.final_states
    reached = toolset.dump_states()
    tolerance = RewardSpec().numeric_rel_tol
    wrong = sorted(w for w in gold if w in reached and not values_equal(gold[w], reached[w], tolerance))
    if not wrong:
        return None
    made = ", ".join(c["name"] for c in calls) or "no calls"
    return f"the solver left {', '.join(wrong)} in another state than the gold one (calls: {made})"


def solver_accepted(
    trajectory: Trajectory,
    turn: int,
    candidates: list[TurnRefinement],
    earlier_queries: list[str],
    run: tuple[Replay, list[Any], Any],
    rejected: list[dict[str, Any]],
    counts: Counter[str],
    *,
    stage: str,
) -> tuple[TurnRefinement, list[str]]:
    """Solver acceptance (solver_check.py): the first of `candidates` (the LLM's phrasing, then the
    template's; each distinct one tried once) from which the solver reaches the gold end state, and
    no problems; else the first candidate and why the turn is unproven. Each unsolved phrasing is a
    reject row of kind `solver_unsolved`. `run`: the trajectory's replay, environments, gateway."""
    replay, envs, gateway = run
    tried: set[str] = set()
    for candidate in candidates:
        if candidate.query in tried:
            continue
        tried.add(candidate.query)
        try:
            reason = solver_verdict(
                trajectory, turn, candidate.query, earlier_queries, replay, envs, gateway, stage=stage
            )
        except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
            counts["llm_errors"] += 1
            rejected.append(
                {
                    "trajectory_id": trajectory.id,
                    "stage": stage,
                    "kind": "llm_error",
                    "reason": f"solver turn {turn}: {exc}",
                }
            )
            return candidates[0], [f"solver failed: {exc}"]
        if reason is None:
            counts["solver_accepted"] += 1
            return candidate, []
        counts["solver_unsolved"] += 1
        rejected.append(
            {
                "trajectory_id": trajectory.id,
                "stage": stage,
                "kind": "solver_unsolved",
                "reason": f"turn {turn} query {candidate.query!r}: {reason}"[:1500],
            }
        )
    return candidates[0], [f"solver did not reach the gold state from any phrasing ({len(tried)} tried)"]
