"""Environment proposals from authentic resources (template backend of `env_proposals`).

Rules, applied per resource in document order, deterministic:
1. Auth/token plumbing (`/oauth/token`, login/logout, API keys, webhooks signing ...) is not a
   workflow anyone simulates; those operations are skipped and counted in the metrics.
2. One group per tag (a tag is a workflow area). Operations without a tag are grouped by the
   first path segment left after stripping version segments (`v1`, `api`) and the prefix every
   path of the resource shares; MCP tool listings (no paths) form one group per server.
3. Small groups (fewer than `SMALL_GROUP` operations) of the same domain that share vocabulary
   (words of parameter, field and schema names, minus generic ones such as `id` or `limit`) are
   merged, up to `MAX_MERGED` operations, into one proposal citing every resource id involved:
   the three Amadeus hotel files become one list -> search offers -> book environment. Groups of
   different documents merge only when the documents describe one service, i.e. state a common
   API host (`servers`/`host`); shared words alone (`article`, `course`) do not make two vendors
   one service, and a proposal spanning them would put both into one world (`envgen.worlds`).

Operation ids in a proposal are qualified as `<resource_id>:<operation_id>` because merged
proposals span resources whose operation ids may collide.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from envfactory_dagster.envgen.naming import entity_name, pascal_case, singular, words
from envfactory_dagster.envgen.spec_inference import locate_entity_schema
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedSpec
from envfactory_dagster.lineage import content_id

SMALL_GROUP = 5
MAX_MERGED = 14
MIN_SHARED_WORDS = 2

_AUTH_PATH = re.compile(
    r"(^|/)(oauth2?|token|tokens|auth|login|logout|signin|signout|session|sessions|api[-_]?keys?)(/|$)", re.I
)
_AUTH_TAG = re.compile(r"^(o?auth(entication|orization)?|oauth2?|tokens?|login|sessions?)$", re.I)
_VERSION_SEGMENT = re.compile(r"^(v\d+(\.\d+)*|api|rest|\d+(\.\d+)*)$", re.I)
# Words too common in API descriptions to say two resources are about the same thing.
GENERIC_WORDS = frozenset(
    [
        "id",
        "ids",
        "name",
        "names",
        "type",
        "types",
        "limit",
        "page",
        "size",
        "offset",
        "cursor",
        "count",
        "total",
        "sort",
        "order",
        "by",
        "fields",
        "field",
        "include",
        "filter",
        "filters",
        "q",
        "query",
        "lang",
        "language",
        "code",
        "codes",
        "status",
        "date",
        "time",
        "created",
        "updated",
        "at",
        "the",
        "of",
        "for",
        "and",
        "to",
        "in",
        "on",
        "a",
        "an",
        "is",
        "get",
        "list",
        "create",
        "update",
        "delete",
        "fetch",
        "search",
        "find",
        "all",
        "one",
        "data",
        "meta",
        "links",
        "value",
        "values",
        "description",
        "url",
        "uri",
        "key",
        "keys",
        "item",
        "items",
        "result",
        "results",
        "response",
        "request",
        "body",
        "info",
        "v1",
        "v2",
        "v3",
        "api",
        "x",
        "next",
        "previous",
        "self",
        "href",
        "format",
        "version",
        "from",
        "since",
        "before",
        "after",
        "start",
        "end",
        "max",
        "min",
        "per",
        "number",
        "string",
        "boolean",
        "object",
        "array",
        "plan",
        "user",
        "users",
        "account",
        "accounts",
    ]
)


@dataclass
class OperationGroup:
    label: str
    resource_ids: list[str]
    titles: list[str]
    purpose: str
    operations: list[tuple[str, NormalizedOperation]]  # (resource_id, operation)
    vocabulary: set[str] = field(default_factory=set)
    domain: str = ""
    hosts: set[str] = field(default_factory=set)  # API hosts its documents state


def is_auth_plumbing(op: NormalizedOperation) -> bool:
    """True for token/login/credential operations that no user workflow needs simulated."""
    if op.path and _AUTH_PATH.search(op.path):
        return True
    return any(_AUTH_TAG.match(t.strip()) for t in op.tags)


def _schema_words(schema: dict[str, Any] | None, depth: int = 0) -> set[str]:
    if not isinstance(schema, dict) or depth > 2:
        return set()
    found: set[str] = set()
    ref_name = schema.get("x-ref-name")
    if isinstance(ref_name, str):
        found.update(words(ref_name.rsplit(".", 1)[-1]))
    for name, sub in (schema.get("properties") or {}).items():
        found.update(words(name))
        found |= _schema_words(sub, depth + 1)
    found |= _schema_words(schema.get("items"), depth + 1)
    return found


def operation_vocabulary(op: NormalizedOperation) -> set[str]:
    """Specific words naming what an operation works with (parameters, fields, schemas, path)."""
    found: set[str] = set()
    for param in op.parameters:
        if param.location in ("header", "cookie"):
            continue
        found.update(words(param.name))
    found |= _schema_words(op.request_body)
    found |= _schema_words(op.response)
    for segment in (op.path or "").split("/"):
        if segment and not segment.startswith("{"):
            found.update(words(segment))
    stems = {w[:-1] if w.endswith("s") and len(w) > 4 else w for w in found}
    return {w for w in stems if len(w) > 2 and w not in GENERIC_WORDS}


def _path_group_key(path: str, shared_prefix: list[str]) -> str:
    segments = [s for s in path.strip("/").split("/") if s]
    segments = segments[len(shared_prefix) :]
    for segment in segments:
        if segment.startswith("{") or _VERSION_SEGMENT.match(segment):
            continue
        return segment
    return shared_prefix[-1] if shared_prefix else "root"


def _shared_path_prefix(paths: list[str]) -> list[str]:
    split = [[s for s in p.strip("/").split("/") if s] for p in paths]
    prefix: list[str] = []
    for parts in zip(*split, strict=False):
        if len(set(parts)) != 1 or parts[0].startswith("{"):
            break
        prefix.append(parts[0])
    # keep at least one segment of the shortest path so a group key remains
    shortest = min((len(s) for s in split), default=0)
    return prefix[: max(0, min(len(prefix), shortest - 1))]


def _first_sentences(text: str, limit: int = 2) -> str:
    text = re.sub(r"<[^>]+>|\s+", " ", text or "").strip()
    sentences = re.split(r"(?<=[.!?])\s+", text)
    return " ".join(sentences[:limit])[:400].strip()


def _vendor(spec: NormalizedSpec) -> str:
    real = spec.extensions.get("x-real-service")
    source = real if isinstance(real, str) and real else spec.title
    first = words(source.split("—")[0].split(" - ")[0])
    return pascal_case(first[0]) if first else "Service"


def group_operations(
    resource_id: str, domain: str, spec: NormalizedSpec
) -> tuple[list[OperationGroup], list[str]]:
    """Workflow groups of one resource, and the qualified ids of skipped auth operations."""
    skipped = [f"{resource_id}:{op.operation_id}" for op in spec.operations if is_auth_plumbing(op)]
    ops = [op for op in spec.operations if not is_auth_plumbing(op)]
    shared_prefix = _shared_path_prefix([op.path for op in ops if op.path])
    buckets: dict[str, list[NormalizedOperation]] = {}
    for op in ops:
        if op.tags:
            key = op.tags[0]
        elif op.path:
            key = _path_group_key(op.path, shared_prefix)
        else:
            key = spec.title
        buckets.setdefault(key, []).append(op)
    vendor = _vendor(spec)
    groups = []
    for key, members in buckets.items():
        label_words = [w for w in words(key) if pascal_case(w) != vendor]
        label = pascal_case(" ".join(label_words)) if label_words else ""
        purpose = (
            _first_sentences(spec.tags.get(key, ""))
            or _first_sentences(spec.description)
            or _first_sentences(" ".join(op.summary for op in members if op.summary), 3)
            or f"Operations of {spec.title} about {key}."
        )
        vocabulary: set[str] = set()
        for op in members:
            vocabulary |= operation_vocabulary(op)
        groups.append(
            OperationGroup(
                label=f"{vendor}{label}",
                resource_ids=[resource_id],
                titles=[f"{spec.title} — {key}" if key != spec.title else spec.title],
                purpose=purpose,
                operations=[(resource_id, op) for op in members],
                vocabulary=vocabulary,
                domain=domain,
                hosts=set(spec.hosts),
            )
        )
    return groups, skipped


def merge_small_groups(groups: list[OperationGroup]) -> list[OperationGroup]:
    """Merge small groups of one service that share vocabulary (greedy by overlap, deterministic)."""
    small = [i for i, g in enumerate(groups) if len(g.operations) < SMALL_GROUP]
    parent = list(range(len(groups)))
    size = [len(g.operations) for g in groups]
    resources = [set(g.resource_ids) for g in groups]
    hosts = [set(g.hosts) for g in groups]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    pairs = []
    for a_pos, a in enumerate(small):
        for b in small[a_pos + 1 :]:
            shared = len(groups[a].vocabulary & groups[b].vocabulary)
            if shared >= MIN_SHARED_WORDS:
                pairs.append((-shared, a, b))
    for _, a, b in sorted(pairs):
        ra, rb = root(a), root(b)
        one_service = resources[ra] == resources[rb] or bool(hosts[ra] & hosts[rb])
        if ra != rb and one_service and size[ra] + size[rb] <= MAX_MERGED:
            parent[rb] = ra
            size[ra] += size[rb]
            resources[ra] |= resources[rb]
            hosts[ra] |= hosts[rb]
    clusters: dict[int, list[int]] = {}
    for i in range(len(groups)):
        clusters.setdefault(root(i), []).append(i)
    merged = []
    for members in sorted(clusters.values()):
        if len(members) == 1:
            merged.append(groups[members[0]])
            continue
        parts = [groups[i] for i in members]
        resource_ids = list(dict.fromkeys(r for p in parts for r in p.resource_ids))
        label_words = list(dict.fromkeys(singular(w) for p in parts for w in words(p.label)))
        merged.append(
            OperationGroup(
                label=pascal_case(" ".join(label_words[:4])),
                resource_ids=resource_ids,
                titles=[t for p in parts for t in p.titles],
                purpose=" ".join(dict.fromkeys(p.purpose for p in parts))[:600],
                operations=[o for p in parts for o in p.operations],
                vocabulary=set().union(*(p.vocabulary for p in parts)),
                domain=parts[0].domain,
                hosts=set().union(*(p.hosts for p in parts)),
            )
        )
    return merged


def _entities_of(operations: Iterable[tuple[str, NormalizedOperation]]) -> list[str]:
    """Names of the entities the operations return or take (schema names), most used first."""
    names: Counter[str] = Counter()
    for _, op in operations:
        for schema in (op.response, op.request_body):
            name = _named_entity(schema)
            if name:
                names[name] += 1
    return [n for n, _ in sorted(names.items(), key=lambda kv: (-kv[1], kv[0]))]


def _named_entity(schema: dict[str, Any] | None) -> str | None:
    located = locate_entity_schema(schema)
    if located is None:
        return None
    entity_schema, _ = located
    ref_name = entity_schema.get("x-ref-name")
    if not isinstance(ref_name, str):
        return None
    return entity_name(re.sub(r"(Create|Update|Input|Request|Body|Response|Data)$", "", ref_name) or ref_name)


def propose_environments(
    resources: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Proposal rows (one per workflow group) and error rows from `authentic_resources` rows.

    Each row: id, domain, class_name, title, purpose, entities, operation_ids, resource_ids,
    backend. Returns (proposals, errors, metrics); metrics count skipped auth operations.
    """
    errors: list[dict[str, Any]] = []
    groups_by_domain: dict[str, list[OperationGroup]] = {}
    skipped_auth: list[str] = []
    for row in sorted(resources, key=lambda r: (str(r.get("domain")), str(r.get("id")))):
        resource_id = str(row.get("id"))
        source = row.get("source_path")
        try:
            raw = row["spec_json"]
            spec = (
                NormalizedSpec.model_validate_json(raw)
                if isinstance(raw, str | bytes)
                else NormalizedSpec.model_validate(raw)
            )
        except (KeyError, ValidationError, ValueError) as exc:
            errors.append(
                {
                    "resource_id": resource_id,
                    "domain": row.get("domain"),
                    "stage": "env_proposals",
                    "reason": f"resource {resource_id} ({source}): unreadable spec_json: {exc}"[:1000],
                }
            )
            continue
        groups, skipped = group_operations(resource_id, str(row["domain"]), spec)
        skipped_auth += skipped
        if not groups:
            errors.append(
                {
                    "resource_id": resource_id,
                    "domain": row.get("domain"),
                    "stage": "env_proposals",
                    "reason": f"resource {resource_id} ({source}): "
                    f"no operations left after skipping {len(skipped)} auth operations",
                }
            )
            continue
        groups_by_domain.setdefault(str(row["domain"]), []).extend(groups)

    proposals = []
    for domain, groups in groups_by_domain.items():
        used: Counter[str] = Counter()
        for group in merge_small_groups(groups):
            used[group.label] += 1
            class_name = group.label if used[group.label] == 1 else f"{group.label}{used[group.label]}"
            body = {
                "domain": domain,
                "class_name": class_name,
                "title": " + ".join(group.titles),
                "purpose": group.purpose,
                "entities": _entities_of(group.operations),
                "operation_ids": [f"{rid}:{op.operation_id}" for rid, op in group.operations],
                "resource_ids": group.resource_ids,
                "backend": "template",
            }
            proposals.append({"id": content_id(body, "prop_"), **body})
    metrics = {
        "proposals": len(proposals),
        "errors": len(errors),
        "skipped_auth_operations": len(skipped_auth),
        "skipped_auth_operation_ids": skipped_auth,
        "skipped_reason": "auth/token plumbing (token, login, session, API-key operations) is not simulated",
    }
    return proposals, errors, metrics
