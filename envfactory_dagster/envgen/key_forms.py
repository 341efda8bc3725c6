"""Keys in the form the document states: a UUID, an integer, a string matching a pattern.

A key is `<id_prefix><counter, zero-padded to id_width><id_suffix>` (`EntitySpec.key_of`): seeds
number their rows 1..n, `counters` continue from there and generated code builds new keys the same
way (`new_key_expression`), so a new key never collides with a seeded one. By default the form is
the service's prefix and four digits (`shopify_ord_0010`). Where the document states what a key
is, the form follows it:

- `format: uuid` -> a UUID whose first 80 bits come from the world and entity and whose last 12
  digits count (`3f2a9c1e-5b7d-4a10-8c3e-000000000012`);
- an integer key (`type: integer`) -> digits: four taken from the world and entity, six counting
  (`4271000012`); state keys are strings, so the key holds the integer's digits;
- a `pattern` -> a sample of the pattern whose last run of digits counts, kept only when every
  counter value up to `CAPACITY` still matches the pattern (else the pattern is not honoured and
  the default form is used, as for any pattern nothing can be generated for).

The salt (the world's slug and the entity's name) keeps keys of two entities or two services apart.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

from envfactory_dagster.envgen.env_spec import EntitySpec, FieldSpec
from envfactory_dagster.envgen.seed_data import sample_pattern

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
DIGITS_PATTERN = r"^[0-9]+$"
DEFAULT_WIDTH = 4
CAPACITY = 999  # keys a form must be able to number: seeds (<= 50) and every row a run creates
_SAMPLES = 12


def stated_key_pattern(f: FieldSpec, document_type: str) -> str | None:
    """The pattern a key's values must match, from what the document states of the field (its type
    before keys became strings, its format, its pattern); None when it states nothing."""
    if document_type in ("integer", "number"):
        return DIGITS_PATTERN
    if (f.format or "").lower() == "uuid":
        return UUID_PATTERN
    return f.pattern


def key_form(pattern: str | None, salt: str, default_prefix: str) -> tuple[str, int, str] | None:
    """(prefix, width, suffix) of keys matching `pattern`; the default form when there is no
    pattern; None when no numbered form matches the pattern."""
    if pattern is None:
        return default_prefix, DEFAULT_WIDTH, ""
    digest = hashlib.sha256(salt.encode()).hexdigest()
    if pattern == UUID_PATTERN:
        return f"{digest[:8]}-{digest[8:12]}-4{digest[12:15]}-8{digest[15:18]}-", 12, ""
    if pattern == DIGITS_PATTERN:
        return f"{1 + int(digest[:4], 16) % 9}{int(digest[4:10], 16) % 1000:03d}", 6, ""
    rng = random.Random(digest)
    compiled = re.compile(pattern)
    for _ in range(_SAMPLES):
        try:
            sample = sample_pattern(pattern, rng)
        except ValueError:
            return None
        for prefix, width, suffix in _numbered_forms(sample):
            if all(compiled.search(f"{prefix}{n:0{width}d}{suffix}") for n in range(1, CAPACITY + 1)):
                return prefix, width, suffix
    return None


def _numbered_forms(sample: str) -> list[tuple[str, int, str]]:
    """Ways to number a sample of a pattern: its last runs of 3+ digits counting, its tail
    replaced by a counter, a counter appended (`^[A-Z0-9]{8}$`: `QX7B` + `0001`)."""
    forms = [
        (sample[: run.start()], len(run.group()), sample[run.end() :])
        for run in reversed(list(re.finditer(r"\d{3,}", sample)))
    ]
    forms += [(sample[:-width], width, "") for width in (4, 3, 5, 6) if len(sample) > width]
    forms += [(sample, width, "") for width in (4, 3)]
    return forms


def with_key_form(entity: EntitySpec, salt: str, default_prefix: str) -> EntitySpec:
    """The entity with the key form its key field's pattern asks for (the pattern dropped when no
    numbered form matches it)."""
    key = next((f for f in entity.fields if f.name == entity.key_field), None)
    pattern = key.pattern if key is not None else None
    form = key_form(pattern, salt, default_prefix)
    if form is None:
        fields = [f.model_copy(update={"pattern": None}) if f is key else f for f in entity.fields]
        entity = entity.model_copy(update={"fields": fields})
        form = key_form(None, salt, default_prefix)
    assert form is not None
    prefix, width, suffix = form
    return entity.model_copy(update={"id_prefix": prefix, "id_width": width, "id_suffix": suffix})


def with_distinct_key_forms(
    entities: list[EntitySpec], salt: str, default_prefix: Callable[[EntitySpec], str]
) -> list[EntitySpec]:
    """The entities with their key forms (`with_key_form`, salted by `salt` and the entity), a
    stated form that another entity already numbers in salted again: no key names two records."""
    taken: set[tuple[str, int, str]] = set()
    out = []
    for entity in entities:
        attempt = 0
        while True:
            suffix = f"#{attempt}" if attempt else ""
            formed = with_key_form(entity, f"{salt}/{entity.name}{suffix}", default_prefix(entity))
            form = (formed.id_prefix, formed.id_width, formed.id_suffix)
            key = next((f for f in formed.fields if f.name == formed.key_field), None)
            if form not in taken or key is None or key.pattern is None or attempt >= 8:
                break
            attempt += 1
        taken.add(form)
        out.append(formed)
    return out


def new_key_expression(entity: EntitySpec) -> str:
    """Python source of a new key of the entity in generated code (the next counter value)."""
    call = f'self.next_id("{entity.collection}", "{entity.id_prefix}")'
    if entity.id_width == DEFAULT_WIDTH and not entity.id_suffix:
        return call  # next_id's own form: prefix + four digits
    counter = f'str(int(self.next_id("{entity.collection}", ""))).zfill({entity.id_width})'
    return f'"{entity.id_prefix}" + {counter}' + (f' + "{entity.id_suffix}"' if entity.id_suffix else "")


def key_regex(entity: EntitySpec) -> str:
    """A regular expression (unanchored) that the entity's keys match."""
    return f"{re.escape(entity.id_prefix)}\\d{{{entity.id_width},}}{re.escape(entity.id_suffix)}"
