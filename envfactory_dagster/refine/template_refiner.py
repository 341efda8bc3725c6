"""Rule-based refinement of one turn: re-render the request from its gold calls, implicitly.

Operations (each hidden value gets a grounding proof, checked by execution before use):
- action compression: a read call whose output feeds a later call of the same turn is not asked
  for; it shows up only inside the description of what it finds ("the customer matching "Ada"");
- omission: a value an earlier call returned is not restated ("the order you just created");
- implicit reference: an id becomes a description that identifies exactly one row of the state
  at the start of the turn ("the customer named "Ada Lovelace"", "the most recent order of ...");
- controlled ambiguity: a partial description still unique in the state ("the customer whose
  name mentions "Lovelace"");
- goal expansion: several requested steps are phrased as one request.
Steering: per turn, the number of flexible values (those that may be written or hidden) that are
hidden is chosen so the share of hidden gold values is closest to the target.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, ToolSpec
from envfactory_dagster.envgen.naming import plural, words
from envfactory_dagster.querygen.replay import Replay
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory
from envfactory_dagster.refine.grounding import (
    Condition,
    GroundingProof,
    StateLookup,
    check_proof,
    is_literal_in,
)

NAME_FIELDS = ("name", "full_name", "title", "subject", "display_name", "username", "label", "email", "code")
TITLE_FIELDS = ("title", "subject")
DATE_FORMATS = ("date", "date-time")
OPENERS = ("Please", "Could you", "Can you", "I'd like you to")


@dataclass
class Rendering:
    phrase: str
    proof: GroundingProof
    implicit: bool


@dataclass
class Slot:
    call: int
    argument: str
    value: Any
    options: list[Rendering]  # implicit options in preference order, then the literal one if allowed
    chosen: Rendering | None = None

    @property
    def literal(self) -> Rendering | None:
        return next((o for o in self.options if not o.implicit), None)


@dataclass
class TurnRefinement:
    query: str
    proofs: list[GroundingProof]
    operations: list[str]
    rejected_rewrites: list[str] = field(default_factory=list)  # implicit options whose proof failed
    unsolvable: list[str] = field(default_factory=list)  # values with no valid phrasing: keep the original
    alternatives: list[GroundingProof] = field(default_factory=list)  # every checked implicit option


def field_words(name: str) -> str:
    parts = words(name)
    if len(parts) > 1 and parts[-1] in ("id", "ids", "key", "uuid"):
        parts = parts[:-1]
    return " ".join(parts)


def entity_words(entity: EntitySpec | None, fallback: str) -> str:
    return " ".join(words(entity.name)) if entity else field_words(fallback)


def collection_of(value: Any, state: dict[str, Any]) -> str | None:
    """The collection whose key `value` is (ids only), or None."""
    if not isinstance(value, str):
        return None
    for name, table in state.items():
        if isinstance(table, dict) and name != "counters" and isinstance(table.get(value), dict):
            return name
    return None


def quote(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


class TurnRenderer:
    """Renders one turn of one trajectory against its replay (states per turn start, outputs)."""

    def __init__(
        self,
        trajectory: Trajectory,
        replay: Replay,
        specs: dict[str, EnvSpec],
        rng: random.Random,
        ambiguity_share: float,
    ) -> None:
        self.trajectory = trajectory
        self.replay = replay
        self.specs = specs
        self.rng = rng
        self.ambiguity_share = ambiguity_share
        self.mentioned: dict[tuple[int, int], bool] = {}

    # -- spec lookups ------------------------------------------------------------------
    def tool_spec(self, call: GoldCall) -> ToolSpec | None:
        spec = self.specs.get(call.env_id)
        return next((t for t in spec.tools if t.name == call.tool), None) if spec else None

    def entity(
        self, env_id: str, *, name: str | None = None, collection: str | None = None
    ) -> EntitySpec | None:
        spec = self.specs.get(env_id)
        if spec is None:
            return None
        return next((e for e in spec.entities if e.name == name or e.collection == collection), None)

    # -- descriptions of a state row -----------------------------------------------------
    def describe_row(
        self, env_id: str, collection: str, key: str, state: dict[str, Any]
    ) -> list[tuple[str, StateLookup, str]]:
        """Unique descriptions of row `key`: (phrase, lookup giving its key, operation), best first."""
        entity = self.entity(env_id, collection=collection)
        table = state[collection]
        row = table[key]
        noun = entity_words(entity, collection.rstrip("s"))
        key_field = entity.key_field if entity else "id"
        found: list[tuple[str, StateLookup, str]] = []
        partial: list[tuple[str, StateLookup, str]] = []
        string_fields = self._describing_fields(entity, row, key_field)
        for f in string_fields:
            value = row[f]
            if sum(1 for r in table.values() if r.get(f) == value) == 1:
                verb = (
                    "titled" if f in TITLE_FIELDS else ("named" if "name" in f else f"with {field_words(f)}")
                )
                lookup = StateLookup(
                    env_id=env_id,
                    collection=collection,
                    filter=[Condition(field=f, value=value)],
                    field=key_field,
                )
                found.append((f"the {noun} {verb} {quote(value)}", lookup, "implicit_reference"))
                for token in sorted({t for t in str(value).split() if len(t) >= 4 and t.isalpha()}):
                    if (
                        token == value
                        or sum(1 for r in table.values() if token.lower() in str(r.get(f, "")).lower()) != 1
                    ):
                        continue
                    cond = Condition(field=f, op="contains", value=token)
                    lookup = StateLookup(env_id=env_id, collection=collection, filter=[cond], field=key_field)
                    partial.append(
                        (f"the {noun} whose {field_words(f)} mentions {quote(token)}", lookup, "ambiguity")
                    )
                    break
        found.extend(self._owner_descriptions(env_id, entity, row, state, noun))
        if partial and self.rng.random() < self.ambiguity_share:
            return partial[:1] + found
        return found + partial[:1]

    @staticmethod
    def _describing_fields(entity: EntitySpec | None, row: dict[str, Any], key_field: str) -> list[str]:
        candidates = []
        for name, value in row.items():
            if name == key_field or not isinstance(value, str) or not (2 <= len(value) <= 60):
                continue
            spec_field = next((f for f in entity.fields if f.name == name), None) if entity else None
            if spec_field is not None and (
                spec_field.ref_entity or spec_field.enum or spec_field.format in DATE_FORMATS
            ):
                continue
            if spec_field is None and (name.endswith("_id") or "date" in name or name.endswith("_at")):
                continue
            candidates.append(name)
        return sorted(
            candidates, key=lambda n: (NAME_FIELDS.index(n) if n in NAME_FIELDS else len(NAME_FIELDS), n)
        )[:3]

    def _owner_descriptions(
        self, env_id: str, entity: EntitySpec | None, row: dict[str, Any], state: dict[str, Any], noun: str
    ) -> list[tuple[str, StateLookup, str]]:
        """ "the most recent order of <owner>", "the pending order of <owner>" (owner described uniquely)."""
        if entity is None:
            return []
        spec = self.specs[env_id]
        out: list[tuple[str, StateLookup, str]] = []
        for fk in (f for f in entity.fields if f.ref_entity and isinstance(row.get(f.name), str)):
            owner = next((e for e in spec.entities if e.name == fk.ref_entity), None)
            if owner is None or row[fk.name] not in state.get(owner.collection, {}):
                continue
            owner_descriptions = [
                d
                for d in self.describe_owner(env_id, owner, row[fk.name], state)
                if d[2] == "implicit_reference"
            ]
            if not owner_descriptions:
                continue
            owner_phrase, owner_lookup, _ = owner_descriptions[0]
            base = [Condition(field=fk.name, lookup=owner_lookup)]
            siblings = [r for r in state[entity.collection].values() if r.get(fk.name) == row[fk.name]]
            for f in entity.fields:
                if f.enum and row.get(f.name) is not None:
                    same = [r for r in siblings if r.get(f.name) == row[f.name]]
                    if len(same) == 1:
                        cond = [*base, Condition(field=f.name, value=row[f.name])]
                        lookup = StateLookup(
                            env_id=env_id, collection=entity.collection, filter=cond, field=entity.key_field
                        )
                        out.append(
                            (f"the {row[f.name]} {noun} of {owner_phrase}", lookup, "implicit_reference")
                        )
            for f in entity.fields:
                if f.format in DATE_FORMATS and isinstance(row.get(f.name), str):
                    ordered = sorted((str(r.get(f.name, "")) for r in siblings), reverse=True)
                    if ordered[0] == row[f.name] and (len(ordered) == 1 or ordered[1] != ordered[0]):
                        lookup = StateLookup(
                            env_id=env_id,
                            collection=entity.collection,
                            filter=base,
                            order_by=f.name,
                            field=entity.key_field,
                        )
                        adjective = "only" if len(ordered) == 1 else "most recent"
                        out.append(
                            (f"the {adjective} {noun} of {owner_phrase}", lookup, "implicit_reference")
                        )
                        break
        return out

    def describe_owner(
        self, env_id: str, owner: EntitySpec, key: str, state: dict[str, Any]
    ) -> list[tuple[str, StateLookup, str]]:
        row = state[owner.collection][key]
        noun = entity_words(owner, owner.collection)
        table = state[owner.collection]
        out = []
        for f in self._describing_fields(owner, row, owner.key_field):
            if sum(1 for r in table.values() if r.get(f) == row[f]) == 1:
                verb = (
                    "titled" if f in TITLE_FIELDS else ("named" if "name" in f else f"with {field_words(f)}")
                )
                lookup = StateLookup(
                    env_id=env_id,
                    collection=owner.collection,
                    filter=[Condition(field=f, value=row[f])],
                    field=owner.key_field,
                )
                out.append((f"the {noun} {verb} {quote(row[f])}", lookup, "implicit_reference"))
        return out

    # -- slots ---------------------------------------------------------------------------
    def slots_for(self, turn: int, call_index: int, call: GoldCall) -> list[Slot]:
        state = self.replay.turn_states[turn][call.env_id]
        slots = []
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments:
                continue
            base = {"turn": turn, "call": call_index, "argument": argument, "value": value}
            options: list[Rendering] = []
            source = call.argument_sources.get(argument)
            literal_allowed = True
            if (
                source is not None
                and source.kind == "output"
                and source.turn is not None
                and source.call is not None
            ):
                same_turn = source.turn == turn
                source_call = self.trajectory.turns[source.turn].calls[source.call]
                compressed = same_turn and not self.mentioned.get((source.turn, source.call), True)
                literal_allowed = not same_turn
                phrase = self.anaphor(turn, source.turn, source.call, source_call, compressed)
                operation = "action_compression" if compressed else "omission"
                proof = GroundingProof(
                    **base,
                    via="output",
                    phrase=phrase,
                    operation=operation,
                    source_turn=source.turn,
                    source_call=source.call,
                    path=source.path,
                )
                options.append(Rendering(phrase, proof, True))
            collection = collection_of(value, state)
            if collection is not None:
                for phrase, lookup, operation in self.describe_row(call.env_id, collection, value, state):
                    proof = GroundingProof(
                        **base, via="state_lookup", phrase=phrase, operation=operation, lookup=lookup
                    )
                    options.append(Rendering(phrase, proof, True))
            if literal_allowed:
                noun = (
                    entity_words(self.entity(call.env_id, collection=collection), collection)
                    if collection
                    else ""
                )
                phrase = f"{noun} {value}" if collection else quote(value)
                options.append(
                    Rendering(
                        phrase,
                        GroundingProof(**base, via="literal", phrase=phrase, operation="literal"),
                        False,
                    )
                )
            slots.append(Slot(call_index, argument, value, options))
        return slots

    def anaphor(
        self, turn: int, source_turn: int, source_index: int, source_call: GoldCall, compressed: bool
    ) -> str:
        """Words for "what that earlier call gave": its own request when compressed, else a back-reference."""
        tool = self.tool_spec(source_call)
        entity = self.entity(source_call.env_id, name=tool.entity) if tool and tool.entity else None
        noun = entity_words(entity, source_call.tool)
        if compressed:
            described = self.compressed_phrases.get((source_turn, source_index), "")
            return f"the {noun} {described}".strip()
        verbs = {
            "create": "created",
            "search": "found",
            "list": "found",
            "get": "looked up",
            "update": "updated",
        }
        verb = verbs.get(tool.action if tool else "", "dealt with")
        return f"the {noun} you just {verb}" if source_turn == turn else f"the {noun} you {verb} earlier"

    # -- phrases -----------------------------------------------------------------------
    def call_phrase(self, call: GoldCall, phrases: dict[str, str]) -> str:
        tool = self.tool_spec(call)
        entity = self.entity(call.env_id, name=tool.entity) if tool and tool.entity else None
        noun = entity_words(entity, call.tool)
        many = plural(noun.split()[-1]) if noun else "items"
        many = " ".join([*noun.split()[:-1], many])
        params = tool.param_fields if tool else {}
        key_field = entity.key_field if entity else "id"
        key_params = [p for p in phrases if params.get(p) == key_field]
        ref_fields = {f.name for f in entity.fields if f.ref_entity} if entity else set()
        owner_params = [p for p in phrases if params.get(p) in ref_fields and p not in key_params]
        other = [p for p in phrases if p not in key_params and p not in owner_params]
        target = phrases[key_params[0]] if key_params else f"the {noun}"
        with_values = ", ".join(f"{field_words(params.get(p, p))} {phrases[p]}" for p in other)
        owners = " and ".join(phrases[p] for p in owner_params)
        action = tool.action if tool else "custom"
        if action == "get":
            return f"show me {target}"
        if action == "delete":
            return f"delete {target}"
        if action == "transition" and tool and tool.transition:
            return f"mark {target} as {tool.transition.to_value}" + (
                f" ({with_values})" if with_values else ""
            )
        if action == "update":
            changes = ", ".join(f"{field_words(params.get(p, p))} to {phrases[p]}" for p in other)
            return f"update {target}" + (f", setting {changes}" if changes else "")
        if action == "create":
            return (
                f"add a new {noun}"
                + (f" for {owners}" if owners else "")
                + (f" with {with_values}" if with_values else "")
            )
        if action == "list":
            return (
                f"list the {many}"
                + (f" of {owners}" if owners else "")
                + (f" with {with_values}" if with_values else "")
            )
        if action == "search":
            terms = " and ".join(phrases[p] for p in other) or owners
            return f"look up {many} matching {terms}"
        description = (tool.description if tool else call.tool).split(". ")[0].rstrip(".")
        sentence = " ".join(field_words(w) if "_" in w else w for w in description.split())
        details = ", ".join(f"{field_words(p)}: {phrases[p]}" for p in phrases)
        return sentence[:1].lower() + sentence[1:] + (f" ({details})" if details else "")

    def where(self, call: GoldCall) -> str:
        """Which environment, when the task spans several (tool names alone may be shared)."""
        spec = self.specs.get(call.env_id)
        shared = [
            e
            for e, other in self.specs.items()
            if e != call.env_id and any(t.name == call.tool for t in other.tools)
        ]
        return f" in {spec.title.split(' — ')[0]}" if shared and spec else ""

    def compressed_description(self, call: GoldCall, phrases: dict[str, str]) -> str:
        """How a compressed lookup reads inside the request that uses it ("matching "Ada"")."""
        tool = self.tool_spec(call)
        action = tool.action if tool else "custom"
        values = " and ".join(phrases.values())
        if not values:
            return ""
        if action == "search":
            return f"matching {values}"
        if action == "get" and len(phrases) == 1:
            return f"({values})"
        return f"for {values}"

    # -- the turn --------------------------------------------------------------------------
    def render(self, turn: int, target: float) -> TurnRefinement:
        calls = self.trajectory.turns[turn].calls
        consumed = {
            (s.turn, s.call)
            for later in calls
            for s in later.argument_sources.values()
            if s.kind == "output" and s.turn == turn
        }
        for index, call in enumerate(calls):
            tool = self.tool_spec(call)
            kind = tool.kind if tool else "write"
            self.mentioned[(turn, index)] = not (kind == "read" and (turn, index) in consumed)
        if not any(self.mentioned[(turn, i)] for i in range(len(calls))) and calls:
            self.mentioned[(turn, len(calls) - 1)] = True
        self.compressed_phrases: dict[tuple[int, int], str] = {}
        all_slots: list[Slot] = []
        per_call: list[list[Slot]] = []
        for index, call in enumerate(calls):
            slots = self.slots_for(turn, index, call)
            per_call.append(slots)
            all_slots.extend(slots)
        rejected = self.choose(all_slots, target)
        unsolvable = [
            f"call {s.call} {s.argument}: no recoverable phrasing" for s in all_slots if s.chosen is None
        ]
        # compressed calls are described inside the phrases that use them, in call order
        for index, call in enumerate(calls):
            self._refresh_compressed_anaphors(turn, per_call[index])
            if not self.mentioned[(turn, index)]:
                self.compressed_phrases[(turn, index)] = self.compressed_description(
                    call, {s.argument: s.chosen.phrase for s in per_call[index] if s.chosen}
                )
        parts = [
            self.call_phrase(call, {s.argument: s.chosen.phrase for s in per_call[i] if s.chosen})
            + self.where(call)
            for i, call in enumerate(calls)
            if self.mentioned[(turn, i)]
        ]
        operations = sorted({s.chosen.proof.operation for s in all_slots if s.chosen and s.chosen.implicit})
        if len(parts) > 1:
            operations.append("goal_expansion")
            request = ", ".join(parts[:-1]) + " and " + parts[-1]
        else:
            request = parts[0] if parts else "check how things stand"
        opener = self.rng.choice(OPENERS)
        query = f"{opener} {request}" + ("?" if opener.endswith("you") else ".")
        missing = [
            s for s in all_slots if s.chosen and not s.chosen.implicit and not is_literal_in(s.value, query)
        ]
        if missing:
            notes = "; ".join(f"{field_words(s.argument)} {quote(s.value)}" for s in missing)
            query += f" For reference: {notes}."
        proofs = [s.chosen.proof for s in all_slots if s.chosen]
        return TurnRefinement(
            query=query,
            proofs=proofs,
            operations=operations,
            rejected_rewrites=rejected,
            unsolvable=unsolvable,
            alternatives=[o.proof for s in all_slots for o in s.options if o.implicit],
        )

    def _refresh_compressed_anaphors(self, turn: int, slots: list[Slot]) -> None:
        for slot in slots:
            proof = slot.chosen.proof if slot.chosen else None
            if proof and proof.via == "output" and proof.operation == "action_compression":
                call = self.trajectory.turns[proof.source_turn].calls[proof.source_call]
                phrase = self.anaphor(turn, proof.source_turn, proof.source_call, call, True)
                slot.chosen.phrase = phrase
                slot.chosen.proof.phrase = phrase

    def choose(self, slots: list[Slot], target: float) -> list[str]:
        """Pick a rendering per slot: hide as many flexible values as brings the share nearest `target`;
        every implicit option is checked by execution first, a failing one is skipped and reported."""
        rejected: list[str] = []
        for slot in slots:
            valid = []
            for option in slot.options:
                if option.implicit:
                    reason = check_proof(option.proof, self.replay, "")
                    if reason:
                        rejected.append(f"call {slot.call} {slot.argument}: {option.phrase}: {reason}")
                        continue
                valid.append(option)
            slot.options = valid
        forced = [s for s in slots if s.options and s.literal is None]
        flexible = [s for s in slots if s.literal is not None and any(o.implicit for o in s.options)]
        for s in forced:
            s.chosen = s.options[0]
        for s in slots:
            if s.chosen is None and s.literal is not None:
                s.chosen = s.literal
        want = round(target * len(slots)) - len(forced)
        hide = self.rng.sample(flexible, k=max(0, min(want, len(flexible))))
        for s in hide:
            s.chosen = next(o for o in s.options if o.implicit)
        return rejected
