"""`$ref` resolution over one document, with `referencing` (the library behind `jsonschema`).

`referencing` finds what a `$ref` points at (JSON pointers, `$id` base URIs, anchors) and refuses
retrieval of other documents; this module only walks the tree to inline the results and to
annotate them as `normalized_spec.py` promises:
- `"x-ref-name": "Order"` on a schema reached through `.../schemas/Order`, `#/definitions/Order`
  or `#/$defs/Order` (the entity it names);
- `{"x-circular-ref": "Node"}` instead of the inner occurrence of a circular reference;
- a cycle made only of `$ref`s (`A -> B -> A`, nothing to inline) is an error, as is a pointer
  to nowhere or a reference to another document (never fetched: ingestion reads no network).
Keys that hold literal values (`example`, `default`, `enum`, `const`) and vendor extensions
(`x-*`) are kept as they are, without resolving what they contain.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from referencing import Registry
from referencing.exceptions import PointerToNowhere, Unresolvable
from referencing.jsonschema import DRAFT202012, specification_with

from envfactory_dagster.ingest.errors import SpecError

if TYPE_CHECKING:  # `referencing` exports the class only from its core module
    from referencing._core import Resolver

_LITERAL_KEYS = frozenset({"example", "default", "enum", "const"})
_SCHEMA_POINTER = re.compile(r"/(?:components/schemas|definitions|\$defs)/([^/]+)$")


def _refuse_other_documents(uri: str) -> Any:
    raise LookupError(f"retrieval of {uri!r} is disabled")


def document_resolver(document: dict[str, Any]) -> Resolver:
    """A resolver for refs inside `document` only (its `$schema` picks the JSON Schema dialect)."""
    dialect = document.get("$schema") if isinstance(document.get("$schema"), str) else None
    specification = specification_with(dialect, default=DRAFT202012) if dialect else DRAFT202012
    registry = Registry(retrieve=_refuse_other_documents).with_resource(
        "", specification.create_resource(document)
    )
    return registry.resolver()


def ref_name(ref: str) -> str:
    """The last segment of a ref's JSON pointer, unescaped: `#/components/schemas/Order` -> `Order`."""
    pointer = ref.partition("#")[2]
    segment = pointer.rstrip("/").rsplit("/", 1)[-1] if pointer else ref.rsplit("/", 1)[-1]
    return unquote(segment).replace("~1", "/").replace("~0", "~")


class RefInliner:
    """Inlines every `$ref` below a node; one instance per document, so results are shared."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._root = document_resolver(document)
        # id of a ref's target -> inlined result, kept only for results that cut no cycle (those
        # depend on which refs are being expanded around them). Targets live as long as `document`.
        self._document = document
        self._acyclic: dict[int, Any] = {}

    def inline(self, node: Any) -> Any:
        """`node` (a part of the document) with every `$ref` below it inlined."""
        return self._walk(node, self._root, ())[0]

    def inline_ref(self, ref: str) -> Any:
        """What `ref` points at, inlined and annotated as if a schema had said `{"$ref": ref}`."""
        return self._follow({"$ref": ref}, self._root, ())[0]

    def _walk(self, node: Any, resolver: Resolver, expanding: tuple[_Target, ...]) -> tuple[Any, bool]:
        """Returns (inlined node, whether a cycle was cut inside it)."""
        if isinstance(node, list):
            cut_any = False
            items = []
            for item in node:
                inlined, cut = self._walk(item, resolver, expanding)
                items.append(inlined)
                cut_any = cut_any or cut
            return items, cut_any
        if not isinstance(node, dict):
            return node, False
        if isinstance(node.get("$ref"), str):
            return self._follow(node, resolver, expanding)
        cut_any = False
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _LITERAL_KEYS or (isinstance(key, str) and key.startswith("x-")):
                out[key] = value
                continue
            out[key], cut = self._walk(value, resolver, expanding)
            cut_any = cut_any or cut
        return out, cut_any

    def _follow(
        self, node: dict[str, Any], resolver: Resolver, expanding: tuple[_Target, ...]
    ) -> tuple[Any, bool]:
        ref: str = node["$ref"]
        name = ref_name(ref)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        try:
            resolved = resolver.lookup(ref)
        except PointerToNowhere as error:
            raise SpecError(
                f"unresolvable $ref {ref!r}: the document has nothing at {error.ref!r}", "unresolved_ref"
            ) from error
        except Unresolvable as error:
            if not ref.startswith("#"):
                raise SpecError(
                    f"external $ref {ref!r} refused: only references within the same document are "
                    "resolved (ingestion never fetches other files or URLs)",
                    "external_ref",
                ) from error
            raise SpecError(f"unresolvable $ref {ref!r}: {error}", "unresolved_ref") from error
        contents = resolved.contents
        # The target's identity is the object it resolves to, whatever spelling the ref used.
        target = _Target(id(contents), name)
        if any(t.identity == target.identity for t in expanding):
            return {"x-circular-ref": name}, True
        if target.identity in self._acyclic and not siblings:
            return self._acyclic[target.identity], False
        inlined, cut = self._walk(contents, resolved.resolver, (*expanding, target))
        if _is_bare_ref(contents) and _is_circular_marker(inlined):
            chain = " -> ".join(t.name for t in (*expanding, target)) + f" -> {inlined['x-circular-ref']}"
            raise SpecError(
                f"$ref cycle with no schema to inline: {chain} (each only refers to the next)", "circular_ref"
            )
        if isinstance(inlined, dict):
            inlined = {**inlined, **siblings}
            if _SCHEMA_POINTER.search("/" + ref.partition("#")[2].strip("/")):
                inlined["x-ref-name"] = name
        if not cut and not siblings:
            self._acyclic[target.identity] = inlined
        return inlined, cut


class _Target(NamedTuple):
    identity: int
    name: str


def _is_bare_ref(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("$ref"), str)


def _is_circular_marker(node: Any) -> bool:
    return isinstance(node, dict) and set(node) == {"x-circular-ref"}
