"""Rule-based refinement of one turn: re-render the request from its gold calls, implicitly.

Operations (each hidden value gets a grounding proof, checked by execution before use):
- action compression: a read call whose output feeds a later call of the same turn is not asked
  for; it shows up only inside the description of what it finds ("the customer matching "Ada"");
- omission: a value an earlier call returned is not restated ("the order you just created"); a
  field of that output is named by its own entity ("the customer of the order you just created");
- implicit reference: an id becomes a description that identifies exactly one row of the state
  at the start of the turn ("the customer named "Ada Lovelace"", "the most recent order of ...");
- controlled ambiguity: a partial description still unique in the state ("the customer whose
  name mentions "Lovelace"");
- goal expansion: several requested steps are phrased as one request.
Identifiers (row keys, foreign keys, generated `prefix_0001` ids) are never written unless the
original query wrote them: a person describes the row instead, and a turn whose identifier has no
checked description keeps its original phrasing. Values recovered from the same earlier output
share one mention ("the quote and recipient of the transfer you just created"), and a description
already written in the request is referred to as "the same <noun>" afterwards.
Steering: per turn, the number of flexible values (those that may be written or hidden) that are
hidden is chosen so the share of hidden gold values is closest to the target.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.surface import (
    action_verb,
    change_phrase,
    create_clause,
    delete_clause,
    frame_request,
    get_clause,
    humanize_enum,
    join_clauses,
    join_words,
    list_clause,
    natural_value,
    past_tense,
    says_nothing,
    search_clause,
    transition_verb,
    update_clause,
    verb_with_object,
    with_details,
)
from envfactory_dagster.querygen.trajectory_model import GoldCall
from envfactory_dagster.refine.grounding import (
    EffectProof,
    GroundingProof,
    change_summary,
    check_proof,
    is_literal_in,
)
from envfactory_dagster.refine.row_descriptions import (
    DATE_FORMATS,
    RowDescriber,
    collection_of,
    entity_words,
    field_words,
    quote,
)


def written(value: Any, label: str, *, enum: bool = False) -> str:
    """A value as the request writes it: names and free text in quotes, dates and statuses in words."""
    if enum and isinstance(value, str):
        return humanize_enum(value)
    text = natural_value(value, label)
    return quote(text) if isinstance(value, str) and text == value else text


@dataclass
class Rendering:
    """Words for one value. An output reference is `head` of `anchor` ("the quote" of "the transfer
    you just created"; no head: the anchor itself), so references to one anchor can be merged."""

    phrase: str
    proof: GroundingProof
    implicit: bool
    noun: str = ""  # what the phrase names, for "the same <noun>" on a repeated mention
    head: str = ""  # the field's words when the value is a field of the anchor's row
    anchor: str = ""
    anchor_noun: str = ""
    labelled: bool = False  # the phrase already says which field it fills ("the same date as ...")
    identifier: bool = False  # a literal that writes a record's id


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
    effects: list[EffectProof] = field(default_factory=list)  # each state change and the words asking for it


def compose(head: str, anchor: str, labelled: bool) -> str:
    """The phrase of a value read from the row `anchor` describes ("the vendor of the bill ...")."""
    if not head:
        return anchor
    return f"the same {head} as {anchor}" if labelled else f"the {head} of {anchor}"


def merged_references(
    items: list[tuple[str, Rendering]], plain: Callable[[str, Rendering], str], grouped: Callable[..., str]
) -> list[str]:
    """One text per item, except that values read from the same anchor share one text, built by
    `grouped(heads, anchor, labelled)` at the place of the first of them; `plain(argument, rendering)`
    renders the others."""
    texts: list[str | tuple[str, bool]] = []
    heads: dict[tuple[str, bool], list[str]] = {}
    for argument, rendering in items:
        if rendering.head and rendering.anchor:
            key = (rendering.anchor, rendering.labelled)
            if key not in heads:
                heads[key] = []
                texts.append(key)
            if rendering.head not in heads[key]:
                heads[key].append(rendering.head)
        else:
            texts.append(plain(argument, rendering))
    return [t if isinstance(t, str) else grouped(heads[t], t[0], t[1]) for t in texts]


def mention_once(texts: list[str], references: list[tuple[str, str]]) -> list[str]:
    """Keep the first mention of each (phrase, noun) across the clauses, in order; later ones
    become "that <noun>" (the clauses stay whole, so each can be found in the joined request)."""
    seen: set[str] = set()
    out = []
    for text in texts:
        # longest phrase first; ties by text, not by set order (which varies with the hash seed)
        for phrase, noun in sorted(set(references), key=lambda r: (-len(r[0]), r)):
            if not noun or phrase not in text:
                continue
            if phrase in seen:
                text = text.replace(phrase, f"that {noun}")
            else:
                first = text.find(phrase) + len(phrase)
                text = text[:first] + text[first:].replace(phrase, f"that {noun}")
                seen.add(phrase)
        out.append(text)
    return out


class TurnRenderer(RowDescriber):
    """Renders one turn of one trajectory against its replay (states per turn start, outputs)."""

    # -- slots ---------------------------------------------------------------------------
    def slots_for(self, turn: int, call_index: int, call: GoldCall) -> list[Slot]:
        state = self.replay.turn_states[turn][self.trajectory.env_worlds[call.env_id]]
        original = self.trajectory.turns[turn].query
        slots = []
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments or says_nothing(value):
                continue  # an empty object has no words: the caller fills it from the schema
            base = {"turn": turn, "call": call_index, "argument": argument, "value": value}
            options: list[Rendering] = []
            source = call.argument_sources.get(argument)
            # the parameter's own entity first: two entities may share an id prefix ("fo_")
            bound = self.entity(call.env_id, name=self.bound_entity(call, argument) or "")
            collection = (
                bound.collection
                if bound is not None
                and isinstance(value, str)
                and isinstance(state.get(bound.collection, {}).get(value), dict)
                else collection_of(value, state)
            )
            # an identifier is written only if the user already wrote it; else it is described or the
            # turn keeps its original phrasing
            literal_allowed = (
                (collection is None and not self.is_identifier(call, argument, value))
                or is_literal_in(value, original)
                # a value the user makes up is said (a natural key, a code), a generated id never
                or (
                    source is not None
                    and source.kind == "user"
                    and not self.looks_generated(call.env_id, value)
                )
            )
            scope_key = source is not None and source.kind == "state" and source.field is None
            if scope_key:
                # the user's working context (a workspace, a plan) taken from the state with no
                # lookup in the task: the user names it, or the assistant would have to guess it
                phrase = f"{entity_words(bound, source.collection or '') if bound else ''} {value}".strip()
                proof = GroundingProof(**base, via="literal", phrase=phrase, operation="literal")
                slots.append(Slot(call_index, argument, value, [Rendering(phrase, proof, False)]))
                continue
            if collection is not None:
                options += self.same_row_references(turn, call_index, call, base, value)
            if (
                source is not None
                and source.kind == "output"
                and source.turn is not None
                and source.call is not None
                and not self.chained_lookup(turn, source.turn, source.call)
            ):
                same_turn = source.turn == turn
                source_call = self.trajectory.turns[source.turn].calls[source.call]
                compressed = same_turn and not self.mentioned.get((source.turn, source.call), True)
                literal_allowed = literal_allowed and not same_turn
                head, labelled, row_noun = self.output_field(source_call, source.path or "", call, argument)
                anchor = self.anaphor(turn, source.turn, source.call, source_call, compressed, row_noun)
                proof = GroundingProof(
                    **base,
                    via="output",
                    phrase=compose(head, anchor, labelled),
                    operation="action_compression" if compressed else "omission",
                    source_turn=source.turn,
                    source_call=source.call,
                    path=source.path,
                )
                options.append(
                    Rendering(
                        proof.phrase,
                        proof,
                        True,
                        noun=head or row_noun,
                        head=head,
                        anchor=anchor,
                        anchor_noun=row_noun,
                        labelled=labelled,
                    )
                )
            noun = ""
            if collection is not None:
                noun = entity_words(self.entity(call.env_id, collection=collection), collection)
                for phrase, lookup, operation in self.describe_row(call.env_id, collection, value, state):
                    proof = GroundingProof(
                        **base, via="state_lookup", phrase=phrase, operation=operation, lookup=lookup
                    )
                    options.append(Rendering(phrase, proof, True, noun=noun))
            if literal_allowed:
                label = self.value_label(call, argument)
                tool = self.tool_spec(call)
                schema = (tool.input_schema.get("properties") or {}).get(argument, {}) if tool else {}
                phrase = (
                    f"{noun} {value}" if collection else written(value, label, enum=bool(schema.get("enum")))
                )
                options.append(
                    Rendering(
                        phrase,
                        GroundingProof(**base, via="literal", phrase=phrase, operation="literal"),
                        False,
                        identifier=collection is not None,
                    )
                )
            slots.append(Slot(call_index, argument, value, options))
        return slots

    def chained_lookup(self, turn: int, source_turn: int, source_call: int) -> bool:
        """True when the source is an unmentioned lookup that itself reads another unmentioned
        lookup of the turn: referring through it would stack references ("the X of the Y of the
        Z"); a request refers at most one hop back."""
        if source_turn != turn or self.mentioned.get((turn, source_call), True):
            return False
        call = self.trajectory.turns[turn].calls[source_call]
        return any(
            s.kind == "output" and s.turn == turn and not self.mentioned.get((turn, s.call), True)
            for s in call.argument_sources.values()
        )

    def same_row_references(
        self, turn: int, call_index: int, call: GoldCall, base: dict[str, Any], value: Any
    ) -> list[Rendering]:
        """ "the order you cancelled earlier": an earlier requested call that returned this very row
        (its output holds one object whose key is the value), referred to by what was done to it."""
        earlier = [(t, i) for t in range(turn + 1) for i in range(len(self.trajectory.turns[t].calls))]
        for t, i in reversed([(t, i) for t, i in earlier if (t, i) < (turn, call_index)]):
            if not self.mentioned.get((t, i), True):
                continue
            source_call = self.trajectory.turns[t].calls[i]
            for prop, row in source_call.output.items():
                entity = self.entities.get((source_call.env_id, "row", prop))
                if not isinstance(row, dict) or entity is None or row.get(entity.key_field) != value:
                    continue
                noun = entity_words(entity, prop)
                tool = self.tool_spec(call)
                pronoun = (
                    t == turn
                    and i == max(j for j in range(call_index) if self.mentioned.get((turn, j), True))
                    and tool is not None
                    and tool.action not in ("get", "list", "search")
                )
                # the row the previous request of this turn worked on is "it" ("find X and cancel it")
                anchor = "it" if pronoun else self.anaphor(turn, t, i, source_call, False, noun)
                proof = GroundingProof(
                    **base,
                    via="output",
                    phrase=anchor,
                    operation="omission",
                    source_turn=t,
                    source_call=i,
                    path=f"{prop}.{entity.key_field}",
                )
                named = "" if pronoun else noun  # a pronoun is never repeated as "that <noun>"
                return [Rendering(anchor, proof, True, noun=named, anchor=anchor, anchor_noun=named)]
        return []

    def output_field(
        self, source_call: GoldCall, path: str, call: GoldCall, argument: str
    ) -> tuple[str, bool, str]:
        """(head, labelled, row noun) of the value at `path` of an output: the row the path ends in
        (its noun), and what the value is in that row: the row itself (no head), the entity a key
        field refers to ("vendor" for `bill.vendor_id`, from FieldSpec.ref_entity, else from the
        binding of the consuming parameter), or a plain field ("the same due date as ...")."""
        segments = [s for s in re.findall(r"[^.\[\]]+", path) if not s.isdigit()]
        field_name = segments[-1] if segments else argument
        row = None
        if len(segments) > 1:
            row = self.entity(source_call.env_id, collection=segments[-2]) or self.entities.get(
                (source_call.env_id, "row", segments[-2])
            )
        if row is None:
            tool = self.tool_spec(source_call)
            row = self.entity(source_call.env_id, name=tool.entity) if tool and tool.entity else None
        row_noun = entity_words(row, segments[-2] if len(segments) > 1 else source_call.tool)
        if row is not None and field_name == row.key_field:
            return "", False, row_noun
        spec_field = next((f for f in row.fields if f.name == field_name), None) if row else None
        referenced = spec_field.ref_entity if spec_field else None
        if referenced is None:
            referenced = self.bound_entity(call, argument)
        if referenced is not None:
            entity = self.entity(source_call.env_id, name=referenced) or self.entity(
                call.env_id, name=referenced
            )
            noun = entity_words(entity, referenced)
            own = field_words(field_name)
            # "pickup location" says more than "location"; "owner" does not name a user
            head = own if noun.split()[-1] in own.split() else noun
            return head, False, row_noun
        return (
            field_words(field_name),
            not self.is_identifier(call, argument, call.arguments.get(argument)),
            row_noun,
        )

    def anaphor(
        self,
        turn: int,
        source_turn: int,
        source_index: int,
        source_call: GoldCall,
        compressed: bool,
        noun: str,
    ) -> str:
        """Words for the row an earlier call gave: its own request when compressed, else a back-reference."""
        if compressed:
            described = self.compressed_phrases.get((source_turn, source_index), "")
            if described.startswith(("the ", "my ")):
                return described
            return f"the {noun} {described}".strip()
        tool = self.tool_spec(source_call)
        verb = {
            "create": "created",
            "search": "found",
            "list": "found",
            "get": "looked up",
            "update": "updated",
            "delete": "deleted",
        }.get(tool.action if tool else "", "dealt with")
        if tool and tool.action == "transition" and tool.transition:
            action = transition_verb(tool.name, tool.transition.to_value)
            verb = past_tense(action) if action else "updated"
        if source_turn == turn:
            when = self.rng.choice(
                (
                    "you just {v}",
                    "you {v} a moment ago",
                    "we just {v}",
                    "that was just {v}",
                    "you {v} just now",
                )
            )
        else:
            when = self.rng.choice(
                (
                    "you {v} earlier",
                    "you {v} before",
                    "we {v} earlier",
                    "you {v} a bit ago",
                    "you {v} previously",
                    "we {v} before",
                    "that you {v} earlier on",
                    "you {v} a little while ago",
                )
            )
        return f"{self.determiner()} {noun} {when.format(v=verb)}"

    def value_label(self, call: GoldCall, argument: str) -> str:
        """The words for what an argument sets ("due date"), from the field it binds to."""
        tool = self.tool_spec(call)
        bound = tool.param_fields.get(argument, "") if tool else ""
        return field_words(bound if bound and not bound.startswith("$") else argument)

    # -- phrases -----------------------------------------------------------------------
    def _change_kind(self, entity: EntitySpec | None, field_name: str) -> str:
        f = next((x for x in entity.fields if x.name == field_name), None) if entity else None
        if f is None:
            return "text"
        if f.type == "boolean":
            return "flag"
        if f.enum:
            return "status"
        if f.format in DATE_FORMATS or any(
            w in ("date", "at", "time", "deadline", "due") for w in words(f.name)
        ):
            return "date"
        if f.type in ("integer", "number"):
            return "number"
        if f.name in ("name", "title", "display_name", "subject", "summary"):
            return "name"
        return "text"

    def call_phrase(self, turn: int, call: GoldCall, renderings: dict[str, Rendering]) -> str:
        """The request for one call in the user's words (a verb phrase: "cancel the order ...")."""
        rng = self.rng
        tool = self.tool_spec(call)
        entity = self.entity(call.env_id, name=tool.entity) if tool and tool.entity else None
        noun = entity_words(entity, call.tool)
        params = tool.param_fields if tool else {}
        phrases = {p: r.phrase for p, r in renderings.items()}
        key_field = entity.key_field if entity else "id"
        key_params = [p for p in phrases if params.get(p) == key_field]
        ref_fields = {f.name for f in entity.fields if f.ref_entity} if entity else set()
        owner_params = [p for p in phrases if params.get(p) in ref_fields and p not in key_params]
        other = [p for p in phrases if p not in key_params and p not in owner_params]
        target = phrases[key_params[0]] if key_params else f"the {noun}"

        def label(p: str) -> str:
            return field_words(params.get(p, p))

        def merge(
            names: list[str], plain: Callable[[str, Rendering], str], grouped: Callable[..., str]
        ) -> list[str]:
            return merged_references([(p, renderings[p]) for p in names], plain, grouped)

        def group(heads: list[str], anchor: str, labelled: bool) -> str:
            return compose(join_words(heads), anchor, labelled)

        def detail(p: str, r: Rendering) -> str:
            # "label: value"; a yes/no setting's phrase already says its label ("notify customer: yes")
            if isinstance(call.arguments.get(p), bool) and not r.implicit:
                return r.phrase
            return f"{field_words(p)}: {r.phrase}"

        def valued(p: str, r: Rendering) -> str:
            # a reference that already names its field ("the vendor of ..."), a yes/no setting
            # ("notify customer: yes") or a value in words need no extra label
            if r.head and (r.labelled or r.head == label(p)):
                return r.phrase
            if isinstance(call.arguments.get(p), bool) and not r.implicit:
                return r.phrase
            return f"{label(p)} {r.phrase}"

        with_values = join_words(merge(other, valued, group), rng)
        owners = " and ".join(merge(owner_params, lambda p, r: r.phrase, group))
        action = tool.action if tool else "custom"
        if action == "get":
            return get_clause(rng, target)
        if action == "delete":
            return delete_clause(rng, noun, target)
        if action == "transition" and tool and tool.transition:
            verb = transition_verb(tool.name, tool.transition.to_value)
            core = (
                verb_with_object(verb, target)
                if verb
                else f"set {target} to {humanize_enum(tool.transition.to_value)}"
            )
            return core + (f", with {with_values}" if with_values else "")
        if action == "update":
            state = self.replay.turn_states[turn][self.trajectory.env_worlds[call.env_id]]
            key = call.arguments.get(key_params[0]) if key_params else None
            row = (
                state.get(entity.collection, {}).get(key) if entity and isinstance(key, str) else None
            ) or {}

            def change(p: str, r: Rendering) -> str:
                name = params.get(p, p)
                kind = self._change_kind(entity, name)
                return change_phrase(rng, label(p), r.phrase, row.get(name), call.arguments.get(p), kind=kind)

            changes = merge(
                owner_params + other,
                change,
                lambda heads, anchor, _: (
                    f"set the {join_words(heads)} to "
                    + ("those" if len(heads) > 1 else "that")
                    + f" of {anchor}"
                ),
            )
            return update_clause(rng, target, changes) if changes else f"update {target}"
        if action == "create":
            details = (f" for {owners}" if owners else "") + with_details(rng, with_values)
            return create_clause(rng, noun, details)
        if action == "list":
            filters = (f" of {owners}" if owners else "") + with_details(rng, with_values, filtering=True)
            return list_clause(rng, noun, filters)
        if action == "search":
            terms = " and ".join(merge(other, lambda p, r: r.phrase, group)) or owners or "what I'm after"
            return search_clause(rng, noun, terms)
        verb = action_verb(call.tool)
        subject = phrases[key_params[0]] if key_params else (owners if owner_params else "")
        if verb and subject:  # "unlock the discussion topic called ..." rather than the tool's description
            rest = [p for p in phrases if p not in key_params and p not in owner_params]
            details = ", ".join(merge(rest, detail, group))
            return f"{verb} {subject}" + (f" ({details})" if details else "")
        description = (tool.description if tool else call.tool).split(". ")[0].rstrip(".")
        sentence = " ".join(field_words(w) if "_" in w else w for w in description.split())
        details = ", ".join(merge(list(phrases), detail, group))
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

    def compressed_description(self, call: GoldCall, renderings: dict[str, Rendering]) -> str:
        """How a compressed lookup reads inside the request that uses it ("matching "Ada""); a
        compressed fetch of one described row is that description itself."""
        tool = self.tool_spec(call)
        action = tool.action if tool else "custom"
        values = " and ".join(r.phrase for r in renderings.values())
        if not values:
            # a page of one row (a masked limit): the row is the one that comes first
            return "that comes first in the list" if call.masked_arguments else ""
        if action == "search":
            return f"matching {values}"
        if action == "get" and len(renderings) == 1:
            only = next(iter(renderings.values()))
            return only.phrase if only.implicit else f"({values})"
        return f"for {values}"

    # -- the turn --------------------------------------------------------------------------
    def render(self, turn: int, target: float) -> TurnRefinement:
        current = self.trajectory.turns[turn]
        calls = current.calls
        consumed = {
            (s.turn, s.call)
            for later in calls
            for s in later.argument_sources.values()
            if s.kind == "output" and s.turn == turn
        }
        # without recorded targets every call may be asked for, and a read feeding the turn is a lookup
        requested = set(current.targets)
        for index, call in enumerate(calls):
            tool = self.tool_spec(call)
            lookup = (tool.kind if tool else "write") == "read" and index not in requested
            # a lookup that only feeds this turn is not asked for (action compression)
            self.mentioned[(turn, index)] = not (lookup and (turn, index) in consumed)
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
        # a lookup no chosen phrase refers to is asked for in its own words (its values must be said)
        used = {
            (s.chosen.proof.source_turn, s.chosen.proof.source_call)
            for s in all_slots
            if s.chosen and s.chosen.proof.via == "output"
        }
        for index in range(len(calls)):
            if not self.mentioned[(turn, index)] and (turn, index) not in used:
                self.mentioned[(turn, index)] = True
        unsolvable = [
            f"call {s.call} {s.argument}: no recoverable phrasing" for s in all_slots if s.chosen is None
        ]
        # compressed calls are described inside the phrases that use them, in call order
        for index, call in enumerate(calls):
            self._refresh_compressed_anaphors(turn, per_call[index])
            if not self.mentioned[(turn, index)]:
                self.compressed_phrases[(turn, index)] = self.compressed_description(
                    call, {s.argument: s.chosen for s in per_call[index] if s.chosen}
                )
        clauses: list[tuple[int, str]] = [
            (
                i,
                self.call_phrase(turn, call, {s.argument: s.chosen for s in per_call[i] if s.chosen})
                + self.where(call),
            )
            for i, call in enumerate(calls)
            if self.mentioned[(turn, i)]
        ]
        operations = sorted({s.chosen.proof.operation for s in all_slots if s.chosen and s.chosen.implicit})
        if len(clauses) > 1:
            operations.append("goal_expansion")
        chosen = [s.chosen for s in all_slots if s.chosen and s.chosen.implicit]
        references = [(r.phrase, r.noun) for r in chosen] + [
            (r.anchor, r.anchor_noun) for r in chosen if r.anchor
        ]
        texts = mention_once([text for _, text in clauses], references)
        request = join_clauses(self.rng, texts) if texts else "check how things stand"
        context = self.trajectory.opening if turn == 0 else ""
        query = frame_request(self.rng, request, follow_up=turn > 0, context=context)
        proofs = [s.chosen.proof for s in all_slots if s.chosen]
        effects = [
            EffectProof(turn=turn, call=i, phrase=text, changes=change_summary(calls[i].state_diff))
            for (i, _), text in zip(clauses, texts, strict=True)
            if calls[i].state_diff
        ]
        return TurnRefinement(
            query=query,
            proofs=proofs,
            operations=operations,
            rejected_rewrites=rejected,
            unsolvable=unsolvable,
            alternatives=[o.proof for s in all_slots for o in s.options if o.implicit],
            effects=effects,
        )

    def _refresh_compressed_anaphors(self, turn: int, slots: list[Slot]) -> None:
        for slot in slots:
            chosen = slot.chosen
            proof = chosen.proof if chosen else None
            if chosen and proof and proof.via == "output" and proof.operation == "action_compression":
                call = self.trajectory.turns[proof.source_turn].calls[proof.source_call]
                chosen.anchor = self.anaphor(
                    turn, proof.source_turn, proof.source_call, call, True, chosen.anchor_noun
                )
                chosen.phrase = proof.phrase = compose(chosen.head, chosen.anchor, chosen.labelled)

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
        # an id written out is the last resort: a person describes the record instead
        forced = [
            s
            for s in slots
            if s.options and (s.literal is None or (s.literal.identifier and len(s.options) > 1))
        ]
        flexible = [
            s
            for s in slots
            if s not in forced and s.literal is not None and any(o.implicit for o in s.options)
        ]
        for s in forced:
            s.chosen = next(o for o in s.options if o.implicit)
        for s in slots:
            if s.chosen is None and s.literal is not None:
                s.chosen = s.literal
        want = round(target * len(slots)) - len(forced)
        hide = self.rng.sample(flexible, k=max(0, min(want, len(flexible))))
        for s in hide:
            s.chosen = next(o for o in s.options if o.implicit)
        return rejected
