"""Environment specs from proposals (template backend of `env_specs`).

`build_env_spec(proposal, specs_by_resource_id)` reads the proposal's operations from the
normalized specs and infers, without special-casing any file:

Entities. An operation acts on the entity its success response names (the schema found by
descending through list wrappers such as `{"data": [...]}` or `{"data": {"accounts": [...]}}`,
named by its `x-ref-name`), else the one its request body names (`OrderCreate` -> `Order`),
else the collection segment of its path (`/lists/{tasklist}/tasks/{task}` -> `Task`), else the
noun of an MCP tool name (`create_directory` -> `Directory`). Operations on one item path act
on the entity the path's GET names, and a GET answering a fuller view of the entity its key names
(`/articles/{article_id}` -> `ArticleComplete`) acts on that entity (`Article`, the view's fields
added); a parent path parameter names the entity of the item path it keys (`/lists/{tasklist}/
tasks` -> TaskList when `/users/@me/lists/{tasklist}` returns one). Fields come from that schema
(`allOf` merged, a JSON:API `{id, type, attributes}` object lifted flat, one level; nested
objects stay `object` fields; a name that is no identifier is kept in snake_case, `Exchange Rate`
-> `exchange_rate`; an MCP result envelope `{content: [...]}` names no entity), keys
from `id`/`sid`/`uuid`/
`<entity>_id`/the item path parameter, foreign keys from `x-foreign-key` or `<entity>_id`/
`<entity>_sid` names (an id some parameter states as a string is a string wherever a response
types it as a number; an integer `<entity>_id` holds a key, so it is a string of digits). A key
keeps the form the document states for it or for its references (UUID, integer, pattern), and
keys are generated in that form (`envgen.key_forms`). Parent path parameters
(`/plans/{plan_id}/accounts`) become foreign-key fields of the child, and a row addressed under
its parent must belong to it (else `not_found`).
Entities referenced by a foreign key (and described by a component schema) but acted on by no
tool are `context` entities: lookups that are seeded and checked, not edited. An MCP entity that
a create tool fills gets generated ids; its natural key (`path`, `name`) is an ordinary field,
and tools that look it up by that argument are custom reads filtering on it.

Tools. One per operation; the action comes from method + path shape:
GET collection = list (search when the last segment is `search` or a `q`/`query`/`search`
parameter exists), GET item = get, POST collection = create, PUT/PATCH/POST item = update,
DELETE item = delete, POST item/<verb> = transition when `x-state-transition` says so or the
verb matches a value of the entity's status enum (cancel -> cancelled/canceled, pay -> paid ...).
MCP tools and catalog functions (no method) take the action from their name's verb under the
same rules: the first word, or a plain CRUD verb after a service prefix
(`SkyScrapperFlightSearch`, `Goodreads_Get_Authors_Books`). Their read/write kind comes from an
MCP read-only hint or a stated HTTP GET, else from the verb; a tool of no known verb is a write
when its name has a write word (`reserve`, `buy`, `schedule` ...) and a read when it documents
outputs (a computation or lookup that reports something: `calculate_tip`, `translate_text`).
Everything else is a `custom` tool with one honest generic behaviour:
- a custom read returns the rows of its entity whose fields equal the arguments that name a
  field (arguments naming no field are accepted and do not filter);
- a custom write records the request (its arguments) as a new row of a `<tool>_requests`
  collection and returns that row.
Create tools never take an id-like key (the environment assigns it); a body copy of the key
in an update is dropped (the path parameter says it).
Arguments of get/list/search tools that bind to no field are accepted and ignored (the tool
description says so); arguments of create/update/transition tools that bind to no field become
nullable fields of the entity, so what a caller writes is kept.

`param_fields` maps each input to the entity field it binds to; two reserved values mark
non-field inputs: `$limit` (maximum rows returned) and `$query` (case-insensitive text match
over the entity's string fields). An environment whose operations include no write is
read-only: it gets no invented write tool, and its description and every tool's effects say so.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from envfactory_dagster.envgen.business_rules import infer_business_rules
from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, FieldSpec, StateTransition, ToolSpec
from envfactory_dagster.envgen.field_semantics import annotate_spec
from envfactory_dagster.envgen.key_forms import DIGITS_PATTERN, stated_key_pattern, with_distinct_key_forms
from envfactory_dagster.envgen.naming import collection_name, entity_name, singular, snake_case, words
from envfactory_dagster.envgen.seed_data import pattern_is_samplable, referenced_first
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedParam, NormalizedSpec


class EnvSpecError(ValueError):
    """The proposal cannot be turned into an environment spec (the reason names the input)."""


MAX_FIELDS = 30
LIMIT_NAMES = frozenset({"limit", "page_size", "per_page", "max_results", "page_limit", "top", "max_items"})
QUERY_NAMES = frozenset({"q", "query", "search", "keyword", "keywords", "term", "text", "search_term"})
ID_LIKE_NAMES = frozenset({"id", "sid", "uuid", "key"})
KEY_NAMES = ("id", "sid", "uuid", "key", "code", "slug", "path", "name")
_VERSION_SEGMENT = re.compile(r"^(v\d+(\.\d+)*|api|rest|\d+(\.\d+)*|@me|me)$", re.I)
_BODY_SUFFIX = re.compile(
    r"(Create|Update|Patch|Input|Request|Body|Payload|Params|Wrapper|Post|Put|Save|New)+$"
)
_RESPONSE_SUFFIX = re.compile(r"(Response|Result|Resource|Wrapper|Envelope|Detail|Details|Summary)+$")

# verb of a transition -> the status values it may move to, first match wins
TRANSITION_VERBS: dict[str, tuple[str, ...]] = {
    "cancel": ("cancelled", "canceled"),
    "archive": ("archived",),
    "unarchive": ("active",),
    "pay": ("paid",),
    "close": ("closed",),
    "reopen": ("open", "reopened"),
    "open": ("open", "opened"),
    "approve": ("approved",),
    "reject": ("rejected",),
    "publish": ("published",),
    "unpublish": ("draft", "unpublished"),
    "complete": ("completed", "complete", "done"),
    "confirm": ("confirmed",),
    "ship": ("shipped",),
    "fulfill": ("fulfilled",),
    "deliver": ("delivered",),
    "refund": ("refunded",),
    "void": ("void", "voided"),
    "activate": ("active", "activated"),
    "deactivate": ("inactive", "deactivated"),
    "suspend": ("suspended",),
    "resume": ("active", "resumed"),
    "pause": ("paused",),
    "start": ("started", "in_progress", "running", "active"),
    "stop": ("stopped",),
    "resolve": ("resolved",),
    "acknowledge": ("acknowledged",),
    "assign": ("assigned",),
    "submit": ("submitted", "pending"),
    "accept": ("accepted",),
    "decline": ("declined",),
    "check_in": ("checked_in",),
    "checkin": ("checked_in",),
    "check_out": ("checked_out",),
    "checkout": ("checked_out",),
    "book": ("booked", "confirmed"),
    "send": ("sent",),
    "schedule": ("scheduled",),
    "expire": ("expired",),
    "lock": ("locked",),
    "unlock": ("unlocked", "active"),
    "block": ("blocked",),
    "unblock": ("active",),
    "enable": ("enabled", "active"),
    "disable": ("disabled", "inactive"),
    "finalize": ("finalized", "final"),
    "settle": ("settled",),
    "return": ("returned",),
    "restore": ("active", "restored"),
    "mute": ("muted",),
    "snooze": ("snoozed",),
}
MCP_VERBS = {
    **dict.fromkeys(("get", "read", "open", "fetch", "show", "view", "describe"), "get"),
    "list": "list",
    **dict.fromkeys(("search", "find", "query"), "search"),
    **dict.fromkeys(("create", "add", "new", "insert", "write"), "create"),
    **dict.fromkeys(("update", "edit", "set", "modify", "rename"), "update"),
    **dict.fromkeys(("delete", "remove"), "delete"),
}
# verbs found after a service prefix (`Tripadvisor_Search_Hotels`): the ones never used as nouns
_PREFIXED_VERBS = frozenset(
    ("get", "fetch", "list", "search", "find", "create", "add", "update", "delete", "remove")
)
# verbs of tools that change the world but that the noun rules must not drop (`order`, `record`)
_WRITE_ONLY_VERBS = frozenset(
    ("reserve", "buy", "purchase", "schedule", "register", "subscribe", "transfer", "submit", "play", "order")
)
WRITE_WORDS = frozenset(
    [
        "create",
        "add",
        "new",
        "insert",
        "write",
        "update",
        "edit",
        "set",
        "modify",
        "rename",
        "move",
        "delete",
        "remove",
        "post",
        "put",
        "patch",
        "send",
        "cancel",
        "clear",
        "import",
        "upload",
        "reset",
        "save",
        "book",
        "pay",
        "assign",
        "archive",
        "publish",
        "approve",
        "mark",
    ]
)


# -- JSON Schema helpers ---------------------------------------------------------------
def flatten_schema(schema: Any) -> dict[str, Any]:
    """One object-ish schema: `allOf` merged, the first non-null `oneOf`/`anyOf` branch taken,
    a JSON:API resource object (`{id, type, attributes: {...}}`) lifted to one flat object."""
    return _lift_json_api(_merge_combinators(schema))


def _lift_json_api(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties") or {}
    attributes = _merge_combinators(props.get("attributes")) if "attributes" in props else {}
    if not (attributes.get("properties") and ("type" in props or "id" in props)):
        return schema
    lifted = {
        k: v for k, v in props.items() if k not in ("attributes", "relationships", "links", "meta", "type")
    }
    lifted.update({k: v for k, v in attributes["properties"].items() if k not in lifted})
    required = [r for r in schema.get("required") or [] if r in lifted] + [
        r for r in attributes.get("required") or [] if r in lifted
    ]
    return {**schema, "properties": lifted, "required": list(dict.fromkeys(required))}


def _merge_combinators(schema: Any) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    if "allOf" in schema:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        props: dict[str, Any] = dict(merged.get("properties") or {})
        required: list[str] = list(merged.get("required") or [])
        for part in schema["allOf"]:
            flat = flatten_schema(part)
            props.update(flat.get("properties") or {})
            required += [r for r in flat.get("required") or [] if r not in required]
            for k, v in flat.items():
                if k not in ("properties", "required"):
                    merged.setdefault(k, v)
        merged["properties"], merged["required"] = props, required
        if props:
            merged.setdefault("type", "object")
        return merged
    for combo in ("oneOf", "anyOf"):
        if combo in schema and isinstance(schema[combo], list):
            branches = [b for b in schema[combo] if isinstance(b, dict) and b.get("type") != "null"]
            if branches:
                base = {k: v for k, v in schema.items() if k != combo}
                flat = flatten_schema(branches[0])
                nullable = len(branches) < len(schema[combo])
                return {**flat, **base, **({"nullable": True} if nullable else {})}
    return schema


def _is_object(schema: dict[str, Any]) -> bool:
    return bool(schema.get("properties")) and schema.get("type") in (None, "object")


def _has_key(schema: dict[str, Any]) -> bool:
    props = schema.get("properties") or {}
    return any(k in props for k in ("id", "sid", "uuid")) or any(
        k.lower().endswith(("_id", "id")) for k in props
    )


_WRAPPER_KEYS = ("data", "items", "results", "result", "records", "entries", "values", "content", "elements")


def locate_entity_schema(schema: Any, depth: int = 0) -> tuple[dict[str, Any], bool] | None:
    """The entity schema inside a response/body schema and whether it comes as a list."""
    flat = flatten_schema(schema)
    if not flat or depth > 3:
        return None
    if flat.get("type") == "array" or ("items" in flat and not flat.get("properties")):
        inner = flatten_schema(flat.get("items"))
        if _is_object(inner):
            found = locate_entity_schema(inner, depth + 1)
            return (found[0], True) if found else (inner, True)
        return None
    if not _is_object(flat):
        return None
    props = flat["properties"]
    if "id" in props or "sid" in props or "uuid" in props:
        return flat, False
    candidates = []
    for name, sub in props.items():
        sub_flat = flatten_schema(sub)
        if sub_flat.get("type") == "array" or "items" in sub_flat:
            if _is_object(flatten_schema(sub_flat.get("items"))):
                candidates.append((0 if name in _WRAPPER_KEYS else 1, name))
        elif _is_object(sub_flat) and (_has_key(sub_flat) or name in _WRAPPER_KEYS):
            candidates.append((0 if name in _WRAPPER_KEYS else 2, name))
    # descend into a wrapper (`data`, `results`), or into the one nested object or list when the
    # object has no key of its own; an object with its own id-like scalars (`skyId` beside
    # `navigation: {...}`, `bookId` beside `author: [...]`) is the entity
    if candidates and (min(candidates)[0] == 0 or not _has_key(_scalars(flat))):
        return locate_entity_schema(props[min(candidates)[1]], depth + 1)
    return flat, False


def _scalars(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with only its scalar (non-object, non-array) properties."""
    kept = {}
    for name, sub in (schema.get("properties") or {}).items():
        flat = flatten_schema(sub)
        if not _is_object(flat) and "items" not in flat and flat.get("type") not in ("object", "array"):
            kept[name] = sub
    return {**schema, "properties": kept}


def _scalar_type(schema: dict[str, Any]) -> tuple[str, bool]:
    """(FieldType, nullable) of a property schema."""
    raw = schema.get("type")
    nullable = bool(schema.get("nullable") or schema.get("x-nullable"))
    if isinstance(raw, list):
        nullable = nullable or "null" in raw
        raw = next((t for t in raw if t != "null"), "string")
    if raw in ("string", "integer", "number", "boolean", "array", "object"):
        return raw, nullable
    if "properties" in schema or "additionalProperties" in schema or "x-circular-ref" in schema:
        return "object", nullable
    if "items" in schema:
        return "array", nullable
    if schema.get("enum"):
        first = schema["enum"][0]
        return ("integer" if isinstance(first, int) and not isinstance(first, bool) else "string"), nullable
    return "string", nullable


_SCALAR_PY = {"string": str, "integer": int, "number": (int, float), "boolean": bool}


def field_from_schema(name: str, schema: Any, required: bool) -> FieldSpec:
    """A FieldSpec from a property schema: type, nullability, enum, format and constraints
    that seed data can honour (patterns only when a value can be sampled for them)."""
    flat = flatten_schema(schema)
    ftype, nullable = _scalar_type(flat)
    enum = flat.get("enum")
    if enum is not None:
        allowed = _SCALAR_PY.get(ftype)
        values = [
            v
            for v in enum
            if v is not None
            and allowed is not None
            and isinstance(v, allowed)
            and not (isinstance(v, bool) and ftype != "boolean")
        ]
        nullable = nullable or None in enum
        enum = list(dict.fromkeys(values)) or None
    item_type = None
    if ftype == "array":
        item_type, _ = _scalar_type(flatten_schema(flat.get("items")))
    pattern = flat.get("pattern") if ftype == "string" and isinstance(flat.get("pattern"), str) else None
    if pattern is not None and not pattern_is_samplable(pattern):
        pattern = None
    max_length = (
        flat.get("maxLength") if ftype == "string" and isinstance(flat.get("maxLength"), int) else None
    )
    fmt = flat.get("format") if isinstance(flat.get("format"), str) else None
    number = ftype in ("integer", "number")
    minimum = flat.get("minimum") if number and isinstance(flat.get("minimum"), int | float) else None
    maximum = flat.get("maximum") if number and isinstance(flat.get("maximum"), int | float) else None
    if minimum is not None and maximum is not None and minimum > maximum:
        minimum = maximum = None
    description = re.sub(r"\s+", " ", str(flat.get("description") or flat.get("title") or "")).strip()[:300]
    foreign = flat.get("x-foreign-key")
    unique = flat.get("x-unique") is True or bool(
        re.search(r"\bunique\b(?! (identifier|id)\b)", description, re.I)
    )
    on_delete = flat.get("x-on-delete")
    return FieldSpec(
        on_delete=str(on_delete).replace("-", "_")
        if on_delete in ("cascade", "restrict", "set-null", "set_null")
        else None,
        unique=unique and ftype == "string",
        examples=schema_examples(flat, ftype),
        name=name,
        type=ftype,  # type: ignore[arg-type]
        description=description,
        required=required and not nullable,
        nullable=nullable or not required,
        format=fmt if ftype == "string" else None,
        enum=enum if ftype in ("string", "integer", "number") else None,
        ref_entity=entity_name(foreign) if isinstance(foreign, str) else None,
        item_type=item_type if item_type in ("string", "integer", "number", "boolean", "object") else None,  # type: ignore[arg-type]
        minimum=minimum,
        maximum=maximum,
        pattern=pattern,
        max_length=max_length if enum is None else None,
    )


MAX_EXAMPLES = 8
_DESCRIBED_EXAMPLE = re.compile(r"(?:e\.g\.,?|for example,?|such as)\s+['\"‘“]([^'\"’”]{2,60})['\"’”]", re.I)


def schema_examples(schema: dict[str, Any], ftype: str) -> list[Any]:
    """The document's example values of a property (`example`, `examples`, `x-example`) that
    fit its type; objects and arrays of objects are not kept."""
    found: list[Any] = []
    for key in ("example", "x-example"):
        if key in schema:
            found.append(schema[key])
    if ftype == "string":  # examples the description gives: "e.g. 'Winter bike'", "such as 'Holiday'"
        found.extend(_DESCRIBED_EXAMPLE.findall(str(schema.get("description") or "")))
    listed = schema.get("examples")
    if isinstance(listed, list):
        found.extend(listed)
    elif isinstance(listed, dict):  # OpenAPI example objects: {name: {value: ...}}
        found.extend(v.get("value") for v in listed.values() if isinstance(v, dict))
    allowed = _SCALAR_PY.get(ftype)
    kept = []
    for value in found:
        if ftype == "array" and isinstance(value, list):
            kept.extend(v for v in value if isinstance(v, str | int | float) and not isinstance(v, bool))
        elif (
            allowed is not None
            and isinstance(value, allowed)
            and (not isinstance(value, bool) or ftype == "boolean")
        ):
            kept.append(value)
    return list(dict.fromkeys(kept))[:MAX_EXAMPLES]


def property_schema(f: FieldSpec, for_input: bool = False) -> dict[str, Any]:
    """JSON Schema of one field (row schemas allow null where the field is nullable)."""
    schema: dict[str, Any] = {"type": f.type}
    if f.nullable and not for_input:
        schema["type"] = [f.type, "null"]
    if f.enum is not None:
        schema["enum"] = list(f.enum) + ([None] if f.nullable and not for_input else [])
    if f.format and f.format in ("date", "date-time", "email", "uri"):
        schema["format"] = f.format
    if f.minimum is not None:
        schema["minimum"] = f.minimum
    if f.maximum is not None:
        schema["maximum"] = f.maximum
    if f.pattern is not None:
        schema["pattern"] = f.pattern
    if f.max_length is not None:
        schema["maxLength"] = f.max_length
    if f.type == "array":
        schema["items"] = {"type": f.item_type} if f.item_type else {}
    if f.description:
        schema["description"] = f.description
    return schema


def row_schema(entity: EntitySpec) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: property_schema(f) for f in entity.fields},
        "required": [f.name for f in entity.fields],
        "additionalProperties": False,
    }


# -- operation shapes ----------------------------------------------------------------
@dataclass
class OperationShape:
    op: NormalizedOperation
    resource_id: str
    entity: str
    action: str  # ToolAction
    kind: str  # read / write
    key_param: str | None = None  # source name of the parameter that carries the row key
    parent_params: list[tuple[str, str]] = field(default_factory=list)  # (source param, parent entity)
    verb: str | None = None
    entity_schema: dict[str, Any] | None = None
    body_schema: dict[str, Any] | None = None


def _segments(path: str) -> list[str]:
    return [s for s in path.strip("/").split("/") if s and not _VERSION_SEGMENT.match(s)]


def _is_param(segment: str) -> bool:
    return segment.startswith("{") and segment.endswith("}")


def _body_entity(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The object a write body describes; single-property wrappers (`{"account": {...}}`) unwrapped."""
    flat = flatten_schema(body)
    for _ in range(2):
        props = flat.get("properties") or {}
        if len(props) == 1:
            only = flatten_schema(next(iter(props.values())))
            if _is_object(only):
                flat = only
                continue
        break
    return flat if _is_object(flat) else None


def _name_of(schema: dict[str, Any] | None, pattern: re.Pattern[str]) -> str | None:
    name = (schema or {}).get("x-ref-name")
    if not isinstance(name, str):
        return None
    stripped = pattern.sub("", name.rsplit(".", 1)[-1])
    return entity_name(stripped or name)


def _noun_from_words(ws: list[str]) -> str | None:
    """The object noun of a tool name: the last noun before a preposition
    (`read_text_file` -> File, `list_directory_with_sizes` -> Directory)."""
    nouns: list[str] = []
    for w in ws:
        if w in ("by", "with", "for", "from", "in", "of", "to", "on"):
            break
        if (
            w not in WRITE_WORDS
            and w not in MCP_VERBS
            and w not in ("all", "multiple", "one", "info", "id", "allowed")
        ):
            nouns.append(w)
    return entity_name(nouns[-1]) if nouns else None


def _is_mcp_envelope(schema: dict[str, Any]) -> bool:
    """An MCP result `{content: [{type, text|data}]}` says nothing about an entity (a bare list
    of rows, with no properties of its own, is no envelope)."""
    props = set(flatten_schema(schema).get("properties") or {})
    return bool(props) and props <= {"content", "isError", "structuredContent"}


def analyse_operation(resource_id: str, op: NormalizedOperation) -> OperationShape:
    """Entity and action of one operation (see the module docstring for the rules)."""
    located = locate_entity_schema(op.response) if op.response and not _is_mcp_envelope(op.response) else None
    response_entity = located[0] if located else None
    response_is_list = bool(located and located[1])
    body = _body_entity(op.request_body)
    op_words = words(op.operation_id)
    if op.method is None or op.path is None:
        return _analyse_tool(resource_id, op, op_words, response_entity, response_is_list, body)

    method = op.method.lower()
    segs = _segments(op.path)
    params = {p.name: p for p in op.parameters}
    last = segs[-1] if segs else ""
    item = _is_param(last)
    verb = None
    if not item and len(segs) >= 2 and _is_param(segs[-2]) and method == "post":
        stripped = snake_case(last)
        looks_like_verb = stripped in TRANSITION_VERBS or (
            singular(stripped) == stripped and not stripped.endswith("s")
        )
        if "x-state-transition" in op.extensions or looks_like_verb:
            verb = stripped
    nouns = [s for s in segs if not _is_param(s)]
    if verb:
        collection_seg = nouns[-2] if len(nouns) >= 2 else nouns[-1]
    else:
        collection_seg = nouns[-1] if nouns else op.operation_id
    path_entity = entity_name(collection_seg)

    # the item key is the last path parameter of an item path (or the one before the verb)
    path_params = [s[1:-1] for s in segs if _is_param(s)]
    key_param = None
    if item or verb:
        key_param = path_params[-1] if path_params else None

    entity = None
    if verb:
        entity = _key_named_entity(key_param, path_entity) or path_entity
    if entity is None and response_entity is not None:
        entity = _name_of(response_entity, _RESPONSE_SUFFIX)
        if item and _key_names(key_param, path_entity) and entity and is_view_of(entity, path_entity):
            # `/articles/{article_id}` answering `ArticleCompletePrivate`: a fuller view of the
            # article the key names, not another table
            entity = path_entity
    if entity is None and body is not None:
        entity = _name_of(body, _BODY_SUFFIX)
    if entity is None:
        entity = path_entity
    if collection_seg == "search" and len(nouns) >= 2:
        entity = _name_of(response_entity, _RESPONSE_SUFFIX) or entity_name(nouns[-2])

    parents: list[tuple[str, str]] = []
    for i, seg in enumerate(segs):
        if _is_param(seg) and seg[1:-1] != key_param and i > 0 and not _is_param(segs[i - 1]):
            parents.append((seg[1:-1], entity_name(segs[i - 1])))
    has_query = any(snake_case(p) in QUERY_NAMES for p in params) or last == "search"

    if method == "get":
        action = "get" if key_param else "search" if has_query else "list"
        kind = "read"
    elif method == "delete":
        action, kind = ("delete" if key_param else "custom"), "write"
    elif method in ("put", "patch"):
        action, kind = ("update" if key_param else "custom"), "write"
    elif method == "post":
        kind = "write"
        if verb:
            action = (
                "transition"
                if verb in TRANSITION_VERBS or "x-state-transition" in op.extensions
                else "custom"
            )
        elif key_param:
            action = "update"
        elif last == "search":
            action, kind = "search", "read"
        else:
            action = "create"
    else:
        action, kind = "custom", "write"
    return OperationShape(
        op, resource_id, entity, action, kind, key_param, parents, verb, response_entity, body
    )


def _key_names(key_param: str | None, entity: str) -> bool:
    """True when an item key parameter is the entity's id by name (`article_id`, `ArticleId`,
    `articleId` for Article)."""
    match = re.fullmatch(r"(.+)_(?:id|sid|uuid)", snake_case(key_param or ""))
    return match is not None and [singular(w) for w in words(match[1])] == [
        singular(w) for w in words(entity)
    ]


def is_view_of(schema_entity: str, entity: str) -> bool:
    """True when a schema's entity name is the entity's name with qualifiers after it
    (`ArticleComplete`, `ArticleCompletePrivate` for `Article`)."""
    own = [singular(w) for w in words(entity)]
    named = [singular(w) for w in words(schema_entity)]
    return len(named) > len(own) and named[: len(own)] == own


def _key_named_entity(key_param: str | None, path_entity: str) -> str | None:
    """The entity an item key names (`fee_fine_id` -> `FeeFine`) when it is the path's entity up to
    inner plurals, a qualifier or word breaks: `/fees-fines/{fee_fine_id}/cancel` (the path says
    `FeesFine`), `/blocks/{patron_block_id}/lift` (`Block`), `/singlesends/{single_send_id}/send`
    (`Singlesend`); the key uses the name the document's schemas use."""
    match = re.fullmatch(r"(.+)_(?:id|sid|uuid)", snake_case(key_param or ""))
    if match is None:
        return None
    named = entity_name(match[1])
    key_words = [singular(w) for w in words(named)]
    path_words = [singular(w) for w in words(path_entity)]
    same_noun = key_words[-len(path_words) :] == path_words or "".join(key_words) == "".join(path_words)
    return named if same_noun and named != path_entity else None


def _tool_verb(op_words: list[str]) -> tuple[str, int]:
    """(action, position) of a tool name's verb: the first word, else the first plain CRUD verb
    after a service prefix; ("custom", 0) when there is none."""
    if op_words and op_words[0] in MCP_VERBS:
        return MCP_VERBS[op_words[0]], 0
    for position, word in enumerate(op_words[1:], start=1):
        if word in _PREFIXED_VERBS:
            return MCP_VERBS[word], position
    return "custom", 0


def _analyse_tool(
    resource_id: str,
    op: NormalizedOperation,
    op_words: list[str],
    response_entity: dict[str, Any] | None,
    response_is_list: bool,
    body: dict[str, Any] | None,
) -> OperationShape:
    """MCP tools and catalog functions: action from the name's verb, entity from its noun."""
    annotations = op.extensions.get("x-mcp-annotations") or op.extensions.get("annotations") or {}
    read_only = bool(isinstance(annotations, dict) and annotations.get("readOnlyHint")) or str(
        op.extensions.get("x-http-method") or ""
    ).upper() in ("GET", "HEAD")
    verb, position = _tool_verb(op_words)
    nouns = op_words[position + 1 :] if position == 0 else op_words[:position] + op_words[position + 1 :]
    entity = (
        _noun_from_words(nouns) or _name_of(response_entity, _RESPONSE_SUFFIX) or entity_name(op.operation_id)
    )
    required = [p for p in op.parameters if p.required]
    key = None
    if len(required) == 1 and _scalar_type(flatten_schema(required[0].schema_))[0] == "string":
        key = required[0].name
    if verb in ("get", "update", "delete") and key is None:
        verb = "custom"
    # batch tools (`create_entities(entities=[{...}])`) fit no single-row shape
    if verb in ("create", "update") and any(
        _is_object(flatten_schema(flatten_schema(p.schema_).get("items"))) for p in op.parameters
    ):
        verb = "custom"
    if verb in ("list", "search"):
        key = None
    kind = "read" if read_only or verb in ("get", "list", "search") else "write"
    if verb == "custom" and not read_only and not (WRITE_WORDS | _WRITE_ONLY_VERBS).intersection(op_words):
        reports = (
            response_entity is not None and op.response is not None and not _is_mcp_envelope(op.response)
        )
        kind = (
            "read"
            if reports or (op_words and op_words[0] in ("directory", "tree", "read", "get", "list"))
            else "write"
        )
    if kind == "read" and verb in ("create", "update", "delete"):
        verb = "custom"
    return OperationShape(op, resource_id, entity, verb, kind, key, [], None, response_entity, body)


def _item_path(shape: OperationShape) -> tuple[str, ...] | None:
    if shape.op.path is None or shape.key_param is None or shape.verb:
        return None
    return (shape.resource_id, *_segments(shape.op.path))


def _one_entity_per_item_path(shapes: list[OperationShape]) -> None:
    """Operations on one item path act on one entity, and a parent path parameter names the entity
    of the item path it keys. A DELETE that answers nothing would otherwise take the path's noun
    (`/lists/{tasklist}` -> List) while the GET of the same path names its schema (TaskList), and
    `/lists/{tasklist}/tasks` would hang tasks off a third table. A path without a GET keeps
    each operation's own entity."""
    named: dict[tuple[str, ...], str] = {}
    for shape in shapes:  # the path's GET says what the path is
        path = _item_path(shape)
        if path is not None and shape.action == "get":
            named.setdefault(path, shape.entity)
    by_key: dict[tuple[str, str, str], set[str]] = {}
    for shape in shapes:
        path = _item_path(shape)
        if path is None:
            continue
        if path in named:
            shape.entity = named[path]
        by_key.setdefault((shape.resource_id, path[-2] if len(path) > 2 else "", path[-1]), set()).add(
            shape.entity
        )
    for shape in shapes:
        if shape.op.path is None:
            continue
        segs = _segments(shape.op.path)
        parents = []
        for param, parent in shape.parent_params:
            i = segs.index(f"{{{param}}}") if f"{{{param}}}" in segs else 0
            keyed = by_key.get((shape.resource_id, segs[i - 1] if i > 0 else "", f"{{{param}}}"), set())
            parents.append((param, next(iter(keyed)) if len(keyed) == 1 else parent))
        shape.parent_params = parents


# -- entity building -----------------------------------------------------------------
@dataclass
class EntityDraft:
    name: str
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    key_field: str | None = None
    description: str = ""
    from_schema: bool = False
    acted_on: bool = False

    def add(self, spec: FieldSpec) -> None:
        if spec.name not in self.fields and len(self.fields) < MAX_FIELDS:
            self.fields[spec.name] = spec


def _fields_of(schema: dict[str, Any]) -> list[FieldSpec]:
    required = set(schema.get("required") or [])
    out = []
    props = schema.get("properties") or {}
    # keys, foreign keys and lifecycle enums first so MAX_FIELDS never drops them
    order = sorted(
        props,
        key=lambda n: (
            0
            if n in KEY_NAMES or n.lower().endswith(("_id", "sid", "id"))
            else 1
            if "enum" in flatten_schema(props[n])
            else 2
        ),
    )
    taken = {n for n in props if _IDENTIFIER.fullmatch(n)}
    object_example = schema.get("example") if isinstance(schema.get("example"), dict) else {}
    for name in order:
        field_name = name if _IDENTIFIER.fullmatch(name) else readable_field_name(name, taken)
        if field_name is None:
            continue
        taken.add(field_name)
        prop = props[name]
        if name in object_example and isinstance(prop, dict) and "example" not in prop:
            prop = {**prop, "example": object_example[name]}
        out.append(field_from_schema(safe_field_name(field_name), prop, name in required))
    return out


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def readable_field_name(name: str, taken: set[str]) -> str | None:
    """The field that keeps a document field whose name is no identifier (`Exchange Rate` ->
    `exchange_rate`, `content-type` -> `content_type`); None when nothing of it is left or another
    field has that name."""
    snake = snake_case(name)
    return snake if snake and _IDENTIFIER.fullmatch(snake) and snake not in taken else None


_MODEL_ATTRIBUTES = frozenset(dir(BaseModel))
# names a generated model's annotations use: a field named `list` would shadow `list[str]`
_MODULE_NAMES = frozenset(
    {"list", "dict", "str", "int", "float", "bool", "Any", "Literal", "Field", "BaseModel", "ConfigDict"}
)


def safe_field_name(name: str) -> str:
    """A field name usable as a Pydantic attribute and a Python parameter (`from` -> `from_`)."""
    name = name.lstrip("_") or "field"
    if name[0].isdigit():
        name = f"n{name}"
    if (
        keyword.iskeyword(name)
        or keyword.issoftkeyword(name)
        or name in _MODEL_ATTRIBUTES
        or name in ("self", "model_config")
        or name in _MODULE_NAMES
    ):
        name = f"{name}_"
    return name


def _add_context_entities(drafts: dict[str, EntityDraft], specs: list[NormalizedSpec]) -> None:
    """Add the entities that foreign keys reference and component schemas describe (two hops)."""
    described: dict[str, dict[str, Any]] = {}
    for spec in specs:
        for schema_name, schema in spec.schemas.items():
            flat = flatten_schema(schema)
            if _is_object(flat):
                described.setdefault(entity_name(schema_name), flat)
    for _ in range(2):
        wanted: list[str] = []
        for draft in list(drafts.values()):
            for f in draft.fields.values():
                target = f.ref_entity
                if target is None and f.type == "string":
                    m = re.fullmatch(r"(.+?)_?(id|sid)", snake_case(f.name))
                    target = entity_name(m.group(1)) if m else None
                if target and target not in drafts and target in described and target not in wanted:
                    wanted.append(target)
        for name in wanted:
            draft = EntityDraft(
                name, description=str(described[name].get("description") or "")[:300], from_schema=True
            )
            for f in _fields_of(described[name]):
                draft.add(f)
            drafts[name] = draft


def _type_identifiers_as_parameters_state(
    drafts: dict[str, EntityDraft], shapes: list[OperationShape]
) -> None:
    """An identifier (`product_id`, `locationId`) that a response types as a number but an
    operation's parameter of that name types as a string is a string in every entity: callers
    pass it as the parameter states, it moves between the tools that return and take it, and a
    string holds any id a number would."""
    stated_strings = {
        snake_case(p.name)
        for shape in shapes
        for p in shape.op.parameters
        if _scalar_type(flatten_schema(p.schema_))[0] == "string"
        and re.fullmatch(r"(.+?)_?(id|sid)", snake_case(p.name))
    }
    for draft in drafts.values():
        for name, f in list(draft.fields.items()):
            if f.type in ("integer", "number") and snake_case(name) in stated_strings:
                draft.fields[name] = f.model_copy(  # the response's integer: a string of digits
                    update={
                        "type": "string",
                        "minimum": None,
                        "maximum": None,
                        "enum": None,
                        "pattern": DIGITS_PATTERN,
                    }
                )


def _pick_key(draft: EntityDraft, key_params: list[str]) -> str:
    snake = snake_case(draft.name)
    for candidate in ("id", "sid", "uuid", f"{snake}_id", f"{snake}_sid", "key"):
        if candidate in draft.fields:
            return candidate
    for param in key_params:
        if param in draft.fields:
            return param
        if snake_case(param) in draft.fields:
            return snake_case(param)
    return "id"


def id_prefix_of(name: str) -> str:
    ws = words(name)
    letters = "".join(w[0] for w in ws) if len(ws) > 1 else ws[0][:3]
    return f"{letters}_"


# -- tools ---------------------------------------------------------------------------
def _param_schema(param: NormalizedParam) -> dict[str, Any]:
    spec = field_from_schema(param.name, param.schema_, param.required)
    schema = property_schema(spec.model_copy(update={"nullable": False}), for_input=True)
    if param.description and "description" not in schema:
        schema["description"] = re.sub(r"\s+", " ", param.description).strip()[:300]
    return schema


def _description(op: NormalizedOperation) -> str:
    text = re.sub(r"<[^>]+>|\s+", " ", op.summary or op.description or "").strip()
    if op.summary and op.description and len(op.summary) < 60:
        extra = re.split(r"(?<=[.!?])\s", re.sub(r"<[^>]+>|\s+", " ", op.description).strip())[0]
        if extra and extra.lower() not in text.lower():
            text = f"{text.rstrip('.')}. {extra}"
    return (text or op.operation_id)[:500]


def _tool_name(op: NormalizedOperation, taken: set[str]) -> str:
    ws = words(op.operation_id)
    collapsed = [w for i, w in enumerate(ws) if i == 0 or w != ws[i - 1]]
    name = snake_case(" ".join(collapsed))[:60]
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _transition_for(shape: OperationShape, entity: EntitySpec) -> StateTransition | None:
    declared = shape.op.extensions.get("x-state-transition")
    if (
        isinstance(declared, dict)
        and declared.get("field") in {f.name for f in entity.fields}
        and "to" in declared
    ):
        return StateTransition(
            field=declared["field"], from_values=list(declared.get("from") or []), to_value=declared["to"]
        )
    status = next((f for f in entity.fields if f.name == entity.status_field), None)
    if status is None or not status.enum or not shape.verb:
        return None
    targets = TRANSITION_VERBS.get(shape.verb, ())
    lowered = {str(v).lower(): v for v in status.enum}
    for target in targets:
        if target in lowered:
            to_value = lowered[target]
            return StateTransition(
                field=status.name, from_values=[v for v in status.enum if v != to_value], to_value=to_value
            )
    return None


def _status_field(draft: EntityDraft) -> str | None:
    for name in ("status", "state", "lifecycle_state", "stage", "phase"):
        f = draft.fields.get(name)
        if f is not None and f.enum and f.type == "string":
            return name
    return None


def build_env_spec(proposal: dict[str, Any], specs_by_resource_id: dict[str, NormalizedSpec]) -> EnvSpec:
    """The EnvSpec of one proposal row; raises EnvSpecError naming the proposal on bad input."""
    try:
        return infer_business_rules(annotate_spec(_infer_env_spec(proposal, specs_by_resource_id)))
    except EnvSpecError:
        raise
    except (ValidationError, KeyError, ValueError, TypeError) as exc:
        pid = proposal.get("id", "?") if isinstance(proposal, dict) else "?"
        raise EnvSpecError(
            f"proposal {pid}: cannot infer a spec: {type(exc).__name__}: {exc}"[:1000]
        ) from exc


def _infer_env_spec(proposal: dict[str, Any], specs_by_resource_id: dict[str, NormalizedSpec]) -> EnvSpec:
    pid = proposal.get("id", "?")
    shapes: list[OperationShape] = []
    for qualified in proposal.get("operation_ids") or []:
        resource_id, _, operation_id = str(qualified).partition(":")
        spec = specs_by_resource_id.get(resource_id)
        if spec is None:
            raise EnvSpecError(f"proposal {pid}: resource {resource_id!r} is not among the given specs")
        op = next((o for o in spec.operations if o.operation_id == operation_id), None)
        if op is None:
            raise EnvSpecError(f"proposal {pid}: resource {resource_id} has no operation {operation_id!r}")
        shapes.append(analyse_operation(resource_id, op))
    if not shapes:
        raise EnvSpecError(f"proposal {pid}: no operations")
    _one_entity_per_item_path(shapes)

    drafts: dict[str, EntityDraft] = {}
    for shape in shapes:
        draft = drafts.setdefault(shape.entity, EntityDraft(shape.entity))
        draft.acted_on = True
        for schema in (
            shape.entity_schema,
            shape.body_schema if shape.action in ("create", "update") else None,
        ):
            schema_entity = (
                _name_of(schema, _RESPONSE_SUFFIX if schema is shape.entity_schema else _BODY_SUFFIX)
                if schema is not None
                else None
            )
            answers_a_view = (  # an item path's fuller view (`ArticleComplete` of `Article`)
                schema is shape.entity_schema
                and _item_path(shape) is not None
                and is_view_of(str(schema_entity), shape.entity)
            )
            if schema is not None and (schema_entity in (shape.entity, None) or answers_a_view):
                if not draft.description:
                    draft.description = str(schema.get("description") or "")[:300]
                for f in _fields_of(schema):
                    if schema is shape.body_schema and draft.from_schema:
                        f = f.model_copy(update={"required": False, "nullable": True})
                    draft.add(f)
                draft.from_schema = draft.from_schema or schema is shape.entity_schema
    _add_context_entities(
        drafts, [specs_by_resource_id[rid] for rid in dict.fromkeys(s.resource_id for s in shapes)]
    )
    _type_identifiers_as_parameters_state(drafts, shapes)
    created_tool_entities = {s.entity for s in shapes if s.action == "create" and s.op.path is None}
    for shape in shapes:
        draft = drafts[shape.entity]
        key_params = [shape.key_param] if shape.key_param else []
        if shape.entity in created_tool_entities and not draft.from_schema:
            # a create tool makes new rows, so their key is generated; the natural key
            # (`path`, `name`) stays an ordinary field
            key_params = []
        if draft.key_field is None and (draft.fields or key_params):
            draft.key_field = _pick_key(draft, key_params)
    for shape in shapes:
        key_field = drafts[shape.entity].key_field
        if shape.op.path is None and shape.key_param is not None and shape.key_param != key_field:
            shape.key_param = None  # the argument is an ordinary field of the row
            if shape.action in ("get", "update", "delete"):
                shape.action = "custom"
    for draft in drafts.values():
        key = draft.key_field or "id"
        draft.key_field = key
        if key not in draft.fields:
            draft.fields = {
                key: FieldSpec(
                    name=key, type="string", description=f"Unique identifier of the {draft.name}."
                ),
                **draft.fields,
            }
        else:
            stated = draft.fields[key]
            draft.fields[key] = stated.model_copy(
                update={
                    "type": "string",
                    "required": True,
                    "nullable": False,
                    "enum": None,
                    # the form the document states (UUID, integer digits, a pattern) is kept:
                    # keys are generated in it (`envgen.key_forms`)
                    "pattern": stated_key_pattern(stated, stated.type),
                    "format": "uuid" if (stated.format or "").lower() == "uuid" else None,
                    "max_length": None,
                    "minimum": None,  # an integer id becomes a string key: no numeric bounds
                    "maximum": None,
                }
            )
        # keep the key first: readable models and outputs
        draft.fields = {key: draft.fields[key], **{k: v for k, v in draft.fields.items() if k != key}}

    # parent path parameters -> foreign-key fields of the child (parents become context entities)
    for shape in shapes:
        for param, parent in shape.parent_params:
            fk = _fk_field_name(drafts[shape.entity].fields, param, parent)
            if fk not in drafts[shape.entity].fields:
                drafts[shape.entity].fields[fk] = FieldSpec(
                    name=fk,
                    type="string",
                    description=f"The {parent} this {shape.entity} belongs to.",
                    ref_entity=parent,
                )
            if parent not in drafts:
                drafts[parent] = EntityDraft(
                    parent,
                    key_field="id",
                    fields={
                        "id": FieldSpec(
                            name="id", type="string", description=f"Unique identifier of the {parent}."
                        ),
                        "name": FieldSpec(
                            name="name",
                            type="string",
                            description=f"Name of the {parent}.",
                            seed_hint="words",
                        ),
                    },
                )

    names = set(drafts)
    by_snake = {snake_case(n): n for n in names}
    for draft in drafts.values():
        for fname, f in list(draft.fields.items()):
            if fname == draft.key_field:
                continue
            target = f.ref_entity
            if target is None and f.type in ("string", "integer", "number"):
                m = re.fullmatch(r"(.+?)_?(id|sid)", snake_case(fname))
                if m:
                    target = by_snake.get(m.group(1))
            if target is not None and target not in names:
                target = None
            update: dict[str, Any] = {
                "ref_entity": target,
                "enum": None if target else f.enum,
                "pattern": None if target else f.pattern,
                "format": None if target else f.format,
            }
            if target is not None and f.type in ("integer", "number"):  # it holds a key: a string
                update.update(type="string", minimum=None, maximum=None)
            if target is not None:  # where only a reference states the key's form, the key takes it
                target_key = drafts[target].fields[drafts[target].key_field or "id"]
                if target_key.pattern is None:
                    drafts[target].fields[target_key.name] = target_key.model_copy(
                        update={"pattern": stated_key_pattern(f, f.type)}
                    )
            draft.fields[fname] = f.model_copy(update=update)

    entities: dict[str, EntitySpec] = {}
    for name, draft in drafts.items():
        collection = collection_name(name)
        entities[name] = EntitySpec(
            name=name,
            collection=f"{collection}_table" if collection in ("counters", "now", "seed") else collection,
            key_field=draft.key_field or "id",
            description=re.sub(r"\s+", " ", draft.description).strip() or f"A {name} record.",
            fields=list(draft.fields.values()),
            status_field=_status_field(draft),
            role="primary" if draft.acted_on else "context",
        )
    formed = with_distinct_key_forms(list(entities.values()), "", lambda e: id_prefix_of(e.name))
    entities = {e.name: e for e in formed}

    tools: list[ToolSpec] = []
    taken: set[str] = set()
    request_entities: list[EntitySpec] = []
    read_only = all(s.kind == "read" for s in shapes)
    for shape in shapes:  # first pass: write tools add the fields they store, which reads then bind
        _build_tool(shape, entities, set(), read_only)
    for shape in shapes:
        tool, extra_entity = _build_tool(shape, entities, taken, read_only)
        tools.append(tool)
        if extra_entity is not None:
            request_entities.append(extra_entity)
    for extra in request_entities:
        entities[extra.name] = extra
    # entities may have grown (write arguments kept as fields): refresh every row schema
    tools = [_refresh_output(t, entities) for t in tools]

    used_collections = {e.collection for e in entities.values()}
    if len(used_collections) != len(entities):
        raise EnvSpecError(f"proposal {pid}: two entities share a collection name")
    description = re.sub(r"\s+", " ", str(proposal.get("purpose") or proposal.get("title") or "")).strip()
    if read_only:
        description += (
            " Read-only: the source describes no write operation, so this environment only looks data up."
        )
    ordered = referenced_first(list(entities.values()))
    seed_rows = {e.collection: (12 if e.role == "primary" else 8) for e in ordered}
    return EnvSpec(
        class_name=str(proposal["class_name"]),
        title=str(proposal.get("title") or proposal["class_name"])[:300],
        description=description.strip(),
        domain=str(proposal.get("domain") or ""),
        entities=ordered,
        tools=tools,
        seed_rows=seed_rows,
        resource_ids=list(proposal.get("resource_ids") or []),
        proposal_id=proposal.get("id"),
    )


def _bind(param_name: str, entity: EntitySpec) -> str | None:
    names = {f.name for f in entity.fields}
    if param_name in names:
        return param_name
    snake = snake_case(param_name)
    if snake in names:
        return snake
    return None


def _build_tool(
    shape: OperationShape, entities: dict[str, EntitySpec], taken: set[str], read_only: bool
) -> tuple[ToolSpec, EntitySpec | None]:
    op = shape.op
    entity = entities[shape.entity]
    name = _tool_name(op, taken)
    description = _description(op)
    entity_snake = snake_case(entity.name)
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    param_fields: dict[str, str] = {}
    ignored: list[str] = []
    new_fields: list[FieldSpec] = []

    def add_input(pname: str, schema: dict[str, Any], is_required: bool, binding: str | None) -> None:
        if pname in properties:
            return
        properties[pname] = schema
        if is_required:
            required.append(pname)
        if binding is not None:
            param_fields[pname] = binding

    inputs: list[tuple[str, dict[str, Any], bool, NormalizedParam | None]] = []
    for p in op.parameters:
        if p.location in ("header", "cookie"):
            continue
        inputs.append((p.name, p.schema_, p.required, p))
    body = shape.body_schema
    if body is not None:
        body_required = set(body.get("required") or [])
        for bname, bschema in (body.get("properties") or {}).items():
            if flatten_schema(bschema).get("readOnly"):
                continue
            inputs.append((bname, bschema, bname in body_required, None))
    elif op.request_body is not None:
        flat = flatten_schema(op.request_body)
        for bname, bschema in (flat.get("properties") or {}).items():
            inputs.append((bname, bschema, bname in set(flat.get("required") or []), None))

    action = shape.action
    for source_name, schema, is_required, param in inputs:
        pname = snake_case(source_name)
        if (
            action == "create"
            and _bind(source_name, entity) == entity.key_field
            and entity.key_field in ID_LIKE_NAMES
        ):
            continue  # the environment assigns ids of new rows
        if (
            source_name != shape.key_param
            and action != "custom"
            and _bind(source_name, entity) == entity.key_field
        ):
            continue  # a body copy of the key (`{"id": ...}`): the key parameter already says it
        if source_name == shape.key_param:
            if op.path is not None:  # `{id}`, `{Sid}`, `{task}` -> `task_id`; MCP arguments keep their name
                key_suffix = (
                    "id" if entity.key_field in ("id", "sid", "uuid") else snake_case(entity.key_field)
                )
                pname = (
                    key_suffix
                    if key_suffix.startswith(f"{entity_snake}_")
                    else f"{entity_snake}_{key_suffix}"
                )
            add_input(
                pname, {"type": "string", "description": f"Key of the {entity.name}."}, True, entity.key_field
            )
            continue
        parent = next((pe for sp, pe in shape.parent_params if sp == source_name), None)
        if parent is not None:
            fk = _fk_field_name({f.name for f in entity.fields}, source_name, parent)
            fk_spec = next(f for f in entity.fields if f.name == fk)
            fk_schema = property_schema(fk_spec.model_copy(update={"nullable": False}), for_input=True)
            add_input(snake_case(fk), {**fk_schema, "description": f"Id of the {parent}."}, True, fk)
            continue
        if pname in LIMIT_NAMES and action in ("list", "search", "custom") and shape.kind == "read":
            add_input(
                pname,
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000,
                    "description": "Maximum number of rows to return.",
                },
                False,
                "$limit",
            )
            continue
        if pname in QUERY_NAMES and action in ("search", "list"):
            add_input(
                pname,
                {
                    "type": "string",
                    "minLength": 1,
                    "description": "Text to look for in the entity's text fields.",
                },
                is_required,
                "$query",
            )
            continue
        binding = _bind(source_name, entity)
        fschema = (
            _param_schema(param)
            if param is not None
            else property_schema(
                field_from_schema(source_name, schema, is_required).model_copy(update={"nullable": False}),
                for_input=True,
            )
        )
        if binding is not None:
            fspec = next(f for f in entity.fields if f.name == binding)
            fschema = property_schema(fspec.model_copy(update={"nullable": False}), for_input=True)
            if fspec.description == "" and "description" in fschema:
                fschema.pop("description")
        if (
            binding is None
            and action in ("create", "update", "transition")
            and not (param is not None and param.location == "path")
        ):
            new_field = field_from_schema(safe_field_name(pname), schema, False)
            if new_field.type == "string" and new_field.enum is None:
                new_field = new_field.model_copy(update={"ref_entity": None})
            new_fields.append(new_field)
            binding = new_field.name
        if binding is None and action != "custom":
            ignored.append(pname)
        if action == "update" or action == "transition":
            is_required = False
        add_input(pname, fschema, is_required, binding)

    if action == "create":
        # a required foreign key must come from the caller: no default can point at a real row
        bound = set(param_fields.values())
        for f in entity.fields:
            if f.ref_entity and f.required and f.name not in bound and f.name != entity.key_field:
                add_input(
                    snake_case(f.name),
                    {
                        **property_schema(f.model_copy(update={"nullable": False}), for_input=True),
                        "description": f"Id of the {f.ref_entity}.",
                    },
                    True,
                    f.name,
                )
    if new_fields:
        entity = entity.model_copy(
            update={
                "fields": entity.fields
                + [f for f in new_fields if f.name not in {x.name for x in entity.fields}]
            }
        )
        entities[entity.name] = entity

    extra_entity = None
    transition = None
    preconditions: list[str] = []
    effects: list[str] = []
    if action == "transition":
        transition = _transition_for(shape, entity)
        if transition is None:
            action = "custom"
    if action == "update" and not set(param_fields.values()) - {entity.key_field}:
        action = "custom"  # nothing to change (`POST /batches/{id}`): the call is a recorded request
    if action == "get":
        preconditions.append(f"the {entity.name} exists")
        effects.append("none (read)")
    elif action in ("list", "search"):
        effects.append("none (read)")
    elif action == "create":
        for pname, fname in param_fields.items():
            f = next((x for x in entity.fields if x.name == fname), None)
            if f is not None and f.ref_entity:
                preconditions.append(f"the {f.ref_entity} given as {pname} exists")
        effects.append(f"adds a new {entity.name} to {entity.collection} with a fresh id")
        if entity.key_field in param_fields.values():
            preconditions.append(f"no {entity.name} with the same {entity.key_field} exists")
    elif action == "update":
        preconditions.append(f"the {entity.name} exists")
        effects.append(f"changes the given fields of the {entity.name}; other fields stay as they were")
    elif action == "delete":
        preconditions.append(f"the {entity.name} exists")
        effects.append(f"removes the {entity.name} from {entity.collection}")
    elif action == "transition" and transition is not None:
        preconditions.append(f"the {entity.name} exists")
        if transition.from_values:
            preconditions.append(
                f"its {transition.field} is one of {', '.join(map(str, transition.from_values))}"
            )
        effects.append(f"sets {transition.field} to {transition.to_value}")

    if action == "custom":
        if shape.kind == "read":
            description += " Returns the matching rows: arguments that name a field filter by equality."
            effects.append("none (read)")
        else:
            extra_entity = _request_entity(name, properties, required)
            param_fields = {
                p: safe_field_name(p) for p in properties if p not in ("request_id", "requested_at")
            }
            description += f" Simulated: the request is recorded in {extra_entity.collection} and returned."
            effects.append(f"adds the request to {extra_entity.collection}")
    elif ignored:
        description += f" Accepted but not simulated: {', '.join(ignored)}."
    if read_only:
        effects = [e if e != "none (read)" else "none (read-only environment)" for e in effects]

    input_schema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
    tool = ToolSpec(
        name=name,
        description=description,
        kind="read" if shape.kind == "read" else "write",
        action=action,  # type: ignore[arg-type]
        entity=extra_entity.name if extra_entity is not None else entity.name,
        input_schema=input_schema,
        output_schema={},
        param_fields=param_fields,
        preconditions=preconditions,
        effects=effects,
        transition=transition,
        source_operation_id=f"{shape.resource_id}:{op.operation_id}",
    )
    return tool, extra_entity


def _fk_field_name(field_names: set[str] | dict[str, Any], param: str, parent: str) -> str:
    """The child's field that a parent path parameter fills (existing, or `<parent>_id`)."""
    snake = snake_case(param)
    if snake in field_names and snake not in ID_LIKE_NAMES:  # `{id}` of a parent is not the child's id
        return snake
    parent_snake = snake_case(parent)
    for candidate in (f"{parent_snake}_id", f"{parent_snake}_sid"):
        if candidate in field_names:
            return candidate
    return snake if snake.endswith(("_id", "_sid")) and snake not in ID_LIKE_NAMES else f"{parent_snake}_id"


def _request_entity(tool_name: str, properties: dict[str, dict[str, Any]], required: list[str]) -> EntitySpec:
    """The log table of a custom write tool: one row per recorded request."""
    fields = [FieldSpec(name="request_id", type="string", description="Id of the recorded request.")]
    for pname, schema in properties.items():
        if pname in ("request_id", "requested_at"):
            continue
        f = field_from_schema(safe_field_name(pname), schema, False)
        fields.append(
            f.model_copy(update={"required": False, "nullable": True, "description": f.description})
        )
    fields.append(
        FieldSpec(
            name="requested_at",
            type="string",
            format="date-time",
            description="When the request was recorded (the environment's clock).",
        )
    )
    entity = entity_name(f"{tool_name}_request")
    return EntitySpec(
        name=entity,
        collection=f"{snake_case(tool_name)}_requests",
        key_field="request_id",
        id_prefix="req_",
        description=f"Requests recorded by {tool_name}.",
        fields=fields,
        role="primary",
    )


def _refresh_output(tool: ToolSpec, entities: dict[str, EntitySpec]) -> ToolSpec:
    entity = entities[tool.entity] if tool.entity else None
    if entity is None:
        raise EnvSpecError(f"tool {tool.name}: unknown entity")
    rows = row_schema(entity)
    snake = snake_case(entity.name)
    if tool.action in ("list", "search") or (tool.action == "custom" and tool.kind == "read"):
        out = {
            "type": "object",
            "properties": {entity.collection: {"type": "array", "items": rows}},
            "required": [entity.collection],
        }
    elif tool.action == "delete":
        out = {
            "type": "object",
            "properties": {"deleted": {"type": "boolean"}, "id": {"type": "string"}},
            "required": ["deleted", "id"],
        }
    elif tool.action == "custom":
        out = {"type": "object", "properties": {"request": rows}, "required": ["request"]}
    else:
        out = {"type": "object", "properties": {snake: rows}, "required": [snake]}
    return tool.model_copy(update={"output_schema": out})
