"""Value roles (an offline heuristic): inputs that take a value as such, and outputs that are one.

Some inputs do not name what they refer to: they take any value of a kind. A message, a text to
translate or encode takes any text (`send_sms.message` <- `translate_text.translated_text`), but
only the text a tool produced (its one text output: a joke, a translation; a list of values when
it produces no other text, written out: headlines to translate), not one attribute among several
of a record (a movie's director); a message sent or stored as given (`message`, `body`, `note`,
not a text read as language) also takes the one number a tool computed, written as text
(`send_sms.message` <- a GCD). A number to compute with takes any number (`calculate_squared.number`
<- `calculate_area.area`; an integer operand takes a number, valid when the number is whole),
also when it is a string of numbers to evaluate (`numbers` <- an `Exchange Rate` the document
writes as text). An amount of money takes any amount (`convert_currency.amount` <-
`calculate_tip.tip_amount`), and so does an operand of a computation (an input bound to no field
of a row) that a qualifier names (`calculate_interest.principal_amount` <-
`convert_currency.converted_amount`: the qualifier places the amount in the calculation; an
order's `tax_amount` is that row's own field, not any amount). A search query takes the name or
title of a thing found earlier (`search_airport.query` <- a location's `name`); an input named
for a place whose document asks for a code ("ISO 3166-2 location code", "e.g. 'US', 'GB'")
takes an output that is a place's code or short name ("Short-name of the country"; not a dial or
postal code); an input named only as data (`data`, `payload`: what a tool encodes, encrypts or
stores as given) takes any value, a number or a list written as text (`generate_barcode.data` <-
a BMI); an input named only as a list of texts (`items`) takes any list of values.
The role of a parameter is read from the words of its name and description, by the lexicons
below; a `value_role` edge needs the same role on both sides and the same service (a
weak link does not cross APIs), and an input takes at most `MAX_ROLE_PRODUCERS` of them, the
outputs whose texts are most alike (TF-IDF) first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

import networkx as nx

from envfactory_dagster.envgen.naming import singular, words
from envfactory_dagster.querygen.graph.model import EnvDescriptor, tool_of

VALUE_ROLE_SCORE = 0.6
MAX_ROLE_PRODUCERS = 1000
# inputs taking any text / any number: every word of the name is one of these
_TEXT_SINK_WORDS = frozenset(
    ("text", "message", "msg", "data", "content", "body", "payload", "input", "string", "note", "comment",
     "caption", "prompt", "sentence", "word")
)  # fmt: skip
# inputs taking any value as data, numbers written as text: every word of the name is one of these
_DATA_SINK_WORDS = frozenset(("data", "payload"))
# text inputs that send or store their value as given (not read as language)
_SENT_TEXT_WORDS = frozenset(("message", "msg", "body", "content", "note", "comment", "caption"))
# list inputs taking any list of values: every word of the name is one of these
_LIST_SINK_WORDS = frozenset(("item", "list", "value", "entry", "element"))
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
# what a value written as text measures when it is a number
_QUANTITY_WORDS = _MONEY_WORDS | frozenset(("rate", "ratio", "percentage", "percent", "quantity"))
# money inputs that take any amount: named by these words alone (`amount`, not `loan_amount`,
# whose qualifier says which amount it is)
_MONEY_SINK_WORDS = frozenset(("amount", "price", "total", "sum", "cost", "value"))
# a rate or a share is not an amount
_NOT_MONEY = frozenset(("rate", "percentage", "percent", "ratio", "share", "count", "number"))
_NOT_A_VALUE = frozenset(
    ("id", "ids", "uuid", "key", "token", "url", "uri", "link", "email", "phone", "date", "time")
)


# a code that names a place (`FR`, `US-CA`): what an input named for a place takes when its
# document asks for a code, and what an output that is a place's code or short name holds
_PLACE_WORDS = frozenset(("location", "country", "region", "city", "province", "territory"))
_CODE_WORDS = frozenset(("code", "iso", "abbreviation", "abbr"))
_NOT_A_PLACE_CODE = frozenset(("dial", "phone", "calling", "zip", "postal", "post", "area"))
_QUOTED_CODE = re.compile(r"['\"]([A-Z]{2,3}(?:-[A-Z0-9]{1,3})?)['\"]")


def _wants_place_code(attrs: Mapping[str, Any]) -> bool:
    """A string input named for a place whose document asks for a code: says `code` / `ISO`, or
    gives quoted codes as its examples ("e.g., 'US', 'GB'")."""
    description = f"{attrs['source_description']} {attrs['description']}"
    return bool(set(_name_words(attrs["name"])) & _PLACE_WORDS) and (
        bool(set(words(attrs["name"]) + words(description)) & _CODE_WORDS)
        or len(set(_QUOTED_CODE.findall(description))) >= 2
    )


def _is_place_code(attrs: Mapping[str, Any]) -> bool:
    """An output that is the code or short name of a place ("Short-name of the country")."""
    text = words(f"{attrs['name']} {attrs['source_description'] or attrs['description']}")
    ws = set(text)
    short_name = ("short", "name") in set(pairwise(text))
    return bool(ws & _PLACE_WORDS) and bool(ws & _CODE_WORDS or short_name) and not ws & _NOT_A_PLACE_CODE


def _name_words(name: str) -> list[str]:
    """Singular words of a field name, numbering dropped (`num1` -> [num])."""
    stripped = (w.rstrip("0123456789") for w in words(name.rsplit(".", 1)[-1]))
    return [singular(w) for w in stripped if w]


def input_role(attrs: Mapping[str, Any]) -> str:
    """`place_code`, `data`, `text`, `number`, `money`, `query` or "" for an input node."""
    ws = _name_words(attrs["name"])
    if not ws:
        return ""
    kind = attrs["type"]
    if kind == "array" and attrs["item_type"] == "string" and set(ws) <= _LIST_SINK_WORDS:
        return "list"
    if kind == "string" and not attrs["format"] and _wants_place_code(attrs):
        return "place_code"
    if kind == "string" and (attrs["binding"] == "$query" or set(ws) <= _QUERY_WORDS):
        return "query"
    if kind == "string" and not attrs["format"] and set(ws) <= _DATA_SINK_WORDS:
        return "data"
    if kind == "string" and not attrs["format"] and set(ws) <= _TEXT_SINK_WORDS:
        return "text"
    if kind in ("number", "integer") or (kind == "string" and not attrs["format"]):
        # a string named as numbers takes them written out ("numbers and arithmetic operations")
        if set(ws) <= _NUMBER_SINK_WORDS:
            return "number"
        if set(ws) <= _MONEY_SINK_WORDS:
            return "money"
    if (
        kind in ("number", "integer")
        and not attrs["binding"]
        and set(ws) & _MONEY_WORDS
        and not set(ws) & _NOT_MONEY
    ):
        return "money"  # an operand a qualifier places in its calculation (`original_price`)
    return ""


def output_roles(attrs: Mapping[str, Any]) -> set[str]:
    """The roles an output can fill (empty for keys, links, dates and other non-values)."""
    ws = _name_words(attrs["name"])
    if not ws or attrs["key_example"] or set(ws) & _NOT_A_VALUE or attrs["format"]:
        return set()
    kind = attrs["type"]
    if kind == "array":  # a list of values (headlines, restaurants), also written out as text
        values = attrs["item_type"] in ("", "any", "string", "number", "integer")
        return {"text", "data", "list"} if values else set()
    if kind == "string":
        roles = {"text", "data", "query"} if ws[-1] in _READABLE_WORDS else {"text", "data"}
        if ws[-1] in _QUANTITY_WORDS:  # a quantity the document writes as text ("Exchange Rate")
            roles.add("number")
        return roles | {"place_code"} if _is_place_code(attrs) else roles
    if kind in ("number", "integer"):
        roles = {"number", "data"}
        return roles | {"money"} if set(ws) & _MONEY_WORDS and not set(ws) & _NOT_MONEY else roles
    return set()


def written_as(role: str, output: Mapping[str, Any], input_: Mapping[str, Any]) -> str:
    """How an output of a role fills an input of that role whose JSON type differs ("" when it
    cannot): as text (a number or a list into data, a list into a text, a number into a message
    sent as given), or as an integer operand (a number, valid when whole)."""
    out_type, in_type = output["type"], input_["type"]
    if in_type == "string" and (
        (role == "data" and out_type in ("number", "integer", "array"))
        or (role == "text" and out_type == "array")
        or (
            role == "text"
            and out_type in ("number", "integer")
            and set(_name_words(input_["name"])) <= _SENT_TEXT_WORDS
        )
    ):
        return "written as text"
    if role == "number" and (out_type, in_type) == ("number", "integer"):
        return "as an integer operand (valid when the number is whole)"
    return ""


# how an edge's evidence names what an input of a role takes
ROLE_PHRASES = {
    "text": "any text",
    "number": "any number",
    "money": "any amount of money",
    "query": "the name of a thing found earlier",
    "place_code": "the code of a place",
    "data": "any value as data",
    "list": "any list of values",
}
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
    roles_of = {o: output_roles(g.nodes[o]) for o in outputs}
    # text outputs per tool: (strings, lists)
    texts_of: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for o, roles in roles_of.items():
        if "text" in roles:
            texts_of[tool_of(o)][g.nodes[o]["type"] == "array"] += 1
    by_role: dict[tuple[str, str], list[str]] = defaultdict(list)
    for o, roles in roles_of.items():
        strings, lists = texts_of[tool_of(o)]
        # a text to send, translate or encode is what a tool produced (a joke, a translation;
        # a list when it produces no other text), not one attribute among several of a record
        # (a movie's director, a plan's tags)
        produced = strings == 1 if g.nodes[o]["type"] != "array" else (strings, lists) == (0, 1)
        for role in roles:
            if role not in ("text", "data") or "text" not in roles or produced:
                by_role[(world_of[g.nodes[o]["env_id"]], role)].append(o)
    # a number a tool computed as its one value (a GCD, a GPA), not one field among a record's
    values_of: dict[str, int] = defaultdict(int)
    for o, roles in roles_of.items():
        values_of[tool_of(o)] += bool(roles)
    results = [o for o, roles in roles_of.items() if "number" in roles and values_of[tool_of(o)] == 1]
    pairs = []
    for i in inputs:
        role = input_role(g.nodes[i])
        if not role:
            continue
        world = world_of[g.nodes[i]["env_id"]]
        producers = by_role.get((world, role), [])
        if role == "text" and set(_name_words(g.nodes[i]["name"])) <= _SENT_TEXT_WORDS:
            # a message sent or stored as given takes a computed number, written as text
            producers = producers + [o for o in results if world_of[g.nodes[o]["env_id"]] == world]
        candidates = [o for o in producers if tool_of(o) != tool_of(i)]
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
