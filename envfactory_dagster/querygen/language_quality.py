"""How natural and varied the user turns read: the measures behind the language checks.

- value-masked distinct n-gram ratio: the turns' words, lower-cased, with every gold argument value
  of the turn (in any form a query writes it) and every quoted span replaced by one mask token; the
  ratio is distinct word 3-grams / all word 3-grams over the given turns. Templates that say the
  same thing the same way score low whatever values they carry.
- opening share: the share of turns that start with each of the most common first words
  ("could", "please", "i'd"); `top_opening_share(k)` sums the k most common.
- raw enum identifiers: an enum value of a tool's schema written as an identifier
  (`closed_cancelled`, `FULLY_REFUNDED`) rather than in words.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from envfactory_dagster.querygen.surface import value_forms

MASK = "<v>"
_WORD = re.compile(r"[a-z0-9<>']+")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")
_IDENTIFIER_VALUE = re.compile(
    r"^(?=.*[_A-Z])[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+$|^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$"
)


def masked_words(query: str, values: Iterable[Any]) -> list[str]:
    """Lower-case words of `query` with the given values and quoted spans replaced by `MASK`."""
    text = _QUOTED.sub(f" {MASK} ", query)
    forms = sorted({f for v in values for f in value_forms(v) if len(f) >= 2}, key=len, reverse=True)
    lowered = text.lower()
    for form in forms:
        lowered = lowered.replace(form.lower(), f" {MASK} ")
    return _WORD.findall(lowered)


def distinct_ngram_ratio(token_lists: Sequence[list[str]], n: int = 3) -> float:
    """Distinct n-grams / all n-grams over the token lists (0.0 when there are none)."""
    grams: Counter[tuple[str, ...]] = Counter()
    for tokens in token_lists:
        grams.update(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    total = sum(grams.values())
    return round(len(grams) / total, 4) if total else 0.0


def opening(query: str, words: int = 1) -> str:
    """The first `words` words of a query, lower-cased (its opening)."""
    return " ".join(_WORD.findall(query.lower())[:words])


def top_opening_share(queries: Sequence[str], k: int = 4) -> tuple[float, list[tuple[str, int]]]:
    """Share of queries that start with one of the k most common openings, and those openings."""
    counts = Counter(opening(q) for q in queries)
    top = counts.most_common(k)
    return (round(sum(c for _, c in top) / len(queries), 4) if queries else 0.0), top


def is_identifier_value(value: Any) -> bool:
    """A string written as an identifier: snake_case with an underscore, or UPPER_CASE (an
    upper-case word of four letters or more: `PENDING`; `USD` is a code, not an identifier)."""
    return isinstance(value, str) and (
        bool(_IDENTIFIER_VALUE.match(value)) or (value.isupper() and value.isalpha() and len(value) > 3)
    )


def raw_enum_identifiers(query: str, enum_values: Iterable[Any]) -> list[str]:
    """Enum values written verbatim as identifiers in the query (`in_progress`, `FULLY_REFUNDED`)."""
    return sorted(
        v
        for v in {v for v in enum_values if is_identifier_value(v)}
        if re.search(rf"\b{re.escape(v)}\b", query)
    )


def language_figures(turns: Sequence[tuple[str, list[Any], list[Any]]]) -> dict[str, Any]:
    """Figures of a partition's user turns, each given as (query, the turn's gold argument values,
    the enum values of the tools of its environments): value-masked distinct 3-gram ratio, share
    of the four most common openings, turns with a raw enum identifier."""
    tokens = [masked_words(query, values) for query, values, _ in turns]
    share, top = top_opening_share([query for query, _, _ in turns])
    raw = [query for query, _, enums in turns if raw_enum_identifiers(query, enums)]
    return {
        "distinct_3gram_ratio": distinct_ngram_ratio(tokens),
        "top4_opening_share": share,
        "top4_openings": [f"{word} ({count})" for word, count in top],
        "raw_enum_turns": len(raw),
        "raw_enum_examples": raw[:3],
    }
