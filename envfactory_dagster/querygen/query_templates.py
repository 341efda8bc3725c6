"""User queries for executed turns: the template backend, the LLM backend and the leak check.

Template backend: one first-person message per turn, phrased from the tools' action, entity and
description, with every value the user supplies (kind `user` or `state`) written out verbatim;
values that come from earlier outputs are referred to ("that order", "the order from earlier").
Phrasing varies by seeded choice among openers, frames, per-action verbs and connectors. It never
writes a tool name or an identifier-like parameter name; `query_leaks_tool_name` checks that.

LLM backend (`write_queries_llm`): prompt `persona` once per trajectory, then `user_query` per turn,
through `LLMGateway.complete_structured(role="query_writer")`; a query that leaks a name or drops a
user value falls back to the template query of that turn, and the problem is reported.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory

_OPENERS = ["", "", "Hi! ", "Hey, ", "Hello. ", "Quick request: ", "Could you help me out? ", "Okay, "]
_LATER_OPENERS = ["", "", "Thanks. ", "Great, ", "Perfect. ", "Alright, ", "Good. ", "Nice. "]
_FRAMES = [
    "Can you {p}?",
    "Please {p}.",
    "I'd like you to {p}.",
    "I need you to {p}.",
    "Could you {p}?",
    "Would you {p}?",
]
_CONNECTORS = [
    "Then {p}.",
    "After that, {p}.",
    "Next, {p}.",
    "Also {p}.",
    "Once that's done, {p}.",
    "And then {p}.",
]
_ACTION_PHRASES: dict[str, list[str]] = {
    "list": [
        "show me the {plural}{filters}",
        "list the {plural}{filters}",
        "pull up every {noun}{filters}",
        "give me an overview of the {plural}{filters}",
    ],
    "search": ["search for {plural}{filters}", "find {plural}{filters}", "look up any {noun}{filters}"],
    "get": [
        "show me the details of {ref}{filters}",
        "open {ref}{filters}",
        "look at {ref}{filters}",
        "fetch {ref}{filters}",
    ],
    "create": [
        "create a new {noun}{values}",
        "add a {noun}{values}",
        "set up a new {noun}{values}",
        "make a {noun}{values}",
    ],
    "update": ["update {ref}{values}", "change {ref}{values}", "edit {ref}{values}", "modify {ref}{values}"],
    "delete": ["delete {ref}", "remove {ref}", "get rid of {ref}"],
    "transition": [
        "{verb} {ref}{values}",
        "go ahead and {verb} {ref}{values}",
        "{verb} {ref} for me{values}",
    ],
}
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]*")


def _phrase(ws: Iterable[str]) -> str:
    return " ".join(ws)


def value_text(value: Any) -> str:
    """How a value is written in a query (strings verbatim, lists joined, booleans yes/no)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value_text(v) for v in value) or "none"
    if isinstance(value, float) and value.is_integer():
        return str(value)
    return str(value)


def _field_phrase(param: str, noun_words: list[str]) -> str:
    ws = [w for w in words(param) if w not in ("id", "ids")]
    trimmed = (
        ws[len(noun_words) :] if ws[: len(noun_words)] == noun_words and len(ws) > len(noun_words) else ws
    )
    return _phrase(trimmed or ws or ["value"])


def query_leaks_tool_name(query: str, tool_names: Iterable[str], param_names: Iterable[str] = ()) -> bool:
    """True when `query` contains a tool name, or an identifier-like parameter name (`order_id`,
    `shopSectionId`), as a whole word. Single plain-word parameter names ("title", "price") are
    ordinary words and are not counted."""
    tokens = {t.lower() for t in re.findall(r"[A-Za-z0-9_]+", query)}
    idents = {m.group(0).lower() for m in _IDENT.finditer(query)}
    for name in tool_names:
        if name.lower() in tokens or name.lower() in idents:
            return True
    return any(_IDENT.fullmatch(p) and p.lower() in tokens | idents for p in param_names)


def call_phrase(
    call: GoldCall,
    tool: ToolSpec,
    spec: EnvSpec,
    rng: random.Random,
    *,
    turn: int,
    vendor: str | None,
    ref_hint: str = "",
) -> str:
    """One clause describing a call, in the user's words; `ref_hint` singles out the referred row
    when it was picked from a list (`with name "Blue mug"`)."""
    entity = next((e for e in spec.entities if e.name == tool.entity), None)
    noun_words = words(entity.name) if entity else [w for w in words(tool.name)[1:]] or ["item"]
    noun = _phrase(noun_words)
    plural = _phrase(words(entity.collection)) if entity else noun + "s"
    referred = [s for s in call.argument_sources.values() if s.kind == "output"]
    if referred:
        earlier = any(s.turn is not None and s.turn < turn for s in referred)
        ref = (
            rng.choice([f"the {noun} from earlier", f"that earlier {noun}"])
            if earlier
            else rng.choice(
                [f"that {noun}", f"the {noun} you just found", f"this {noun}", f"the same {noun}"]
            )
        )
    else:
        ref = f"the {noun}"
    if ref_hint:
        ref = f"the {noun} {ref_hint}"
    filters: list[str] = []
    values: list[str] = []
    for name, value in call.arguments.items():
        source = call.argument_sources.get(name)
        if source is None or source.kind == "output":
            continue
        binding = tool.param_fields.get(name, "")
        text = value_text(value)
        if binding == "$query":
            filters.append(
                rng.choice([f' matching "{text}"', f' that mention "{text}"', f' containing "{text}"'])
            )
        elif binding.startswith("$"):
            filters.append(f" ({_field_phrase(name, [])} {text})")
        else:
            field = _field_phrase(name, noun_words)
            values.append(
                f"{field} {text}"
                if tool.action in ("create", "transition", "custom")
                else f"{field} to {text}"
            )
            filters.append(f" with {field} {text}")
    action = tool.action if tool.action in _ACTION_PHRASES else "custom"
    values_text = ""
    if values:
        joined = ", ".join(values[:-1]) + (" and " if len(values) > 1 else "") + values[-1]
        values_text = (
            (": " if action == "create" else " with ") + joined if action != "update" else ": set " + joined
        )
    if action == "custom":
        first = re.split(r"(?<=[.!?])\s", tool.description.strip(), maxsplit=1)[0].rstrip(".!?")
        body = (first[:1].lower() + first[1:]) if first else f"handle {ref}"
        text = f"{body}{' for ' + ref if referred else ''}{values_text}"
    else:
        verb = _phrase(words(tool.name)[:1]) or "process"
        template = rng.choice(_ACTION_PHRASES[action])
        text = template.format(
            plural=plural, noun=noun, ref=ref, verb=verb, filters="".join(filters), values=values_text
        )
    if vendor:
        text += rng.choice([f" in {vendor}", f" on {vendor}", f" over in {vendor}"])
    return text


def render_turn_query(
    calls: list[GoldCall],
    tools: list[ToolSpec],
    specs: list[EnvSpec],
    rng: random.Random,
    *,
    turn: int,
    vendors: list[str | None],
    ref_hints: list[str] | None = None,
) -> str:
    """A first-person message asking for the turn's calls in order."""
    opener = rng.choice(_OPENERS if turn == 0 else _LATER_OPENERS)
    parts = []
    previous_vendor = None
    for index, (call, tool, spec, vendor) in enumerate(zip(calls, tools, specs, vendors, strict=True)):
        # name the service only where it changes, as a person switching apps would
        clause = call_phrase(
            call,
            tool,
            spec,
            rng,
            turn=turn,
            vendor=vendor if vendor != previous_vendor else None,
            ref_hint=ref_hints[index] if ref_hints else "",
        )
        previous_vendor = vendor
        template = rng.choice(_FRAMES if index == 0 else _CONNECTORS)
        parts.append(template.format(p=clause))
    body = " ".join(parts)
    if opener.endswith((", ", ": ")) and not body.startswith(("I ", "I'")):
        body = body[:1].lower() + body[1:]
    text = opener + body
    return text[:1].upper() + text[1:]


def missing_user_values(query: str, calls: list[GoldCall]) -> list[str]:
    """User- or state-sourced argument values that the query does not state verbatim."""
    missing = []
    lowered = query.lower()
    for call in calls:
        for name, value in call.arguments.items():
            source = call.argument_sources.get(name)
            if source is not None and source.kind != "output" and value_text(value).lower() not in lowered:
                missing.append(f"{call.tool}.{name}={value_text(value)!r}")
    return missing


# -- LLM backend -----------------------------------------------------------------------
class PersonaAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    persona: str
    scenario: str


class QueryAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str


def write_queries_llm(
    trajectory: Trajectory, gateway: Any, specs: dict[str, EnvSpec], *, stage: str = "trajectories"
) -> tuple[Trajectory, list[str]]:
    """The trajectory with an LLM-written persona and per-turn queries, and the problems found.

    `gateway` is an `envfactory_dagster.llm.LLMGateway`; `specs` maps env_id -> EnvSpec. A turn
    whose query leaks a tool or parameter name, or omits a value the user must state, keeps its
    template query (the problem is returned). Provider errors propagate to the caller.
    """
    problems: list[str] = []
    tool_names = {c.tool for t in trajectory.turns for c in t.calls}
    param_names = {p for t in trajectory.turns for c in t.calls for p in c.arguments}
    environments = [
        {"title": specs[e].title, "description": specs[e].description} for e in trajectory.env_ids
    ]
    chain = [
        {
            "environment": specs[c.env_id].title,
            "step": next(t.description for t in specs[c.env_id].tools if t.name == c.tool),
        }
        for turn in trajectory.turns
        for c in turn.calls
    ]
    persona_result = gateway.complete_structured(
        stage=stage,
        role="query_writer",
        prompt="persona",
        variables={"domain": trajectory.domain, "environments": environments, "chain": chain},
        output_model=PersonaAnswer,
    )
    persona: PersonaAnswer = persona_result.value
    history: list[dict[str, str]] = []
    turns = []
    result = persona_result
    for turn in trajectory.turns:
        calls = [{"tool": c.tool, "arguments": c.arguments, "result": c.output} for c in turn.calls]
        user_values = {
            f"{c.tool}.{k}": v
            for c in turn.calls
            for k, v in c.arguments.items()
            if c.argument_sources.get(k) is not None and c.argument_sources[k].kind != "output"
        }
        result = gateway.complete_structured(
            stage=stage,
            role="query_writer",
            prompt="user_query",
            variables={
                "persona": persona.persona,
                "scenario": persona.scenario,
                "history": history,
                "calls": calls,
                "user_values": user_values,
            },
            output_model=QueryAnswer,
        )
        query = result.value.query.strip()
        leak = query_leaks_tool_name(query, tool_names, param_names)
        missing = missing_user_values(query, turn.calls)
        if leak or missing or not query:
            faults = ["leaks a tool or parameter name"] if leak else []
            faults += [f"misses {', '.join(missing)}"] if missing else []
            faults += ["empty"] if not query else []
            problems.append(
                f"turn {turn.index}: LLM query replaced by the template one ({'; '.join(faults)})"
            )
            query = turn.query
        history.append({"role": "user", "content": query})
        turns.append(turn.model_copy(update={"query": query}))
    updated = trajectory.model_copy(
        update={
            "turns": turns,
            "persona": f"{persona.persona} {persona.scenario}".strip(),
            "backend": "llm",
            "model": persona_result.model,
            "prompt_version": f"persona@{persona_result.prompt_version},user_query@{result.prompt_version}"
            if turns
            else persona_result.prompt_ref,
        }
    )
    return updated, problems
