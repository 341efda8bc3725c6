"""The RL reward: named components with their breakdown, combined by configurable weights.

    total = max(0, weighted(trace, state) + format + length)

- `trace_score`: gold calls matched to DISTINCT made calls (a maximum bipartite matching, so call
  order and duplicates cannot fool it). A pair matches when the names are equal and every argument
  not in the gold call's `masked_arguments` is equal in both (present in one and absent in the other
  is a mismatch); numbers compare within `numeric_rel_tol`. Mode "all" (the paper): 1 iff every gold
  call is matched; mode "share": the matched share.
- `state_score`: per environment, final state equals the gold final state (same numeric tolerance).
  Only environments that matter are counted: those the gold calls change, plus those the rollout
  changed although the gold leaves them alone. An environment nobody touches gives no credit (in the
  paper it does, so an empty rollout on a task with an untouched server scores above 0). If no
  environment matters (a read-only task, a read-only rollout) the component is not evaluated (None).
- `format_penalty`: -weight per malformed call (unparseable arguments, missing name), capped.
- `length_penalty`: -weight per call beyond the number of gold calls, capped.
`weighted` averages the evaluated components among trace and state by their weights (with both
evaluated and the default 0.5/0.5 it is the paper's 0.5·trace + 0.5·state).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.export.rl_task_model import RewardSpec, RewardWeights, RLGoldCall, RLTask


class RewardBreakdown(BaseModel):
    """A scored rollout: the total and each component (None = not evaluated)."""

    model_config = ConfigDict(extra="forbid")

    total: float
    trace: float | None
    state: float | None
    format: float  # <= 0, added to the total
    length: float  # <= 0, added to the total
    details: dict[str, Any] = Field(default_factory=dict)


_NUMBER_TYPES = (int, float)  # exact types: bool is not a number here


def values_equal(gold: Any, made: Any, rel_tol: float) -> bool:
    """Deep JSON equality; numbers (not booleans) within `rel_tol` relative tolerance."""
    # exact-type fast paths for the bulk of a state (tables of rows, mostly strings); same verdicts
    gold_type = type(gold)
    if gold_type is str:
        return gold == made
    if gold_type is dict and type(made) is dict:
        if gold.keys() != made.keys():
            return False
        for key, value in gold.items():
            other = made[key]
            value_type = type(value)
            if value_type is str or value is None:
                if value != other:
                    return False
            elif value_type in _NUMBER_TYPES and type(other) in _NUMBER_TYPES:
                if not (math.isclose(value, other, rel_tol=rel_tol, abs_tol=0.0) or value == other):
                    return False
            elif not values_equal(value, other, rel_tol):
                return False
        return True
    if isinstance(gold, bool) or isinstance(made, bool):
        return gold is made if isinstance(gold, bool) and isinstance(made, bool) else False
    if isinstance(gold, int | float) and isinstance(made, int | float):
        return math.isclose(gold, made, rel_tol=rel_tol, abs_tol=0.0) or gold == made
    if isinstance(gold, dict) and isinstance(made, dict):
        return gold.keys() == made.keys() and all(values_equal(gold[k], made[k], rel_tol) for k in gold)
    if isinstance(gold, list) and isinstance(made, list):
        pairs = zip(gold, made, strict=False)
        return len(gold) == len(made) and all(values_equal(g, m, rel_tol) for g, m in pairs)
    return gold == made


def call_matches(gold: RLGoldCall, name: str, arguments: Mapping[str, Any], rel_tol: float) -> bool:
    """Same tool, and every non-masked argument equal on both sides."""
    if gold.name != name:
        return False
    masked = set(gold.masked_arguments)
    keys = (set(gold.arguments) | set(arguments)) - masked
    return all(
        k in gold.arguments and k in arguments and values_equal(gold.arguments[k], arguments[k], rel_tol)
        for k in keys
    )


def parse_calls(calls: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """Well-formed (name, arguments) pairs and the number of malformed calls among `calls`.

    Arguments may be a dict or a JSON string (OpenAI `tool_calls`); an object is required.
    """
    parsed: list[tuple[str, dict[str, Any]]] = []
    malformed = 0
    for call in calls:
        name = call.get("name")
        arguments = call.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                arguments = None
        if not isinstance(name, str) or not name or not isinstance(arguments, dict):
            malformed += 1
            continue
        parsed.append((name, arguments))
    return parsed, malformed


def match_gold_calls(
    gold_calls: Sequence[RLGoldCall], made: Sequence[tuple[str, dict[str, Any]]], rel_tol: float
) -> dict[int, int]:
    """Maximum matching gold index -> made index (augmenting paths; tasks have few calls)."""
    candidates = [
        [j for j, (name, args) in enumerate(made) if call_matches(gold, name, args, rel_tol)]
        for gold in gold_calls
    ]
    made_to_gold: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in made_to_gold or augment(made_to_gold[j], seen):
                made_to_gold[j] = i
                return True
        return False

    for i in range(len(gold_calls)):
        augment(i, set())
    return {i: j for j, i in made_to_gold.items()}


def trace_score(
    task: RLTask, made: Sequence[tuple[str, dict[str, Any]]], spec: RewardSpec
) -> tuple[float | None, dict[str, Any]]:
    if not task.gold_calls:
        return None, {"trace_matched": 0, "trace_gold": 0}
    matching = match_gold_calls(task.gold_calls, made, spec.numeric_rel_tol)
    share = len(matching) / len(task.gold_calls)
    score = share if spec.trace_mode == "share" else float(share == 1.0)
    unmatched = [g.name for i, g in enumerate(task.gold_calls) if i not in matching]
    details = {"trace_matched": len(matching), "trace_gold": len(task.gold_calls)}
    details["trace_unmatched"] = unmatched
    return score, details


def state_score(
    task: RLTask, final_states: Mapping[str, Mapping[str, Any]], spec: RewardSpec
) -> tuple[float | None, dict[str, Any]]:
    tol = spec.numeric_rel_tol
    relevant = []  # worlds (world_id) that the gold calls or the rollout changed
    for world_id, gold in task.gold_final_states.items():
        initial = task.initial_states.get(world_id)
        final = final_states.get(world_id)
        gold_changed = initial is None or not values_equal(gold, initial, tol)
        rollout_changed = final is not None and initial is not None and not values_equal(final, initial, tol)
        if gold_changed or rollout_changed:
            relevant.append(world_id)
    if not relevant:
        return None, {"state_worlds": [], "state_matched": []}
    matched = [
        world_id
        for world_id in relevant
        if world_id in final_states
        and values_equal(task.gold_final_states[world_id], final_states[world_id], tol)
    ]
    return len(matched) / len(relevant), {"state_worlds": relevant, "state_matched": matched}


def format_penalty(malformed_calls: int, weights: RewardWeights, cap: float) -> float:
    return -min(cap, weights.format * malformed_calls) or 0.0


def length_penalty(made_calls: int, gold_calls: int, weights: RewardWeights, cap: float) -> float:
    return -min(cap, weights.length * max(0, made_calls - gold_calls)) or 0.0


def score_rollout(
    task: RLTask,
    calls: Sequence[Mapping[str, Any]],
    final_states: Mapping[str, Mapping[str, Any]],
    *,
    malformed_calls: int = 0,
    weights: RewardWeights | Mapping[str, float] | None = None,
) -> RewardBreakdown:
    """Score one rollout of `task`.

    `calls`: the calls the policy made, in order, as {name (exported), arguments (dict or JSON
    string)}; malformed entries among them are counted here, `malformed_calls` adds those the
    caller could not even turn into a call. `final_states`: world_id -> state after the rollout.
    `weights` overrides `task.reward_spec.weights`.
    """
    spec = task.reward_spec
    if weights is not None:
        spec = spec.model_copy(update={"weights": RewardWeights.model_validate(dict(weights))})
    made, malformed_here = parse_calls(calls)
    malformed = malformed_calls + malformed_here
    trace, trace_details = trace_score(task, made, spec)
    state, state_details = state_score(task, final_states, spec)
    evaluated = [(spec.weights.trace, trace), (spec.weights.state, state)]
    evaluated = [(w, c) for w, c in evaluated if c is not None and w > 0]
    weight_sum = sum(w for w, _ in evaluated)
    weighted = sum(w * c for w, c in evaluated) / weight_sum if weight_sum else 0.0
    fmt = format_penalty(malformed, spec.weights, spec.penalty_cap)
    length = length_penalty(len(made), len(task.gold_calls), spec.weights, spec.penalty_cap)
    total = max(0.0, weighted + fmt + length)
    details = {**trace_details, **state_details, "calls": len(made), "malformed": malformed}
    return RewardBreakdown(
        total=round(total, 10), trace=trace, state=state, format=fmt, length=length, details=details
    )
