"""Value roles (an offline heuristic): inputs that take a value as such, and outputs that are one.

Some inputs do not name what they refer to: they take any value of a kind. A message, a text to
translate or encode takes any text (`send_sms.message` <- `translate_text.translated_text`); a
number to compute with takes any number (`calculate_squared.number` <- `calculate_area.area`); an
amount of money takes any amount (`convert_currency.amount` <- `calculate_tip.tip_amount`); a
search query takes the name or title of a thing found earlier (`search_airport.query` <- a
location's `name`). The role of a parameter is read from the words of its name, by the lexicons
below; a `value_role` edge needs the same role on both sides and the same service (a weak link
does not cross APIs), and an input takes at most `MAX_ROLE_PRODUCERS` of them, the outputs whose
texts are most alike (TF-IDF) first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from envfactory_dagster.envgen.naming import singular, words
from envfactory_dagster.querygen.graph.model import EnvDescriptor, tool_of

VALUE_ROLE_SCORE = 0.6
MAX_ROLE_PRODUCERS = 1000
# inputs taking any text / any number: every word of the name is one of these
_TEXT_SINK_WORDS = frozenset(
    ("text", "message", "msg", "data", "content", "body", "payload", "input", "string", "note", "comment",
     "caption", "prompt")
)  # fmt: skip
_NUMBER_SINK_WORDS = frozenset(
    ("number", "num", "value", "operand", "n", "x", "y", "z", "a", "b", "first", "second", "input", "integer")
)  # fmt: skip
_QUERY_WORDS = frozenset(("q", "query", "search", "keyword", "term", "search_query"))
# what a search takes from an earlier result: a readable name of the thing
_READABLE_WORDS = frozenset(("name", "title", "label", "headline", "text", "keyword", "term", "subject"))
_MONEY_WORDS = frozenset(
    ("amount", "price", "cost", "total", "sum", "payment", "salary", "fee", "profit", "revenue", "expense",
     "income", "balance", "principal", "allowance", "tip", "tax", "budget", "fare", "sale", "bill", "charge",
     "refund", "discount", "wage", "earning", "rent", "deposit", "emi", "interest")
)  # fmt: skip
# money inputs that take any amount: named by these words alone (`amount`, not `loan_amount`,
# whose qualifier says which amount it is)
_MONEY_SINK_WORDS = frozenset(("amount", "price", "total", "sum", "cost", "value"))
# a rate or a share is not an amount
_NOT_MONEY = frozenset(("rate", "percentage", "percent", "ratio", "share", "count", "number"))
_NOT_A_VALUE = frozenset(
    ("id", "ids", "uuid", "key", "token", "url", "uri", "link", "email", "phone", "date", "time")
)


def _name_words(name: str) -> list[str]:
    """Singular words of a field name, numbering dropped (`num1` -> [num])."""
    stripped = (w.rstrip("0123456789") for w in words(name.rsplit(".", 1)[-1]))
    return [singular(w) for w in stripped if w]


def input_role(attrs: Mapping[str, Any]) -> str:
    """`text`, `number`, `money`, `query` or "" for an input node."""
    ws = _name_words(attrs["name"])
    if not ws:
        return ""
    kind = attrs["type"]
    if kind == "string" and (attrs["binding"] == "$query" or set(ws) <= _QUERY_WORDS):
        return "query"
    if kind == "string" and not attrs["format"] and set(ws) <= _TEXT_SINK_WORDS:
        return "text"
    if kind in ("number", "integer"):
        if set(ws) <= _NUMBER_SINK_WORDS:
            return "number"
        if set(ws) <= _MONEY_SINK_WORDS:
            return "money"
    return ""


def output_roles(attrs: Mapping[str, Any]) -> set[str]:
    """The roles an output can fill (empty for keys, links, dates and other non-values)."""
    ws = _name_words(attrs["name"])
    if not ws or attrs["key_example"] or set(ws) & _NOT_A_VALUE or attrs["format"]:
        return set()
    kind = attrs["type"]
    if kind == "string":
        return {"text", "query"} if ws[-1] in _READABLE_WORDS else {"text"}
    if kind in ("number", "integer"):
        return {"number", "money"} if set(ws) & _MONEY_WORDS and not set(ws) & _NOT_MONEY else {"number"}
    return set()


_BARE_QUERY_PRODUCERS = 3
# words that say nothing about what a search looks for
_GENERIC_TEXT_WORDS = frozenset(
    ("a", "an", "the", "of", "for", "to", "in", "on", "by", "or", "and", "with", "where", "is", "be", "can",
     "which", "that", "this", "it", "e", "g", "eg", "example", "search", "query", "term", "keyword", "text",
     "name", "title", "look", "up", "find", "string", "value", "field", "entity", "return", "match",
     "matching", "result", "results", "based", "data", "back", "sent", "one", "following", "could")
)  # fmt: skip
_SPEC_QUERY_DESCRIPTION = "Text to look for in the entity's text fields."  # envgen's, not the document's


def _content_words(text: str) -> set[str]:
    if text.strip() == _SPEC_QUERY_DESCRIPTION:
        return set()
    return {singular(w) for w in words(text) if len(w) > 1 and not w.isdigit()} - _GENERIC_TEXT_WORDS


def _output_words(g: nx.DiGraph, o: str) -> set[str]:
    a = g.nodes[o]
    return _content_words(f"{a['name']} {a['entity']} {a['source_description'] or a['description']}")


def match_value_roles(
    g: nx.DiGraph,
    outputs: Sequence[str],
    inputs: Sequence[str],
    descriptors: Sequence[EnvDescriptor],
    similarity: Mapping[tuple[str, str], float],
) -> list[tuple[str, str, str]]:
    """(output, input, role) pairs of the same role within one service, at most
    `MAX_ROLE_PRODUCERS` per input (most similar texts first, then by id)."""
    world_of = {d.env_id: d.world_id for d in descriptors}
    by_role: dict[tuple[str, str], list[str]] = defaultdict(list)
    for o in outputs:
        for role in output_roles(g.nodes[o]):
            by_role[(world_of[g.nodes[o]["env_id"]], role)].append(o)
    pairs = []
    for i in inputs:
        role = input_role(g.nodes[i])
        if not role:
            continue
        candidates = [
            o for o in by_role.get((world_of[g.nodes[i]["env_id"]], role), []) if tool_of(o) != tool_of(i)
        ]
        if role == "query":
            # a search says what it looks for ("name of the location where the airport is"):
            # a name from another environment must be of such a thing; a bare query takes only
            # the closest few
            wanted = _content_words(g.nodes[i]["source_description"] or g.nodes[i]["description"])
            if wanted:
                env = g.nodes[i]["env_id"]
                candidates = [
                    o for o in candidates if g.nodes[o]["env_id"] == env or wanted & _output_words(g, o)
                ]
            else:
                candidates = sorted(candidates, key=lambda o: (-similarity.get((o, i), 0.0), o))[
                    :_BARE_QUERY_PRODUCERS
                ]
        ranked = sorted(candidates, key=lambda o: (-similarity.get((o, i), 0.0), o))[:MAX_ROLE_PRODUCERS]
        pairs += [(o, i, role) for o in ranked]
    return pairs
