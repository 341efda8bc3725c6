"""The assistant's closing answer of each turn: what the turn's calls found or did.

Two writers, one check:

- `template_answer` (offline heuristic, deterministic): facts read from the turn's gold calls —
  rows each write call added, changed or removed (its `state_diff`), a write that changed nothing,
  the entities a read returned (a list: how many and a few of them; one entity: the fields the
  request mentions, else its status-like fields) — rendered with phrasings, connectors and
  openers drawn by a generator seeded with the trajectory id and turn, so two turns with the same
  facts rarely read alike and every answer says something only its own outputs say. Reads that
  only fed another call (not among the turn's `targets`, not asked to be shown) are left out when
  the turn has other facts.
- `llm_answer_requests` / `accept_llm_answers` (LLM backend, prompt `turn_answer`): the model
  writes the answer from the same facts and outputs; an answer is kept only if it passes
  `answer_problems`, else the template answer stands and the reason is counted.
- `answer_problems`: an answer must be non-empty text that names no tool, cites no identifier
  absent from the turn's request, arguments and outputs, and mentions every row the turn wrote.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.querygen.surface import humanize_enum
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory, Turn

STAGE = "turn_answers"
ANSWER_PROMPT = "turn_answer"
LABEL_FIELDS = ("name", "title", "full_name", "display_name", "subject", "summary", "label", "email", "code")
STATUS_FIELDS = ("status", "state", "stage", "workflow_state", "phase", "decision")
AMOUNT_FIELDS = ("total", "amount", "price", "total_price", "balance", "quantity", "count")
MAX_FACTS = 6
MAX_SAMPLES = 3
MAX_VALUE_CHARS = 60
IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]*[0-9][A-Za-z0-9_]*\b")


class TurnAnswer(BaseModel):
    """What the LLM returns for one turn."""

    model_config = ConfigDict(extra="forbid")

    answer: str


@dataclass
class Fact:
    """One thing a turn found or did, in words-ready pieces."""

    kind: str  # created | changed | removed | unchanged | listed | shown | result
    entity: str  # singular noun, e.g. "hotel reservation"
    ref: str = ""  # `"Label" (id)` or `id`
    key: str = ""  # the row id, for the check
    count: int = 0
    samples: list[str] = field(default_factory=list)
    fields: list[tuple[str, Any]] = field(default_factory=list)  # (field words, value)
    changes: list[tuple[str, Any, Any]] = field(default_factory=list)  # (field words, old, new)


# -- facts ---------------------------------------------------------------------------------
def singular(noun: str) -> str:
    """`hotel_reservations` -> `hotel reservation` (English plural rules that cover API names)."""
    words = noun.replace("-", "_").split("_")
    last = words[-1]
    if last.endswith("ies") and len(last) > 4:
        last = last[:-3] + "y"
    elif last.endswith(("sses", "xes", "ches", "shes", "zzes")):
        last = last[:-2]
    elif last.endswith("s") and not last.endswith(("ss", "us", "is")):
        last = last[:-1]
    return " ".join([*words[:-1], last]).strip().lower()


def words_of(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").lower()


# snake_case or long UPPER_CASE words without digits: enum values. Narrower than
# language_quality.is_identifier_value, which also takes ids (`ord_0001`): those stay verbatim.
ENUM_WORDS = re.compile(r"[A-Za-z]+(?:_[A-Za-z]+)+|[A-Z]{4,}")


def short(value: Any) -> str:
    """A value as it reads in a sentence (strings quoted only when they hold spaces)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, list):
        inner = ", ".join(short(v) for v in value[:MAX_SAMPLES])
        return f"[{inner}{', …' if len(value) > MAX_SAMPLES else ''}]"
    if isinstance(value, dict):
        return "{…}"
    text = str(value)
    if ENUM_WORDS.fullmatch(text):  # an enum value in words, unquoted: desk reject, not desk_reject
        return humanize_enum(text)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1].rstrip() + "…"
    return f'"{text}"' if " " in text else text


# Unit suffixes of field names (`estimated_moving_time_s`, `distance_m`): said after the number
# ("estimated moving time 203 s"), not as a word of the label ("estimated moving time s 203").
UNIT_SUFFIXES = {"s": "s", "ms": "ms", "m": "m", "km": "km", "kg": "kg", "pct": "%", "percent": "%"}


def unit_split(label: str, value: Any) -> tuple[str, str | None]:
    """(label without a unit suffix, the unit) for a number whose field words end in a unit."""
    head, _, last = label.rpartition(" ")
    if head and last in UNIT_SUFFIXES and isinstance(value, int | float) and not isinstance(value, bool):
        return head, UNIT_SUFFIXES[last]
    return label, None


def with_unit(value: Any, unit: str | None) -> str:
    return f"{short(value)}{'' if unit == '%' else ' '}{unit}" if unit else short(value)


def field_phrase(label: str, value: Any) -> str:
    """`label value` as the answer says it, a unit after its number."""
    label, unit = unit_split(label, value)
    return f"{label} {with_unit(value, unit)}"


def label_of(row: Mapping[str, Any]) -> str | None:
    for name in LABEL_FIELDS:
        value = row.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def reference(row: Mapping[str, Any], key: str | None = None, *, with_status: bool = True) -> str:
    """`"Justin Ortega" (ven_0002)`; without a label, the id and (`with_status`, for rows whose
    fields the sentence does not report anyway) its status: `ord_0001 (pending)`."""
    key = key or str(row.get("id") or "")
    label = label_of(row)
    if label and key:
        return f'"{label}" ({key})'
    status = next((row[f] for f in STATUS_FIELDS if isinstance(row.get(f), str) and row[f]), None)
    if key and status and with_status:
        return f"{key} ({short(status)})"
    return key or (f'"{label}"' if label else "")


def chosen_fields(row: Mapping[str, Any], query: str, limit: int = 3) -> list[tuple[str, Any]]:
    """Fields worth saying about a row: those the request mentions, then status and amount fields."""
    query_words = set(re.findall(r"[a-z0-9]+", query.lower()))
    skip = {"id", *LABEL_FIELDS}
    mentioned = [
        k
        for k in row
        if k not in skip and set(words_of(k).split()) & query_words and not isinstance(row[k], dict)
    ]
    ranked = mentioned + [k for k in (*STATUS_FIELDS, *AMOUNT_FIELDS) if k in row and k not in mentioned]
    return [(words_of(k), row[k]) for k in ranked if row[k] not in (None, "", [])][:limit]


def diff_facts(call: GoldCall) -> list[Fact]:
    facts = []
    for collection, diff in call.state_diff.items():
        entity = singular(collection)
        for key, row in (diff.get("added") or {}).items():
            facts.append(
                Fact(
                    "created",
                    entity,
                    reference(row, key, with_status=False),
                    key,
                    fields=chosen_fields(row, "", limit=2),
                )
            )
        changed = diff.get("changed") or {}
        if isinstance(changed, list):  # keys only: the fields that changed are not recorded
            changed = {key: {} for key in changed}
        for key, changes in changed.items():
            row = (
                call.output.get(singular(collection).replace(" ", "_"))
                if isinstance(call.output, dict)
                else None
            )
            ref = (
                reference(row, key, with_status=False)
                if isinstance(row, dict) and row.get("id") == key
                else key
            )
            pairs = [
                (words_of(f), old_new[0], old_new[1]) for f, old_new in changes.items() if len(old_new) == 2
            ]
            facts.append(Fact("changed", entity, ref, key, changes=pairs))
        for key in diff.get("removed") or []:
            facts.append(Fact("removed", entity, str(key), str(key)))
    return facts


def output_facts(call: GoldCall, query: str, *, wrote: bool) -> list[Fact]:
    output = call.output
    entries = list(output.items()) if isinstance(output, dict) else []
    if len(entries) == 1 and isinstance(entries[0][1], list):
        name, items = entries[0]
        rows = [i for i in items if isinstance(i, dict)]
        samples = [reference(r) for r in rows[:MAX_SAMPLES] if reference(r)]
        if not samples:
            samples = [short(i) for i in items[:MAX_SAMPLES]]
        return [Fact("listed", singular(name), count=len(items), samples=samples)]
    if len(entries) == 1 and isinstance(entries[0][1], dict):
        name, row = entries[0]
        ref, key = reference(row), str(row.get("id") or "")
        if wrote:  # a write that changed nothing: say which requested values were already there
            asked = [
                (words_of(k), v) for k, v in call.arguments.items() if v != key and not isinstance(v, dict)
            ]
            return [Fact("unchanged", singular(name), ref, key, fields=asked[:3])]
        fields = chosen_fields(row, query)
        ref = reference(row, with_status=not fields)  # the fields say the status already
        return [Fact("shown", singular(name), ref, key, fields=fields)]
    scalars = [(words_of(k), v) for k, v in entries if not isinstance(v, dict | list)]
    return [Fact("result", "result", fields=scalars[:3])] if scalars else []


def turn_facts(turn: Turn, kinds: Mapping[tuple[str, str], str]) -> list[Fact]:
    """Facts of a turn in call order; `kinds`: (env_id, tool) -> "read" | "write" | "user" (a
    user-performed step: no fact, the user reported it).

    A read is a look-up (left out when the turn has other facts) when it is not one of the turn's
    `targets` (the calls the user asked for; without recorded targets: when a later call of the
    turn reads its output) and the request does not ask to see what it returns."""
    used_later = {
        (source.turn, source.call)
        for call in turn.calls
        for source in call.argument_sources.values()
        if source.kind == "output" and source.turn == turn.index
    }
    facts, lookups = [], []
    for index, call in enumerate(turn.calls):
        if kinds.get((call.env_id, call.tool)) == "user":  # the user did it and said so
            continue
        written = diff_facts(call)
        if written:
            facts.extend(written)
            continue
        write = kinds.get((call.env_id, call.tool)) == "write"
        found = output_facts(call, turn.query, wrote=write)
        fed_another = index not in turn.targets if turn.targets else (turn.index, index) in used_later
        is_lookup = fed_another and not write and not any(asks_to_see(turn.query, f.entity) for f in found)
        (lookups if is_lookup else facts).extend(found)
    return facts or lookups


# -- rendering -----------------------------------------------------------------------------
PHRASES: dict[str, tuple[str, ...]] = {
    "created": (
        "I created {entity} {ref}{details}",
        "{Entity} {ref} has been created{details}",
        "Added a new {entity}, {ref}{details}",
        "A new {entity} is in place: {ref}{details}",
    ),
    "changed": (
        "{Entity} {ref}: {changes}",
        "I updated {entity} {ref}: {changes}",
        "Updated {entity} {ref}: {changes}",
        "For {entity} {ref}, {changes}",
    ),
    "changed_bare": ("I updated {entity} {ref}", "{Entity} {ref} has been updated", "Updated {entity} {ref}"),
    "removed": ("I deleted {entity} {ref}", "{Entity} {ref} has been removed", "Removed {entity} {ref}"),
    "unchanged": (
        "{Entity} {ref} already had {fields}, so nothing changed",
        "No change was needed: {entity} {ref} already had {fields}",
    ),
    "unchanged_bare": ("{Entity} {ref} was already up to date", "No change was needed for {entity} {ref}"),
    "listed_none": ("There are no matching {entities}", "I found no {entities}", "No {entities} came up"),
    "listed": (
        "I found {count} {entities}: {samples}{more}",
        "There are {count} {entities}, including {samples}",
        "{count} {entities} came back: {samples}{more}",
        "Your search returns {count} {entities} ({samples}{more})",
    ),
    "listed_one": ("I found one {entity}: {samples}", "There is a single {entity}, {samples}"),
    "shown": ("{Entity} {ref} has {fields}", "Here is {entity} {ref}: {fields}", "{Entity} {ref}: {fields}"),
    "shown_bare": ("I pulled up {entity} {ref}", "Here is {entity} {ref}"),
    "result": ("The request went through ({fields})", "Result: {fields}", "That worked: {fields}"),
}
OPENERS = {
    "write": ("", "", "", "Done. ", "All set. ", "Sure. ", "OK, taken care of. "),
    "read": ("", "", "", "Here's what I found. ", "Sure. ", "I looked it up. "),
}
USER_STEP_THANKS = (
    "Thanks for taking care of that.",
    "Great, thanks for doing that.",
    "Thanks, that's done then.",
)
CLOSERS = ("", "", "", " Anything else?", " Let me know if you need more.", " Want me to do anything else?")
WRITE_FACTS = ("created", "changed", "removed", "unchanged")
CHANGE_STYLES = (
    "{field} is now {new} (was {old})",
    "{field} went from {old} to {new}",
    "{field} changed to {new}",
)


SEE_VERBS = re.compile(r"\b(list|show|find|look up|search|pull up|get|see|check|which|what)\b")


def asks_to_see(query: str, entity: str) -> bool:
    """Does the request ask to see this kind of entity (a read the user wants reported, not a
    look-up that only fed a later call)? A seeing verb, and the entity named after it."""
    text = query.lower()
    verb = SEE_VERBS.search(text)
    return verb is not None and any(name in text[verb.start() :] for name in (entity, plural(entity)))


def plural(entity: str) -> str:
    last = entity.split(" ")[-1]
    if last.endswith("y") and last[-2:-1] not in "aeiou":
        return entity[:-1] + "ies"
    if last.endswith(("s", "x", "ch", "sh")):
        return entity + "es"
    return entity + "s"


def render_fact(fact: Fact, rng: random.Random) -> str:
    fields = ", ".join(field_phrase(name, value) for name, value in fact.fields)
    values = {
        "entity": fact.entity,
        "Entity": fact.entity[:1].upper() + fact.entity[1:],
        "entities": plural(fact.entity),
        "ref": fact.ref,
        "count": fact.count,
        "samples": ", ".join(fact.samples),
        "more": f" and {fact.count - len(fact.samples)} more" if fact.count > len(fact.samples) else "",
        "fields": fields,
        "details": f" with {fields}" if fields else "",
    }
    kind = fact.kind
    if kind == "listed":
        kind = "listed_none" if fact.count == 0 else "listed_one" if fact.count == 1 else "listed"
    elif kind in ("shown", "unchanged") and not fields:
        kind = f"{kind}_bare"
    elif kind == "changed" and not fact.changes:
        kind = "changed_bare"
    elif kind == "changed":
        style = rng.choice(CHANGE_STYLES)
        changes = []
        for label, old, new in fact.changes:
            head, unit = unit_split(label, new)
            changes.append(style.format(field=head, old=with_unit(old, unit), new=with_unit(new, unit)))
        values["changes"] = "; ".join(changes)
    return rng.choice(PHRASES[kind]).format(**values)


def template_answer(turn: Turn, kinds: Mapping[tuple[str, str], str], *, seed_key: str) -> str:
    """The offline closing answer of `turn` (deterministic for a seed key)."""
    rng = random.Random(int(sha256_hex(f"{seed_key}:{turn.index}")[:16], 16))
    facts = turn_facts(turn, kinds)
    if not facts and any(kinds.get((c.env_id, c.tool)) == "user" for c in turn.calls):
        return rng.choice(USER_STEP_THANKS)
    if not facts:
        return rng.choice(("I checked, but there was nothing to report.", "Nothing came back for that."))
    sentences = [render_fact(f, rng) for f in facts[:MAX_FACTS]]
    if len(facts) > MAX_FACTS:
        sentences.append(f"{len(facts) - MAX_FACTS} more changes and results are in the tool output above")
    openers = OPENERS["write" if any(f.kind in WRITE_FACTS for f in facts) else "read"]
    if len(sentences) >= 3 and rng.random() < 0.5:
        body = "\n".join(f"- {s}" for s in sentences)
        return f"{rng.choice(openers).strip() or 'Here is the summary:'}\n{body}"
    connector = rng.choice((". ", "; ", ". Also, "))
    body = sentences[0] + "".join(
        connector + (s if connector == ". " else lower_first(s)) for s in sentences[1:]
    )
    return f"{rng.choice(openers)}{body}.{rng.choice(CLOSERS)}"


def lower_first(sentence: str) -> str:
    """Lower-case a sentence's first letter to continue a sentence (not the pronoun "I")."""
    if sentence.startswith("I ") or not sentence[:1].isupper():
        return sentence
    return sentence[:1].lower() + sentence[1:]


# -- the check -----------------------------------------------------------------------------
def answer_problems(answer: str, turn: Turn, tool_names: Iterable[str]) -> list[str]:
    """Why `answer` cannot close `turn` (empty: acceptable)."""
    text = answer.strip()
    if not text:
        return ["empty: no text"]
    problems = []
    for name in tool_names:
        if re.search(rf"\b{re.escape(name)}\b", text):
            problems.append(f"names a tool: {name}")
    known = json.dumps([turn.query, [[c.arguments, c.output, c.state_diff] for c in turn.calls]])
    problems.extend(
        f"cites an identifier the turn never showed: {token}"
        for token in sorted(set(IDENTIFIER.findall(text)))
        if token not in known
    )
    for call in turn.calls:
        for fact in diff_facts(call):
            if (
                fact.key
                and fact.key not in text
                and (label_of_fact := fact.ref.split(" (")[0].strip('"')) not in text
            ):
                problems.append(f"omits a row the turn wrote: {fact.entity} {fact.key} ({label_of_fact})")
    return problems


# -- the LLM writer ------------------------------------------------------------------------
def llm_answer_variables(turn: Turn, names: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """Prompt variables of one turn: the request, each call with its output and state changes."""
    return {
        "request": turn.query,
        "calls": [
            {
                "tool": names.get((c.env_id, c.tool), c.tool),
                "arguments": c.arguments,
                "output": c.output,
                "state_changes": c.state_diff,
            }
            for c in turn.calls
        ],
    }


def tool_kinds(envs: Sequence[Any]) -> dict[tuple[str, str], str]:
    """(env_id, tool) -> "read" | "write" over the environments of a trajectory, or "user" for a
    tool only the user runs (envgen/user_only.py): the user reports its outcome, so the closing
    answer does not claim it."""
    kinds = {(env.env_id, name): tool.kind for env in envs for name, tool in env.env_class.TOOLS.items()}
    kinds.update({(env.env_id, t.name): "user" for env in envs for t in env.spec.tools if t.performed_by})
    return kinds


@dataclass
class AnswerJob:
    """One trajectory whose turns need answers: its tool names and kinds come with it."""

    trajectory: Trajectory
    names: Mapping[tuple[str, str], str]  # (env_id, tool) -> exported name
    kinds: Mapping[tuple[str, str], str]


def write_answers(
    jobs: Sequence[AnswerJob], *, backend: str = "template", gateway: Any = None
) -> tuple[list[list[str]], dict[str, Any]]:
    """Closing answers for every turn of every job (in order) and metrics.

    `backend="llm"` asks the gateway's "refiner" model (prompt `turn_answer`) for each turn; an
    answer that fails `answer_problems`, or a failed request, keeps the template answer (counted by
    reason in `metrics["llm_answers_rejected"]`).
    """
    answers = [
        [template_answer(turn, job.kinds, seed_key=job.trajectory.id) for turn in job.trajectory.turns]
        for job in jobs
    ]
    metrics: dict[str, Any] = {"answers": sum(len(a) for a in answers), "answer_backend": backend}
    if backend != "llm":
        return answers, metrics
    from envfactory_dagster.llm.gateway import StructuredRequest

    slots = [(j, t) for j, job in enumerate(jobs) for t in range(len(job.trajectory.turns))]
    requests = [
        StructuredRequest(
            stage=STAGE,
            role="refiner",
            prompt=ANSWER_PROMPT,
            variables=llm_answer_variables(jobs[j].trajectory.turns[t], jobs[j].names),
            output_model=TurnAnswer,
        )
        for j, t in slots
    ]
    rejected: dict[str, int] = {}
    accepted = 0
    for (j, t), result in zip(slots, gateway.batch_structured(requests), strict=True):
        value = getattr(result, "value", None)
        if value is None:
            reason = f"request failed ({getattr(result, 'kind', 'error')})"
        else:
            turn = jobs[j].trajectory.turns[t]
            problems = answer_problems(value.answer, turn, jobs[j].names.values())
            if not problems:
                answers[j][t] = value.answer.strip()
                accepted += 1
                continue
            reason = problems[0].split(":")[0]
        rejected[reason] = rejected.get(reason, 0) + 1
    metrics.update({"llm_answers_accepted": accepted, "llm_answers_rejected": rejected})
    return answers, metrics
