"""Invariants of a realistic world, read from field names and applied to seed rows.

- every start/end-like pair (`start_date`/`end_date`, `check_in`/`check_out`, `departure_time`/
  `arrival_time`, `valid_from`/`valid_until`, `created`/`updated`) is in order;
- a child row is created after the parent it references;
- amounts are >= 0 and a part (`amount_refunded`, `amount_received`, `amount_paid`) never exceeds
  its whole (`amount`, `total`, `amount_due`);
- a total equals its parts where the schema names both (`total = subtotal + tax + shipping -
  discount`);
- refund-like children of one parent never return more than the parent's amount, and a parent
  field that counts them (`amount_refunded`) holds their sum.

The same pair and part detectors serve business-rule inference (a write that breaks a pair is
refused). Heuristics over the document's field names, named as such.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, FieldSpec
from envfactory_dagster.envgen.field_semantics import record_kind
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.envgen.world_codes import currency_exponent

# (start word, end word): two fields whose names differ only in these words form a pair
ORDER_WORDS = (
    ("start", "end"),
    ("starts", "ends"),
    ("started", "ended"),
    ("begin", "end"),
    ("from", "to"),
    ("from", "until"),
    ("in", "out"),
    ("checkin", "checkout"),
    ("departure", "arrival"),
    ("depart", "arrive"),
    ("departs", "arrives"),
    ("pickup", "dropoff"),
    ("pickup", "return"),
    ("open", "close"),
    ("opens", "closes"),
    ("opened", "closed"),
    ("created", "updated"),
    ("created", "modified"),
    ("created", "completed"),
    ("created", "closed"),
    ("issued", "due"),
    ("issue", "due"),
    ("min", "max"),
    ("minimum", "maximum"),
    ("earliest", "latest"),
    ("unlock", "lock"),
    ("first", "last"),
)
TEMPORAL_MEANINGS = frozenset({"date", "date_time", "time", "unix_time", "birth_date"})
CREATED_WORDS = frozenset({"created", "creation", "inserted", "registered", "requested"})
PART_WORDS = frozenset(
    {"refunded", "received", "captured", "paid", "settled", "redeemed", "reversed", "used"}
)
WHOLE_NAMES = ("amount", "total", "amount_total", "total_amount", "amount_due", "total_price", "price")
TOTAL_NAMES = frozenset(
    {"total", "total_price", "total_amount", "grand_total", "amount_total", "order_total"}
)
ADDITIVE_WORDS = frozenset({"tax", "shipping", "fee", "fees", "tip", "handling", "duty", "surcharge"})
SUBTRACTIVE_WORDS = frozenset({"discount", "discounts", "credit", "adjustment"})
REFUND_ENTITY_WORDS = frozenset({"refund", "reversal", "chargeback", "return", "dispute"})


def _is_temporal(f: FieldSpec) -> bool:
    return f.semantic in TEMPORAL_MEANINGS or f.format in ("date", "date-time")


def _is_money(f: FieldSpec) -> bool:
    return f.semantic == "money" and f.type in ("integer", "number")


def ordered_pairs(entity: EntitySpec) -> list[tuple[str, str]]:
    """(earlier, later) field pairs of the entity, by names that differ only in an order word."""
    fields = [f for f in entity.fields if f.name != entity.key_field and not f.enum and not f.ref_entity]
    pairs: list[tuple[str, str]] = []
    for a in fields:
        for b in fields:
            if a.name == b.name or a.type != b.type or _is_temporal(a) != _is_temporal(b):
                continue
            if not _is_temporal(a) and a.type not in ("integer", "number"):
                continue
            wa, wb = words(a.name), words(b.name)
            if len(wa) != len(wb):
                continue
            diff = [(x, y) for x, y in zip(wa, wb, strict=True) if x != y]
            if len(diff) == 1 and diff[0] in ORDER_WORDS:
                temporal_only = diff[0][0] in CREATED_WORDS or diff[0][0] in ("issued", "issue", "in", "from")
                if temporal_only and not _is_temporal(a):
                    continue
                pairs.append((a.name, b.name))
    return pairs


def part_whole_pairs(entity: EntitySpec) -> list[tuple[str, str]]:
    """(part, whole) money fields of one row: `amount_refunded` <= `amount`."""
    money = {f.name: f for f in entity.fields if _is_money(f)}
    whole = next((n for n in WHOLE_NAMES if n in money), None)
    if whole is None:
        return []
    return [(n, whole) for n in money if n != whole and set(words(n)) & PART_WORDS]


def total_parts(entity: EntitySpec) -> tuple[str, list[str], list[str]] | None:
    """(total, added parts, subtracted parts) when the schema names a total and a subtotal."""
    money = {f.name: f for f in entity.fields if _is_money(f)}
    total = next((n for n in money if n in TOTAL_NAMES), None)
    subtotal = next((n for n in money if "subtotal" in words(n) or n.startswith("subtotal")), None)
    if total is None or subtotal is None:
        return None
    added = [subtotal] + [n for n in money if n not in (total, subtotal) and set(words(n)) & ADDITIVE_WORDS]
    subtracted = [n for n in money if n not in (total, subtotal) and set(words(n)) & SUBTRACTIVE_WORDS]
    return total, added, subtracted


def creation_field(entity: EntitySpec) -> str | None:
    """The field that says when a row was created, if the entity has one."""
    for f in entity.fields:
        if _is_temporal(f) and set(words(f.name)) & CREATED_WORDS and "updated" not in f.name:
            return f.name
    return None


def is_refund_like(entity: EntitySpec) -> bool:
    return bool(set(words(entity.name)) & REFUND_ENTITY_WORDS)


# -- applying the invariants to a row ---------------------------------------------------
def parse_moment(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC) if 10**8 < value < 10**11 else None
    if not isinstance(value, str) or len(value) < 5:
        return None
    text = value.replace("Z", "+00:00")
    try:
        if len(value) in (5, 8) and value[2] == ":":  # a time of day
            return datetime.fromisoformat(f"2000-01-01T{value}").replace(tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_like(template: Any, moment: datetime) -> Any:
    """`moment` in the same spelling as `template` (date, date-time, time of day, epoch)."""
    if isinstance(template, int | float) and not isinstance(template, bool):
        return type(template)(int(moment.timestamp()))
    if len(template) == 10:
        return moment.strftime("%Y-%m-%d")
    if len(template) in (5, 8) and template[2] == ":":
        return moment.strftime("%H:%M" if len(template) == 5 else "%H:%M:%S")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def later_than(start: Any, end: Any, gap: timedelta) -> Any:
    """`end` moved to after `start` by `gap` when it is not already later."""
    begin, finish = parse_moment(start), parse_moment(end)
    if begin is None or finish is None or finish > begin:
        return end
    if isinstance(start, str) and len(start) in (5, 8) and start[2] == ":":
        gap = timedelta(
            minutes=min(gap.total_seconds() / 60, (23 * 60 + 59) - begin.hour * 60 - begin.minute)
        )
        if gap.total_seconds() <= 0:
            return end
    elif isinstance(start, str) and len(start) == 10:
        gap = timedelta(days=max(1, gap.days))
    return format_like(end, begin + gap)


def order_row(row: dict[str, Any], entity: EntitySpec, gap: timedelta) -> None:
    """Put every ordered pair of the row in order (numbers: swap; moments: move the later one)."""
    for first, second in ordered_pairs(entity):
        a, b = row.get(first), row.get(second)
        if a is None or b is None:
            continue
        if isinstance(a, int | float) and not parse_moment(a):
            if a > b:
                row[first], row[second] = b, a
        else:
            row[second] = later_than(a, b, gap)


def after_parent(
    row: dict[str, Any], entity: EntitySpec, parents: list[dict[str, Any]], gap: timedelta
) -> None:
    """The row's creation time is not before the creation time of any row it references."""
    own = creation_field(entity)
    if own is None or row.get(own) is None:
        return
    for parent in parents:
        for key, value in parent.items():
            if set(words(key)) & CREATED_WORDS and parse_moment(value) is not None:
                row[own] = later_than(value, row[own], gap)


def balance_money(row: dict[str, Any], entity: EntitySpec) -> None:
    """Parts within their whole, and a total equal to its parts."""
    fields = {f.name: f for f in entity.fields}
    for part, whole in part_whole_pairs(entity):
        part_value, whole_value = row.get(part), row.get(whole)
        numbers = isinstance(part_value, int | float) and isinstance(whole_value, int | float)
        if numbers and part_value > whole_value:  # type: ignore[operator]
            row[part] = _same_kind(fields[part], whole_value * 0.5)  # type: ignore[operator]
    whole = next((n for n in WHOLE_NAMES if isinstance(row.get(n), int | float) and n in fields), None)
    for name, f in fields.items():  # a discount is a small share of what it discounts
        value = row.get(name)
        if (
            whole
            and f.semantic == "money"
            and set(words(name)) & SUBTRACTIVE_WORDS
            and isinstance(value, int | float)
            and value > row[whole] * 0.3
        ):
            row[name] = _same_kind(f, row[whole] * 0.1)
    parts = total_parts(entity)
    if parts is None:
        return
    total, added, subtracted = parts
    values = [row.get(n) for n in added + subtracted]
    if not all(isinstance(v, int | float) for v in values):
        return
    subtotal = row[added[0]]
    for name in subtracted:  # discounts below the subtotal so the total stays >= 0
        if row[name] > subtotal * 0.3:
            row[name] = _same_kind(fields[name], subtotal * 0.1)
    amount = sum(row[n] for n in added) - sum(row[n] for n in subtracted)
    digits = currency_exponent(str(row.get("currency") or "USD"))
    row[total] = _same_kind(fields[total], round(max(amount, 0), digits))


def _same_kind(f: FieldSpec, value: float) -> int | float:
    return round(value) if f.type == "integer" else round(float(value), 2)


ALWAYS_INHERITED = frozenset({"currency_code", "ticker", "sku", "barcode"})
FROM_PRODUCT = frozenset({"sku", "barcode", "title", "product_name", "money"})
FROM_PERSON = frozenset({"email", "phone", "person_name"})


def inherited_fields(entity: EntitySpec, entities: dict[str, EntitySpec]) -> dict[str, tuple[str, str]]:
    """Child field -> (foreign-key field, parent field) for values a row copies from a row it
    references: its currency always; a product's sku, title and price (a line item); a person's
    email, phone and name (an order's contact email)."""
    found: dict[str, tuple[str, str]] = {}
    for fk in entity.fields:
        parent = entities.get(fk.ref_entity or "")
        if parent is None or fk.name == entity.key_field:
            continue
        kind = record_kind(parent)
        own_kind = record_kind(entity)
        parent_fields = {p.name: p for p in parent.fields}
        for f in entity.fields:
            match = parent_fields.get(f.name)
            if f.name in found or f.ref_entity or f.name == entity.key_field:
                continue
            if match is None or match.type != f.type or match.semantic != f.semantic:
                if not (f.semantic == "email" and kind == "person"):
                    continue
                match = next((p for p in parent.fields if p.semantic == "email"), None)
                if match is None:
                    continue
            meaning = f.semantic or ""
            if (
                meaning in ALWAYS_INHERITED
                or (kind == "product" and own_kind == "line" and meaning in FROM_PRODUCT and
                    (meaning != "money" or "price" in f.name))
                or (kind == "person" and own_kind != "person" and meaning in FROM_PERSON)
            ):  # fmt: skip
                found[f.name] = (fk.name, match.name)
    return found


def count_fields(parent: EntitySpec, child: EntitySpec) -> list[str]:
    """Count fields of `parent` that count `child` rows: `entry_count` counts WatchlistEntry rows,
    `member_count` ClubMembership rows, `orders_count` Order rows."""
    child_words = words(child.name)
    found = []
    for f in parent.fields:
        ws = words(f.name)
        if f.type != "integer" or "count" not in ws:
            continue
        nouns = [w.rstrip("s") for w in ws if w not in ("count", "total", "num")]
        if nouns and all(any(c.startswith(n) for c in child_words) for n in nouns):
            found.append(f.name)
    return found


def line_sum_target(parent: EntitySpec, line: EntitySpec) -> tuple[str, str, str] | None:
    """(parent subtotal field, line price field, line quantity field) when a line-like child's
    price x quantity adds up to its parent's subtotal (or total, when it names no subtotal)."""
    if record_kind(line) != "line":
        return None
    price = next((f.name for f in line.fields if _is_money(f) and "price" in words(f.name)), None)
    quantity = next(
        (f.name for f in line.fields if f.semantic == "quantity" and f.name in ("quantity", "qty")), None
    )
    parts = total_parts(parent)
    target = (
        parts[1][0]
        if parts
        else next((f.name for f in parent.fields if _is_money(f) and f.name in TOTAL_NAMES), None)
    )
    if price is None or quantity is None or target is None:
        return None
    return target, price, quantity
