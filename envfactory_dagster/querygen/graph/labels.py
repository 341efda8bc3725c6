"""Labels of input parameters: would a person type the value (`user_provided`), and is a
required id read from the state because no chain could produce it first (`from_state`)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from envfactory_dagster.envgen.naming import words
from envfactory_dagster.querygen.graph.model import EnvDescriptor, tool_of
from envfactory_dagster.querygen.graph.schema_names import ID_WORDS, json_type, pattern_admits, snake_entity

# words of values a machine sets (pagination, keys, coordinates, timestamps), not a person
MACHINE_WORDS = {
    "id",
    "ids",
    "uuid",
    "sid",
    "gid",
    "token",
    "tokens",
    "cursor",
    "page",
    "offset",
    "limit",
    "per",
    "size",
    "etag",
    "hash",
    "signature",
    "secret",
    "nonce",
    "checksum",
    "version",
    "revision",
    "lat",
    "latitude",
    "lon",
    "lng",
    "longitude",
    "coordinates",
    "zip",
    "postcode",
    "postal",
    "timestamp",
    "ts",
    "epoch",
    "sequence",
    "idempotency",
    "fingerprint",
}
_HUMAN_WORDS = {
    "name",
    "title",
    "email",
    "text",
    "description",
    "query",
    "q",
    "search",
    "keyword",
    "keywords",
    "message",
    "body",
    "subject",
    "note",
    "notes",
    "comment",
    "comments",
    "summary",
    "reason",
    "city",
    "country",
    "address",
    "street",
    "phone",
    "amount",
    "price",
    "total",
    "quantity",
    "qty",
    "count",
    "currency",
    "tags",
    "tag",
    "label",
    "labels",
    "color",
    "colour",
    "date",
    "birthday",
    "content",
    "memo",
    "bio",
    "nickname",
    "first",
    "last",
    "username",
    "url",
    "website",
    "path",
    "language",
    "timezone",
    "rating",
    "score",
    "duration",
    "nights",
    "guests",
    "adults",
    "children",
    "seats",
    "party",
    "budget",
    "destination",
    "origin",
    "departure",
    "arrival",
    "priority",
    "visibility",
    "status",
    "state",
    "type",
    "category",
    "topic",
    "goal",
}
_HUMAN_FORMATS = {"email", "date", "uri", "url"}
_DATE_LAYOUT = re.compile(r"\b(yyyy-mm-dd|mm/dd/yyyy|dd/mm/yyyy|dd\.mm\.yyyy)\b", re.IGNORECASE)


def label_user_provided(name: str, schema: Mapping[str, Any], binding: str | None, bound_field: Any) -> bool:
    """Offline rule: would a person type this input's value? In doubt: no.

    No: pagination and cursors (`$limit`, `page`, `cursor`), ids and keys (`*_id`, a foreign key,
    the entity key), tokens, hashes, timestamps (`date-time`, `*_at`, a numeric `*_time`),
    coordinates, zip codes. Yes: search text (`$query`), enums (a status a person names), dates
    (by format, or a description giving a date layout such as YYYY-MM-DD), times of day (a string
    `*_time`), emails, names, titles, free text, amounts, and plain attributes of a row the
    person creates or edits.
    """
    ws = words(name)
    fmt = str(schema.get("format") or "").lower()
    if binding is not None and binding.startswith("$"):
        return binding == "$query"
    if set(ws) & MACHINE_WORDS or (ws and ws[-1] in ID_WORDS):
        return False
    if bound_field is not None and (bound_field.ref_entity or bound_field.format == "date-time"):
        return False
    if fmt == "date-time" or (ws and ws[-1] in ("at", "timestamp")):
        return False
    if ws and ws[-1] == "time":  # a time of day a person states ("10:00 AM"); a number is an epoch
        return json_type(schema) == "string"
    if schema.get("enum") or fmt in _HUMAN_FORMATS or set(ws) & _HUMAN_WORDS:
        return True
    if json_type(schema) == "string" and _DATE_LAYOUT.search(str(schema.get("description") or "")):
        return True  # the document says it is a calendar date ("Check-in date, YYYY-MM-DD")
    # a plain attribute of the entity, e.g. `when_made`, `is_digital`
    return bound_field is not None and bound_field.type in ("string", "number", "integer", "boolean")


def mark_state_scoped_inputs(
    g: nx.DiGraph,
    descriptors: Sequence[EnvDescriptor],
    feeds: Mapping[tuple[str, str], Any],
) -> None:
    """Required id inputs that only tools needing them already can produce are read from the state.

    A scope such as a budget plan (`plan_id` in every path, produced only by tools that take a
    `plan_id`) has no tool to start from: no chain could ever run. The least fixed point of
    runnable tools (every required input user-provided or produced by another runnable tool)
    finds them; an input of a tool that stays unrunnable, that has no runnable producer (often
    none at all: the only tools that output it are writes echoing it back), that names an entity
    of its environment and whose pattern admits that entity's keys gets
    `from_state` (that entity's collection): it is bound from an earlier output when a chain has
    one, else from the key of an existing row (the user's working context, which they name).
    """
    tools = [n for n, a in g.nodes(data=True) if a["kind"] == "tool"]
    producers: dict[str, set[str]] = defaultdict(set)
    for o, i in feeds:
        producers[i].add(tool_of(o))
    needs = {
        t: [
            i
            for i in g.predecessors(t)
            if g.nodes[i]["kind"] == "input" and g.nodes[i]["required"] and not g.nodes[i]["user_provided"]
        ]
        for t in tools
    }
    runnable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for t in tools:
            if t not in runnable and all(producers[i] & runnable - {t} for i in needs[t]):
                runnable.add(t)
                changed = True
    entities = {(d.env_id, f"{snake_entity(e.name)}_id"): e for d in descriptors for e in d.spec.entities}
    for t in sorted(set(tools) - runnable):
        for i in needs[t]:
            a = g.nodes[i]
            entity = entities.get((a["env_id"], a["entity_key"] or a["normalized_name"]))
            if (
                entity is not None
                and not producers[i] & runnable
                and pattern_admits(a["pattern"], entity.key_of(1))
            ):
                a["from_state"] = entity.collection
