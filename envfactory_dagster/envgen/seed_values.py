"""One realistic value per field, by the field's meaning (field_semantics.py).

A `RowContext` holds the facts one row shares across its fields, drawn once when first needed:
the person (so the email matches the name), the organization (so the URL matches the company),
the place (city, country, time zone and coordinates of one real location) and the currency (so
money has the currency's precision). Values come from the document's examples first, then from
the matching Faker provider or ISO list, then fit the field's enum, bounds, pattern and length.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from faker import Faker

from envfactory_dagster.envgen.env_spec import EntitySpec, FieldSpec
from envfactory_dagster.envgen.field_semantics import Meaning
from envfactory_dagster.envgen.naming import word_set, words
from envfactory_dagster.envgen.service_vocabulary import ServiceVocabulary
from envfactory_dagster.envgen.world_codes import (
    AIRLINES,
    AIRPORTS,
    CALLING_CODES,
    COMMON_CURRENCIES,
    COMMON_LANGUAGES,
    COUNTRY_CURRENCY,
    TICKERS,
    alpha3_of,
    country_name_of,
    currency_exponent,
    is_currency_code,
)

EXAMPLE_SHARE = 0.5  # a document example is used for about half the rows, the rest vary around it
PAST_WORDS = word_set(
    "created updated modified registered joined published submitted completed closed sent "
    "received paid occurred last deleted cancelled canceled opened archived resolved approved "
    "captured refunded confirmed delivered shipped signed accepted generated issued posted"
)
FUTURE_WORDS = word_set(
    "due deadline expires expiry expiration until renew renews renewal next valid_until cutoff"
)
FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")


class RowContext:
    """Facts shared by the fields of one row, each drawn once on first use."""

    def __init__(
        self,
        fake: Faker,
        rng: random.Random,
        vocabulary: ServiceVocabulary,
        entity: EntitySpec,
        row: dict[str, Any],
        parents: list[dict[str, Any]] | None = None,
    ) -> None:
        self.fake, self.rng, self.vocabulary, self.entity = fake, rng, vocabulary, entity
        self.row = row  # the values generated so far (read for currency, names, ...)
        self.parents = parents or []
        self._person: tuple[str, str] | None = None
        self._organization: str | None = None
        self._place: tuple[str, str, str, str, str] | None = None

    def person(self) -> tuple[str, str]:
        if self._person is None:
            self._person = (self.fake.first_name(), self.fake.last_name())
        return self._person

    def person_name(self) -> str:
        return " ".join(self.person())

    def organization(self) -> str:
        if self._organization is None:
            self._organization = self.fake.company()
        return self._organization

    def place(self) -> tuple[str, str, str, str, str]:
        """(latitude, longitude, city, ISO country code, IANA time zone) of one real place."""
        if self._place is None:
            country = next(
                (self.row[f.name] for f in self.entity.fields if f.semantic == "country_code"
                 and isinstance(self.row.get(f.name), str) and len(self.row[f.name]) == 2),
                None,
            )  # fmt: skip
            try:
                found = self.fake.local_latlng(country_code=country) if country else None
            except (KeyError, ValueError):
                found = None
            if found is None:  # half of a world's places in the US, the rest anywhere on land
                found = self.fake.local_latlng() if self.rng.random() < 0.5 else self.fake.location_on_land()
            self._place = tuple(found)  # type: ignore[assignment]
        return self._place  # type: ignore[return-value]

    def currency(self) -> str:
        """The row's currency: its own currency field, a parent's, the place's, or a common one."""
        for source in (self.row, *self.parents):
            for key, value in source.items():
                if "currency" in key and is_currency_code(value):
                    return str(value).upper()
        if self._place is not None:
            return COUNTRY_CURRENCY.get(self._place[3], "USD")
        return self.rng.choices(COMMON_CURRENCIES, weights=range(len(COMMON_CURRENCIES), 0, -1))[0]

    def domain(self) -> str:
        org = self.organization() if self._organization or self._person is None else None
        if org is None:
            return self.rng.choice(FREE_MAIL)
        return _ascii_slug(org.split(",")[0].split(" and ")[0]).replace("-", "") + ".com"


def _ascii_slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-") or "item"


def _vary_example(example: str, rng: random.Random) -> str:
    """The example's shape with other digits (`ord_0001` -> `ord_4821`)."""
    return re.sub(r"\d", lambda _: str(rng.randint(0, 9)), example)


def _time_offset(f: FieldSpec, rng: random.Random) -> timedelta:
    """Where in time a date field of this name lies, relative to the world's clock."""
    ws = set(words(f.name))
    text = f.description.lower()
    if ws & FUTURE_WORDS or "deadline" in text:
        return timedelta(minutes=rng.randint(60 * 24, 90 * 24 * 60))
    if ws & PAST_WORDS:
        return -timedelta(minutes=rng.randint(60, 365 * 24 * 60))
    return timedelta(minutes=rng.randint(-60 * 24 * 60, 60 * 24 * 60))


def _money(meaning: Meaning, f: FieldSpec, ctx: RowContext) -> float | int:
    ws = set(words(f.name))
    rng = ctx.rng
    if ws & {"tax", "fee", "fees", "tip", "shipping"}:
        major = rng.uniform(1, 60)
    elif ws & {"balance", "budget", "salary", "revenue", "income", "limit"}:
        major = rng.uniform(200, 25000)
    else:
        major = math.exp(rng.uniform(math.log(5), math.log(2000)))
    currency = ctx.currency()
    exponent = currency_exponent(currency)
    if "milliunits" in meaning.reason:
        return int(round(major, 2) * 1000)
    if "minor units" in meaning.reason:
        return round(major * 10**exponent)
    if f.type == "integer":
        return round(major)
    return round(major, exponent)


def _number(meaning: Meaning, f: FieldSpec, ctx: RowContext, now: datetime, index: int) -> float | int:
    rng = ctx.rng
    name = meaning.name
    if name == "money":
        return _money(meaning, f, ctx)
    if name in ("latitude", "longitude"):
        lat, lng, *_ = ctx.place()
        return round(float(lat if name == "latitude" else lng), 5)
    ranges = {
        "percentage": (0, 100),
        "fraction": (0, 1),
        "rating": (1, 5),
        "year": (now.year - 15, now.year),
        "age": (18, 80),
        "quantity": (1, 6),
        "stock": (0, 250),
        "count": (0, 60),
        "duration": (15, 240),
        "measure": (1, 500),
        "rank": (1, 10),
        "sequence": (1000 + index, 1000 + index),
        "unix_time": (int((now - timedelta(days=365)).timestamp()), int(now.timestamp())),
    }
    low, high = ranges.get(name, (0, 1000))
    if f.minimum is not None:
        low = max(low, f.minimum) if f.minimum <= high else f.minimum
    if f.maximum is not None:
        high = min(high, f.maximum) if f.maximum >= low else f.maximum
        low = min(low, high)
    if f.type == "integer":
        lo, hi = math.ceil(low), math.floor(high)
        return rng.randint(lo, hi) if lo <= hi else int(lo)
    if name == "rating":
        return min(high, max(low, round(rng.uniform(low, high) * 2) / 2))
    return round(rng.uniform(low, high), 2 if name != "fraction" else 3)


def _string(meaning: Meaning, f: FieldSpec, ctx: RowContext, now: datetime, index: int) -> str:
    fake, rng, name = ctx.fake, ctx.rng, meaning.name
    if name in ("date", "date_time", "birth_date", "time"):
        moment = now + _time_offset(f, rng)
        if name == "birth_date":
            return (now - timedelta(days=rng.randint(18 * 365, 80 * 365))).strftime("%Y-%m-%d")
        if name == "time":
            return moment.strftime("%H:%M:00")
        return moment.strftime("%Y-%m-%d" if name == "date" else "%Y-%m-%dT%H:%M:%SZ")
    if name == "currency_code":
        return ctx.currency()
    if name in ("country_code", "country_name"):
        code = ctx.place()[3]
        if name == "country_name":
            return country_name_of(code)
        three = f.max_length == 3 or (f.pattern or "").count("3") > 0 or "alpha-3" in f.description.lower()
        return alpha3_of(code) if three else code
    if name == "language_code":
        return rng.choice(COMMON_LANGUAGES)
    if name == "locale":
        country = ctx.place()[3]
        return f"{rng.choice(COMMON_LANGUAGES[:4])}-{country}"
    if name == "timezone":
        return ctx.place()[4]
    if name == "phone":
        country = ctx.place()[3] if ctx._place is not None else "US"
        code = CALLING_CODES.get(country, "1")
        digits = 10 if code == "1" else rng.randint(9, 10)
        number = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
        return f"+{code}{number}"
    if name == "email":
        first, last = ctx.person()
        local = rng.choice([f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}"])
        return f"{_ascii_slug(local).replace('-', '.')}@{ctx.domain()}"
    if name in ("url", "image_url"):
        host = ctx.domain() if ctx._organization else fake.domain_name()  # never a mail provider
        path = _ascii_slug(ctx.vocabulary.phrase(rng, ctx.entity))
        if name == "image_url":
            return f"https://images.{host}/{path}-{index + 1}.jpg"
        return f"https://www.{host}/{path}"
    if name == "domain":
        return ctx.domain() if ctx._organization else fake.domain_name()
    if name == "ip_address":
        return fake.ipv4_public()
    if name == "uuid":
        return str(fake.uuid4())
    if name == "street_address":
        return fake.street_address()
    if name == "city":
        return ctx.place()[2]
    if name == "region":
        return fake.state_abbr() if ctx.place()[3] == "US" else fake.state()
    if name == "postal_code":
        return fake.postcode()
    if name == "person_name":
        return ctx.person_name()
    if name == "first_name":
        return ctx.person()[0]
    if name == "last_name":
        return ctx.person()[1]
    if name == "username":
        first, last = ctx.person()
        return _ascii_slug(f"{first}{last[:1]}{rng.randint(1, 999)}").replace("-", "")
    if name == "organization_name":
        return ctx.organization()
    if name == "place_name":
        city = ctx.place()[2]
        return f"{city} {rng.choice(['Central', 'Harbor', 'Downtown', 'Riverside', 'Park', 'Plaza'])}"
    if name == "product_name":
        phrase = ctx.vocabulary.phrase(rng, ctx.entity)
        return f"{fake.color_name()} {phrase}".title() if rng.random() < 0.5 else phrase.title()
    if name == "title":
        return ctx.vocabulary.title(rng, ctx.entity)
    if name == "slug":
        base = next((v for k, v in ctx.row.items() if isinstance(v, str) and k in ("title", "name")), None)
        return _ascii_slug(base or ctx.vocabulary.phrase(rng, ctx.entity))
    if name == "sku":
        stem = "".join(w[:3] for w in words(ctx.vocabulary.phrase(rng, ctx.entity))[:2]).upper() or "SKU"
        return f"{stem}-{rng.randint(1000, 9999)}"
    if name == "barcode":
        return fake.ean13()
    if name == "airport_code":
        return rng.choice(AIRPORTS)
    if name == "airline_code":
        return rng.choice(AIRLINES)
    if name == "ticker":
        return rng.choice(TICKERS)
    if name == "hash":
        return fake.md5()
    if name == "job_title":
        return fake.job()
    if name == "code":
        stem = words(ctx.vocabulary.phrase(rng, ctx.entity))[0][:4].upper()
        return f"{stem}{rng.randint(10, 999)}"
    if name == "color":
        return fake.color_name()
    if name == "file_path":
        return f"/home/user/{_ascii_slug(ctx.vocabulary.phrase(rng, ctx.entity))}/file_{index + 1}.txt"
    if name == "mime_type":
        return rng.choice(["application/pdf", "image/png", "image/jpeg", "text/plain", "text/csv"])
    if name == "free_text":
        return ctx.vocabulary.free_text(rng, ctx.entity, set(words(f.name)), ctx.person()[0])
    if name == "tags":
        return ctx.vocabulary.phrase(rng, ctx.entity)
    return ctx.vocabulary.phrase(rng, ctx.entity)


def _fit_string(value: str, f: FieldSpec, rng: random.Random) -> str:
    """The value inside the field's pattern (case adapted, else a sample) and maximum length."""
    from envfactory_dagster.envgen.seed_data import sample_pattern

    if f.pattern:
        for candidate in (value, value.lower(), value.upper()):
            if re.search(f.pattern, candidate):
                value = candidate
                break
        else:
            value = sample_pattern(f.pattern, rng)
    if f.max_length is not None and len(value) > f.max_length:
        cut = value[: f.max_length]
        if " " in cut and f.semantic in ("free_text", "title", "product_name", "text"):
            cut = cut.rsplit(" ", 1)[0]
        if not f.pattern or re.search(f.pattern, cut):
            value = cut
    return value


def semantic_value(f: FieldSpec, meaning: Meaning, ctx: RowContext, now: datetime, index: int) -> Any:
    """A realistic value for field `f` with `meaning` that the field's schema accepts."""
    rng = ctx.rng
    examples = [e for e in f.examples if e is not None]
    if f.enum:
        return rng.choice(f.enum)
    if f.type == "boolean":
        return rng.random() < 0.5
    if f.type in ("integer", "number"):
        numeric = [e for e in examples if isinstance(e, int | float) and not isinstance(e, bool)]
        if numeric and meaning.name in ("number", "count", "measure") and rng.random() < EXAMPLE_SHARE:
            value: Any = rng.choice(numeric)
        else:
            value = _number(meaning, f, ctx, now, index)
        if f.minimum is not None:
            value = max(value, f.minimum)
        if f.maximum is not None:
            value = min(value, f.maximum)
        return int(value) if f.type == "integer" else float(value)
    if f.type == "object":
        return {}
    if f.type == "array":
        return _array(f, meaning, ctx, now, index)
    strings = [e for e in examples if isinstance(e, str)]
    generic = meaning.name in ("pattern", "code", "sku", "text", "tags", "title", "free_text")
    shaped = meaning.name in ("pattern", "code", "sku")
    if (
        strings
        and (generic or meaning.reason.startswith("the document's examples"))
        and (rng.random() < EXAMPLE_SHARE or shaped)
    ):
        choice = rng.choice(strings)
        return _fit_string(_vary_example(choice, rng) if shaped else choice, f, rng)
    return _fit_string(_string(meaning, f, ctx, now, index), f, rng)


def _array(f: FieldSpec, meaning: Meaning, ctx: RowContext, now: datetime, index: int) -> list[Any]:
    rng = ctx.rng
    count = rng.randint(0, 3)
    if f.item_type == "integer":
        return [rng.randint(1, 100) for _ in range(count)]
    if f.item_type == "number":
        return [round(rng.uniform(1, 100), 2) for _ in range(count)]
    if f.item_type == "boolean":
        return [rng.random() < 0.5 for _ in range(count)]
    if f.item_type != "string":
        return []
    strings = [e for e in f.examples if isinstance(e, str)]
    if strings:
        return rng.sample(strings, min(count, len(strings)))
    inner_name = meaning.reason.removeprefix("a list of ").split(":", 1)[0]
    inner = Meaning(inner_name, meaning.reason)
    item = f.model_copy(update={"type": "string", "pattern": None, "max_length": None, "examples": []})
    values = []
    for _ in range(count):
        value = _string(inner, item, ctx, now, index) if inner_name != "tags" else ctx.vocabulary.phrase(rng)
        if value not in values:
            values.append(value)
    return values
