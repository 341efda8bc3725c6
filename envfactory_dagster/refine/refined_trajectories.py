"""`refined_trajectories`: calibrated, implicit user queries with a grounding proof per hidden value.

For each trajectory: replay it (it must reach its recorded final states), then rewrite each turn's
query with the template renderer (or the LLM through the `refine_query` prompt, which may only
hide values the renderer proved recoverable). A rewrite is accepted only if, on the final text,
every non-masked gold argument value is either written in the query or carried by a proof that
holds on the replay, and no tool name or identifier-like parameter name appears; otherwise the
turn keeps its previous phrasing (counted). Implicitness of a turn = share of its non-masked
gold argument values not written in the query.
"""

from __future__ import annotations

import random
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envfactory_dagster.export.reward import values_equal
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    environments_by_id,
    replay_trajectory,
    task_environments,
)
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.grounding import (
    GroundingProof,
    check_proof,
    contains_token,
    is_literal_in,
    lookup_anchors,
)
from envfactory_dagster.refine.template_refiner import TurnRefinement, TurnRenderer

STAGE = "refined_trajectories"
REFINE_PROMPT = "refine_query"
TEMPLATE_PROMPT_VERSION = "template-refine-1"
_IDENTIFIER = re.compile(r"_|[a-z][A-Z]|\d")


class RefinedQueryAnswer(BaseModel):
    """What the refiner LLM returns for one turn."""

    model_config = ConfigDict(extra="forbid")

    query: str
    hidden_values: list[str] = Field(default_factory=list, description="ids of the hideable values used")


def leaked_names(query: str, tool_names: Iterable[str], parameter_names: Iterable[str]) -> list[str]:
    """Tool names, and parameter names that read as identifiers (snake/camel case, digits), in `query`.

    Plain-word parameter names ("name", "total") are ordinary English and are allowed.
    """
    leaks = []
    for name in set(tool_names) | {p for p in parameter_names if _IDENTIFIER.search(p)}:
        if contains_token(query, name, ignore_case=False):
            leaks.append(name)
    return sorted(leaks)


def turn_implicitness(trajectory: Trajectory, turn: int, query: str) -> float | None:
    """Share of the turn's non-masked gold argument values not written in `query` (None: no values)."""
    values = [
        value
        for call in trajectory.turns[turn].calls
        for argument, value in call.arguments.items()
        if argument not in call.masked_arguments
    ]
    if not values:
        return None
    return sum(1 for v in values if not is_literal_in(v, query)) / len(values)


def unproven_values(trajectory: Trajectory, turn: int, query: str, proofs: list[GroundingProof]) -> list[str]:
    """Non-masked gold values neither written in the query nor carried by a proof."""
    proven = {(p.call, p.argument) for p in proofs if p.via != "literal"}
    missing = []
    for index, call in enumerate(trajectory.turns[turn].calls):
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments or (index, argument) in proven:
                continue
            if not is_literal_in(value, query):
                missing.append(f"call {index} {argument}={value!r}")
    return missing


def _audit(
    trajectory: Trajectory, turn: int, candidate: TurnRefinement, replay: Any, names: tuple
) -> list[str]:
    """Every reason the candidate phrasing of `turn` cannot be accepted ([] = accept)."""
    problems = list(candidate.unsolvable)
    problems += [f"leaks {n}" for n in leaked_names(candidate.query, *names)]
    problems += [
        f"unproven {m}" for m in unproven_values(trajectory, turn, candidate.query, candidate.proofs)
    ]
    for proof in candidate.proofs:
        reason = check_proof(proof, replay, candidate.query)
        if reason:
            problems.append(f"proof {proof.argument}: {reason}")
    return problems


def _original_proofs(trajectory: Trajectory, turn: int, replay: Any) -> list[GroundingProof]:
    """Proofs for a kept original query: literal where written, else the recorded output source if valid."""
    proofs = []
    for index, call in enumerate(trajectory.turns[turn].calls):
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments:
                continue
            base = {"turn": turn, "call": index, "argument": argument, "value": value}
            source = call.argument_sources.get(argument)
            if is_literal_in(value, trajectory.turns[turn].query):
                proofs.append(GroundingProof(**base, via="literal", operation="literal"))
            elif source is not None and source.kind == "output":
                proof = GroundingProof(
                    **base,
                    via="output",
                    operation="omission",
                    source_turn=source.turn,
                    source_call=source.call,
                    path=source.path,
                )
                if not check_proof(proof, replay, ""):
                    proofs.append(proof)
    return proofs


def _llm_candidate(
    gateway: Any, trajectory: Trajectory, turn: int, template: TurnRefinement, queries: list[str], state: dict
) -> tuple[TurnRefinement, dict[str, str]]:
    """Ask the refiner for a phrasing; it may hide only values the template proved recoverable."""
    hideable = {f"h{i}": p for i, p in enumerate(template.alternatives)}
    calls = [{"tool": c.tool, "arguments": c.arguments} for c in trajectory.turns[turn].calls]
    variables = {
        "query": template.query,
        "history": "\n".join(f"user: {q}" for q in queries) or "(none)",
        "calls": calls,
        "hideable": {h: {"value": p.value, "recover_as": p.phrase} for h, p in hideable.items()},
        "state_excerpt": {
            env: {k: v for k, v in s.items() if k not in ("counters", "seed")} for env, s in state.items()
        },
    }
    result = gateway.complete_structured(
        stage=STAGE,
        role="refiner",
        prompt=REFINE_PROMPT,
        variables=variables,
        output_model=RefinedQueryAnswer,
    )
    answer: RefinedQueryAnswer = result.value
    query = answer.query.strip()
    proofs = []
    for index, call in enumerate(trajectory.turns[turn].calls):
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments or is_literal_in(value, query):
                continue
            proof = next(
                (
                    p
                    for p in template.alternatives
                    if (p.call, p.argument) == (index, argument)
                    and (p.lookup is None or all(is_literal_in(a, query) for a in lookup_anchors(p.lookup)))
                ),
                None,
            )
            if proof is not None:
                proofs.append(proof)
    candidate = TurnRefinement(query=query, proofs=proofs, operations=sorted({p.operation for p in proofs}))
    return candidate, {"model": result.model, "prompt_version": result.prompt_version}


def refine_trajectories(
    trajectories: Iterable[Mapping[str, Any] | Trajectory],
    envs: EnvironmentRows,
    *,
    target_implicitness: float = 0.4,
    seed: int,
    ambiguity_share: float = 0.2,
    backend: str = "template",
    gateway: Any = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Refine every trajectory's queries; returns (rows, rejected rows with reasons, metrics).

    `trajectories`: `trajectories` rows (with `trajectory_json`) or Trajectory objects.
    `envs`: `verified_envs` rows (or VerifiedEnvironment objects) covering their env_ids.
    `backend="llm"` needs `gateway` (an LLMGateway with a "refiner" model); the template renderer
    still computes the recoverable values the LLM may hide, and the same checks apply.
    Row columns: id, trajectory_id, domain, chain_id, env_ids, resource_ids, seed, trajectory_json
    (the refined Trajectory), original_queries, grounding_json, proofs_failed (re-executed at the
    end; 0 expected), implicitness (per turn), implicitness_mean, operations, kept_original_turns,
    backend, model, prompt_version.
    """
    index = environments_by_id(envs)
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    turn_scores: list[float] = []
    for item in trajectories:
        lineage = {} if isinstance(item, Trajectory) else dict(item)
        try:
            trajectory = (
                item
                if isinstance(item, Trajectory)
                else Trajectory.model_validate_json(item["trajectory_json"])
            )
            envs_of_task = task_environments(trajectory.env_ids, index)
        except (ValidationError, KeyError, ValueError) as exc:
            rejected.append(
                {"trajectory_id": lineage.get("id"), "stage": STAGE, "reason": f"unreadable: {exc}"}
            )
            continue
        replay = replay_trajectory(trajectory, envs_of_task)
        if replay.errors or not values_equal(replay.final_states, trajectory.final_states, 0.0):
            reason = "; ".join(replay.errors) or "replay does not reach the recorded final states"
            rejected.append(
                {"trajectory_id": trajectory.id, "stage": STAGE, "reason": f"does not replay: {reason}"}
            )
            continue
        specs = {env.env_id: env.spec for env in envs_of_task}
        names = (
            [t.name for env in envs_of_task for t in env.spec.tools],
            [p for t in trajectory.turns for c in t.calls for p in c.arguments],
        )
        rng = random.Random(f"{seed}:{trajectory.id}")
        renderer = TurnRenderer(trajectory, replay, specs, rng, ambiguity_share)
        new_turns, proofs, scores, operations, kept = [], [], [], [], []
        llm_lineage: dict[str, str] = {}
        for position, turn in enumerate(trajectory.turns):
            candidate = renderer.render(position, target_implicitness)
            counts["rejected_rewrites"] += len(candidate.rejected_rewrites)
            problems = _audit(trajectory, position, candidate, replay, names)
            if not problems and backend == "llm":
                try:
                    llm, llm_lineage = _llm_candidate(
                        gateway,
                        trajectory,
                        position,
                        candidate,
                        [t.query for t in new_turns],
                        replay.turn_states[position],
                    )
                except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
                    counts["llm_errors"] += 1
                    llm, llm_lineage = None, {}
                    rejected.append(
                        {
                            "trajectory_id": trajectory.id,
                            "stage": STAGE,
                            "reason": f"llm turn {position}: {exc}",
                        }
                    )
                if llm is not None:
                    llm_problems = _audit(trajectory, position, llm, replay, names)
                    if llm_problems:
                        counts["llm_rewrites_rejected"] += 1
                    else:
                        candidate = llm
            if problems:
                counts["turns_kept_original"] += 1
                kept.append({"turn": position, "reasons": problems})
                query, turn_proofs, turn_ops = turn.query, _original_proofs(trajectory, position, replay), []
            else:
                query, turn_proofs, turn_ops = candidate.query, candidate.proofs, candidate.operations
            counts.update(f"op_{op}" for op in turn_ops)
            score = turn_implicitness(trajectory, position, query)
            if score is not None:
                scores.append(score)
            new_turns.append(turn.model_copy(update={"query": query}))
            proofs.extend(turn_proofs)
            operations.append(turn_ops)
        # The final audit: every stored proof re-executed against the final queries.
        proofs_failed = sum(1 for p in proofs if check_proof(p, replay, new_turns[p.turn].query))
        counts["proofs"] += len(proofs)
        counts["proofs_passing"] += len(proofs) - proofs_failed
        turn_scores.extend(scores)
        refined = trajectory.model_copy(
            update={
                "turns": new_turns,
                "backend": backend,
                "model": llm_lineage.get("model", trajectory.model),
                "prompt_version": llm_lineage.get("prompt_version", TEMPLATE_PROMPT_VERSION),
            }
        )
        queries = [t.query for t in new_turns]
        rows.append(
            {
                "id": content_id([trajectory.id, queries, backend], "rtj_"),
                "trajectory_id": trajectory.id,
                "domain": trajectory.domain,
                "chain_id": trajectory.chain_id,
                "env_ids": trajectory.env_ids,
                "resource_ids": list(lineage.get("resource_ids") or []),
                "seed": trajectory.seed,
                "trajectory_json": refined.model_dump_json(),
                "original_queries": [t.query for t in trajectory.turns],
                "grounding_json": canonical_json([p.model_dump(mode="json") for p in proofs]),
                "proofs_failed": proofs_failed,
                "implicitness": scores,
                "implicitness_mean": statistics.fmean(scores) if scores else 0.0,
                "operations": [",".join(ops) for ops in operations],
                "kept_original_turns": canonical_json(kept),
                "backend": backend,
                "model": refined.model,
                "prompt_version": refined.prompt_version,
            }
        )
    metrics = {
        "trajectories_in": len(rows) + len([r for r in rejected if "llm turn" not in r["reason"]]),
        "refined": len(rows),
        "rejected": len(rejected),
        "turns": len(turn_scores),
        "median_implicitness": statistics.median(turn_scores) if turn_scores else 0.0,
        "target_implicitness": target_implicitness,
        "proofs": counts["proofs"],
        "proofs_passing_share": counts["proofs_passing"] / counts["proofs"] if counts["proofs"] else 1.0,
        **{k: v for k, v in sorted(counts.items()) if k not in ("proofs", "proofs_passing")},
    }
    return rows, rejected, metrics
