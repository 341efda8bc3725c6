"""Seed data: a realistic, consistent initial state for an environment spec (Faker, seeded).

`generate_state(spec, seed)` fills every collection with `spec.seed_rows` rows (clamped to
5..50), entities in topological order so foreign keys point at existing rows; values come from
Faker providers chosen by field name, format and `seed_hint`, inside the field's enum, bounds,
pattern and max length; dates lie around `spec.clock`. Keys are `<id_prefix><n:04d>` (the form
`Environment.next_id` produces) and `counters` start past them, so new ids never collide.
Same (spec, seed) -> the same state; no clock, no global random generator.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec
from envfactory_dagster.envgen.naming import words

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


_TEXT_PROVIDERS: list[tuple[tuple[str, ...], str]] = [
    (("email",), "email"),
    (("first", "given"), "first_name"),
    (("last", "family", "surname"), "last_name"),
    (("username", "login", "handle"), "user_name"),
    (("phone", "mobile", "fax"), "phone_number"),
    (("city", "town"), "city"),
    (("country",), "country"),
    (("state", "province", "region"), "state"),
    (("zip", "postal", "postcode"), "postcode"),
    (("street", "address", "line1", "line2"), "street_address"),
    (
        ("company", "organization", "organisation", "employer", "vendor", "merchant", "brand", "payee"),
        "company",
    ),
    (("currency",), "currency_code"),
    (("url", "uri", "website", "link", "href", "homepage", "image", "avatar", "photo"), "url"),
    (("color", "colour"), "color_name"),
    (("timezone", "tz"), "timezone"),
    (("language", "locale", "lang"), "language_code"),
    (("iban",), "iban"),
    (("sku", "barcode", "isbn", "ean", "upc"), "ean13"),
    (("job", "occupation", "role", "position"), "job"),
    (("ip",), "ipv4"),
    (("path", "file", "directory", "folder", "filename"), "file_path"),
    (("mime", "content_type", "media"), "mime_type"),
    (
        (
            "description",
            "notes",
            "note",
            "body",
            "content",
            "message",
            "text",
            "comment",
            "summary",
            "bio",
            "memo",
            "observation",
            "observations",
            "reason",
            "details",
        ),
        "sentence",
    ),
    (("title", "subject", "headline", "label", "topic"), "catch_phrase"),
    (
        (
            "name",
            "full",
            "author",
            "owner",
            "contact",
            "guest",
            "passenger",
            "patient",
            "assignee",
            "recipient",
            "sender",
        ),
        "name",
    ),
]


def _provider_for(f: FieldSpec) -> str:
    if f.seed_hint:
        return f.seed_hint
    fmt = (f.format or "").lower()
    if fmt in ("email", "uri", "url", "uuid", "date", "date-time", "ipv4", "hostname"):
        return {"uri": "url", "date-time": "date_time", "hostname": "domain_name"}.get(fmt, fmt)
    ws = words(f.name)
    for keys, provider in _TEXT_PROVIDERS:
        if any(w in keys for w in ws):
            return provider
    return "word"


def _number_range(f: FieldSpec) -> tuple[float, float]:
    ws = set(words(f.name))
    if ws & {"lat", "latitude"}:
        low, high = -60.0, 70.0
    elif ws & {"lng", "lon", "long", "longitude"}:
        low, high = -170.0, 170.0
    elif ws & {"rating", "stars", "score"}:
        low, high = 1.0, 5.0
    elif ws & {"percent", "percentage", "rate", "discount"}:
        low, high = 0.0, 100.0
    elif ws & {"year"}:
        low, high = 1990.0, 2026.0
    elif ws & {
        "quantity",
        "qty",
        "count",
        "adults",
        "guests",
        "children",
        "rooms",
        "seats",
        "nights",
        "position",
        "priority",
        "level",
        "order",
        "index",
    }:
        low, high = 1.0, 10.0
    elif ws & {
        "price",
        "amount",
        "total",
        "balance",
        "cost",
        "fee",
        "budget",
        "salary",
        "subtotal",
        "tax",
        "budgeted",
        "activity",
        "payment",
    }:
        low, high = 5.0, 2000.0
    else:
        low, high = 0.0, 1000.0
    bound_low = f.minimum if f.minimum is not None else -math.inf
    bound_high = f.maximum if f.maximum is not None else math.inf
    low, high = max(low, bound_low), min(high, bound_high)
    if low > high:  # the usual range of such a name lies outside the declared bounds
        low = bound_low if f.minimum is not None else bound_high - 100
        high = min(bound_high, low + 1000)
    return low, high


def field_value(
    f: FieldSpec, fake: Faker, rng: random.Random, now: datetime, index: int, lifecycle: bool = False
) -> Any:
    """A realistic value for one field that its model and schema accept; `lifecycle` fields
    (those transitions move) cycle through their values so every transition has candidates."""
    if f.enum:
        return (
            f.enum[index % len(f.enum)] if lifecycle or f.name in ("status", "state") else rng.choice(f.enum)
        )
    if f.type == "boolean":
        return rng.random() < 0.5
    if f.type in ("integer", "number"):
        low, high = _number_range(f)
        if f.type == "integer":
            lo, hi = math.ceil(low), math.floor(high)
            return rng.randint(lo, hi) if lo <= hi else int(lo)
        return round(rng.uniform(low, high), 2) if high - low >= 0.02 else float(low)
    if f.type == "array":
        if f.item_type in ("string", None) and f.item_type is not None:
            return [fake.word() for _ in range(rng.randint(0, 3))]
        if f.item_type == "integer":
            return [rng.randint(1, 100) for _ in range(rng.randint(0, 3))]
        if f.item_type == "number":
            return [round(rng.uniform(1, 100), 2) for _ in range(rng.randint(0, 3))]
        if f.item_type == "boolean":
            return [rng.random() < 0.5 for _ in range(rng.randint(0, 3))]
        return []
    if f.type == "object":
        return {}
    if f.pattern:
        value = sample_pattern(f.pattern, rng)
        return (
            value[: f.max_length] if f.max_length and re.search(f.pattern, value[: f.max_length]) else value
        )
    provider = _provider_for(f)
    if provider == "date_time":
        moment = now + timedelta(minutes=rng.randint(-180 * 24 * 60, 60 * 24 * 60))
        value = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    elif provider == "date":
        value = (now + timedelta(days=rng.randint(-180, 90))).strftime("%Y-%m-%d")
    elif provider == "uuid":
        value = str(fake.uuid4())
    elif provider == "file_path":
        value = (
            f"/home/user/{fake.word()}/{fake.word()}_{index + 1}.{rng.choice(['txt', 'md', 'json', 'csv'])}"
        )
    elif provider == "word":
        value = (
            fake.word() if "id" not in words(f.name) else f"{words(f.name)[0][:3]}_{rng.randint(1000, 9999)}"
        )
    else:
        value = str(getattr(fake, provider)())
    if f.max_length is not None:
        value = value[: f.max_length]
    return value


def _key_value(
    entity: EntitySpec, index: int, fake: Faker, rng: random.Random, now: datetime, taken: set[str]
) -> str:
    if entity.key_field in ID_LIKE_KEYS or entity.key_field.endswith(("_id", "_sid", "id")):
        return f"{entity.id_prefix}{index + 1:04d}"
    f = next(x for x in entity.fields if x.name == entity.key_field)
    base = str(field_value(f.model_copy(update={"type": "string", "enum": None}), fake, rng, now, index))
    value, n = base, 2
    while value in taken:
        value, n = f"{base}-{n}", n + 1
    return value


def seed_row_count(spec: EnvSpec, entity: EntitySpec) -> int:
    default = 12 if entity.role == "primary" else 8
    return max(MIN_ROWS, min(MAX_ROWS, spec.seed_rows.get(entity.collection, default)))


def generate_state(spec: EnvSpec, seed: int) -> dict[str, Any]:
    """The initial state (JSON-able dict the generated `State` model accepts) for `seed`."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    now = _parse_clock(spec.clock)
    by_name = {e.name: e for e in spec.entities}
    counts = {e.name: seed_row_count(spec, e) for e in spec.entities}
    state: dict[str, Any] = {e.collection: {} for e in spec.entities}
    counters: dict[str, int] = {}
    lifecycle_fields = {(t.entity, t.transition.field) for t in spec.tools if t.transition is not None}
    for entity in referenced_first(spec.entities):
        table: dict[str, Any] = state[entity.collection]
        for index in range(counts[entity.name]):
            key = _key_value(entity, index, fake, rng, now, set(table))
            row: dict[str, Any] = {}
            for f in entity.fields:
                if f.name == entity.key_field:
                    row[f.name] = key
                elif f.ref_entity and f.ref_entity in by_name:
                    row[f.name] = _reference(by_name[f.ref_entity], counts[f.ref_entity], state, rng, f)
                else:
                    lifecycle = f.name == entity.status_field or (entity.name, f.name) in lifecycle_fields
                    row[f.name] = field_value(f, fake, rng, now, index, lifecycle)
            table[key] = row
        counters[entity.collection] = counts[entity.name]
    state["counters"] = counters
    state["now"] = spec.clock
    state["seed"] = seed
    return state


def _reference(
    target: EntitySpec, count: int, state: dict[str, Any], rng: random.Random, f: FieldSpec
) -> Any:
    """A key of an existing (or, inside a cycle, a to-be-seeded id-like) row of `target`."""
    existing = sorted(state[target.collection])
    if existing:
        return rng.choice(existing)
    if target.key_field in ID_LIKE_KEYS or target.key_field.endswith(("_id", "_sid", "id")):
        return f"{target.id_prefix}{rng.randint(1, count):04d}"
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
