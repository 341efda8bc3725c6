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


def value_forms(value: Any) -> list[str]:
    """Ways a value can be written in text (25.0 -> "25.0", "25")."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        return [repr(value), str(int(value))]
    if isinstance(value, int | float | str):
        return [str(value)] if str(value) else []
    return []


_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def contains_token(text: str, token: str, *, ignore_case: bool) -> bool:
    """True if `token` occurs in `text` with no letter, digit or underscore right before or after it.

    ASCII text is scanned with `str.find` (refinement asks this tens of thousands of times with
    ever new tokens, and compiling a pattern per token dominated its cost); other text goes
    through the equivalent regular expression, whose case folding covers non-ASCII letters.
    """
    if not (text.isascii() and token.isascii()):
        pattern = rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])"
        return re.search(pattern, text, flags=re.IGNORECASE if ignore_case else 0) is not None
    if ignore_case:
        text, token = text.lower(), token.lower()
    start = text.find(token)
    while start != -1:
        end = start + len(token)
        if (start == 0 or text[start - 1] not in _WORD_CHARS) and (
            end == len(text) or text[end] not in _WORD_CHARS
        ):
            return True
        start = text.find(token, start + 1)
    return False


def is_literal_in(value: Any, text: str) -> bool:
    """True if the value is written in `text` as a whole token (case-insensitive)."""
    return any(contains_token(text, form, ignore_case=True) for form in value_forms(value))


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
        return "" if is_literal_in(proof.value, query) else f"value {proof.value!r} is not in the query"
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
