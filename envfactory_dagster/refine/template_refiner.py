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

import functools
import random
import re
from collections.abc import Callable
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


@functools.lru_cache(maxsize=8192)  # a few hundred names, asked for tens of thousands of times
def field_words(name: str) -> str:
    parts = words(name)
    if len(parts) > 1 and parts[-1] in ("id", "ids", "key", "uuid"):
        parts = parts[:-1]
    return " ".join(parts)


@functools.lru_cache(maxsize=8192)
def name_words(name: str) -> str:
    return " ".join(words(name))


def entity_words(entity: EntitySpec | None, fallback: str) -> str:
    return name_words(entity.name) if entity else field_words(fallback)


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


def compose(head: str, anchor: str, labelled: bool) -> str:
    """The phrase of a value read from the row `anchor` describes ("the vendor of the bill ...")."""
    if not head:
        return anchor
    return f"the same {head} as {anchor}" if labelled else f"the {head} of {anchor}"


def enumerate_words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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


def mention_once(request: str, references: list[tuple[str, str]]) -> str:
    """Keep the first mention of each (phrase, noun); later ones become "the same <noun>"."""
    for phrase, noun in sorted(set(references), key=lambda r: -len(r[0])):
        first = request.find(phrase)
        if first == -1 or not noun:
            continue
        cut = first + len(phrase)
        request = request[:cut] + request[cut:].replace(phrase, f"the same {noun}")
    return request


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
        self.tools = {(env_id, t.name): t for env_id, spec in specs.items() for t in spec.tools}
        # an entity by its name, its collection, or its snake_case name (an output key: `bill_payment`)
        self.entities: dict[tuple[str, str, str], EntitySpec] = {}
        for env_id, spec in specs.items():
            for e in reversed(spec.entities):  # the first entity wins, as a scan in order would
                self.entities[(env_id, "name", e.name)] = e
                self.entities[(env_id, "collection", e.collection)] = e
                self.entities[(env_id, "row", "_".join(words(e.name)))] = e
        # generated ids are `prefix` + a zero-padded counter (Environment.next_id)
        self.id_patterns = {
            env_id: re.compile(
                "(?:" + "|".join(re.escape(e.id_prefix) for e in spec.entities if e.id_prefix) + r")\d{4,}"
            )
            for env_id, spec in specs.items()
            if any(e.id_prefix for e in spec.entities)
        }

    # -- spec lookups ------------------------------------------------------------------
    def tool_spec(self, call: GoldCall) -> ToolSpec | None:
        return self.tools.get((call.env_id, call.tool))

    def entity(
        self, env_id: str, *, name: str | None = None, collection: str | None = None
    ) -> EntitySpec | None:
        found = self.entities.get((env_id, "name", name)) if name is not None else None
        return found or self.entities.get((env_id, "collection", collection or ""))

    def looks_generated(self, env_id: str, value: Any) -> bool:
        pattern = self.id_patterns.get(env_id)
        return isinstance(value, str) and pattern is not None and pattern.fullmatch(value) is not None

    def is_identifier(self, call: GoldCall, argument: str, value: Any) -> bool:
        """A value a person would not type: a generated id, or a key or foreign key parameter
        (a key of a row of the state is one too; callers check that against their state)."""
        if not isinstance(value, str):
            return False
        return self.looks_generated(call.env_id, value) or self.bound_entity(call, argument) is not None

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
        string_fields = [
            f
            for f in self._describing_fields(entity, row, key_field)
            if not self.looks_generated(env_id, row[f])
        ]
        for f in string_fields:
            value = row[f]
            if sum(1 for r in table.values() if r.get(f) == value) == 1:
                verb = (
                    "titled" if f in TITLE_FIELDS else ("named" if "name" in f else f"with {field_words(f)}")
                )
                lookup = StateLookup(
                    world_id=self.trajectory.env_worlds[env_id],
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
                    lookup = StateLookup(
                        world_id=self.trajectory.env_worlds[env_id],
                        collection=collection,
                        filter=[cond],
                        field=key_field,
                    )
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
                            world_id=self.trajectory.env_worlds[env_id],
                            collection=entity.collection,
                            filter=cond,
                            field=entity.key_field,
                        )
                        out.append(
                            (f"the {row[f.name]} {noun} of {owner_phrase}", lookup, "implicit_reference")
                        )
            for f in entity.fields:
                if f.format in DATE_FORMATS and isinstance(row.get(f.name), str):
                    ordered = sorted((str(r.get(f.name, "")) for r in siblings), reverse=True)
                    if ordered[0] == row[f.name] and (len(ordered) == 1 or ordered[1] != ordered[0]):
                        lookup = StateLookup(
                            world_id=self.trajectory.env_worlds[env_id],
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
            if self.looks_generated(env_id, row[f]):
                continue
            if sum(1 for r in table.values() if r.get(f) == row[f]) == 1:
                verb = (
                    "titled" if f in TITLE_FIELDS else ("named" if "name" in f else f"with {field_words(f)}")
                )
                lookup = StateLookup(
                    world_id=self.trajectory.env_worlds[env_id],
                    collection=owner.collection,
                    filter=[Condition(field=f, value=row[f])],
                    field=owner.key_field,
                )
                out.append((f"the {noun} {verb} {quote(row[f])}", lookup, "implicit_reference"))
        return out

    # -- slots ---------------------------------------------------------------------------
    def slots_for(self, turn: int, call_index: int, call: GoldCall) -> list[Slot]:
        state = self.replay.turn_states[turn][self.trajectory.env_worlds[call.env_id]]
        original = self.trajectory.turns[turn].query
        slots = []
        for argument, value in call.arguments.items():
            if argument in call.masked_arguments:
                continue
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
                collection is None and not self.is_identifier(call, argument, value)
            ) or is_literal_in(value, original)
            if (
                source is not None
                and source.kind == "output"
                and source.turn is not None
                and source.call is not None
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

    def bound_entity(self, call: GoldCall, argument: str) -> str | None:
        """The entity whose key the parameter carries, by its binding to a key or foreign-key field."""
        tool = self.tool_spec(call)
        entity = self.entity(call.env_id, name=tool.entity) if tool and tool.entity else None
        bound = tool.param_fields.get(argument) if tool else None
        if entity is None or bound is None:
            return None
        if bound == entity.key_field:
            return entity.name
        spec_field = next((f for f in entity.fields if f.name == bound), None)
        return spec_field.ref_entity if spec_field else None

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
            return described if described.startswith("the ") else f"the {noun} {described}".strip()
        tool = self.tool_spec(source_call)
        verbs = {
            "create": "created",
            "search": "found",
            "list": "found",
            "get": "looked up",
            "update": "updated",
            "delete": "deleted",
        }
        verb = verbs.get(tool.action if tool else "", "dealt with")
        if (
            tool
            and tool.action == "transition"
            and tool.transition
            and isinstance(tool.transition.to_value, str)
        ):
            verb = f"marked as {tool.transition.to_value}"
        return f"the {noun} you just {verb}" if source_turn == turn else f"the {noun} you {verb} earlier"

    # -- phrases -----------------------------------------------------------------------
    def call_phrase(self, call: GoldCall, renderings: dict[str, Rendering]) -> str:
        tool = self.tool_spec(call)
        entity = self.entity(call.env_id, name=tool.entity) if tool and tool.entity else None
        noun = entity_words(entity, call.tool)
        many = plural(noun.split()[-1]) if noun else "items"
        many = " ".join([*noun.split()[:-1], many])
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
            return compose(enumerate_words(heads), anchor, labelled)

        def valued(p: str, r: Rendering) -> str:
            # a single reference that already names its field ("the vendor of ...") needs no label
            return r.phrase if r.head and (r.labelled or r.head == label(p)) else f"{label(p)} {r.phrase}"

        with_values = ", ".join(merge(other, valued, group))
        owners = " and ".join(merge(owner_params, lambda p, r: r.phrase, group))
        action = tool.action if tool else "custom"
        if action == "get":
            return f"show me {target}"
        if action == "delete":
            return f"delete {target}"
        if action == "transition" and tool and tool.transition:
            return f"mark {target} as {tool.transition.to_value}" + (
                f", with {with_values}" if with_values else ""
            )
        if action == "update":
            changes = ", ".join(
                merge(
                    other,
                    lambda p, r: f"{label(p)} to {r.phrase}",
                    lambda heads, anchor, _: (
                        f"{enumerate_words(heads)} to "
                        + ("those" if len(heads) > 1 else "that")
                        + f" of {anchor}"
                    ),
                )
            )
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
            terms = " and ".join(merge(other, lambda p, r: r.phrase, group)) or owners
            return f"look up {many} matching {terms}"
        description = (tool.description if tool else call.tool).split(". ")[0].rstrip(".")
        sentence = " ".join(field_words(w) if "_" in w else w for w in description.split())
        details = ", ".join(merge(list(phrases), lambda p, r: f"{field_words(p)}: {r.phrase}", group))
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
            return ""
        if action == "search":
            return f"matching {values}"
        if action == "get" and len(renderings) == 1:
            only = next(iter(renderings.values()))
            return only.phrase if only.implicit else f"({values})"
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
                    call, {s.argument: s.chosen for s in per_call[index] if s.chosen}
                )
        parts = [
            self.call_phrase(call, {s.argument: s.chosen for s in per_call[i] if s.chosen}) + self.where(call)
            for i, call in enumerate(calls)
            if self.mentioned[(turn, i)]
        ]
        operations = sorted({s.chosen.proof.operation for s in all_slots if s.chosen and s.chosen.implicit})
        if len(parts) > 1:
            operations.append("goal_expansion")
            request = ", ".join(parts[:-1]) + " and " + parts[-1]
        else:
            request = parts[0] if parts else "check how things stand"
        chosen = [s.chosen for s in all_slots if s.chosen and s.chosen.implicit]
        request = mention_once(
            request,
            [(r.phrase, r.noun) for r in chosen] + [(r.anchor, r.anchor_noun) for r in chosen if r.anchor],
        )
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
