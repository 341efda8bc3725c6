"""The tool-dependency graph of one domain: which tool outputs can feed which tool inputs.

Nodes (networkx DiGraph, ids stable across runs):
- tool `env_id::tool`;
- input parameter `env_id::tool::in::param` (top-level properties of the input schema);
- output parameter `env_id::tool::out::path`, flattened one level: `prop`, `obj.field`, `arr[].field`.

Edges (attribute `kind`):
- `consumes` input -> tool (`required`), `produces` tool -> output (provenance `schema`);
- `feeds` output -> input when the output can supply the input's value, and
- `precedes` tool -> tool, one per (producer, consumer) pair of `feeds` edges (best score kept).

`feeds` edges are found offline, in this order of preference (an edge keeps the first that
matched as `provenance`, and its `score`):
1. `name_match` (1.0): equal JSON types and equal entity-aware normalized names: an id field is
   named after its entity (`order.id`, `orders[].id`, `order_id`, `orderIds` -> `order_id`; words
   singularized), any other field is prefixed by its entity (`listing.title` <-> `title` of a
   Listing tool -> `listing_title`);
2. `type_match` (0.9): equal JSON types and the spec's entity metadata says both are the key of
   the same entity (an input bound to a foreign key `assignee_id -> User` and `users[].id`);
   `entity_suffix` (0.85): an `<x>_id` input with no entity `<x>` is the key of the one entity
   whose name ends in `<x>` (`offer_id` <- `HotelOffer.id`; ambiguous suffixes link nothing);
   in 1-2 an array-of-ids input (`hotel_ids`) is also fed by a list element's id (`hotels[].id`,
   edge attribute `element`: the call gets a one-element array), and no key edge is added when
   the input's `pattern` refuses the keys seeded states hold (`ho_0001` vs `^[A-Z0-9]*$`);
3. `embedding` (cosine, optional `embed_fn`) and `tfidf` (cosine of TF-IDF vectors) of the text
   `"{normalized name} {name} ({type}): {description}"`, at or above their thresholds;
4. `llm`: an add-only pass inside each environment (`llm_edge_fn`).
Edges cross environments freely; a tool never feeds itself.

Every input gets `user_provided` (would a person type this value?) by offline rules
(`label_user_provided`), optionally overridden by `llm_label_fn`. A required input with no
producer that is not user-provided is *unfillable*; they are listed in `graph_metrics()`. A
required id whose producers all need it themselves (a `plan_id` scope) is `from_state`
(`_mark_state_scoped_inputs`): bound from an existing row's key when no earlier output has one.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import ValidationError

from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, ToolSpec
from envfactory_dagster.envgen.naming import singular, words
from envfactory_dagster.lineage import content_id
from envfactory_dagster.runtime.loader import VerifiedEnvironment

EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]
# (env_id, outputs, inputs) -> [(output node id, input node id)], outputs/inputs as node dicts
LLMEdgeFn = Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], list[tuple[str, str]]]
# inputs as node dicts -> {input node id: user_provided}
LLMLabelFn = Callable[[list[dict[str, Any]]], Mapping[str, bool]]

PROVENANCE_SCORE = {"name_match": 1.0, "type_match": 0.9, "entity_suffix": 0.85, "llm": 0.8}
ID_WORDS = {"id", "ids", "uuid", "uuids", "sid", "key", "keys", "gid"}

# -- user_provided rules ---------------------------------------------------------------
_MACHINE_WORDS = {
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


def label_user_provided(name: str, schema: Mapping[str, Any], binding: str | None, bound_field: Any) -> bool:
    """Offline rule: would a person type this input's value? In doubt: no.

    No: pagination and cursors (`$limit`, `page`, `cursor`), ids and keys (`*_id`, a foreign key,
    the entity key), tokens, hashes, timestamps (`date-time`, `*_at`), coordinates, zip codes.
    Yes: search text (`$query`), enums (a status a person names), dates, emails, names, titles,
    free text, amounts, and plain attributes of a row the person creates or edits.
    """
    ws = words(name)
    fmt = str(schema.get("format") or "").lower()
    if binding is not None and binding.startswith("$"):
        return binding == "$query"
    if set(ws) & _MACHINE_WORDS or (ws and ws[-1] in ID_WORDS):
        return False
    if bound_field is not None and (bound_field.ref_entity or bound_field.format == "date-time"):
        return False
    if fmt == "date-time" or (ws and ws[-1] in ("at", "time", "timestamp")):
        return False
    if schema.get("enum") or fmt in _HUMAN_FORMATS or set(ws) & _HUMAN_WORDS:
        return True
    # a plain attribute of the entity, e.g. `when_made`, `is_digital`
    return bound_field is not None and bound_field.type in ("string", "number", "integer", "boolean")


# -- schema helpers --------------------------------------------------------------------
def json_type(schema: Mapping[str, Any]) -> str:
    """The non-null JSON type of a schema (`["string", "null"]` -> `string`), `any` when absent."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and schema.get("enum"):
        kind = "string"
    return str(kind or "any")


def types_compatible(output_type: str, input_type: str) -> bool:
    return output_type == input_type or (output_type, input_type) == ("integer", "number")


def flatten_output_schema(schema: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, container, leaf schema) of an output schema flattened one level."""
    leaves: list[tuple[str, str, dict[str, Any]]] = []
    for prop, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        kind = json_type(sub)
        items = sub.get("items") if isinstance(sub.get("items"), dict) else {}
        if kind == "object" and sub.get("properties"):
            leaves += [(f"{prop}.{f}", prop, s) for f, s in sub["properties"].items() if isinstance(s, dict)]
        elif kind == "array" and items.get("properties"):
            leaves += [
                (f"{prop}[].{f}", prop, s) for f, s in items["properties"].items() if isinstance(s, dict)
            ]
        else:
            leaves.append((prop, "", sub))
    return leaves


def _scalar_item_type(schema: Mapping[str, Any]) -> str:
    """The item type of an array of scalars (`{"type": "array", "items": {"type": "string"}}` ->
    `string`), "" for anything else."""
    items = schema.get("items")
    if json_type(schema) != "array" or not isinstance(items, dict):
        return ""
    kind = json_type(items)
    return kind if kind in ("string", "integer", "number") else ""


def snake_entity(name: str) -> str:
    """`ShopSection` / `shop_sections` -> `shop_section` (singular words joined by `_`)."""
    return "_".join(singular(w) for w in words(name))


def normalized_name(field_name: str, context_entity: str, key_field: str | None = None) -> str:
    """Entity-aware name: ids take their entity's name, other fields are prefixed by it."""
    ws = [singular(w) for w in words(field_name)]
    if not ws:
        return ""
    if field_name == key_field or ws in (["id"], ["key"], ["uuid"]):
        return f"{context_entity}_id" if context_entity else "id"
    if ws[-1] in ID_WORDS and len(ws) > 1:
        return "_".join([*ws[:-1], "id"])
    joined = "_".join(ws)
    return (
        f"{context_entity}_{joined}" if context_entity and not joined.startswith(context_entity) else joined
    )


# -- inputs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EnvDescriptor:
    env_id: str
    domain: str
    spec: EnvSpec


def describe_envs(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
) -> tuple[list[EnvDescriptor], list[dict[str, Any]]]:
    """Environment descriptors (id, domain, spec) and error rows for entries without a readable spec."""
    out: list[EnvDescriptor] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    for env in envs:
        env_id = str(env.env_id if isinstance(env, VerifiedEnvironment) else env.get("env_id"))
        try:
            if isinstance(env, VerifiedEnvironment):
                spec = env.spec
            else:
                raw = env["spec_json"]
                spec = (
                    EnvSpec.model_validate_json(raw)
                    if isinstance(raw, str | bytes)
                    else EnvSpec.model_validate(raw)
                )
        except (KeyError, ValidationError, ValueError) as exc:
            errors.append(
                {
                    "env_id": env_id,
                    "stage": "tool_graph",
                    "reason": f"environment {env_id}: unreadable spec_json: {exc}"[:1000],
                }
            )
            continue
        if env_id in seen:
            errors.append(
                {
                    "env_id": env_id,
                    "stage": "tool_graph",
                    "reason": f"environment {env_id}: listed twice, second entry ignored",
                }
            )
            continue
        seen.add(env_id)
        domain = (
            spec.domain if isinstance(env, VerifiedEnvironment) else str(env.get("domain") or spec.domain)
        )
        out.append(EnvDescriptor(env_id, domain, spec))
    return sorted(out, key=lambda d: d.env_id), errors


# -- the graph -------------------------------------------------------------------------
@dataclass
class ToolGraph:
    """The dependency graph plus the lookups the samplers and the executor need."""

    graph: nx.DiGraph
    domain: str
    envs: dict[str, EnvDescriptor]
    errors: list[dict[str, Any]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    tool_inputs: dict[str, list[str]] = field(default_factory=dict)
    input_producers: dict[str, list[str]] = field(default_factory=dict)  # input -> producer tools
    input_feeds: dict[str, list[tuple[str, float]]] = field(
        default_factory=dict
    )  # input -> [(output, score)]
    tool_successors: dict[str, list[str]] = field(default_factory=dict)
    tools_by_env: dict[str, list[str]] = field(default_factory=dict)

    def node(self, node_id: str) -> dict[str, Any]:
        return self.graph.nodes[node_id]

    def env_of(self, tool_id: str) -> str:
        return self.graph.nodes[tool_id]["env_id"]

    def tool_spec(self, tool_id: str) -> ToolSpec:
        env_id, _, name = tool_id.partition("::")
        return next(t for t in self.envs[env_id].spec.tools if t.name == name)

    def user_provided(self, input_id: str) -> bool:
        return bool(self.graph.nodes[input_id]["user_provided"])

    def required(self, input_id: str) -> bool:
        return bool(self.graph.nodes[input_id]["required"])

    def from_state(self, input_id: str) -> str:
        """The collection a state-scoped input is read from ("" for any other input)."""
        return str(self.graph.nodes[input_id].get("from_state") or "")

    def unfillable_inputs(self) -> list[str]:
        """Required inputs that no tool produces, a user would not type and the state does not scope."""
        return sorted(
            i
            for inputs in self.tool_inputs.values()
            for i in inputs
            if self.required(i)
            and not self.user_provided(i)
            and not self.from_state(i)
            and not self.input_producers.get(i)
        )


def _tool_id(env_id: str, tool: str) -> str:
    return f"{env_id}::{tool}"


def _entity_index(spec: EnvSpec) -> dict[str, EntitySpec]:
    """Entities by every spelling an output container or a name may use (`shop_section(s)`)."""
    index: dict[str, EntitySpec] = {}
    for e in spec.entities:
        index[snake_entity(e.name)] = e
        index[snake_entity(e.collection)] = e
    return index


def _add_env_nodes(g: nx.DiGraph, env: EnvDescriptor) -> None:
    spec = env.spec
    entities = {e.name: e for e in spec.entities}
    by_spelling = _entity_index(spec)
    for tool in spec.tools:
        tid = _tool_id(env.env_id, tool.name)
        entity = entities.get(tool.entity or "")
        context = snake_entity(entity.name) if entity else ""
        g.add_node(
            tid,
            kind="tool",
            env_id=env.env_id,
            domain=env.domain,
            name=tool.name,
            tool=tool.name,
            description=tool.description,
            action=tool.action,
            tool_kind=tool.kind,
            entity=tool.entity or "",
        )
        required = set(tool.input_schema.get("required") or [])
        for pname, pschema in (tool.input_schema.get("properties") or {}).items():
            if not isinstance(pschema, dict):
                continue
            binding = tool.param_fields.get(pname)
            bound = (
                next((f for f in entity.fields if f.name == binding), None) if entity and binding else None
            )
            name_key = (
                ""
                if binding and binding.startswith("$")
                else normalized_name(binding or pname, context, entity.key_field if entity else None)
            )
            ref = bound.ref_entity if bound is not None else None
            entity_key = (
                f"{snake_entity(ref)}_id"
                if ref
                else (f"{context}_id" if entity and binding == entity.key_field else "")
            )
            g.add_node(
                f"{tid}::in::{pname}",
                kind="input",
                env_id=env.env_id,
                domain=env.domain,
                name=pname,
                tool=tool.name,
                type=json_type(pschema),
                item_type=_scalar_item_type(pschema),
                pattern=str(pschema.get("pattern") or ""),
                required=pname in required,
                description=str(pschema.get("description") or ""),
                entity=tool.entity or "",
                binding=binding or "",
                name_key=name_key,
                entity_key=entity_key,
                entity_key_by="schema" if entity_key else "",
                user_provided=label_user_provided(pname, pschema, binding, bound),
                labelled_by="rules",
                from_state="",
            )
            g.add_edge(
                f"{tid}::in::{pname}",
                tid,
                kind="consumes",
                required=pname in required,
                provenance="schema",
                score=1.0,
            )
        for path, container, leaf in flatten_output_schema(tool.output_schema):
            leaf_name = path.rsplit(".", 1)[-1]
            owner = by_spelling.get(snake_entity(container)) if container else entity
            owner = owner or entity
            owner_ctx = snake_entity(owner.name) if owner else context
            owner_field = next((f for f in owner.fields if f.name == leaf_name), None) if owner else None
            if owner and leaf_name == owner.key_field:
                entity_key = f"{owner_ctx}_id"
            elif owner_field is not None and owner_field.ref_entity:
                entity_key = f"{snake_entity(owner_field.ref_entity)}_id"
            else:
                entity_key = ""
            g.add_node(
                f"{tid}::out::{path}",
                kind="output",
                env_id=env.env_id,
                domain=env.domain,
                name=path,
                tool=tool.name,
                type=json_type(leaf),
                required=False,
                description=str(leaf.get("description") or ""),
                entity=owner.name if owner else "",
                name_key=normalized_name(leaf_name, owner_ctx, owner.key_field if owner else None),
                entity_key=entity_key,
                # the form of the keys seeded states hold (`envgen.seed_data`)
                key_example=f"{owner.id_prefix}0001" if owner and leaf_name == owner.key_field else "",
            )
            g.add_edge(tid, f"{tid}::out::{path}", kind="produces", provenance="schema", score=1.0)


def _pattern_admits(pattern: str, key_example: str) -> bool:
    """Whether an input's `pattern` accepts the keys an entity's seeded rows have (`ho_0001` is
    refused by `^[A-Z0-9]*$`: such an edge could never bind); True when either is absent."""
    if not pattern or not key_example:
        return True
    try:
        return re.search(pattern, key_example) is not None
    except re.error:
        return True


def _link_suffix_entity_ids(g: nx.DiGraph, descriptors: Sequence[EnvDescriptor]) -> None:
    """`<x>_id` inputs with no entity `<x>` point to the one entity whose name ends in `_<x>`.

    `offer_id` -> `HotelOffer` (`hotel_offer_id`), when that entity is the only one ending in
    `offer`: in the input's environment first, else in the domain. An ambiguous suffix
    (`HotelOffer` and `FlightOffer` in one environment) links nothing.
    """
    names_by_env = {d.env_id: {snake_entity(e.name) for e in d.spec.entities} for d in descriptors}
    all_names = set().union(*names_by_env.values()) if names_by_env else set()
    for node_id, a in g.nodes(data=True):
        if a["kind"] != "input" or a["entity_key"] or not a["name_key"].endswith("_id"):
            continue
        stem = a["name_key"][: -len("_id")]
        if not stem or stem in all_names:
            continue
        for scope in (names_by_env[a["env_id"]], all_names):
            matches = sorted(n for n in scope if n.endswith(f"_{stem}"))
            if matches:
                if len(matches) == 1:
                    g.nodes[node_id].update(entity_key=f"{matches[0]}_id", entity_key_by="suffix")
                break


def _mark_state_scoped_inputs(
    g: nx.DiGraph,
    descriptors: Sequence[EnvDescriptor],
    feeds: Mapping[tuple[str, str], Any],
    tool_of: Callable[[str], str],
) -> None:
    """Required id inputs that only tools needing them already can produce are read from the state.

    A scope such as a budget plan (`plan_id` in every path, produced only by tools that take a
    `plan_id`) has no tool to start from: no chain could ever run. The least fixed point of
    runnable tools (every required input user-provided or produced by another runnable tool)
    finds them; an input of a tool that stays unrunnable, that has producers but no runnable one,
    that names an entity of its environment and whose pattern admits that entity's keys gets
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
            entity = entities.get((a["env_id"], a["entity_key"] or a["name_key"]))
            if (
                entity is not None
                and producers[i]
                and not producers[i] & runnable
                and _pattern_admits(a["pattern"], f"{entity.id_prefix}0001")
            ):
                a["from_state"] = entity.collection


def _param_text(attrs: Mapping[str, Any]) -> str:
    name_words = " ".join(words(attrs["name_key"]) + words(attrs["name"]))
    return f"{name_words} ({attrs['type']}): {attrs['description']}"


def _cosine_pairs(vectors_out: Any, vectors_in: Any) -> Any:
    import numpy as np

    a = np.asarray(vectors_out, dtype=float)
    b = np.asarray(vectors_in, dtype=float)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def build_tool_graph(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
    *,
    similarity_threshold: float = 0.85,
    tfidf_threshold: float = 0.75,
    embed_fn: EmbedFn | None = None,
    llm_edge_fn: LLMEdgeFn | None = None,
    llm_label_fn: LLMLabelFn | None = None,
) -> ToolGraph:
    """The dependency graph of the given environments (registry rows or loaded environments).

    `similarity_threshold` applies to `embed_fn` cosines (the paper's 0.85 with bge-m3;
    e.g. `lambda texts: gateway.embed(texts, stage="tool_graph")`), `tfidf_threshold` to the
    offline TF-IDF cosines. Rows without a readable spec become `ToolGraph.errors`.
    """
    descriptors, errors = describe_envs(envs)
    g = nx.DiGraph()
    for env in descriptors:
        _add_env_nodes(g, env)
    if llm_label_fn is not None:
        inputs = [{"id": n, **a} for n, a in g.nodes(data=True) if a["kind"] == "input"]
        for node_id, value in llm_label_fn(inputs).items():
            if node_id in g and g.nodes[node_id]["kind"] == "input":
                g.nodes[node_id].update(user_provided=bool(value), labelled_by="llm")
            else:
                errors.append(
                    {
                        "env_id": None,
                        "stage": "tool_graph",
                        "reason": f"user_provided label for unknown input {node_id!r} ignored",
                    }
                )

    _link_suffix_entity_ids(g, descriptors)
    outputs = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "output")
    inputs = sorted(
        n for n, a in g.nodes(data=True) if a["kind"] == "input" and not a["binding"].startswith("$")
    )
    feeds: dict[tuple[str, str], tuple[str, float]] = {}

    def tool_of(node_id: str) -> str:
        return node_id.split("::", 2)[0] + "::" + node_id.split("::", 2)[1]

    def key_compatible(o: str, ia: Mapping[str, Any]) -> bool:
        """Equal types, or a list element's id feeding an array of ids (`hotels[].id` ->
        `hotel_ids`: the call gets a one-element array); never keys the input's pattern refuses."""
        oa = g.nodes[o]
        if not _pattern_admits(ia["pattern"], oa["key_example"]):
            return False
        return types_compatible(oa["type"], ia["type"]) or (
            bool(ia["item_type"])
            and ia["name_key"].endswith("_id")
            and "[]." in oa["name"]
            and types_compatible(oa["type"], ia["item_type"])
        )

    # 1-2: names and entity metadata, via hash joins on the normalized keys
    for key_attr, provenance in (("name_key", "name_match"), ("entity_key", "type_match")):
        by_key: dict[str, list[str]] = defaultdict(list)
        for o in outputs:
            if g.nodes[o][key_attr]:
                by_key[g.nodes[o][key_attr]].append(o)
        for i in inputs:
            ia = g.nodes[i]
            suffix = key_attr == "entity_key" and ia["entity_key_by"] == "suffix"
            kind = "entity_suffix" if suffix else provenance
            for o in by_key.get(ia[key_attr], []) if ia[key_attr] else []:
                if (o, i) not in feeds and tool_of(o) != tool_of(i) and key_compatible(o, ia):
                    feeds[(o, i)] = (kind, PROVENANCE_SCORE[kind])

    # 3: similarity of the descriptive texts
    def add_similar(matrix: Any, threshold: float, provenance: str) -> None:
        import numpy as np

        rows, cols = np.nonzero(matrix >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            o, i = outputs[r], inputs[c]
            if (
                (o, i) not in feeds
                and tool_of(o) != tool_of(i)
                and types_compatible(g.nodes[o]["type"], g.nodes[i]["type"])
                and _pattern_admits(g.nodes[i]["pattern"], g.nodes[o]["key_example"])
            ):
                feeds[(o, i)] = (provenance, round(float(matrix[r, c]), 4))

    if outputs and inputs:
        texts_out = [_param_text(g.nodes[o]) for o in outputs]
        texts_in = [_param_text(g.nodes[i]) for i in inputs]
        if embed_fn is not None:
            vectors = list(embed_fn(texts_out + texts_in))
            add_similar(
                _cosine_pairs(vectors[: len(outputs)], vectors[len(outputs) :]),
                similarity_threshold,
                "embedding",
            )
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(token_pattern=r"[a-z0-9]+", sublinear_tf=True).fit(texts_out + texts_in)
        add_similar(
            (tfidf.transform(texts_out) @ tfidf.transform(texts_in).T).toarray(), tfidf_threshold, "tfidf"
        )

    # 4: add-only LLM pass within each environment
    if llm_edge_fn is not None:
        for env in descriptors:
            env_out = [{"id": o, **g.nodes[o]} for o in outputs if g.nodes[o]["env_id"] == env.env_id]
            env_in = [{"id": i, **g.nodes[i]} for i in inputs if g.nodes[i]["env_id"] == env.env_id]
            for o, i in llm_edge_fn(env.env_id, env_out, env_in):
                valid = (
                    o in g
                    and i in g
                    and g.nodes[o]["kind"] == "output"
                    and g.nodes[i]["kind"] == "input"
                    and g.nodes[o]["env_id"] == env.env_id == g.nodes[i]["env_id"]
                    and tool_of(o) != tool_of(i)
                )
                if not valid:
                    errors.append(
                        {
                            "env_id": env.env_id,
                            "stage": "tool_graph",
                            "reason": f"LLM edge {o!r} -> {i!r} ignored: "
                            f"not an output and an input of two tools of {env.env_id}",
                        }
                    )
                elif (o, i) not in feeds:
                    feeds[(o, i)] = ("llm", PROVENANCE_SCORE["llm"])

    _mark_state_scoped_inputs(g, descriptors, feeds, tool_of)
    tool_pairs: dict[tuple[str, str], tuple[str, float, int]] = {}
    for (o, i), (provenance, score) in sorted(feeds.items()):
        element = g.nodes[i]["type"] == "array" and g.nodes[o]["type"] != "array"
        g.add_edge(o, i, kind="feeds", provenance=provenance, score=score, element=element)
        pair = (tool_of(o), tool_of(i))
        best = tool_pairs.get(pair)
        if best is None or score > best[1]:
            tool_pairs[pair] = (provenance, score, (best[2] if best else 0) + 1)
        else:
            tool_pairs[pair] = (best[0], best[1], best[2] + 1)
    for (a, b), (provenance, score, count) in sorted(tool_pairs.items()):
        g.add_edge(a, b, kind="precedes", provenance=provenance, score=score, links=count)

    tg = ToolGraph(
        graph=g,
        domain=descriptors[0].domain if descriptors else "",
        envs={d.env_id: d for d in descriptors},
        errors=errors,
    )
    tg.tools = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "tool")
    for t in tg.tools:
        tg.tool_inputs[t] = sorted(p for p in g.predecessors(t) if g.nodes[p]["kind"] == "input")
        tg.tool_successors[t] = sorted(s for s in g.successors(t) if g.nodes[s]["kind"] == "tool")
        tg.tools_by_env.setdefault(g.nodes[t]["env_id"], []).append(t)
    for i in (n for n, a in g.nodes(data=True) if a["kind"] == "input"):
        sources = sorted(
            ((o, g.edges[o, i]["score"]) for o in g.predecessors(i)), key=lambda x: (-x[1], x[0])
        )
        tg.input_feeds[i] = sources
        tg.input_producers[i] = sorted({tool_of(o) for o, _ in sources})
    return tg


# -- rows, metrics, summary ------------------------------------------------------------
def graph_nodes_rows(tg: ToolGraph) -> list[dict[str, Any]]:
    """One row per node: id, domain, env_id, kind (tool/input/output), name, tool, type, ..."""
    rows = []
    for node_id, a in sorted(tg.graph.nodes(data=True)):
        rows.append(
            {
                "id": node_id,
                "domain": a["domain"],
                "env_id": a["env_id"],
                "kind": a["kind"],
                "name": a["name"],
                "tool": a["tool"],
                "type": a.get("type"),
                "required": a.get("required"),
                "user_provided": a.get("user_provided"),
                "labelled_by": a.get("labelled_by"),
                "entity": a.get("entity") or None,
                "normalized_name": a.get("name_key") or None,
                "description": a.get("description", ""),
                "unfillable": a["kind"] == "input"
                and a["required"]
                and not a["user_provided"]
                and not a["from_state"]
                and not tg.input_producers.get(node_id),
            }
        )
    return rows


def graph_edges_rows(tg: ToolGraph) -> list[dict[str, Any]]:
    """One row per edge: id, domain, env_id (of the source), target_env_id, source, target, kind,
    provenance, score, required (consumes edges), cross_env."""
    g = tg.graph
    rows = []
    for s, t, a in sorted(g.edges(data=True), key=lambda e: (e[0], e[1])):
        rows.append(
            {
                "id": content_id([s, t, a["kind"]], "edge_"),
                "domain": tg.domain,
                "env_id": g.nodes[s]["env_id"],
                "target_env_id": g.nodes[t]["env_id"],
                "source": s,
                "target": t,
                "kind": a["kind"],
                "name": f"{g.nodes[s]['name']} -> {g.nodes[t]['name']}",
                "provenance": a["provenance"],
                "score": float(a["score"]),
                "required": a.get("required"),
                "cross_env": g.nodes[s]["env_id"] != g.nodes[t]["env_id"],
            }
        )
    return rows


def graph_metrics(tg: ToolGraph) -> dict[str, Any]:
    """Counts for asset metadata: edges by kind and provenance, unfillable inputs, user-provided share."""
    g = tg.graph
    by_kind: Counter[str] = Counter()
    by_provenance: Counter[str] = Counter()
    cross = 0
    per_env: dict[str, Counter[str]] = defaultdict(Counter)
    for s, t, a in g.edges(data=True):
        by_kind[a["kind"]] += 1
        if a["kind"] == "feeds":
            by_provenance[a["provenance"]] += 1
            cross += g.nodes[s]["env_id"] != g.nodes[t]["env_id"]
        per_env[g.nodes[s]["env_id"]]["edges"] += 1
    for _, a in g.nodes(data=True):
        per_env[a["env_id"]]["nodes"] += 1
    inputs = [a for _, a in g.nodes(data=True) if a["kind"] == "input"]
    unfillable = tg.unfillable_inputs()
    return {
        "envs": len(tg.envs),
        "tools": len(tg.tools),
        "nodes": g.number_of_nodes(),
        "edges": g.number_of_edges(),
        "edges_by_kind": dict(sorted(by_kind.items())),
        "feed_edges_by_provenance": dict(sorted(by_provenance.items())),
        "cross_env_feed_edges": cross,
        "tool_edges": by_kind["precedes"],
        "inputs": len(inputs),
        "user_provided_share": round(sum(a["user_provided"] for a in inputs) / len(inputs), 4)
        if inputs
        else 0.0,
        "state_scoped_inputs": sorted(n for n, a in g.nodes(data=True) if a.get("from_state")),
        "unfillable_inputs_count": len(unfillable),
        "unfillable_inputs": unfillable,
        "per_env": {env: dict(c) for env, c in sorted(per_env.items())},
        "errors": len(tg.errors),
    }


def _mermaid_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def render_graph_summary(tg: ToolGraph, *, max_edges_per_env: int = 25) -> str:
    """Markdown for asset metadata: a table per environment and a Mermaid chart of tool -> tool edges."""
    g = tg.graph
    unfillable = set(tg.unfillable_inputs())
    lines = [
        f"### Tool graph `{tg.domain}`: {len(tg.envs)} environments, {len(tg.tools)} tools",
        "",
        "| environment | tools | inputs | user-provided | unfillable | edges in | edges out (cross-env) |",
        "|---|---|---|---|---|---|---|",
    ]
    for env_id, env in sorted(tg.envs.items()):
        tools = tg.tools_by_env.get(env_id, [])
        inputs = [i for t in tools for i in tg.tool_inputs[t]]
        within = sum(1 for t in tools for s in tg.tool_successors[t] if g.nodes[s]["env_id"] == env_id)
        cross = sum(1 for t in tools for s in tg.tool_successors[t] if g.nodes[s]["env_id"] != env_id)
        lines.append(
            f"| {env.spec.class_name} (`{env_id}`) | {len(tools)} | {len(inputs)} | "
            f"{sum(g.nodes[i]['user_provided'] for i in inputs)} | {len(unfillable & set(inputs))} | "
            f"{within} | {cross} |"
        )
    for env_id, env in sorted(tg.envs.items()):
        edges = sorted(
            ((a, b, g.edges[a, b]) for a in tg.tools_by_env.get(env_id, []) for b in tg.tool_successors[a]),
            key=lambda e: (-e[2]["score"], e[0], e[1]),
        )[:max_edges_per_env]
        if not edges:
            continue
        lines += ["", f"#### {env.spec.class_name}", "```mermaid", "graph LR"]
        for a, b, attrs in edges:
            label = (
                g.nodes[b]["tool"]
                if g.nodes[b]["env_id"] == env_id
                else f"{tg.envs[g.nodes[b]['env_id']].spec.class_name}.{g.nodes[b]['tool']}"
            )
            lines.append(
                f"  {_mermaid_id(a)}[{g.nodes[a]['tool']}] -->|{attrs['provenance']}| "
                f"{_mermaid_id(b)}[{label}]"
            )
        lines.append("```")
    return "\n".join(lines)
