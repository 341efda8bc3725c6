"""Field typing: what each entity field means, decided once from what the document says.

`decide_meaning(field, entity)` reads the field's name, `format`, `pattern`, `enum`,
description and the document's own `example`s, plus the kind of record it sits in (a person, an
organization, a product, a place, or something with a title), and returns a `Meaning`: one of
`MEANINGS` and a sentence saying why. `annotate_spec(spec)` stores both on every field
(`FieldSpec.semantic` / `semantic_reason`) so users can read why a field got its values; seed data
(`seed_values.py`) generates values by meaning. A heuristic over names and descriptions, named as
one: the document's explicit statements (format, examples, "ISO 4217" in a description) win over
name conventions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec
from envfactory_dagster.envgen.naming import word_set, words
from envfactory_dagster.envgen.world_codes import (
    is_country_code,
    is_country_name,
    is_currency_code,
    is_timezone,
)

MEANINGS = (
    "key",
    "foreign_key",
    "enum",
    "boolean",
    "currency_code",
    "country_code",
    "country_name",
    "language_code",
    "locale",
    "timezone",
    "phone",
    "email",
    "url",
    "image_url",
    "domain",
    "ip_address",
    "uuid",
    "street_address",
    "city",
    "region",
    "postal_code",
    "latitude",
    "longitude",
    "person_name",
    "first_name",
    "last_name",
    "username",
    "organization_name",
    "product_name",
    "place_name",
    "title",
    "slug",
    "sku",
    "barcode",
    "airport_code",
    "code",
    "color",
    "file_path",
    "mime_type",
    "money",
    "quantity",
    "stock",
    "count",
    "rating",
    "percentage",
    "fraction",
    "year",
    "age",
    "duration",
    "measure",
    "rank",
    "sequence",
    "date",
    "date_time",
    "time",
    "unix_time",
    "birth_date",
    "free_text",
    "tags",
    "hash",
    "job_title",
    "ticker",
    "airline_code",
    "pattern",
    "text",
    "number",
    "array",
    "object",
)


@dataclass(frozen=True)
class Meaning:
    """A field's meaning and the reason it was chosen."""

    name: str
    reason: str


# kinds of record, by the words of the entity's name
PERSON_ENTITIES = word_set(
    "customer user member person people contact author guest passenger patient employee driver "
    "instructor student reviewer athlete client buyer subscriber recipient attendee participant "
    "traveler traveller assignee teacher staff candidate applicant collaborator speaker rider "
    "learner profile follower friend signer payee cardholder holder"
)
ORGANIZATION_ENTITIES = word_set(
    "company organization organisation merchant vendor supplier brand business institution "
    "publisher carrier airline agency workspace partner bank provider manufacturer tenant "
    "employer team shop seller enterprise firm"
)
PLACE_ENTITIES = word_set(
    "location venue place hotel property restaurant station airport warehouse site branch "
    "office facility gym studio building zone destination campus library"
)
PRODUCT_ENTITIES = word_set(
    "product item variant listing sku offer good article merchandise plan price subscription "
    "vehicle car ticket fare package service"
)
# field-name words that name a person, an organization or a place on their own
PERSON_FIELDS = word_set(
    "author owner assignee guest passenger recipient sender reviewer instructor customer "
    "contact cardholder holder signer payee attendee driver teacher requester reporter creator artist"
)
ORGANIZATION_FIELDS = word_set(
    "company organization organisation employer vendor merchant brand publisher institution "
    "carrier airline manufacturer supplier business bank agency issuer operator"
)
PLACE_FIELDS = frozenset(
    [
        "venue",
        "hotel",
        "restaurant",
        "station",
        "airport",
        "location",
        "neighborhood",
        "neighbourhood",
        "district",
    ]
)
SLUG_ENTITIES = frozenset(["repository", "repo", "bucket", "channel", "branch", "package", "queue"])
DOMAIN_ENTITIES = frozenset(["zone", "domain", "hostname"])
FREE_TEXT_WORDS = word_set(
    "description notes note body content message text comment comments summary bio memo "
    "observation observations reason details instructions abstract feedback review excerpt "
    "caption remarks explanation purpose about biography answer question evidence communication"
)
TITLE_WORDS = frozenset(["title", "subject", "headline", "label", "heading", "caption", "topic"])
MONEY_WORDS = word_set(
    "price amount total subtotal tax cost fee fees balance budget salary payment paid due "
    "refunded charge charged revenue spend spent discount tip deposit fare income expense "
    "payout credit debit outstanding owed budgeted activity received captured settled refund "
    "shipping premium"
)
MINOR_UNIT_HINTS = ("smallest currency unit", "minor unit", "in cents", "cents", "pence", "subunit")
MILLI_UNIT_HINTS = ("milliunit",)
QUANTITY_WORDS = word_set(
    "quantity qty units adults children guests rooms nights passengers seats tickets travelers attempts "
    "travellers party size people"
)
STOCK_WORDS = frozenset(
    ["stock", "inventory", "on_hand", "available", "availability", "remaining", "capacity"]
)
COUNT_WORDS = word_set("count number num total_count views plays followers likes downloads points")
RATING_WORDS = frozenset(["rating", "stars", "score"])
PERCENT_WORDS = frozenset(["percent", "percentage", "pct"])
FRACTION_WORDS = frozenset(["ratio", "probability", "confidence", "share", "fraction"])
DURATION_WORDS = frozenset(["duration", "minutes", "seconds", "hours", "days", "length_minutes", "elapsed"])
MEASURE_WORDS = frozenset(
    ["weight", "height", "width", "depth", "distance", "size", "elevation", "altitude", "speed"]
)
RANK_WORDS = word_set("position priority order index rank sequence sort level step attempt revision")
DATE_WORDS = frozenset(["date", "day", "dob", "birthday"])
DATE_TIME_WORDS = frozenset(["at", "timestamp", "datetime", "time"])
TIMESTAMP_STEMS = word_set(
    "created updated modified deleted published submitted completed closed opened started ended "
    "expires expired due deadline scheduled occurred sent received paid cancelled canceled "
    "registered joined last since until from to departure arrival checkin checkout"
)
ADDRESS_PARTS = frozenset(
    ["street", "line1", "line2", "address", "city", "town", "zip", "postal", "postcode", "province", "county"]
)


def _text(f: FieldSpec) -> str:
    return f.description.lower()


def _examples(f: FieldSpec) -> list[Any]:
    return [e for e in f.examples if e is not None]


def _string_examples(f: FieldSpec) -> list[str]:
    return [e for e in _examples(f) if isinstance(e, str)]


LINE_WORDS = frozenset({"line", "lines"})
LINE_OWNERS = frozenset({"order", "cart", "invoice", "basket", "receipt", "bill", "quote"})


def record_kind(entity: EntitySpec) -> str:
    """person | organization | place | product | line | thing, from the entity's name
    (`LineItem`, `OrderItem` are lines of an order: they copy a product's sku, title and price)."""
    ws = words(entity.name)
    if set(ws) & LINE_WORDS or (ws[-1:] == ["item"] and set(ws[:-1]) & LINE_OWNERS):
        return "line"
    head = ws[-1] if ws else ""  # the head of a compound noun: a UserGroup is a group
    for kind, nouns in (
        ("person", PERSON_ENTITIES),
        ("organization", ORGANIZATION_ENTITIES),
        ("place", PLACE_ENTITIES),
        ("product", PRODUCT_ENTITIES),
    ):
        if head in nouns:
            return kind
    return "thing"


def _example_meaning(f: FieldSpec) -> Meaning | None:
    """What the document's own examples show, when they all are codes of one standard."""
    examples = _string_examples(f)
    if not examples:
        return None
    shown = ", ".join(repr(e) for e in examples[:3])
    if all(is_currency_code(e) for e in examples) and "currency" in " ".join(words(f.name)) + _text(f):
        return Meaning("currency_code", f"the document's examples {shown} are ISO 4217 currency codes")
    if all(is_country_code(e) for e in examples) and "country" in f.name.lower() + _text(f):
        return Meaning("country_code", f"the document's examples {shown} are ISO 3166-1 country codes")
    if all(is_timezone(e) and "/" in e for e in examples):
        return Meaning("timezone", f"the document's examples {shown} are IANA time zones")
    if all(re.fullmatch(r"\+[1-9]\d{6,14}", e) for e in examples):
        return Meaning("phone", f"the document's examples {shown} are E.164 phone numbers")
    if all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", e, re.I) for e in examples):
        return Meaning("email", f"the document's examples {shown} are email addresses")
    if all(re.match(r"https?://", e) for e in examples):
        return Meaning("url", f"the document's examples {shown} are URLs")
    return None


def _string_meaning(f: FieldSpec, entity: EntitySpec, siblings: set[str]) -> Meaning:
    ws = words(f.name)
    wset = set(ws)
    text = _text(f)
    fmt = (f.format or "").lower()
    kind = record_kind(entity)
    by_example = _example_meaning(f)
    if by_example is not None:
        return by_example
    # explicit statements of the document first
    if fmt == "email":
        return Meaning("email", "format: email")
    if fmt in ("uri", "url", "uri-reference"):
        image = wset & {"image", "avatar", "photo", "logo", "thumbnail", "icon", "picture"}
        return Meaning("image_url" if image else "url", f"format: {fmt}")
    if fmt == "uuid":
        return Meaning("uuid", "format: uuid")
    if fmt in ("ipv4", "ipv6"):
        return Meaning("ip_address", f"format: {fmt}")
    if fmt == "hostname":
        return Meaning("domain", "format: hostname")
    if fmt == "date-time":
        return Meaning("date_time", "format: date-time")
    if fmt == "date":
        return Meaning("birth_date" if wset & {"birth", "dob", "birthday"} else "date", "format: date")
    if fmt == "time":
        return Meaning("time", "format: time")
    if "iso 4217" in text or ("currency" in wset and not wset & {"amount", "rate", "symbol", "name"}):
        return Meaning("currency_code", "ISO 4217 currency code: " + _why(f, "currency", "iso 4217"))
    if "iso 3166" in text or ("country" in wset and not wset & {"name"}) or "nationality" in wset:
        if _string_examples(f) and all(is_country_name(e) for e in _string_examples(f)):
            return Meaning("country_name", "the document's examples are country names")
        return Meaning("country_code", "ISO 3166-1 country code: " + _why(f, "country", "iso 3166"))
    if "country" in wset:
        return Meaning("country_name", "name 'country ... name': a country's name")
    if "locale" in wset:
        return Meaning("locale", "name 'locale': a language tag such as en-US")
    if wset & {"language", "lang"} or "iso 639" in text:
        return Meaning("language_code", "ISO 639-1 language code: " + _why(f, "language", "iso 639"))
    if wset & {"timezone", "tz"} or ("time" in wset and "zone" in wset) or "iana" in text:
        return Meaning("timezone", "IANA time zone: " + _why(f, "timezone", "iana"))
    if wset & {"phone", "mobile", "fax", "telephone", "msisdn", "tel"}:
        return Meaning("phone", "E.164 phone number: name says phone")
    if wset & {"email", "mail"} and "template" not in wset:
        return Meaning("email", "name says email")
    if wset & {"url", "uri", "website", "link", "href", "homepage", "webhook", "callback", "permalink"}:
        image = wset & {"image", "avatar", "photo", "logo", "thumbnail", "icon", "picture"}
        return Meaning("image_url" if image else "url", "name says URL")
    if wset & {"image", "avatar", "photo", "logo", "thumbnail", "icon", "picture"}:
        return Meaning("image_url", "name says image")
    if wset & {"domain", "hostname", "host"}:
        return Meaning("domain", "name says domain")
    if wset == {"ip"} or "ip" in ws[-1:]:
        return Meaning("ip_address", "name says IP address")
    if wset & {"birth", "dob", "birthday"}:
        return Meaning("birth_date", "name says birth date")
    if wset & DATE_WORDS or (ws and ws[-1] == "on" and len(ws) > 1):
        return Meaning("date", "name says date")
    if wset & DATE_TIME_WORDS and (wset & TIMESTAMP_STEMS or ws[-1:] == ["at"] or "timestamp" in wset):
        return Meaning("date_time", "name says timestamp")
    if wset & {"created", "updated", "modified"}:
        return Meaning("date_time", "name says creation/update time")
    # postal address parts (a `state` is a region only beside other address parts)
    if wset & {"street", "line1", "line2"} or ws[-1:] == ["address"] or wset == {"address", "line"}:
        return Meaning("street_address", "name says street address")
    if wset & {"city", "town", "locality"}:
        return Meaning("city", "name says city")
    if wset & {"zip", "postal", "postcode", "zipcode"}:
        return Meaning("postal_code", "name says postal code")
    if wset & {"province", "county"} or (
        wset & {"state", "region"} and not f.enum and siblings & ADDRESS_PARTS
    ):
        return Meaning("region", "name says state/province beside other address fields")
    if wset & {"sku"}:
        return Meaning("sku", "name says SKU" + (" (shape from its pattern)" if f.pattern else ""))
    if wset & {"barcode", "ean", "upc", "gtin", "isbn"}:
        return Meaning("barcode", "name says barcode")
    if wset & {"iata", "airport"} or (
        wset & {"origin", "destination"} and (f.max_length == 3 or "airport" in text or "iata" in text)
    ):
        return Meaning("airport_code", "name/description says airport code")
    if "slug" in wset:
        return Meaning("slug", "name says slug")
    if wset & {"username", "login", "handle", "screen", "nickname"}:
        if record_kind(entity) == "person" or wset & {"username", "login"}:
            return Meaning("username", "name says user name")
        return Meaning("slug", f"a {entity.name}'s handle: a slug of its title")
    if wset & {"color", "colour"}:
        return Meaning("color", "name says color")
    if wset & {"path", "file", "filename", "directory", "folder"}:
        return Meaning("file_path", "name says file path")
    if wset & {"mime", "mimetype"} or (wset & {"content", "media"} and "type" in wset):
        return Meaning("mime_type", "name says MIME type")
    if wset & {"first", "given"} and "name" in wset:
        return Meaning("first_name", "name says first name")
    if wset & {"last", "family", "surname"} and ("name" in wset or "surname" in wset):
        return Meaning("last_name", "name says last name")
    if wset & {"etag", "hash", "digest", "checksum", "sha", "md5", "fingerprint", "arn"}:
        return Meaning("hash", "name says hash/checksum: a hex digest")
    if wset & {"symbol", "ticker"} and ("ticker" in text or "ticker" in wset or "stock" in text):
        return Meaning("ticker", "a ticker symbol of a listed company")
    if wset & {"carrier", "airline"} and ("code" in wset or "code" in text):
        return Meaning("airline_code", "name/description says airline code")
    if ws[-1:] == ["by"] and len(ws) > 1:
        return Meaning("person_name", f"{f.name}: the person who did it")
    if wset & {"branch"}:
        return Meaning("slug", "name says branch: a branch name")
    if wset & {"key", "prefix"} and re.search(r"folder|path|slash", text):
        return Meaning("file_path", "an object key the description calls a path")
    if ("domain name" in text or "fully qualified" in text or "hostname" in text) and not f.enum:
        return Meaning("domain", "the description says domain name")
    if wset & {"plate", "license", "licence", "passport", "num"}:
        return Meaning("code", "name says a document or plate number")
    if wset & {"goal", "goals", "request", "requests"} or (
        ws[-1] in FREE_TEXT_WORDS and ws[-1] not in TITLE_WORDS
    ):
        return Meaning("free_text", "name says free text: built from the service's own vocabulary")
    if (wset & {"job", "occupation", "position"} or wset == {"title"}) and kind == "person":
        return Meaning("job_title", f"a {entity.name}'s job title")
    if wset & {"make", "manufacturer", "maker"}:
        return Meaning("organization_name", "name says manufacturer")
    if "name" in wset or wset & PERSON_FIELDS or wset & ORGANIZATION_FIELDS or wset & TITLE_WORDS:
        return _name_meaning(ws, wset, kind, entity)
    if wset & FREE_TEXT_WORDS:
        return Meaning("free_text", "name says free text: built from the service's own vocabulary")
    if f.pattern:
        return Meaning("pattern", "no meaning in the name: a value matching the document's pattern")
    if "code" in wset or "number" in wset or "reference" in wset or ws[-1:] == ["id"]:
        return Meaning("code", "name says code/number: an identifier-like code")
    if wset & {"tags", "tag", "keywords", "categories", "category", "labels", "genre", "genres", "type"}:
        return Meaning("tags", "name says category/tag: words of the service's vocabulary")
    return Meaning("text", "no recognised meaning: a short phrase of the service's vocabulary")


def _why(f: FieldSpec, name_word: str, standard: str) -> str:
    return f"the description names {standard.upper()}" if standard in _text(f) else f"name says {name_word}"


def _name_meaning(ws: list[str], wset: set[str], kind: str, entity: EntitySpec) -> Meaning:
    """A `name`-like field: whose name it is depends on the field's words, then the record's kind
    (only for the record's own name: `name`, `full_name`, `display_name`)."""
    own_name = wset <= {"name", "full", "display", "real", "sortable", "legal", "nick"}
    if (own_name and kind == "person") or wset & PERSON_FIELDS or (wset & PERSON_ENTITIES and "name" in wset):
        return Meaning("person_name", f"name words {sorted(wset)} on a {kind}: a person's name")
    if wset & ORGANIZATION_FIELDS:
        return Meaning("organization_name", f"name words {sorted(wset & ORGANIZATION_FIELDS)}")
    if wset & PLACE_FIELDS:
        return Meaning("place_name", f"name words {sorted(wset & PLACE_FIELDS)}")
    if wset & {"product", "item"}:
        return Meaning("product_name", "name says product")
    if wset & ORGANIZATION_ENTITIES and "name" in wset:
        return Meaning("organization_name", f"name words {sorted(wset & ORGANIZATION_ENTITIES)}")
    if wset & TITLE_WORDS or not own_name:
        return Meaning("title", f"a {entity.name}'s {' '.join(ws)} from the service's vocabulary")
    if ws and words(entity.name)[-1] in SLUG_ENTITIES:
        return Meaning("slug", f"a {entity.name} is named like an identifier (lower case, hyphens)")
    if ws and words(entity.name)[-1] in DOMAIN_ENTITIES:
        return Meaning("domain", f"a {entity.name} is named by a domain name")
    reasons = {
        "person": ("person_name", f"{entity.name} is a person: a person's name"),
        "organization": ("organization_name", f"{entity.name} is an organization: a company name"),
        "place": ("place_name", f"{entity.name} is a place: a place name"),
        "product": ("product_name", f"{entity.name} is a product: a product name"),
    }
    name, reason = reasons.get(
        kind,
        ("title", f"{entity.name} is not a person, organization, product or place: a title"),
    )
    return Meaning(name, reason)


def _number_meaning(f: FieldSpec, entity: EntitySpec) -> Meaning:
    ws = words(f.name)
    wset = set(ws)
    text = _text(f)
    if wset & {"lat", "latitude"}:
        return Meaning("latitude", "name says latitude")
    if wset & {"lng", "lon", "long", "longitude"}:
        return Meaning("longitude", "name says longitude")
    if f.type == "integer" and wset & {"created", "updated", "timestamp", "ts", "epoch"}:
        return Meaning("unix_time", "integer timestamp: seconds since the epoch")
    if wset & PERCENT_WORDS or "percent" in text:
        return Meaning("percentage", "name/description says percent")
    if wset & FRACTION_WORDS or (f.maximum == 1 and (f.minimum or 0) == 0 and f.type == "number"):
        return Meaning("fraction", "a share between 0 and 1")
    if wset & RATING_WORDS:
        return Meaning("rating", "name says rating")
    if "year" in wset:
        return Meaning("year", "name says year")
    if "age" in wset:
        return Meaning("age", "name says age")
    counted = [w for w in ws if w.endswith("s") and w not in MONEY_WORDS and len(w) > 3]
    if f.type == "integer" and ws[-1:] == ["number"] and len(ws) > 1:
        return Meaning("sequence", "an integer numbering its rows: increasing numbers")
    if wset & MONEY_WORDS == {"total"} and counted:
        return Meaning("count", f"a total of {counted[0]}: a count")
    if wset & MONEY_WORDS and not wset & {"count", "number", "percent", "rate", "id"}:
        unit = "minor units" if any(h in text for h in MINOR_UNIT_HINTS) else "currency units"
        if any(h in text for h in MILLI_UNIT_HINTS):
            unit = "milliunits"
        return Meaning("money", f"money in {unit} (name words {sorted(wset & MONEY_WORDS)})")
    if wset & STOCK_WORDS:
        return Meaning("stock", "name says stock/availability")
    if wset & QUANTITY_WORDS:
        return Meaning("quantity", "name says quantity")
    if wset & DURATION_WORDS:
        return Meaning("duration", "name says duration")
    if wset & MEASURE_WORDS:
        return Meaning("measure", "name says a measurement")
    if wset & COUNT_WORDS or ws[:1] == ["num"] or ws[-1:] == ["count"]:
        return Meaning("count", "name says count")
    if wset & RANK_WORDS:
        return Meaning("rank", "name says position/priority")
    return Meaning("number", "no recognised meaning: a number inside the declared bounds")


def decide_meaning(f: FieldSpec, entity: EntitySpec) -> Meaning:
    """The meaning of field `f` of `entity` and why (see the module docstring)."""
    siblings = {w for other in entity.fields if other.name != f.name for w in words(other.name)}
    if f.name == entity.key_field:
        return Meaning("key", "the entity's key: generated ids with the entity's prefix")
    if f.ref_entity:
        return Meaning("foreign_key", f"references {f.ref_entity}: the key of an existing row")
    if f.enum:
        return Meaning("enum", "an enum: one of the document's values")
    if f.type == "boolean":
        return Meaning("boolean", "a boolean")
    if f.type in ("integer", "number"):
        return _number_meaning(f, entity)
    if f.type == "object":
        return Meaning("object", "a nested object")
    if f.type == "array":
        item = f.model_copy(update={"type": f.item_type or "string", "name": _singular_name(f.name)})
        if f.item_type in ("string", None):
            inner = _string_meaning(item, entity, siblings)
            return Meaning("array", f"a list of {inner.name}: {inner.reason}")
        return Meaning("array", f"a list of {f.item_type}")
    if f.seed_hint:
        return Meaning("title", f"seed hint {f.seed_hint!r}: a name from the service's vocabulary")
    return _string_meaning(f, entity, siblings)


def _singular_name(name: str) -> str:
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


NATURAL_KEY_MEANINGS = {"email": ("person", "organization"), "username": ("person",), "sku": ("product",)}


def natural_key_reason(f: FieldSpec, entity: EntitySpec) -> str | None:
    """Why `f` is a natural key of `entity` (unique among its rows), or None when it is not."""
    if f.name == entity.key_field or f.ref_entity or f.enum or f.type != "string":
        return None
    if f.unique:
        return f"the document marks {f.name} unique"
    meaning = meaning_of(f, entity).name
    kinds = NATURAL_KEY_MEANINGS.get(meaning)
    own_name = set(words(f.name)) <= {
        "email",
        "address",
        "username",
        "user",
        "name",
        "handle",
        "login",
        "sku",
    }
    if kinds is not None and own_name and record_kind(entity) in kinds:
        return f"a {record_kind(entity)}'s own {meaning} identifies it"
    if meaning == "slug":
        return "a slug identifies its row in URLs"
    return None


def unique_fields(entity: EntitySpec) -> set[str]:
    """Natural keys of the entity: values no two rows share."""
    return {f.name for f in entity.fields if natural_key_reason(f, entity) is not None}


def annotate_spec(spec: EnvSpec) -> EnvSpec:
    """The spec with every field's meaning and its reason stored (existing decisions are kept)."""
    decided = {(e.name, f.name): meaning_of(f, e) for e in spec.entities for f in e.fields}
    unit = _service_money_unit(spec, decided)
    entities = []
    for entity in spec.entities:
        fields = []
        for f in entity.fields:
            if f.semantic is None:
                meaning = decided[(entity.name, f.name)]
                if (
                    unit
                    and meaning.name == "money"
                    and f.type == "integer"
                    and "currency units" in meaning.reason
                ):
                    meaning = Meaning("money", f"money in {unit}, like the service's other integer amounts")
                f = f.model_copy(update={"semantic": meaning.name, "semantic_reason": meaning.reason})
            fields.append(f)
        entities.append(entity.model_copy(update={"fields": fields}))
    return spec.model_copy(update={"entities": entities})


def _service_money_unit(spec: EnvSpec, decided: dict[tuple[str, str], Meaning]) -> str | None:
    """The unit the document states for its integer amounts (minor units, milliunits), if any."""
    stated = [
        unit
        for (entity, name), m in decided.items()
        if m.name == "money"
        for unit in ("minor units", "milliunits")
        if f"money in {unit}" in m.reason
    ]
    return max(set(stated), key=stated.count) if stated else None


def meaning_of(f: FieldSpec, entity: EntitySpec) -> Meaning:
    """The stored meaning of a field, or a fresh decision for a spec that was never annotated."""
    if f.semantic is not None:
        return Meaning(f.semantic, f.semantic_reason)
    return decide_meaning(f, entity)
