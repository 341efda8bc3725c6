"""User queries for executed turns: the template backend, the LLM backend and the leak check.

Template backend: one first-person message per turn, phrased from the tools' action, entity and
description, with every value the user supplies (kind `user` or `state`) written out (dates and
identifier-like values in words, `surface.natural_value`); values that come from earlier outputs
are referred to ("that order", "the order from earlier"). These explicit queries are the baseline
that refinement makes implicit. Phrasing comes from `surface` (action verbs, frames, connectors,
all seeded). It never writes a tool name or an identifier-like parameter name;
`query_leaks_tool_name` checks that.

LLM backend (`write_queries_llm`): prompt `persona` once per trajectory, then `user_query` per turn,
through `LLMGateway.complete_structured(role="query_writer")`; a query that leaks a name or drops a
user value, or does not name the turn's change, falls back to the template query of that turn,
and the problem is reported.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.surface import (
    contains_token,
    create_clause,
    delete_clause,
    field_label,
    frame_request,
    get_clause,
    humanize_enum,
    is_literal_in,
    join_clauses,
    join_words,
    list_clause,
    natural_value,
    says_nothing,
    search_clause,
    transition_verb,
    update_clause,
    verb_with_object,
)
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory

_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+[A-Z][A-Za-z0-9]*")


def _phrase(ws: Iterable[str]) -> str:
    return " ".join(ws)


def value_text(value: Any, label: str | None = None) -> str:
    """How a value is written in a query: words for dates and identifiers, lists joined, a yes/no
    setting with its label."""
    return natural_value(value, label)


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


def entity_noun(tool: ToolSpec, spec: EnvSpec) -> str:
    entity = next((e for e in spec.entities if e.name == tool.entity), None)
    return _phrase(words(entity.name)) if entity else _phrase(words(tool.name)[1:]) or "item"


def _reference(call: GoldCall, noun: str, rng: random.Random, turn: int, ref_hint: str) -> str:
    """Words for the row an earlier call gave ("that order", "the order you found earlier")."""
    if ref_hint:
        return f"the {noun} {ref_hint}"
    earlier = any(
        s.kind == "output" and s.turn is not None and s.turn < turn for s in call.argument_sources.values()
    )
    if earlier:
        return rng.choice(
            [f"the {noun} from earlier", f"that {noun} from before", f"the same {noun} as before"]
        )
    return rng.choice([f"that {noun}", f"the {noun} you just found", f"this {noun}", f"the same {noun}"])


def call_phrase(
    call: GoldCall,
    tool: ToolSpec,
    spec: EnvSpec,
    rng: random.Random,
    *,
    turn: int,
    vendor: str | None,
    ref_hint: str = "",
    existing: Callable[[Any], bool] = lambda value: False,
) -> str:
    """One clause asking for a call with every value the user supplies written out (the explicit
    query of `trajectories`): a record that existed before the turn is named by its id ("the
    order shopify_ord_0003"); a record an earlier call of the task made is referred to. `ref_hint`
    singles out a row picked from a list (`with name "Blue mug"`); `existing(value)` tells whether
    a value is the id of a record that existed before the call."""
    noun = entity_noun(tool, spec)
    key_field = next((e.key_field for e in spec.entities if e.name == tool.entity), "id")
    explicit = {
        name
        for name, value in call.arguments.items()
        if (s := call.argument_sources.get(name)) is not None and s.kind == "output" and existing(value)
    }
    referred = any(s.kind == "output" for n, s in call.argument_sources.items() if n not in explicit)
    target = _reference(call, noun, rng, turn, ref_hint) if referred else f"the {noun}"
    details: list[tuple[str, str]] = []  # (label, value text); a yes/no setting has its label inside
    terms: list[str] = []
    for name, value in call.arguments.items():
        source = call.argument_sources.get(name)
        if source is None or (source.kind == "output" and name not in explicit) or says_nothing(value):
            continue
        binding = tool.param_fields.get(name, "")
        label = field_label(binding if binding and not binding.startswith("$") else name)
        enum = bool(((tool.input_schema.get("properties") or {}).get(name) or {}).get("enum"))
        if name in explicit or binding == key_field:
            text = str(value)  # an id is written as it is
        else:
            text = humanize_enum(value) if enum and isinstance(value, str) else value_text(value, label)
        if binding == "$query":
            terms.append(f'"{text}"')
        elif binding == key_field and (not referred or name in explicit):
            target = f"the {noun} {text}"
        elif name in explicit:
            details.append((label, text))
        else:
            details.append(("" if isinstance(value, bool) else label, text))
    listed = join_words([f"{label} {text}".strip() for label, text in details])
    action = tool.action
    if action == "get":
        text = get_clause(rng, target)
    elif action == "list":
        text = list_clause(rng, noun, f" with {listed}" if listed else "")
    elif action == "search":
        text = search_clause(rng, noun, join_words(terms) or listed or "anything relevant")
    elif action == "create":
        text = create_clause(rng, noun, f" with {listed}" if listed else "")
    elif action == "update":
        changes = [f"set the {label} to {text}" if label else f"set {text}" for label, text in details]
        text = update_clause(rng, target, changes or ["refresh it"])
    elif action == "delete":
        text = delete_clause(rng, noun, target)
    elif action == "transition" and tool.transition is not None:
        verb = transition_verb(tool.name, tool.transition.to_value)
        text = (
            verb_with_object(verb, target)
            if verb
            else f"set {target} to {humanize_enum(tool.transition.to_value)}"
        )
        text += f" with {listed}" if listed else ""
    else:
        first = re.split(r"(?<=[.!?])\s", tool.description.strip(), maxsplit=1)[0].rstrip(".!?")
        text = (first[:1].lower() + first[1:]) if first else f"handle {target}"
        text += f" for {target}" if referred else ""
        text += f" ({listed})" if listed else ""
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
    context: str = "",
    existing: list[Callable[[Any], bool]] | None = None,
) -> str:
    """A first-person message asking for the turn's calls in order, every stated value written."""
    clauses = []
    previous_vendor = None
    for index, (call, tool, spec, vendor) in enumerate(zip(calls, tools, specs, vendors, strict=True)):
        # name the service only where it changes, as a person switching apps would
        clauses.append(
            call_phrase(
                call,
                tool,
                spec,
                rng,
                turn=turn,
                vendor=vendor if vendor != previous_vendor else None,
                ref_hint=ref_hints[index] if ref_hints else "",
                existing=existing[index] if existing else lambda value: False,
            )
        )
        previous_vendor = vendor
    return frame_request(rng, join_clauses(rng, clauses), follow_up=turn > 0, context=context)


def missing_user_values(query: str, calls: list[GoldCall], tools: list[ToolSpec] | None = None) -> list[str]:
    """User- or state-sourced argument values that the query does not state (in any written form)."""
    missing = []
    for index, call in enumerate(calls):
        tool = tools[index] if tools else None
        for name, value in call.arguments.items():
            source = call.argument_sources.get(name)
            if source is None or source.kind == "output" or name in call.masked_arguments:
                continue
            binding = tool.param_fields.get(name, "") if tool else ""
            label = field_label(binding if binding and not binding.startswith("$") else name)
            if not is_literal_in(value, query, label):
                missing.append(f"{call.tool}.{name}={value_text(value, label)!r}")
    return missing


def change_keywords(specs: Mapping[str, EnvSpec], call: GoldCall) -> list[str]:
    """The words a free-text request must hold to ask for a call: the record's noun, and the verb
    of a status change (delete/remove/cancel: too many ways to say a deletion; the noun must be there)."""
    tool = next((t for t in specs[call.env_id].tools if t.name == call.tool), None)
    entity = next((e for e in specs[call.env_id].entities if tool and e.name == tool.entity), None)
    noun = " ".join(words(entity.name)).split()[-1] if entity else ""
    verb = ""
    if tool is not None and tool.action == "transition" and tool.transition is not None:
        verb = (transition_verb(tool.name, tool.transition.to_value) or "").split(" ")[0]
    return [w for w in (noun, verb) if w]


def unnamed_changes(query: str, calls: list[GoldCall], specs: Mapping[str, EnvSpec]) -> list[str]:
    """The turn's requests the query does not name: each write (a call that changed the state), or,
    for a read-only turn, its last call (what the user asks to see); as `tool: missing words`."""
    asked = [c for c in calls if c.state_diff] or calls[-1:]
    lowered = query.lower()
    missing = []
    for call in asked:
        absent = [
            k
            for k in change_keywords(specs, call)
            if not contains_token(lowered, k.lower(), ignore_case=True)
        ]
        if absent:
            missing.append(f"{call.tool}: {', '.join(absent)}")
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

    `gateway` is an `envfactory_dagster.llm.LLMGateway`; `specs` maps env_id -> EnvSpec. A query is
    accepted (offline: no solver rollout) only if it names what the turn does (each change's record
    and status verb, or what a read-only turn looks up), states every value the user must give
    (values from earlier outputs are proven by the executed binding), and leaks no tool or
    parameter name; otherwise the turn keeps its template query and the problem is returned.
    Provider errors propagate to the caller.
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
        unnamed = unnamed_changes(query, turn.calls, specs)
        if leak or missing or unnamed or not query:
            faults = ["leaks a tool or parameter name"] if leak else []
            faults += [f"misses {', '.join(missing)}"] if missing else []
            faults += [f"does not name what it asks for ({'; '.join(unnamed)})"] if unnamed else []
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
