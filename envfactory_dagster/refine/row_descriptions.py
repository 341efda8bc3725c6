"""Unique descriptions of state rows: how a person names a record instead of its id.

"the customer named "Ada Lovelace"", "the customer whose name mentions "Lovelace"" (controlled
ambiguity, still unique), "the most recent order of the customer named ..." (an owner described
uniquely, then the newest of its rows), "the pending order of ..." (the only one in that status).
Each description comes with the `StateLookup` that finds the row in the state at the start of the
turn, so the refinement's grounding proof is checked by running it. Values that look generated
(`prefix_0001` ids) are never used to describe a row.
"""

from __future__ import annotations

import functools
import random
import re
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, ToolSpec
from envfactory_dagster.envgen.key_forms import key_regex
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.replay import Replay
from envfactory_dagster.querygen.surface import field_label, humanize_enum
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory
from envfactory_dagster.refine.grounding import Condition, StateLookup

NAME_FIELDS = ("name", "full_name", "title", "subject", "display_name", "username", "label", "email", "code")
TITLE_FIELDS = ("title", "subject")
DATE_FORMATS = ("date", "date-time")


def field_words(name: str) -> str:
    """A field name in words, as a label ("due_date" -> "due date", "vendor_id" -> "vendor")."""
    return field_label(name)


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


class RowDescriber:
    """Spec lookups of a trajectory's environments and unique descriptions of state rows."""

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
        # generated ids are `prefix` + a zero-padded counter + `suffix` (envgen.key_forms)
        self.id_patterns = {
            env_id: re.compile("(?:" + "|".join(key_regex(e) for e in spec.entities if e.id_prefix) + ")")
            for env_id, spec in specs.items()
            if any(e.id_prefix for e in spec.entities)
        }

    def determiner(self) -> str:
        """ "the" mostly, sometimes "my": people speak of their own records both ways."""
        return "my" if self.rng.random() < 0.3 else "the"

    def naming_words(self, field: str) -> str:
        """How a person names a row by one of its fields ("titled", "called", "whose email is")."""
        if field in TITLE_FIELDS:
            return self.rng.choice(("titled", "called", "with the title"))
        if "name" in field:
            return self.rng.choice(("named", "called"))
        label = field_words(field)
        if "email" in field:
            return self.rng.choice(("under", "for", f"with {label}", f"whose {label} is", "registered to"))
        return self.rng.choice(
            (
                f"with {label}",
                f"whose {label} is",
                f"that has {label}",
                f"where the {label} is",
                f"with the {label}",
            )
        )

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
                verb = self.naming_words(f)
                lookup = StateLookup(
                    world_id=self.trajectory.env_worlds[env_id],
                    collection=collection,
                    filter=[Condition(field=f, value=value)],
                    field=key_field,
                )
                found.append(
                    (f"{self.determiner()} {noun} {verb} {quote(value)}", lookup, "implicit_reference")
                )
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
                    mentions = self.rng.choice(("mentions", "contains", "includes", "has the word"))
                    partial.append(
                        (
                            f"{self.determiner()} {noun} whose {field_words(f)} {mentions} {quote(token)}",
                            lookup,
                            "ambiguity",
                        )
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
                        phrase = f"the {humanize_enum(row[f.name])} {noun} of {owner_phrase}"
                        out.append((phrase, lookup, "implicit_reference"))
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
                        adjective = (
                            "only"
                            if len(ordered) == 1
                            else self.rng.choice(("most recent", "latest", "newest"))
                        )
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
                verb = self.naming_words(f)
                lookup = StateLookup(
                    world_id=self.trajectory.env_worlds[env_id],
                    collection=owner.collection,
                    filter=[Condition(field=f, value=row[f])],
                    field=owner.key_field,
                )
                out.append((f"the {noun} {verb} {quote(row[f])}", lookup, "implicit_reference"))
        return out

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
