"""Gold call sequences against the tool graph: how much of the real data flow it finds.

A gold-flow file is a JSON list of requests, each `{"input": <the user's request>, "output":
[{"name": <operation>, "arguments": {...}, "label": "var1"}, ...]}` (the format of the NESTFUL
benchmark's `*-data.json`): an argument written `$var1.skyId$` (alone or inside a string or list)
takes the field `skyId` of the output of the call labelled `var1`, a gold edge from that output
field to that input parameter. Calls are matched to graph tools by the operation their tool was
cut from (`source_operation_id`), parameters by name, fields by path (`author[0].id` ~
`author[].id`; a field of an object the environment's rows absorbed, `location.name` of a
location row, matches the row's `name`). A call naming no operation of the graph (a pseudo-call
that gathers the results, or an operation the catalog lacks) is dropped from its sequence; a
request whose dropped call feeds a later one is not covered.

Figures (all over the covered requests, distinct gold edges where said):
- `param_recall`: distinct gold edges (producer operation, field, consumer operation, parameter)
  found as a `feeds` edge from a matching output to the matching input (`param_recall_kept`: the
  same over the gold edges whose field and parameter the environments kept, what matching can
  reach; EnvGen drops some: a field named `Exchange Rate`, a nested `company.cik`);
- `prerequisite_recall`: dependent calls (calls taking an earlier call's output) with a tool ->
  tool edge from one of their gold producers (`pair_recall`: the same over distinct tool pairs);
- `precision`: tool -> tool edges among each request's tools that are gold pairs of it (micro;
  `precision_forward`: the same over edges from an earlier call's tool to a later one's);
  `precision_union_of_gold` (`..._forward`): the same figures for a graph that is exactly the
  union of all requests' gold tool pairs. A graph built without the requests holds one edge set
  for all of them: a flow one request uses is a false positive in another that calls the same two
  tools without it (or in the other order). This is the precision such a graph has while it keeps
  every gold pair (a ceiling at full pair recall, not for a graph that drops gold pairs);
  `precision_oriented_by_gold`: the graph's precision when each two tools that feed each other
  keep only the direction the gold uses (when it uses just one), at unchanged recall: what any
  rule that orders mutual edges could reach;
  Acceptance reads `precision_forward`. An edge from a later call's tool to an earlier one's claims
  a flow the request cannot show or refute (the later call had not run when the earlier one did),
  yet all-pairs `precision` counts it wrong: that is why even the union of the gold pairs scores
  0.81 on NESTFUL glaive, and why 0.6 all-pairs is out of reach there for any rule that reads only
  the documents (the glaive test says what was tried). Both figures are printed;
- `valid_share`: gold sequences `validate_chain` accepts; `producible_share`: those that are
  also connected by graph edges wherever the gold says a call feeds another (what the
  topology-aware sampler needs to draw them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfactory_dagster.envgen.naming import snake_case

_REFERENCE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)(?:\.([^$]*))?\$")


class GoldFlowError(ValueError):
    """A gold-flow file that cannot be read (the message names the file and the problem)."""


@dataclass(frozen=True)
class GoldCall:
    operation: str
    label: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class GoldEdge:
    producer: str  # operation
    field: str  # path in the producer's output
    consumer: str  # operation
    param: str


@dataclass
class GoldRequest:
    index: int
    text: str
    calls: list[GoldCall]
    # (consumer call position, producer call position, field, param)
    references: list[tuple[int, int, str, str]] = field(default_factory=list)


def load_gold_flows(path: Path) -> list[GoldRequest]:
    """The requests of a gold-flow file; `GoldFlowError` naming the file on bad content."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GoldFlowError(f"gold-flow file {path}: cannot be read as JSON: {error}") from error
    if not isinstance(raw, list):
        raise GoldFlowError(f"gold-flow file {path}: a {type(raw).__name__}, not a list of requests")
    requests = []
    for index, item in enumerate(raw):
        calls_raw = item.get("output") if isinstance(item, dict) else None
        if not isinstance(calls_raw, list):
            raise GoldFlowError(f"gold-flow file {path}: request {index} has no 'output' list of calls")
        calls = []
        for position, call in enumerate(calls_raw):
            if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                raise GoldFlowError(f"gold-flow file {path}: request {index}, call {position} has no 'name'")
            arguments = call.get("arguments") if isinstance(call.get("arguments"), dict) else {}
            calls.append(GoldCall(call["name"], str(call.get("label") or ""), arguments))
        request = GoldRequest(index, str(item.get("input") or ""), calls)
        position_of = {c.label: p for p, c in enumerate(calls) if c.label}
        for position, call in enumerate(calls):
            for param, value in call.arguments.items():
                for label, path in _REFERENCE.findall(json.dumps(value)):
                    producer = position_of.get(label)
                    if producer is not None and producer < position:
                        request.references.append((position, producer, path, str(param)))
        requests.append(request)
    return requests


def _segments(path: str) -> list[str]:
    return [snake_case(s) for s in re.sub(r"\[\d*\]", "", path).split(".") if s]


class _GraphIndex:
    """Operation -> tools, and field / parameter lookups, over a tool graph (any build of it)."""

    def __init__(self, tg: Any) -> None:
        self.tg = tg
        self.tools_of: dict[str, list[str]] = {}
        for t in tg.tools:
            source = tg.tool_spec(t).source_operation_id or ""
            self.tools_of.setdefault(source.partition(":")[2], []).append(t)
        self.outputs_of: dict[str, list[str]] = {}
        for n, a in tg.graph.nodes(data=True):
            if a["kind"] == "output":
                tool = "::".join(n.split("::", 2)[:2])
                self.outputs_of.setdefault(tool, []).append(n)

    def outputs(self, tool: str, path: str) -> list[str]:
        wanted = _segments(path)
        nodes = self.outputs_of.get(tool, [])
        paths = {o: _segments(self.tg.node(o)["name"]) for o in nodes}
        heads = {p[0] for p in paths.values() if p}
        # one top-level container (the rows a tool returns): paths are relative to it
        relative = {o: p[1:] if len(heads) == 1 and len(p) > 1 else p for o, p in paths.items()}
        fields = {s for p in relative.values() for s in p}
        found = [o for o, p in relative.items() if p == wanted]
        if not found and len(wanted) >= 2 and wanted[-2] not in fields:
            found = [o for o, p in relative.items() if p == wanted[-1:]]  # the container was absorbed
        return found

    def input(self, tool: str, param: str) -> str | None:
        for i in self.tg.tool_inputs.get(tool, []):
            name = self.tg.node(i)["name"]
            if name == param or snake_case(name) == snake_case(param):
                return i
        return None


def evaluate_gold_flows(tg: Any, requests: Sequence[GoldRequest]) -> dict[str, Any]:
    """Recall, precision and sampler figures of a tool graph against gold requests (see module)."""
    from envfactory_dagster.querygen.tool_chains import Chain, validate_chain

    index = _GraphIndex(tg)
    successors = {t: set(tg.tool_successors.get(t, [])) for t in tg.tools}
    edges: dict[GoldEdge, bool] = {}
    present: dict[GoldEdge, bool] = {}  # both ends exist as graph nodes
    dependent = found_dependent = 0
    pairs: dict[tuple[str, str], bool] = {}
    # per covered request: its tools, each tool's first call, its gold pairs (for the union figure)
    request_sets: list[tuple[set[str], dict[str, int], set[tuple[str, str]]]] = []
    valid = producible = sequences = covered = 0
    missed: list[str] = []
    for request in requests:
        tools = [index.tools_of.get(c.operation, []) for c in request.calls]
        producers = {p for _, p, _, _ in request.references}
        if any(not tools[p] for p in producers):
            continue  # a call the graph does not know feeds a later one
        covered += 1
        gold_pairs: set[tuple[str, str]] = set()
        consumers: dict[int, set[str]] = {}
        for consumer, producer, path, param in request.references:
            if not tools[consumer]:
                continue
            if path:  # a whole output passed on (`$var1$`) is a tool-level dependency only
                edge = GoldEdge(
                    request.calls[producer].operation, path, request.calls[consumer].operation, param
                )
                hit = any(
                    _feeds(tg, index, a, path, b, param) for a in tools[producer] for b in tools[consumer]
                )
                edges[edge] = edges.get(edge, False) or hit
                present[edge] = present.get(edge, False) or any(
                    index.outputs(a, path) and index.input(b, param)
                    for a in tools[producer]
                    for b in tools[consumer]
                )
            for a in tools[producer]:
                for b in tools[consumer]:
                    gold_pairs.add((a, b))
                    pairs[(a, b)] = pairs.get((a, b), False) or b in successors.get(a, set())
            consumers.setdefault(consumer, set()).update(tools[producer])
        for consumer, sources in consumers.items():
            dependent += 1
            if any(b in successors.get(a, set()) for a in sources for b in tools[consumer]):
                found_dependent += 1
            else:
                sources_named = sorted(
                    {request.calls[p].operation for c, p, _, _ in request.references if c == consumer}
                )
                consumer_op = request.calls[consumer].operation
                missed.append(f"request {request.index}: {consumer_op} has no edge from {sources_named}")
        in_request = {t for ts in tools for t in ts}
        first = {}
        for position, ts in enumerate(tools):
            for t in ts:
                first.setdefault(t, position)
        request_sets.append((in_request, first, gold_pairs))
        chain_tools = [ts[0] for ts in tools if ts]
        if len(chain_tools) >= 2:
            sequences += 1
            envs = {t.split("::", 1)[0] for t in chain_tools}
            chain = Chain(
                id="gold",
                domain=tg.domain,
                seed=0,
                sampler="topology",
                env_ids=sorted(envs),
                tools=chain_tools,
                turns=[list(range(len(chain_tools)))],
            )
            ok = not validate_chain(chain, tg, max_envs=max(3, len(envs)))
            valid += ok
            producible += ok and all(b in successors.get(a, set()) for a, b in gold_pairs if a != b)
    union: dict[str, set[str]] = {}
    for _, _, gold_pairs in request_sets:
        for a, b in gold_pairs:
            union.setdefault(a, set()).add(b)
    tp, predicted, tp_forward, predicted_forward = _precision_counts(successors, request_sets)
    union_counts = _precision_counts(union, request_sets)
    oriented = {
        a: {b for b in bs if b in union.get(a, set()) or a not in union.get(b, set())}
        for a, bs in successors.items()
    }
    oriented_counts = _precision_counts(oriented, request_sets)
    found = sum(edges.values())
    return {
        "requests": len(requests),
        "covered_requests": covered,
        "gold_param_edges": len(edges),
        "param_edges_found": found,
        "param_recall": _share(found, len(edges)),
        "param_edges_with_both_ends": sum(present.values()),
        "param_recall_kept": _share(
            sum(hit and present[e] for e, hit in edges.items()), sum(present.values())
        ),
        "dependent_calls": dependent,
        "prerequisite_recall": _share(found_dependent, dependent),
        "gold_tool_pairs": len(pairs),
        "pair_recall": _share(sum(pairs.values()), len(pairs)),
        "predicted_pairs_in_requests": predicted,
        "precision": _share(tp, predicted),
        "precision_forward": _share(tp_forward, predicted_forward),
        "precision_union_of_gold": _share(union_counts[0], union_counts[1]),
        "precision_union_of_gold_forward": _share(union_counts[2], union_counts[3]),
        "precision_oriented_by_gold": _share(oriented_counts[0], oriented_counts[1]),
        "gold_sequences": sequences,
        "valid_share": _share(valid, sequences),
        "producible_share": _share(producible, sequences),
        "missed_param_edges": sorted(
            f"{e.producer}.{e.field} -> {e.consumer}.{e.param}"
            + ("" if present[e] else " (an end is not kept)")
            for e, hit in edges.items()
            if not hit
        ),
        "missed_prerequisites": missed,
    }


def _precision_counts(
    successors: Mapping[str, set[str]],
    request_sets: Sequence[tuple[set[str], Mapping[str, int], set[tuple[str, str]]]],
) -> tuple[int, int, int, int]:
    """(true, predicted, true forward, predicted forward) tool -> tool edges among each request's
    tools (its tools, each one's first call, its gold pairs); forward: from an earlier call's
    tool to a later one's, an edge the request's order could have used."""
    tp = predicted = tp_forward = predicted_forward = 0
    for in_request, first, gold_pairs in request_sets:
        for a in in_request:
            for b in successors.get(a, set()) & in_request - {a}:
                predicted += 1
                tp += (a, b) in gold_pairs
                if first[a] < first[b]:
                    predicted_forward += 1
                    tp_forward += (a, b) in gold_pairs
    return tp, predicted, tp_forward, predicted_forward


def _feeds(tg: Any, index: _GraphIndex, producer: str, path: str, consumer: str, param: str) -> bool:
    target = index.input(consumer, param)
    if target is None:
        return False
    return any(
        tg.graph.has_edge(o, target) and tg.graph.edges[o, target]["kind"] == "feeds"
        for o in index.outputs(producer, path)
    )


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def covers(tg: Any, requests: Iterable[GoldRequest], min_share: float = 0.5) -> bool:
    """Whether a graph holds at least `min_share` of the operations the requests call."""
    index = _GraphIndex(tg)
    operations = {c.operation for r in requests for c in r.calls}
    known = sum(bool(index.tools_of.get(op)) for op in operations)
    return bool(operations) and known / len(operations) >= min_share


def gold_flow_metrics(tg: Any, paths: Sequence[str | Path], min_share: float = 0.5) -> dict[str, Any]:
    """Figures per gold-flow file whose operations the graph covers (`covers`), keyed by file
    name; unreadable files are listed under `errors`, files of other domains are skipped."""
    out: dict[str, Any] = {}
    errors = []
    for path in paths:
        try:
            requests = load_gold_flows(Path(path))
        except GoldFlowError as error:
            errors.append(str(error))
            continue
        if covers(tg, requests, min_share):
            figures = evaluate_gold_flows(tg, requests)
            out[Path(path).name] = {k: v for k, v in figures.items() if not k.startswith("missed_")} | {
                "missed_param_edges": figures["missed_param_edges"][:20]
            }
    return {**out, **({"errors": errors} if errors else {})}


@dataclass(frozen=True)
class GoldFlowSet:
    """A function-calling catalog and its gold call sequences (`<name>-spec.json`, `<name>-data.json`)."""

    name: str
    catalog: Path
    gold: Path

    @property
    def domain(self) -> str:
        return snake_case(self.name)


def find_gold_flow_sets(root: Path) -> list[GoldFlowSet]:
    """Every `<name>-spec.json` below `root` that has a `<name>-data.json` beside it, by name."""
    sets = []
    for catalog in sorted(Path(root).rglob("*-spec.json")):
        gold = catalog.with_name(catalog.name[: -len("-spec.json")] + "-data.json")
        if gold.is_file():
            sets.append(GoldFlowSet(catalog.name[: -len("-spec.json")], catalog, gold))
    return sets


def link_catalog(gold_set: GoldFlowSet, resources_dir: Path) -> Path:
    """Make the set's catalog one domain folder of `resources_dir` (a symlink, never a copy), with
    a `SOURCES.json` license entry when a manifest beside the set names the file's license."""
    domain_dir = Path(resources_dir) / gold_set.domain
    domain_dir.mkdir(parents=True, exist_ok=True)
    target = domain_dir / gold_set.catalog.name
    if not target.exists():
        target.symlink_to(gold_set.catalog.resolve())
    for folder in gold_set.catalog.resolve().parents:
        manifest = folder / "SOURCES.json"
        if manifest.is_file():
            entries = json.loads(manifest.read_text(encoding="utf-8"))
            relative = gold_set.catalog.resolve().relative_to(folder).as_posix()
            licenses = [
                e.get("license") for e in entries if isinstance(e, dict) and e.get("file") == relative
            ]
            if licenses and licenses[0]:
                (domain_dir / "SOURCES.json").write_text(
                    json.dumps([{"file": gold_set.catalog.name, "license": licenses[0]}])
                )
            break
    return domain_dir
