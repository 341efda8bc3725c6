"""Which outputs can feed which inputs: matchers that read the API, each leaving its evidence.

Every matcher proposes (output, input) pairs with a provenance, a score and one sentence of
evidence; a pair keeps all its evidence, its best score and the provenance of that score.
Matchers (offline unless noted), strongest first:
- `link` (1.0): the document's own OpenAPI `links` (`$response.body#/id` -> `orderId`);
- `name_match` (1.0): equal entity-aware names (`orders[].id` -> `order_id`, see `nodes`);
- `type_match` (0.9): the spec's entity metadata says both are the key of one entity (a foreign
  key `assignee_id -> User` and `users[].id`); `entity_suffix` (0.85): an `<x>_id` input with no
  entity `<x>` is the key of the one entity whose name ends in `<x>` (`offer_id` <- `HotelOffer`);
- `same_name` (0.9 for names of two or more words; 0.75 for one word within one environment,
  from a read to a write, or a number one read computes and another takes: `distance`, also
  when the output's name qualifies it: `converted_distance`): the same field name on both
  sides (`pickup_location` -> `pickup_location`);
- `example` (0.9): an example value the document gives for both;
- `described_source` (0.85): the input's description names the producing tool ("can be extracted
  from the Search Airport API"); the tool's output whose name fits the input best feeds it;
- `qualified_name` (0.8): the input is the output qualified by a role (`origin_sky_id` <- `sky_id`)
  or offers it as an alternative (`username_or_id_or_url` <- `username`);
- `llm` (0.8): an add-only pass within each service (`llm_edge_fn`), see `llm_linking`;
- `embedding` (cosine, with `embed_fn`) and `tfidf` (cosine of TF-IDF vectors) of the text
  `"{normalized name} {name} ({type}): {description}"`, at or above their thresholds;
- `value_role` (0.6): an input that takes any value of a kind (a message, an amount, a search
  query, a place's code, any value as data, any list) fed by outputs of that kind within its
  service, see `value_roles`.
Every pair needs compatible JSON types (or a list element's id feeding an array of ids, edge
attribute `element`; or a value role's writing, `value_roles.written_as`: a number or a list
written as text, a number as an integer operand; the evidence says which),
and no key edge is added when the input's `pattern` refuses the keys seeded states hold. A tool
never feeds itself, and a write tool's output that echoes its own input (a recorded request, an
updated row's new value) feeds nothing: the caller had that value already.
Weak evidence (similarity, value roles, one-word names) also needs an output the document states
(not a field its environment's merged entity added), and never runs back against strong edges
(`drop_loop_backs`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from envfactory_dagster.envgen.naming import singular, snake_case, words
from envfactory_dagster.querygen.graph.labels import MACHINE_WORDS
from envfactory_dagster.querygen.graph.model import EnvDescriptor, tool_of
from envfactory_dagster.querygen.graph.nodes import SourceDocuments
from envfactory_dagster.querygen.graph.schema_names import (
    ID_WORDS,
    pattern_admits,
    snake_entity,
    types_compatible,
)
from envfactory_dagster.querygen.graph.value_roles import (
    ROLE_PHRASES,
    VALUE_ROLE_SCORE,
    match_value_roles,
    written_as,
)

EmbedFn = Callable[[list[str]], Sequence[Sequence[float]]]
# (world_id, outputs, inputs) -> [(output node id, input node id)], outputs/inputs as node dicts
LLMEdgeFn = Callable[[str, list[dict[str, Any]], list[dict[str, Any]]], list[tuple[str, str]]]

PROVENANCE_SCORE = {
    "link": 1.0,
    "name_match": 1.0,
    "type_match": 0.9,
    "same_name": 0.9,
    "example": 0.9,
    "entity_suffix": 0.85,
    "described_source": 0.85,
    "qualified_name": 0.8,
    "llm": 0.8,
}
SINGLE_WORD_SAME_NAME_SCORE = 0.75
# on equal scores the earlier provenance names the edge
_PROVENANCE_ORDER = [*PROVENANCE_SCORE, "embedding", "tfidf", "value_role"]


@dataclass(frozen=True)
class Evidence:
    provenance: str
    score: float
    text: str


class FeedCandidates:
    """(output, input) pairs proposed by the matchers, with all their evidence."""

    def __init__(self, g: nx.DiGraph) -> None:
        self.g = g
        self.found: dict[tuple[str, str], list[Evidence]] = defaultdict(list)

    def add(self, o: str, i: str, provenance: str, score: float, text: str) -> None:
        if tool_of(o) == tool_of(i):
            return
        evidence = Evidence(provenance, round(float(score), 4), text)
        if evidence not in self.found[(o, i)]:
            self.found[(o, i)].append(evidence)

    def has(self, o: str, i: str) -> bool:
        return (o, i) in self.found

    def best(self) -> dict[tuple[str, str], tuple[str, float, tuple[str, ...]]]:
        """(provenance, score, evidence sentences) per pair: the best-scored evidence names it."""
        out = {}
        for pair, found in sorted(self.found.items()):
            top = min(found, key=lambda e: (-e.score, _PROVENANCE_ORDER.index(e.provenance)))
            ordered = sorted(found, key=lambda e: (-e.score, _PROVENANCE_ORDER.index(e.provenance)))
            out[pair] = (top.provenance, top.score, tuple(f"{e.provenance}: {e.text}" for e in ordered))
        return out


WEAK_PROVENANCES = frozenset(("value_role", "tfidf", "embedding"))


def is_weak(provenance: str, score: float) -> bool:
    """Evidence that says two values are alike, not that one is the other's source (a one-word
    `same_name` within an environment counts as weak too)."""
    return provenance in WEAK_PROVENANCES or (
        provenance == "same_name" and score < PROVENANCE_SCORE["same_name"]
    )


def drop_loop_backs(
    feeds: dict[tuple[str, str], tuple[str, float, tuple[str, ...]]],
) -> dict[tuple[str, str], tuple[str, float, tuple[str, ...]]]:
    """Without weak edges that run back against strong ones: when strong evidence says tool A
    comes before tool B (A feeds B, directly or through other tools), a weak B -> A edge would
    only make a loop (`flight_search` feeding `search_airport` the airport name it was given)."""
    strong: dict[str, set[str]] = defaultdict(set)
    for (o, i), (provenance, score, _) in feeds.items():
        if not is_weak(provenance, score):
            strong[tool_of(o)].add(tool_of(i))
    reach: dict[str, set[str]] = {}

    def reachable(start: str) -> set[str]:
        if start not in reach:
            seen: set[str] = set()
            stack = [start]
            while stack:
                for nxt in strong.get(stack.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
            reach[start] = seen
        return reach[start]

    return {
        (o, i): found
        for (o, i), found in feeds.items()
        if not (is_weak(found[0], found[1]) and tool_of(o) in reachable(tool_of(i)))
    }


# -- eligibility -------------------------------------------------------------------------
def field_words(name: str) -> list[str]:
    """Singular words of a parameter or of an output path's last field (`shows[].show_time` ->
    [show, time])."""
    return [singular(w) for w in words(name.rsplit(".", 1)[-1])]


def matchable_outputs(g: nx.DiGraph) -> list[str]:
    """Outputs that may feed: not a write tool's echo of its own input. A read's echo of the id
    it was given stays: it carries that scope (`plan_id`) on to the next call, so a chain keeps
    its rows under one parent."""
    inputs_of: dict[str, set[str]] = defaultdict(set)
    for n, a in g.nodes(data=True):
        if a["kind"] == "input":
            inputs_of[tool_of(n)].add(snake_case(a["name"]))
    out = []
    for n, a in g.nodes(data=True):
        if a["kind"] != "output":
            continue
        tool = g.nodes[tool_of(n)]
        leaf = snake_case(a["name"].rsplit(".", 1)[-1])
        echo = tool["tool_kind"] == "write" and leaf in inputs_of[tool_of(n)] and not a["key_example"]
        if not echo:
            out.append(n)
    return sorted(out)


def matchable_inputs(g: nx.DiGraph) -> list[str]:
    """Inputs that may be fed: every input but a row limit (`$limit`)."""
    return sorted(n for n, a in g.nodes(data=True) if a["kind"] == "input" and a["binding"] != "$limit")


def compatible(g: nx.DiGraph, o: str, i: str) -> bool:
    """Equal types, or a list element's value feeding an array of scalars (`hotels[].id` ->
    `hotel_ids`: the call gets a one-element array); never keys the input's pattern refuses."""
    oa, ia = g.nodes[o], g.nodes[i]
    if not pattern_admits(ia["pattern"], oa["key_example"]):
        return False
    return types_compatible(oa["type"], ia["type"]) or (
        bool(ia["item_type"]) and "[]." in oa["name"] and types_compatible(oa["type"], ia["item_type"])
    )


# -- matchers ----------------------------------------------------------------------------
def link_suffix_entity_ids(g: nx.DiGraph, descriptors: Sequence[EnvDescriptor]) -> None:
    """`<x>_id` inputs with no entity `<x>` point to the one entity whose name ends in `_<x>`.

    `offer_id` -> `HotelOffer` (`hotel_offer_id`), when that entity is the only one ending in
    `offer`: in the input's environment first, else in the domain. An ambiguous suffix
    (`HotelOffer` and `FlightOffer` in one environment) links nothing.
    """
    names_by_env = {d.env_id: {snake_entity(e.name) for e in d.spec.entities} for d in descriptors}
    all_names = set().union(*names_by_env.values()) if names_by_env else set()
    for node_id, a in g.nodes(data=True):
        if a["kind"] != "input" or a["entity_key"] or not a["normalized_name"].endswith("_id"):
            continue
        stem = a["normalized_name"][: -len("_id")]
        if not stem or stem in all_names:
            continue
        for scope in (names_by_env[a["env_id"]], all_names):
            matches = sorted(n for n in scope if n.endswith(f"_{stem}"))
            if matches:
                if len(matches) == 1:
                    g.nodes[node_id].update(entity_key=f"{matches[0]}_id", entity_key_by="suffix")
                break


def match_names(g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates) -> None:
    """`name_match`, `type_match` / `entity_suffix`, by hash joins on the normalized keys."""
    for key_attr, provenance in (("normalized_name", "name_match"), ("entity_key", "type_match")):
        by_key: dict[str, list[str]] = defaultdict(list)
        for o in outputs:
            if g.nodes[o][key_attr]:
                by_key[g.nodes[o][key_attr]].append(o)
        for i in inputs:
            ia = g.nodes[i]
            kind = (
                "entity_suffix"
                if key_attr == "entity_key" and ia["entity_key_by"] == "suffix"
                else provenance
            )
            for o in by_key.get(ia[key_attr], []) if ia[key_attr] else []:
                if compatible(g, o, i) and (o, i) not in found.found:
                    what = "normalized name" if key_attr == "normalized_name" else "entity key"
                    found.add(o, i, kind, PROVENANCE_SCORE[kind], f"equal {what} {ia[key_attr]!r}")


def stated(g: nx.DiGraph, o: str) -> bool:
    """Whether an output is one its document states (or no document says otherwise): weak
    evidence needs it, not a field the environment's merged entity added."""
    return g.nodes[o]["documented"] is not False


def match_same_names(g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates) -> None:
    """`same_name`: the same field name on both sides, ids aside (their entity decides); a
    one-word number input also takes a number whose name qualifies that word (`distance` <-
    `converted_distance`: a converted distance is a distance)."""
    by_words: dict[tuple[str, ...], list[str]] = defaultdict(list)
    qualified_numbers: dict[str, list[str]] = defaultdict(list)
    for o in (o for o in outputs if stated(g, o)):
        ws = tuple(field_words(g.nodes[o]["name"]))
        if ws and ws[-1] not in ID_WORDS:
            by_words[ws].append(o)
            if len(ws) >= 2 and g.nodes[o]["type"] in ("number", "integer"):
                qualified_numbers[ws[-1]].append(o)
    for i in inputs:
        ia = g.nodes[i]
        ws = tuple(field_words(ia["name"]))
        # a quantity, not a cursor (`offset` <- `tz_offset`)
        qualified = qualified_numbers.get(ws[0], []) if len(ws) == 1 and ws[0] not in MACHINE_WORDS else []
        for o in by_words.get(ws, []) + [o for o in qualified if _both_numbers(g, o, i)]:
            single = len(ws) == 1
            # one shared word (`type`, `location`) links a lookup's result to an action in the same
            # environment; between two lookups it is only a shared attribute, unless it is a
            # quantity one computes and the other takes (`distance`, `time`)
            if single and (
                g.nodes[o]["env_id"] != ia["env_id"]
                or g.nodes[tool_of(o)]["tool_kind"] != "read"
                or (g.nodes[tool_of(i)]["tool_kind"] != "write" and not _both_numbers(g, o, i))
            ):
                continue
            if compatible(g, o, i):
                score = SINGLE_WORD_SAME_NAME_SCORE if single else PROVENANCE_SCORE["same_name"]
                output_name = "_".join(field_words(g.nodes[o]["name"]))
                text = (
                    f"same field name {'_'.join(ws)!r}"
                    if output_name == "_".join(ws)
                    else f"{output_name!r} is a {'_'.join(ws)!r}"
                )
                found.add(o, i, "same_name", score, text)


def _both_numbers(g: nx.DiGraph, o: str, i: str) -> bool:
    return g.nodes[o]["type"] in ("number", "integer") and g.nodes[i]["type"] in ("number", "integer")


def match_qualified_names(
    g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates
) -> None:
    """`qualified_name`: the input's name is the output's, qualified by a role word in front
    (`origin_sky_id` <- `sky_id`, `assignee_user_id` <- `user_id`; two words at least), or one of
    the alternatives an `or` name offers (`username_or_id_or_url` <- `username`)."""
    by_name: dict[tuple[str, ...], list[str]] = defaultdict(list)
    by_field: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for o in outputs:
        ws = tuple(g.nodes[o]["normalized_name"].split("_"))
        if len(ws) >= 2:
            by_name[ws].append(o)
        by_field[tuple(field_words(g.nodes[o]["name"]))].append(o)
    for i in inputs:
        if g.nodes[i]["entity_key"]:
            continue  # the spec says whose key it is (`cancelled_message_id` keys a CancelledMessage)
        name = g.nodes[i]["normalized_name"]
        ws = tuple(name.split("_"))
        for start in range(1, len(ws) - 1):
            for o in by_name.get(ws[start:], []):
                if compatible(g, o, i):
                    text = f"{name!r} is {'_'.join(ws[start:])!r} qualified by {'_'.join(ws[:start])!r}"
                    found.add(o, i, "qualified_name", PROVENANCE_SCORE["qualified_name"], text)
        alternatives = " ".join(field_words(g.nodes[i]["name"])).split(" or ")
        if len(alternatives) < 2:
            continue
        for alternative in alternatives:
            for o in by_field.get(tuple(alternative.split()), []):
                if compatible(g, o, i):
                    text = f"{g.nodes[i]['name']!r} takes a {alternative.replace(' ', '_')!r}"
                    found.add(o, i, "qualified_name", PROVENANCE_SCORE["qualified_name"], text)


def _tool_phrases(g: nx.DiGraph, tool: str) -> list[tuple[str, ...]]:
    """Word runs that name a tool in prose: the trailing two or more words of its name and of its
    source operation id (`sky_scrapper_search_airport` -> `search airport`, ...)."""
    a = g.nodes[tool]
    phrases: set[tuple[str, ...]] = set()
    for name in (a["name"], a["source_operation"].partition(":")[2]):
        ws = [singular(w) for w in words(name) if not w.isdigit()]
        phrases.update(tuple(ws[k:]) for k in range(0, max(0, len(ws) - 1)))
    return sorted(phrases)


def _contains(text_words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(text_words[k : k + n]) == phrase for k in range(len(text_words) - n + 1))


def match_described_sources(
    g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates
) -> None:
    """`described_source`: the input's description names a tool; its best-fitting output feeds it.

    A tool is named by the longest of its phrases found in the description (ties: every tool
    that long). Among the named tool's compatible outputs (ids, when the input is an id), the ones
    whose field names share most words with the input's (id words aside) win; none when no output
    shares a word (the entity's own key is left to the name matchers).
    """
    tools = sorted(n for n, a in g.nodes(data=True) if a["kind"] == "tool")
    phrases = {t: _tool_phrases(g, t) for t in tools}
    outputs_of: dict[str, list[str]] = defaultdict(list)
    for o in outputs:
        outputs_of[tool_of(o)].append(o)
    for i in inputs:
        ia = g.nodes[i]
        text = f"{ia['source_description']} {ia['description']}"
        text_words = [singular(w) for w in words(text)]
        if len(text_words) < 2:
            continue
        named: dict[str, int] = {}
        for t in tools:
            longest = max((len(p) for p in phrases[t] if _contains(text_words, p)), default=0)
            if longest and t != tool_of(i):
                named[t] = longest
        if not named:
            continue
        top = max(named.values())
        input_words = set(field_words(ia["name"]))
        wants_id = bool(input_words & ID_WORDS) and field_words(ia["name"])[-1] in ID_WORDS
        input_words -= ID_WORDS
        for t in sorted(k for k, v in named.items() if v == top):
            scored = []
            for o in outputs_of[t]:
                leaf = field_words(g.nodes[o]["name"])
                # an id takes an id: a row's timestamps share the entity's words, not its role
                if compatible(g, o, i) and (not wants_id or (leaf and leaf[-1] in ID_WORDS)):
                    scored.append((len(input_words & set(leaf)), o))
            best = max((s for s, _ in scored), default=0)
            picks = [o for s, o in scored if s == best] if best else []
            phrase = " ".join(next(p for p in phrases[t] if len(p) == top and _contains(text_words, p)))
            for o in picks:
                found.add(
                    o,
                    i,
                    "described_source",
                    PROVENANCE_SCORE["described_source"],
                    f"the description of {ia['name']!r} names {g.nodes[t]['name']!r} ({phrase!r})",
                )


def _example_values(attrs: Mapping[str, Any]) -> set[str]:
    """Example values specific enough to identify a flow (not 0/1/true, not one-character text)."""
    values = json.loads(attrs["examples"]) if attrs["examples"] else []
    return {str(v) for v in values if len(str(v)) >= 3 and str(v).lower() not in ("true", "false", "null")}


def match_examples(g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates) -> None:
    """`example`: the document gives the same example value for an output and an input."""
    by_value: dict[str, list[str]] = defaultdict(list)
    for o in outputs:
        for value in _example_values(g.nodes[o]):
            by_value[value].append(o)
    for i in inputs:
        for value in sorted(_example_values(g.nodes[i])):
            for o in by_value.get(value, []):
                if compatible(g, o, i):
                    found.add(
                        o,
                        i,
                        "example",
                        PROVENANCE_SCORE["example"],
                        f"both documented with example {value!r}",
                    )


def match_links(
    g: nx.DiGraph, outputs: list[str], inputs: list[str], found: FeedCandidates, sources: SourceDocuments
) -> None:
    """`link`: an OpenAPI response link says which output fills which parameter of which operation."""
    tools_by_source: dict[str, list[str]] = defaultdict(list)
    for n, a in g.nodes(data=True):
        if a["kind"] == "tool" and a["source_operation"]:
            tools_by_source[a["source_operation"]].append(n)
    outputs_of: dict[str, list[str]] = defaultdict(list)
    for o in outputs:
        outputs_of[tool_of(o)].append(o)
    input_set = set(inputs)
    for source, producers in sorted(tools_by_source.items()):
        op = sources.operations.get(source)
        if op is None:
            continue
        resource_id = source.partition(":")[0]
        for link in op.links:
            for param, expression in link.parameters.items():
                pointer = expression.partition("#")[2] if expression.startswith("$response.body") else ""
                segments = [s for s in pointer.split("/") if s and not s.isdigit()]
                if not segments:
                    continue
                for consumer in tools_by_source.get(f"{resource_id}:{link.operation_id}", []):
                    i = f"{consumer}::in::{snake_case(param)}"
                    if i not in input_set:
                        continue
                    for producer in producers:
                        for o in outputs_of[producer]:
                            if g.nodes[o]["name"].rsplit(".", 1)[-1] == segments[-1] and compatible(g, o, i):
                                found.add(
                                    o,
                                    i,
                                    "link",
                                    PROVENANCE_SCORE["link"],
                                    f"the document links {op.operation_id} to {link.operation_id}: "
                                    f"{param} = {expression}",
                                )


def param_text(attrs: Mapping[str, Any]) -> str:
    """The text similarity matchers compare: names, type and the document's own description."""
    name_words = " ".join(words(attrs["normalized_name"]) + words(attrs["name"]))
    description = attrs["source_description"] or attrs["description"]
    return f"{name_words} ({attrs['type']}): {description}"


def _cosine_pairs(vectors_out: Any, vectors_in: Any) -> Any:
    import numpy as np

    a = np.asarray(vectors_out, dtype=float)
    b = np.asarray(vectors_in, dtype=float)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


class TextSimilarity:
    """TF-IDF cosines of every (output, input) pair of texts (`param_text`), offline."""

    def __init__(self, g: nx.DiGraph, outputs: list[str], inputs: list[str]) -> None:
        self.outputs, self.inputs = outputs, inputs
        self.row = {o: r for r, o in enumerate(outputs)}
        self.col = {i: c for c, i in enumerate(inputs)}
        self.texts_out = [param_text(g.nodes[o]) for o in outputs]
        self.texts_in = [param_text(g.nodes[i]) for i in inputs]
        self.matrix: Any = None
        if outputs and inputs:
            from sklearn.feature_extraction.text import TfidfVectorizer

            tfidf = TfidfVectorizer(token_pattern=r"[a-z0-9]+", sublinear_tf=True).fit(
                self.texts_out + self.texts_in
            )
            self.matrix = (tfidf.transform(self.texts_out) @ tfidf.transform(self.texts_in).T).toarray()

    def get(self, pair: tuple[str, str], default: float = 0.0) -> float:
        o, i = pair
        if self.matrix is None or o not in self.row or i not in self.col:
            return default
        return float(self.matrix[self.row[o], self.col[i]])


def match_similar_texts(
    g: nx.DiGraph,
    similarity: TextSimilarity,
    found: FeedCandidates,
    *,
    tfidf_threshold: float,
    embed_fn: EmbedFn | None = None,
    similarity_threshold: float = 0.85,
) -> None:
    """`embedding` and `tfidf`: cosine of the parameters' texts at or above the thresholds."""
    if similarity.matrix is None:
        return
    import numpy as np

    outputs, inputs = similarity.outputs, similarity.inputs

    def add_similar(matrix: Any, threshold: float, provenance: str) -> None:
        rows, cols = np.nonzero(matrix >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            o, i = outputs[r], inputs[c]
            if compatible(g, o, i) and stated(g, o):
                found.add(
                    o, i, provenance, float(matrix[r, c]), f"cosine {float(matrix[r, c]):.2f} of the texts"
                )

    if embed_fn is not None:
        vectors = list(embed_fn(similarity.texts_out + similarity.texts_in))
        add_similar(
            _cosine_pairs(vectors[: len(outputs)], vectors[len(outputs) :]), similarity_threshold, "embedding"
        )
    add_similar(similarity.matrix, tfidf_threshold, "tfidf")


def match_roles(
    g: nx.DiGraph,
    outputs: list[str],
    inputs: list[str],
    found: FeedCandidates,
    descriptors: Sequence[EnvDescriptor],
    similarity: TextSimilarity,
) -> None:
    """`value_role`: an input that takes any value of a kind, fed by outputs of that kind within
    its service (see `value_roles`)."""
    stated_outputs = [o for o in outputs if stated(g, o)]
    for o, i, role in match_value_roles(g, stated_outputs, inputs, descriptors, similarity):
        evidence = f"{g.nodes[i]['name']!r} takes {ROLE_PHRASES[role]}"
        if compatible(g, o, i):
            found.add(o, i, "value_role", VALUE_ROLE_SCORE, evidence)
        elif how := written_as(role, g.nodes[o], g.nodes[i]):
            found.add(o, i, "value_role", VALUE_ROLE_SCORE, f"{evidence}, {how}")


def match_with_llm(
    g: nx.DiGraph,
    outputs: list[str],
    inputs: list[str],
    found: FeedCandidates,
    descriptors: Sequence[EnvDescriptor],
    llm_edge_fn: LLMEdgeFn,
    errors: list[dict[str, Any]],
) -> None:
    """`llm`: add-only, within each service (world): a pair across worlds or of one tool is refused."""
    world_of = {d.env_id: d.world_id for d in descriptors}
    for world in sorted(set(world_of.values())):
        w_out = [{"id": o, **g.nodes[o]} for o in outputs if world_of[g.nodes[o]["env_id"]] == world]
        known: dict[str, list[str]] = defaultdict(list)
        for o, i in found.found:
            known[i].append(o)
        w_in = [
            {"id": i, **g.nodes[i], "known_producers": sorted(known.get(i, []))}
            for i in inputs
            if world_of[g.nodes[i]["env_id"]] == world
        ]
        if not w_out or not w_in:
            continue
        for o, i in llm_edge_fn(world, w_out, w_in):
            valid = (
                o in g
                and i in g
                and g.nodes[o]["kind"] == "output"
                and g.nodes[i]["kind"] == "input"
                and world_of.get(g.nodes[o]["env_id"]) == world == world_of.get(g.nodes[i]["env_id"])
                and tool_of(o) != tool_of(i)
            )
            if not valid:
                errors.append(
                    {
                        "env_id": None,
                        "stage": "tool_graph",
                        "reason": f"LLM edge {o!r} -> {i!r} ignored: not an output and an input of "
                        f"two tools of service {world}",
                    }
                )
            elif not compatible(g, o, i):
                errors.append(
                    {
                        "env_id": None,
                        "stage": "tool_graph",
                        "reason": f"LLM edge {o!r} -> {i!r} ignored: types {g.nodes[o]['type']} and "
                        f"{g.nodes[i]['type']} do not fit",
                    }
                )
            else:
                found.add(o, i, "llm", PROVENANCE_SCORE["llm"], f"proposed by the LLM within service {world}")
