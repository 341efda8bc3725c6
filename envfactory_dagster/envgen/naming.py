"""Identifier spelling shared by proposals, spec inference and code generation.

Third-party names come in every style (`ChatV2Channel`, `tasks.tasks.list`, `page[size]`,
`X-Request-Id`); generated code needs snake_case identifiers, PascalCase class names and
singular entity names, always spelled the same way for the same input.
"""

from __future__ import annotations

import keyword
import re

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-case words of any identifier or phrase: `getHotelOffers` -> [get, hotel, offers]."""
    spaced = _CAMEL_BOUNDARY.sub(" ", _NON_WORD.sub(" ", text))
    return [w.lower() for w in spaced.split() if w]


def snake_case(text: str) -> str:
    """A valid, non-keyword Python identifier in snake_case (`from` -> `from_`, `2fa` -> `n2fa`)."""
    name = "_".join(words(text)) or "value"
    if name[0].isdigit():
        name = f"n{name}"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name == "self":
        name = f"{name}_"
    return name


def pascal_case(text: str) -> str:
    name = "".join(w.capitalize() for w in words(text)) or "Thing"
    return f"N{name}" if name[0].isdigit() else name


# plurals in `-ies` whose singular ends in `-ie`, not `-y` (`movies` -> `movie`, not `movy`)
_IE_PLURALS = frozenset(
    ("movies", "cookies", "zombies", "calories", "rookies", "selfies", "pies", "ties", "lies", "brownies",
     "hoodies", "smoothies", "freebies", "goalies", "genies", "prairies", "sorties", "newbies")
)  # fmt: skip


def singular(word: str) -> str:
    """English singular of one lower-case word, by the common suffix rules."""
    if word in _IE_PLURALS:
        return word[:-1]
    if len(word) <= 3 or word.endswith(("ss", "us", "is", "ics", "news", "data", "info")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "uses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def plural(word: str) -> str:
    if word.endswith("y") and not word.endswith(("ay", "ey", "oy", "uy")):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def entity_name(text: str) -> str:
    """PascalCase singular entity name; dotted vendor names keep their last part
    (`chat.v2.service.channel` -> `Channel`)."""
    last = text.rsplit(".", 1)[-1] if "." in text else text
    parts = words(last) or ["thing"]
    parts[-1] = singular(parts[-1])
    return pascal_case(" ".join(parts))


def collection_name(entity: str) -> str:
    """snake_case plural state key of an entity: `OrderItem` -> `order_items`."""
    parts = words(entity) or ["thing"]
    parts[-1] = plural(parts[-1])
    return snake_case(" ".join(parts))


def word_set(text: str) -> frozenset[str]:
    """The set of whitespace-separated words of a vocabulary written as one string."""
    return frozenset(text.split())
