"""`refined_trajectories`: calibrated, implicit user queries with a grounding proof per hidden value.

For each trajectory: rebuild what its execution did from the record (`replay.recorded_replay`:
states at each turn start, outputs; the `trajectories` check already re-executed it once), then
rewrite each turn's query with the template renderer (or the LLM through the `refine_query`
prompt, which may only hide values the renderer proved recoverable). A rewrite is accepted only
if, on the final text, every non-masked gold argument value is either written in the query or
carried by a proof that holds on the recorded states, every state change is asked for in words
(an effect proof), and no tool name, identifier-like parameter name or raw enum identifier
appears. A turn with no acceptable phrasing is dropped with its reason, together with the turns
after it (they build on it): nothing is kept in an unproven wording. A trajectory whose first
turn cannot be phrased is rejected.

Implicitness of a turn = share of its non-masked gold values from the user or the state (what a
person would say or describe) not written in the query; it is reported for the refined and the
original queries, and the uplift is their difference.
"""

from __future__ import annotations

import json
import random
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError
from envfactory_dagster.quality.guards import RowGuard
from envfactory_dagster.querygen.language_quality import language_figures, raw_enum_identifiers
from envfactory_dagster.querygen.query_templates import change_keywords
from envfactory_dagster.querygen.replay import (
    EnvironmentRows,
    Replay,
    environments_by_id,
    recorded_replay,
    task_environments,
)
from envfactory_dagster.querygen.surface import contains_token, is_literal_in, says_nothing
from envfactory_dagster.querygen.trajectory_model import Trajectory
from envfactory_dagster.refine.grounding import (
    GroundingProof,
    check_effect,
    check_proof,
    lookup_anchors,
)
from envfactory_dagster.refine.solver_check import solver_accepted
from envfactory_dagster.refine.template_refiner import TurnRefinement, TurnRenderer

STAGE = "refined_trajectories"
REFINE_PROMPT = "refine_query"
TEMPLATE_PROMPT_VERSION = "template-refine-1"
# reject rows about one phrasing of a turn, not a whole trajectory (not counted as trajectories)
TURN_REJECT_KINDS = ("llm_error", "solver_unsolved")
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


def turn_implicitness(trajectory: Trajectory, turn: int, query: str, replay: Replay) -> float | None:
    """Share of the turn's non-masked gold values a person would state or that come from the state
    (user values, state values, ids of records that existed when the turn began) which `query`
    does not write; None when the turn has none. Ids of records the task itself created are not
    counted: neither query can write them before they exist."""
    values = []
    for call in trajectory.turns[turn].calls:
        state = replay.turn_states[turn][trajectory.env_worlds[call.env_id]]
        tables = [t for name, t in state.items() if name != "counters" and isinstance(t, dict)]
        for argument, value in call.arguments.items():
            source = call.argument_sources.get(argument)
            if argument in call.masked_arguments or says_nothing(value):
                continue
            if (
                source is None
                or source.kind != "output"
                or (isinstance(value, str) and any(value in t for t in tables))
            ):
                values.append(value)
    if not values:
        return None
    return sum(1 for v in values if not is_literal_in(v, query)) / len(values)


def unproven_values(trajectory: Trajectory, turn: int, query: str, proofs: list[GroundingProof]) -> list[str]:
    """Non-masked gold values neither written in the query nor carried by a proof."""
    proven = {(p.call, p.argument) for p in proofs if p.via != "literal"}
    literal_labels = {(p.call, p.argument): p.phrase for p in proofs if p.via == "literal"}
    missing = []
    for index, call in enumerate(trajectory.turns[turn].calls):
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments or (index, argument) in proven:
                continue
            phrase = literal_labels.get((index, argument), "")
            if not (is_literal_in(value, query) or (isinstance(value, bool) and phrase and phrase in query)):
                missing.append(f"call {index} {argument}={value!r}")
    return missing


def raw_enum_values(trajectory: Trajectory, turn: int, query: str, specs: Mapping[str, Any]) -> list[str]:
    """Enum values of the turn's tools written as identifiers in the query (`closed_cancelled`)."""
    enums = [
        v
        for call in trajectory.turns[turn].calls
        for tool in specs[call.env_id].tools
        if tool.name == call.tool
        for schema in (tool.input_schema.get("properties") or {}).values()
        for v in schema.get("enum") or []
    ]
    return raw_enum_identifiers(query, enums)


def _audit(
    trajectory: Trajectory, turn: int, candidate: TurnRefinement, replay: Any, names: tuple, specs: Mapping
) -> list[str]:
    """Every reason the candidate phrasing of `turn` cannot be accepted ([] = accept)."""
    problems = list(candidate.unsolvable)
    problems += [f"leaks {n}" for n in leaked_names(candidate.query, *names)]
    problems += [f"raw enum value {v}" for v in raw_enum_values(trajectory, turn, candidate.query, specs)]
    problems += [
        f"unproven {m}" for m in unproven_values(trajectory, turn, candidate.query, candidate.proofs)
    ]
    for proof in candidate.proofs:
        reason = check_proof(proof, replay, candidate.query)
        if reason:
            problems.append(f"proof {proof.argument}: {reason}")
    writes = {e.call for e in candidate.effects}
    for index, call in enumerate(trajectory.turns[turn].calls):
        if call.state_diff and index not in writes:
            problems.append(f"call {index} {call.tool}: its change is not asked for")
    problems += [r for e in candidate.effects if (r := check_effect(e, candidate.query))]
    return problems


def hidden_value_problems(
    declared: list[str], hideable: Mapping[str, GroundingProof], used: list[GroundingProof], query: str
) -> list[str]:
    """Where the refiner's account of what it hid disagrees with the query and the proofs: an id it
    was never offered, a value it says it hid but still writes, a value it hid without saying."""
    problems = [f"hidden value {h}: not one of the hideable values" for h in declared if h not in hideable]
    for h in declared:
        proof = hideable.get(h)
        if proof is not None and is_literal_in(proof.value, query):
            problems.append(f"hidden value {h}: said hidden, but the query writes {proof.value!r}")
    said = {(hideable[h].call, hideable[h].argument) for h in declared if h in hideable}
    problems += [
        f"hidden value {p.argument}={p.value!r}: hidden without saying so"
        for p in used
        if (p.call, p.argument) not in said
    ]
    return problems


MAX_EXCERPT_CHARS = 24_000  # ~8k tokens of rows: within any current model's window with the rest


def state_excerpt(
    trajectory: Trajectory, turn: int, state: Mapping[str, Any], specs: Mapping[str, Any]
) -> dict[str, Any]:
    """The rows the refiner needs for one turn: the collections of the turn's tools' entities and of
    the entities they reference (a whole world state costs ~8k tokens a call), cut to a size."""
    wanted: dict[str, set[str]] = {}
    for call in trajectory.turns[turn].calls:
        spec = specs[call.env_id]
        entities = {e.name: e for e in spec.entities}
        tool = next((t for t in spec.tools if t.name == call.tool), None)
        entity = entities.get(tool.entity or "") if tool else None
        if entity is None:
            continue
        names = {entity.name} | {f.ref_entity for f in entity.fields if f.ref_entity in entities}
        wanted.setdefault(trajectory.env_worlds[call.env_id], set()).update(
            entities[n].collection for n in names if n
        )
    excerpt: dict[str, Any] = {}
    size = 0
    for world, collections in sorted(wanted.items()):
        for collection in sorted(collections):
            rows = dict(state.get(world, {}).get(collection) or {})
            while rows and size + len(canonical_json(rows)) > MAX_EXCERPT_CHARS:
                rows.pop(next(iter(rows)))  # keep the latest rows
            size += len(canonical_json(rows))
            excerpt.setdefault(world, {})[collection] = rows
    return excerpt


def _llm_candidate(
    gateway: Any,
    trajectory: Trajectory,
    turn: int,
    template: TurnRefinement,
    queries: list[str],
    state: dict,
    specs: Mapping[str, Any],
) -> tuple[TurnRefinement, dict[str, str]]:
    """Ask the refiner for a phrasing; it may hide only values the template proved recoverable, and
    each change must still be asked for (its record's noun and, for a status change or deletion,
    its verb, appear in the text)."""
    template_keywords = [
        (e, change_keywords(specs, trajectory.turns[turn].calls[e.call])) for e in template.effects
    ]
    hideable = {f"h{i}": p for i, p in enumerate(template.alternatives)}
    calls = [{"tool": c.tool, "arguments": c.arguments} for c in trajectory.turns[turn].calls]
    variables = {
        "query": template.query,
        "history": "\n".join(f"user: {q}" for q in queries) or "(none)",
        "calls": calls,
        "hideable": {h: {"value": p.value, "recover_as": p.phrase} for h, p in hideable.items()},
        "state_excerpt": state_excerpt(trajectory, turn, state, specs),
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
    effects = [
        effect.model_copy(update={"phrase": "", "keywords": keywords})
        for effect, keywords in template_keywords
    ]
    candidate = TurnRefinement(
        query=query,
        proofs=proofs,
        operations=sorted({p.operation for p in proofs}),
        effects=effects,
        unsolvable=hidden_value_problems(answer.hidden_values, hideable, proofs, query),
    )
    return candidate, {"model": result.model, "prompt_version": result.prompt_version}


def truncated(trajectory: Trajectory, keep: int, replay: Replay) -> Trajectory:
    """The trajectory's first `keep` turns, ending in the state the last kept turn left."""
    turns = trajectory.turns[:keep]
    env_ids = [e for e in trajectory.env_ids if any(c.env_id == e for t in turns for c in t.calls)]
    worlds = {trajectory.env_worlds[e] for e in env_ids}
    end = replay.turn_states[keep] if keep < len(trajectory.turns) else replay.final_states
    return trajectory.model_copy(
        update={
            "turns": turns,
            "env_ids": env_ids,
            "env_worlds": {e: trajectory.env_worlds[e] for e in env_ids},
            "initial_states": {w: s for w, s in trajectory.initial_states.items() if w in worlds},
            "final_states": {w: s for w, s in end.items() if w in worlds},
        }
    )


def refine_trajectories(
    trajectories: Iterable[Mapping[str, Any] | Trajectory],
    envs: EnvironmentRows,
    *,
    target_implicitness: float = 0.5,
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
    (the refined Trajectory, possibly fewer turns), original_queries, grounding_json, effects_json,
    proofs_failed (re-checked at the end; 0 expected), implicitness (per turn),
    implicitness_mean, original_implicitness_mean, implicitness_uplift, operations,
    dropped_turns (with reasons), backend, model, prompt_version.
    """
    index = environments_by_id(envs)
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()
    solver_checks = backend == "llm" and gateway is not None and gateway.is_configured("solver")
    turn_scores: list[float] = []
    original_scores: list[float] = []
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
                {
                    "trajectory_id": lineage.get("id"),
                    "stage": STAGE,
                    "kind": "unreadable",
                    "reason": f"unreadable: {exc}",
                }
            )
            continue
        replay = recorded_replay(trajectory)
        if replay.final_states != trajectory.final_states:  # the record must be self-consistent
            rejected.append(
                {
                    "trajectory_id": trajectory.id,
                    "stage": STAGE,
                    "kind": "inconsistent_record",
                    "reason": "inconsistent record: the final states do not follow from the recorded calls",
                }
            )
            continue
        specs = {env.env_id: env.spec for env in envs_of_task}
        names = (
            [t.name for env in envs_of_task for t in env.spec.tools],
            [p for t in trajectory.turns for c in t.calls for p in c.arguments],
        )
        rng = random.Random(f"{seed}:{trajectory.id}")
        renderer = TurnRenderer(trajectory, replay, specs, rng, ambiguity_share)
        new_turns, proofs, effects, scores, originals, operations = [], [], [], [], [], []
        dropped: list[dict[str, Any]] = []
        llm_lineage: dict[str, str] = {}
        for position, turn in enumerate(trajectory.turns):
            candidate = renderer.render(position, target_implicitness)
            counts["rejected_rewrites"] += len(candidate.rejected_rewrites)
            problems = _audit(trajectory, position, candidate, replay, names, specs)
            template = candidate
            if not problems and backend == "llm":
                try:
                    llm, llm_lineage = _llm_candidate(
                        gateway,
                        trajectory,
                        position,
                        candidate,
                        [t.query for t in new_turns],
                        replay.turn_states[position],
                        specs,
                    )
                except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
                    counts["llm_errors"] += 1
                    llm, llm_lineage = None, {}
                    rejected.append(
                        {
                            "trajectory_id": trajectory.id,
                            "stage": STAGE,
                            "kind": "llm_error",
                            "reason": f"llm turn {position}: {exc}",
                        }
                    )
                if llm is not None:
                    if _audit(trajectory, position, llm, replay, names, specs):
                        counts["llm_rewrites_rejected"] += 1
                    else:
                        candidate = llm
            if not problems and solver_checks:
                candidate, problems = solver_accepted(
                    trajectory,
                    position,
                    [candidate, template],
                    [t.query for t in new_turns],
                    (replay, envs_of_task, gateway),
                    rejected,
                    counts,
                    stage=STAGE,
                )
            if problems:
                # this turn and the ones that build on it go; what was proven stays
                dropped = [
                    {"turn": position, "reasons": problems},
                    *(
                        {"turn": later, "reasons": [f"follows dropped turn {position}"]}
                        for later in range(position + 1, len(trajectory.turns))
                    ),
                ]
                counts["turns_dropped"] += len(dropped)
                counts.update(f"drop_{reason_kind(p)}" for p in problems)
                break
            counts.update(f"op_{op}" for op in candidate.operations)
            score = turn_implicitness(trajectory, position, candidate.query, replay)
            original = turn_implicitness(trajectory, position, turn.query, replay)
            if score is not None and original is not None:
                scores.append(score)
                originals.append(original)
            new_turns.append(turn.model_copy(update={"query": candidate.query}))
            proofs.extend(candidate.proofs)
            effects.extend(candidate.effects)
            operations.append(candidate.operations)
        if not new_turns:
            rejected.append(
                {
                    "trajectory_id": trajectory.id,
                    "stage": STAGE,
                    "kind": "first_turn_unprovable",
                    "reason": "no provable phrasing of the first turn: "
                    + "; ".join(dropped[0]["reasons"])[:1500],
                }
            )
            continue
        # The final audit: every stored proof re-checked against the final queries.
        proofs_failed = sum(1 for p in proofs if check_proof(p, replay, new_turns[p.turn].query))
        proofs_failed += sum(1 for e in effects if check_effect(e, new_turns[e.turn].query))
        # and no kept turn holds a value that is neither written nor carried by a proof
        proofs_failed += sum(
            len(unproven_values(trajectory, t.index, t.query, [p for p in proofs if p.turn == t.index]))
            for t in new_turns
        )
        counts["proofs"] += len(proofs) + len(effects)
        counts["proofs_passing"] += len(proofs) + len(effects) - proofs_failed
        turn_scores.extend(scores)
        original_scores.extend(originals)
        refined = truncated(trajectory, len(new_turns), replay).model_copy(
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
                "env_ids": refined.env_ids,
                "resource_ids": list(lineage.get("resource_ids") or []),
                "seed": trajectory.seed,
                "trajectory_json": refined.model_dump_json(),
                "original_queries": [t.query for t in trajectory.turns[: len(new_turns)]],
                "grounding_json": canonical_json([p.model_dump(mode="json") for p in proofs]),
                "effects_json": canonical_json([e.model_dump(mode="json") for e in effects]),
                "proofs_failed": proofs_failed,
                "implicitness": scores,
                "implicitness_mean": statistics.fmean(scores) if scores else 0.0,
                "original_implicitness_mean": statistics.fmean(originals) if originals else 0.0,
                "implicitness_uplift": statistics.fmean(scores) - statistics.fmean(originals)
                if scores
                else 0.0,
                "operations": [",".join(ops) for ops in operations],
                "dropped_turns": canonical_json(dropped),
                "turn_count": len(new_turns),
                "backend": backend,
                "model": refined.model,
                "prompt_version": refined.prompt_version,
            }
        )
    kinds = Counter(r.get("kind", "other") for r in rejected)
    metrics = {
        "trajectories_in": len(rows) + sum(v for k, v in kinds.items() if k not in TURN_REJECT_KINDS),
        "refined": len(rows),
        "rejected": len(rejected),
        "rejected_by_kind": dict(sorted(kinds.items())),
        "turns": len(turn_scores),
        "implicitness_refined": round(statistics.fmean(turn_scores), 4) if turn_scores else 0.0,
        "implicitness_original": round(statistics.fmean(original_scores), 4) if original_scores else 0.0,
        "implicitness_uplift": round(statistics.fmean(turn_scores) - statistics.fmean(original_scores), 4)
        if turn_scores
        else 0.0,
        "target_implicitness": target_implicitness,
        "proofs": counts["proofs"],
        "proofs_passing_share": counts["proofs_passing"] / counts["proofs"] if counts["proofs"] else 1.0,
        **{k: v for k, v in sorted(counts.items()) if k not in ("proofs", "proofs_passing")},
    }
    # `id` names the refined row a later guard rejects; no refined row was made for these
    return rows, [{"id": None, **r} for r in rejected], metrics


def reason_kind(problem: str) -> str:
    """The kind of an audit problem ("unproven", "leaks", "proof", "raw enum value", ...)."""
    head = problem.split(" ", 1)[0]
    return {"call": "unsolvable_or_unasked", "raw": "raw_enum"}.get(head, head)


def refinement_guards(envs: EnvironmentRows) -> list[RowGuard]:
    """What keeps a refined trajectory out of the partition (each a reject with its reason): a value
    or change its final queries do not prove, an enum value written as an identifier."""
    index = environments_by_id(envs)

    def raw_enums(row: Mapping[str, Any]) -> list[str]:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        enums = [
            v
            for env_id in trajectory.env_ids
            for tool in index[env_id].spec.tools
            for schema in (tool.input_schema.get("properties") or {}).values()
            for v in schema.get("enum") or []
        ]
        return sorted({v for turn in trajectory.turns for v in raw_enum_identifiers(turn.query, enums)})

    return [
        RowGuard(
            "unproven_values",
            lambda r: int(r["proofs_failed"]) == 0,
            lambda r: f"refined {r['id']}: {r['proofs_failed']} proof(s) fail on the final queries",
        ),
        RowGuard(
            "raw_enum_identifier",
            lambda r: not raw_enums(r),
            lambda r: f"refined {r['id']}: a query writes {', '.join(raw_enums(r))} as an identifier",
        ),
    ]


def partition_figures(
    rows: Sequence[Mapping[str, Any]], rejected: Sequence[Mapping[str, Any]], envs: EnvironmentRows
) -> dict[str, Any]:
    """One row of figures for the refinement checks: kept share, dropped turns, implicitness uplift
    and the language of the refined user turns (see `language_quality`)."""
    index = environments_by_id(envs)
    enums_of: dict[str, list[Any]] = {}
    turns = []
    dropped = 0
    for row in rows:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        dropped += len(json.loads(row["dropped_turns"]))
        for env_id in trajectory.env_ids:
            if env_id not in enums_of:
                enums_of[env_id] = [
                    v
                    for tool in index[env_id].spec.tools
                    for schema in (tool.input_schema.get("properties") or {}).values()
                    for v in schema.get("enum") or []
                ]
        for turn in trajectory.turns:
            values = [v for c in turn.calls for v in c.arguments.values()]
            enums = [v for e in trajectory.env_ids for v in enums_of[e]]
            turns.append((turn.query, values, enums))
    total = len(rows) + sum(1 for r in rejected if r.get("kind") not in (None, *TURN_REJECT_KINDS))
    kept_turns = len(turns)
    return {
        "refined": len(rows),
        "kept_share": round(len(rows) / total, 4) if total else 1.0,
        "dropped_turn_share": round(dropped / (dropped + kept_turns), 4) if dropped + kept_turns else 0.0,
        "implicitness_uplift": round(statistics.fmean(r["implicitness_uplift"] for r in rows), 4)
        if rows
        else 0.0,
        **language_figures(turns),
    }
