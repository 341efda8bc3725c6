"""Seed data: a realistic, consistent initial state for an environment spec (Faker, seeded).

`generate_state(spec, seed)` fills every collection with `spec.seed_rows` rows (clamped to
5..50), entities in topological order so foreign keys point at existing rows. Each field's
meaning is decided once (field_semantics.py, stored on the spec) and its values come from the
document's examples first, then the matching provider (seed_values.py), inside the field's enum,
bounds, pattern and length; a row's fields share one person, organization, place and currency,
and a row copies what it shares with the row it references (currency, a product's sku and price).
Then the world's invariants (world_invariants.py): ordered start/end pairs, children created
after parents, parts within their whole, totals equal to their parts, refunds within their
payment, counts and line subtotals equal to their children. Natural keys are unique per table.
Keys are `EntitySpec.key_of(n)` (the service's prefix and four digits, or the form the document
states for the key: `envgen.key_forms`) and `counters` start past them, so new ids never
collide. Same (spec, seed) -> the same state; no clock, no global random generator.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec
from envfactory_dagster.envgen.field_semantics import annotate_spec, decide_meaning, meaning_of, unique_fields
from envfactory_dagster.envgen.seed_values import RowContext, semantic_value
from envfactory_dagster.envgen.service_vocabulary import ServiceVocabulary
from envfactory_dagster.envgen.world_codes import currency_exponent
from envfactory_dagster.envgen.world_invariants import (
    after_parent,
    balance_money,
    count_fields,
    inherited_fields,
    is_refund_like,
    line_sum_target,
    order_row,
)

MIN_ROWS, MAX_ROWS = 5, 50
ID_LIKE_KEYS = ("id", "sid", "uuid")

# -- regular expressions -> a matching sample --------------------------------------------
try:  # Python 3.11+: the parser moved to a private module; both spell the same API
    from re import _parser as regex_parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse as regex_parser  # type: ignore[no-redef]

_CATEGORY_CHARS = {
    "CATEGORY_DIGIT": "0123456789",
    "CATEGORY_WORD": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_DIGIT": "abcdefghXYZ",
    "CATEGORY_NOT_WORD": "-.:",
    "CATEGORY_NOT_SPACE": "abcXYZ123",
}


class _Unsupported(Exception):
    pass


def _sample_tokens(tokens: Any, rng: random.Random, groups: dict[int, str]) -> str:
    out = []
    for op, arg in tokens:
        name = str(op)
        if name == "LITERAL":
            out.append(chr(arg))
        elif name == "NOT_LITERAL":
            out.append("a" if chr(arg) != "a" else "b")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_sample_class(arg, rng))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, sub = arg
            high = low + 3 if high == regex_parser.MAXREPEAT else high
            count = rng.randint(low, max(low, min(high, low + 3)))
            out.extend(_sample_tokens(sub, rng, groups) for _ in range(count))
        elif name == "SUBPATTERN":
            group, _, _, sub = arg
            text = _sample_tokens(sub, rng, groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif name == "BRANCH":
            _, branches = arg
            out.append(_sample_tokens(rng.choice(branches), rng, groups))
        elif name == "AT":
            continue
        else:
            raise _Unsupported(name)
    return "".join(out)


def _sample_class(items: Any, rng: random.Random) -> str:
    choices: list[str] = []
    negate = False
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            choices.append(chr(arg))
        elif name == "RANGE":
            low, high = arg
            choices.extend(chr(c) for c in range(low, min(high, low + 60) + 1))
        elif name == "CATEGORY":
            choices.extend(_CATEGORY_CHARS.get(str(arg), "a"))
        else:
            raise _Unsupported(name)
    if negate:
        pool = [c for c in "abcdefghijklmnopqrstuvwxyz0123456789" if c not in choices]
        return pool[0] if pool else "~"
    return rng.choice(choices) if choices else "a"


def sample_pattern(pattern: str, rng: random.Random) -> str:
    """A string that `re.search(pattern, s)` accepts (raises ValueError when it cannot make one)."""
    try:
        tokens = regex_parser.parse(pattern)
        for _ in range(8):
            text = _sample_tokens(tokens, rng, {})
            if re.search(pattern, text):
                return text
    except (_Unsupported, re.error, RecursionError) as exc:
        raise ValueError(f"cannot sample pattern {pattern!r}: {exc}") from None
    raise ValueError(f"cannot sample pattern {pattern!r}")


def pattern_is_samplable(pattern: str) -> bool:
    """True when the pattern compiles and matching values can be generated for it."""
    try:
        re.compile(pattern)
        sample_pattern(pattern, random.Random(0))
    except (ValueError, re.error):
        return False
    return True


# -- values --------------------------------------------------------------------------
def _parse_clock(clock: str) -> datetime:
    return datetime.fromisoformat(clock.replace("Z", "+00:00")).astimezone(UTC)


def field_value(
    f: FieldSpec, fake: Faker, rng: random.Random, now: datetime, index: int, lifecycle: bool = False
) -> Any:
    """A realistic value for one field outside any row (its meaning decided from the field alone);
    `lifecycle` fields (those transitions move) cycle through their values so every transition has
    candidates."""
    if f.enum and (lifecycle or f.name in ("status", "state")):
        return f.enum[index % len(f.enum)]
    entity = EntitySpec(name="Record", collection="records", fields=[f])
    spec = EnvSpec(
        class_name="Record", title="", description=f.description, domain="", entities=[entity], tools=[]
    )
    ctx = RowContext(fake, rng, ServiceVocabulary(spec), entity, {})
    return semantic_value(f, meaning_of(f, entity), ctx, now, index)


# fields generated after the others, because they follow from them
_DERIVED_MEANINGS = ("email", "username", "slug", "url", "image_url", "domain", "money")


def _generation_order(entity: EntitySpec) -> list[FieldSpec]:
    rank = {name: i for i, name in enumerate(_DERIVED_MEANINGS)}
    currency_first = sorted(entity.fields, key=lambda f: f.semantic != "currency_code")
    return sorted(currency_first, key=lambda f: rank.get(f.semantic or "", -1))


def _key_value(entity: EntitySpec, index: int, ctx: RowContext, now: datetime, taken: set[str]) -> str:
    f = next(x for x in entity.fields if x.name == entity.key_field)
    if f.pattern or entity.key_field in ID_LIKE_KEYS or entity.key_field.endswith(("_id", "_sid", "id")):
        return entity.key_of(index + 1)
    as_text = f.model_copy(update={"type": "string", "enum": None, "semantic": None})
    meaning = decide_meaning(as_text.model_copy(update={"name": f"{f.name}_value"}), entity)
    base = str(semantic_value(as_text, meaning, ctx, now, index))
    value, n = base, 2
    while value in taken:
        value, n = f"{base}-{n}", n + 1
    return value


def seed_row_count(spec: EnvSpec, entity: EntitySpec) -> int:
    default = 12 if entity.role == "primary" else 8
    return max(MIN_ROWS, min(MAX_ROWS, spec.seed_rows.get(entity.collection, default)))


def generate_state(spec: EnvSpec, seed: int) -> dict[str, Any]:
    """The initial state (JSON-able dict the generated `State` model accepts) for `seed`."""
    spec = annotate_spec(spec)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    now = _parse_clock(spec.clock)
    vocabulary = ServiceVocabulary(spec)
    by_name = {e.name: e for e in spec.entities}
    counts = {e.name: seed_row_count(spec, e) for e in spec.entities}
    state: dict[str, Any] = {e.collection: {} for e in spec.entities}
    counters: dict[str, int] = {}
    lifecycle_fields = {(t.entity, t.transition.field) for t in spec.tools if t.transition is not None}
    inherited = {e.name: inherited_fields(e, by_name) for e in spec.entities}
    fk_targets = {(e.name, f.name): f.ref_entity for e in spec.entities for f in e.fields if f.ref_entity}
    for entity in referenced_first(spec.entities):
        table: dict[str, Any] = state[entity.collection]
        unique = unique_fields(entity)
        for index in range(counts[entity.name]):
            row: dict[str, Any] = {}
            ctx = RowContext(fake, rng, vocabulary, entity, row)
            key = _key_value(entity, index, ctx, now, set(table))
            for f in entity.fields:  # references first: the row inherits from its parents
                if f.name != entity.key_field and f.ref_entity and f.ref_entity in by_name:
                    row[f.name] = _reference(by_name[f.ref_entity], counts[f.ref_entity], state, rng, f)
            ctx.parents = [
                state[by_name[f.ref_entity].collection][row[f.name]]
                for f in entity.fields
                if f.name in row and row[f.name] in state[by_name[f.ref_entity].collection]
            ]
            for name, (fk, parent_field) in inherited[entity.name].items():
                parent_row = state[by_name[fk_targets[(entity.name, fk)]].collection].get(row.get(fk))
                if parent_row is not None and parent_row.get(parent_field) is not None:
                    row[name] = parent_row[parent_field]
            for f in _generation_order(entity):
                if f.name == entity.key_field:
                    row[f.name] = key
                elif f.name in row:
                    continue
                elif f.enum and (f.name == entity.status_field or (entity.name, f.name) in lifecycle_fields):
                    row[f.name] = f.enum[index % len(f.enum)]
                else:
                    row[f.name] = _unique_value(f, entity, ctx, now, index, table, unique)
            row = {f.name: row[f.name] for f in entity.fields}
            gap = timedelta(hours=rng.randint(1, 72))
            after_parent(row, entity, ctx.parents, gap)  # first: it may move the creation time
            order_row(row, entity, gap)
            balance_money(row, entity)
            table[key] = row
        counters[entity.collection] = counts[entity.name]
    settle_children(state, spec)
    settle_aggregates(state, spec)
    state["counters"] = counters
    state["now"] = spec.clock
    state["seed"] = seed
    return state


MAX_UNIQUE_TRIES = 20


def _unique_value(
    f: FieldSpec,
    entity: EntitySpec,
    ctx: RowContext,
    now: datetime,
    index: int,
    table: dict[str, Any],
    unique: set[str],
) -> Any:
    """A value for `f`; a natural key (email, sku, slug, ...) is not one another row holds."""
    meaning = meaning_of(f, entity)
    value = semantic_value(f, meaning, ctx, now, index)
    if f.name not in unique:
        return value
    taken = {row.get(f.name) for row in table.values()}
    tries = 0
    while value in taken and tries < MAX_UNIQUE_TRIES:
        ctx._person = None  # a natural key follows its row's person: draw another one
        value = semantic_value(f, meaning, ctx, now, index + tries + 1)
        tries += 1
    if value in taken and isinstance(value, str):
        value = f"{value}{index + 1}" if not f.pattern else value
    return value


def settle_aggregates(state: dict[str, Any], spec: EnvSpec) -> None:
    """Parent fields that summarise children hold what the children say: a count of them
    (`entry_count`), and a subtotal equal to the lines' price x quantity (then the total again)."""
    by_name = {e.name: e for e in spec.entities}
    for child in spec.entities:
        for fk in (f for f in child.fields if f.ref_entity in by_name and f.name != child.key_field):
            parent = by_name[fk.ref_entity]  # type: ignore[index]
            if parent.name == child.name:
                continue
            rows_of: dict[str, list[dict[str, Any]]] = {}
            for row in state[child.collection].values():
                rows_of.setdefault(row.get(fk.name), []).append(row)
            counted = count_fields(parent, child)
            lines = line_sum_target(parent, child)
            for key, parent_row in list(state[parent.collection].items()):
                update: dict[str, Any] = {name: len(rows_of.get(key, [])) for name in counted}
                children = rows_of.get(key, [])
                if lines is not None and children:
                    target, price, quantity = lines
                    amount = sum((r.get(price) or 0) * (r.get(quantity) or 0) for r in children)
                    digits = currency_exponent(str(parent_row.get("currency") or "USD"))
                    target_field = next(f for f in parent.fields if f.name == target)
                    update[target] = (
                        round(amount) if target_field.type == "integer" else round(amount, digits)
                    )
                if update:
                    new_row = {**parent_row, **update}
                    balance_money(new_row, parent)
                    state[parent.collection][key] = new_row


def settle_children(state: dict[str, Any], spec: EnvSpec) -> None:
    """Refund-like children never return more than their parent's amount, and a parent field that
    counts them (`amount_refunded`) holds their sum."""
    by_name = {e.name: e for e in spec.entities}
    for child in spec.entities:
        if not is_refund_like(child):
            continue
        amount = next(
            (f for f in child.fields if f.semantic == "money" and f.name in ("amount", "total")), None
        )
        for fk in (f for f in child.fields if f.ref_entity in by_name and f.name != child.key_field):
            parent = by_name[fk.ref_entity]  # type: ignore[index]
            whole = next(
                (p for p in parent.fields if p.semantic == "money" and p.name in ("amount", "total")), None
            )
            if amount is None or whole is None:
                continue
            refunded = next(
                (p for p in parent.fields if p.semantic == "money" and "refunded" in p.name), None
            )
            given: dict[str, float] = {}
            for key in sorted(state[child.collection]):
                row = state[child.collection][key]
                parent_row = state[parent.collection].get(row.get(fk.name))
                if parent_row is None or not isinstance(row.get(amount.name), int | float):
                    continue
                left = max(parent_row[whole.name] - given.get(row[fk.name], 0), 0)
                floor = max(amount.minimum or 0, 0)
                if row[amount.name] > left and left < max(floor, 1e-9):
                    # nothing left on this parent: the refund belongs to the one with the most room
                    rooms = {
                        k: p[whole.name] - given.get(k, 0)
                        for k, p in sorted(state[parent.collection].items())
                    }
                    roomiest = max(rooms, key=rooms.__getitem__)
                    roomy = state[parent.collection][roomiest]
                    moved = {fk.name: roomiest}
                    if "currency" in row and "currency" in roomy:
                        moved["currency"] = roomy["currency"]
                    row, left = {**row, **moved}, rooms[roomiest]
                if row[amount.name] > left:
                    share = left if amount.type == "number" else int(left)
                    row = {**row, amount.name: max(share, floor)}
                state[child.collection][key] = row
                given[row[fk.name]] = given.get(row[fk.name], 0) + row[amount.name]
            if refunded is not None:
                for parent_key, parent_row in state[parent.collection].items():
                    total = given.get(parent_key, 0)
                    state[parent.collection][parent_key] = {
                        **parent_row,
                        refunded.name: int(total) if refunded.type == "integer" else float(total),
                    }


def _reference(
    target: EntitySpec, count: int, state: dict[str, Any], rng: random.Random, f: FieldSpec
) -> Any:
    """A key of an existing (or, inside a cycle, a to-be-seeded id-like) row of `target`."""
    existing = sorted(state[target.collection])
    if existing:
        return rng.choice(existing)
    if target.key_field in ID_LIKE_KEYS or target.key_field.endswith(("_id", "_sid", "id")):
        return target.key_of(rng.randint(1, count))
    if f.nullable:
        return None
    raise ValueError(f"field {f.name}: cannot reference {target.name} before it is seeded")


def referenced_first(entities: list[EntitySpec]) -> list[EntitySpec]:
    """Entities ordered so referenced ones come first (inside a cycle: the given order)."""
    by_name = {e.name: e for e in entities}
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order or name in visiting:
            return
        visiting.add(name)
        for f in by_name[name].fields:
            if f.ref_entity in by_name and f.ref_entity != name:
                visit(f.ref_entity)  # type: ignore[arg-type]
        visiting.discard(name)
        order.append(name)

    for e in entities:
        visit(e.name)
    return [by_name[n] for n in order]
