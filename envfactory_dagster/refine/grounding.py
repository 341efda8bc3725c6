"""Grounding proofs: how a value the query does not state is recovered, checked by execution.

A proof says where one gold argument value comes from when the refined query hides it:
- `output`: an earlier call's output at a JSON path. Every list index on the path must index a
  list of exactly one element (otherwise "the customer you found" is ambiguous);
- `state_lookup`: the rows of a collection, in the state at the START of the turn (the state the
  user describes), filtered by conditions (a condition's value may itself be a nested lookup,
  e.g. "the customer named Ada"), optionally ordered (most recent first) — exactly one row must
  match, or be strictly first, and its field must equal the value;
- `literal`: the value is written in the query.
`check_proof` re-runs the lookup on the replayed state; the verdict is the executed result.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.querygen.replay import Replay, read_path
from envfactory_dagster.querygen.surface import contains_token, is_literal_in


class Condition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    op: Literal["eq", "contains"] = "eq"
    value: Any = None
    lookup: StateLookup | None = None  # the value is the result of this lookup


class StateLookup(BaseModel):
    model_config = ConfigDict(extra="forbid")

    world_id: str  # the world whose state (at the start of the turn) the lookup reads
    collection: str
    filter: list[Condition] = Field(default_factory=list)
    order_by: str | None = None  # pick the first row by this field, descending
    field: str  # the field of the matched row that gives the value
    unique: bool = True


Condition.model_rebuild()


class GroundingProof(BaseModel):
    """The recovery path of one gold argument value (turn, call, argument) of a refined query."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    call: int
    argument: str
    value: Any
    via: Literal["literal", "output", "state_lookup"]
    phrase: str = ""  # the words of the query that stand for the value
    operation: str = ""  # implicit_reference | omission | action_compression | ambiguity | literal
    source_turn: int | None = None
    source_call: int | None = None
    path: str | None = None
    lookup: StateLookup | None = None


class EffectProof(BaseModel):
    """A state change of a turn and the words of the query that ask for it.

    Every write of a kept turn has one: the user asked for exactly that change. `check_effect`
    verifies that the phrase is in the final query (a write is never left implicit)."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    call: int
    phrase: str = ""  # the clause of the query that asks for the change (template backend)
    # words that must all appear when the query is free text (LLM backend): the changed record's
    # noun and, for a status change or a deletion, its verb
    keywords: list[str] = Field(default_factory=list)
    changes: list[str]  # "orders shopify_ord_0003: status open -> cancelled", "tasks +1 row"


def change_summary(diff: dict[str, Any]) -> list[str]:
    """A recorded state diff in short lines, for people reading a proof."""
    lines = []
    for collection, change in sorted(diff.items()):
        if change.get("added"):
            lines.append(f"{collection} +{len(change['added'])} row(s): {', '.join(sorted(change['added']))}")
        if change.get("removed"):
            lines.append(f"{collection} -{len(change['removed'])} row(s): {', '.join(change['removed'])}")
        for key, fields in sorted(change.get("changed", {}).items()):
            moves = "; ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in sorted(fields.items()))
            lines.append(f"{collection} {key}: {moves}")
    return lines


def check_effect(effect: EffectProof, query: str) -> str:
    """'' when the query asks for the change (its phrase is in the query), else the reason."""
    lowered = query.lower()
    if effect.phrase:
        asked = effect.phrase.lower() in lowered
    else:
        asked = bool(effect.keywords) and all(
            contains_token(lowered, k.lower(), ignore_case=True) for k in effect.keywords
        )
    return "" if asked else f"call {effect.call}: the change is not asked for"


def run_lookup(lookup: StateLookup, state: dict[str, Any]) -> tuple[Any, str]:
    """(value, "") for a unique match, (None, reason) otherwise."""
    table = state.get(lookup.collection)
    if not isinstance(table, dict):
        return None, f"no collection {lookup.collection!r}"
    rows = list(table.values())
    for cond in lookup.filter:
        target = cond.value
        if cond.lookup is not None:
            target, reason = run_lookup(cond.lookup, state)
            if reason:
                return None, f"nested lookup on {cond.field}: {reason}"
        if cond.op == "contains":
            needle = str(target).lower()
            rows = [r for r in rows if needle in str(r.get(cond.field, "")).lower()]
        else:
            rows = [r for r in rows if r.get(cond.field) == target]
    if lookup.order_by is not None:
        rows = sorted(rows, key=lambda r: str(r.get(lookup.order_by, "")), reverse=True)
        if len(rows) > 1 and rows[0].get(lookup.order_by) == rows[1].get(lookup.order_by):
            return None, f"tie on {lookup.order_by}"
        rows = rows[:1]
    if len(rows) != 1:
        return None, f"{len(rows)} rows match in {lookup.collection}"
    if lookup.field not in rows[0]:
        return None, f"matched row has no field {lookup.field!r}"
    return rows[0][lookup.field], ""


def _single_element_path(output: Any, path: str) -> str:
    """'' if every list index on `path` indexes a one-element list, else the reason."""
    value = output
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        if index:
            if not isinstance(value, list) or len(value) != 1:
                size = len(value) if isinstance(value, list) else "no"
                return f"path {path} picks one of {size} list items"
            value = value[int(index)]
        else:
            value = value[name]
    return ""


def lookup_anchors(lookup: StateLookup) -> list[Any]:
    """The literal values a state lookup starts from; the query must write each of them."""
    anchors: list[Any] = []
    for cond in lookup.filter:
        anchors.extend(lookup_anchors(cond.lookup) if cond.lookup is not None else [cond.value])
    return anchors


def check_proof(proof: GroundingProof, replay: Replay, query: str) -> str:
    """'' when the proof holds on the replayed execution, else the reason it fails."""
    if proof.via == "literal":
        written = is_literal_in(proof.value, query) or (
            isinstance(proof.value, bool) and bool(proof.phrase) and proof.phrase.lower() in query.lower()
        )
        return "" if written else f"value {proof.value!r} is not in the query"
    if proof.via == "output":
        if proof.source_turn is None or proof.source_call is None or proof.path is None:
            return "output proof without source"
        if (proof.source_turn, proof.source_call) >= (proof.turn, proof.call):
            return "output proof points at a later call"
        try:
            output = replay.outputs[proof.source_turn][proof.source_call]
            found = read_path(output, proof.path)
        except (IndexError, KeyError, TypeError, ValueError):
            return f"path {proof.path} does not resolve in the output of call {proof.source_call}"
        if found != proof.value:
            return f"output gives {found!r}, not {proof.value!r}"
        return _single_element_path(output, proof.path)
    if proof.lookup is None:
        return "state proof without lookup"
    if query:
        unwritten = [a for a in lookup_anchors(proof.lookup) if not is_literal_in(a, query)]
        if unwritten:
            return f"the query does not say {unwritten[0]!r}, which the lookup starts from"
    state = replay.turn_states[proof.turn].get(proof.lookup.world_id)
    if state is None:
        return f"no world {proof.lookup.world_id}"
    found, reason = run_lookup(proof.lookup, state)
    if reason:
        return reason
    return "" if found == proof.value else f"lookup gives {found!r}, not {proof.value!r}"
