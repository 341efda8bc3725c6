"""Business rules of write tools, inferred from what the document states (template backend).

`infer_business_rules(spec)` attaches `BusinessRule`s to the write tools of an annotated spec
(field meanings decided, see field_semantics.py). Every rule names its evidence: the schema
facts or description words it was read from. No vendor is special-cased; the catalog's own
documents may state rules outright with `x-unique`, `x-on-delete` (README of the catalog).

Rule kinds (tool action: what they are inferred from):
- `unique_key` (create, update): a natural key: a person's own email, a product's sku, a slug,
  `x-unique`;
- `ordered_fields` (create, update): two fields named as a pair (`start_date`/`end_date`,
  `check_in`/`check_out`);
- `parent_status` (create): the description names a value of the parent's status before its
  noun ("a succeeded payment");
- `parent_not_stopped` (create, update, forward transition): the parent's status enum has values
  that end it (cancelled, archived, void): nothing is added or changed under such a parent;
- `frozen_when_stopped` (update): the row's own status enum has such values and the update does
  not set the status: an ended row is not edited;
- `within_parent_amount`, `accumulate_parent`, `set_parent_status` (create): a refund-like child
  (refund, return, dispute) of a parent with an amount; the parent's `amount_refunded` and its
  `refunded`/`partially_refunded` status follow;
- `stock_available`, `take_stock` (create): a child with a `quantity` of a parent with stock
  (`inventory_quantity`);
- `default_from_parent` (create): a field the row copies from the row it references (currency,
  a product's price);
- `restrict_delete` / `cascade_delete` / `set_null_on_delete` (delete): rows of another entity
  reference it: cascade when the document says so (`x-on-delete: cascade`, "and its issues"),
  set null when the reference is optional, else refuse;
- `move_children_status` (transition): the children's status enum has the value the parent
  moves to (cancel an order -> its open fulfilments are cancelled).

Foreign keys are checked on every write: arguments of recorded requests (`<tool>_requests`) that
name another entity's key get a foreign key too.
"""

from __future__ import annotations

import re
from typing import Any

from envfactory_dagster.envgen.env_spec import BusinessRule, EntitySpec, EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.field_semantics import natural_key_reason
from envfactory_dagster.envgen.naming import collection_name, snake_case, words
from envfactory_dagster.envgen.world_invariants import (
    CREATED_WORDS,
    WHOLE_NAMES,
    inherited_fields,
    is_refund_like,
    ordered_pairs,
)

# statuses that end a record (its children are moved along; nothing new is added under it)
STOP_VALUES = frozenset(
    {"cancelled", "canceled", "archived", "void", "voided", "rejected", "expired", "declined", "deleted"}
)
# statuses a child has reached for good: a parent's move leaves them alone
FINAL_VALUES = STOP_VALUES | frozenset(
    {"completed", "complete", "done", "delivered", "fulfilled", "succeeded", "success", "refunded",
     "failed", "failure", "returned", "resolved", "paid", "shipped", "deleted"}
)  # fmt: skip
REFUNDED_VALUES = ("refunded", "partially_refunded")


def _status_field(entity: EntitySpec) -> FieldSpec | None:
    return next((f for f in entity.fields if f.name == entity.status_field and f.enum), None)


def _money(entity: EntitySpec, names: tuple[str, ...]) -> FieldSpec | None:
    fields = {f.name: f for f in entity.fields if f.semantic == "money" and f.type in ("integer", "number")}
    return next((fields[n] for n in names if n in fields), None)


def _children(spec: EnvSpec, parent: EntitySpec) -> list[tuple[EntitySpec, FieldSpec]]:
    """(child entity, its foreign-key field) for every entity that references `parent`."""
    return [
        (e, f)
        for e in spec.entities
        for f in e.fields
        if f.ref_entity == parent.name and e.name != parent.name and f.name != e.key_field
    ]


def _parents(spec: EnvSpec, entity: EntitySpec) -> list[tuple[FieldSpec, EntitySpec]]:
    by_name = {e.name: e for e in spec.entities}
    return [
        (f, by_name[f.ref_entity])
        for f in entity.fields
        if f.ref_entity in by_name and f.ref_entity != entity.name and f.name != entity.key_field
    ]


def _bound_fields(tool: ToolSpec) -> set[str]:
    return set(tool.param_fields.values())


def _rules_for_create(spec: EnvSpec, tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    rules: list[BusinessRule] = []
    bound = _bound_fields(tool)
    description = tool.description.lower()
    by_name = {e.name: e for e in spec.entities}
    for fk, parent in _parents(spec, entity):
        status = _status_field(parent)
        if status is not None and fk.name in bound:
            nouns = {w for w in words(parent.name)} | {w for w in words(fk.name) if w != "id"}
            allowed = [
                v
                for v in status.enum or []
                if isinstance(v, str)
                and re.search(
                    rf"\b{re.escape(v.replace('_', ' '))}\s+(\w+\s+)?({'|'.join(nouns)})s?\b", description
                )
            ]
            if allowed:
                rules.append(
                    BusinessRule(
                        kind="parent_status",
                        statement=f"the {parent.name} given as {fk.name} must be "
                        f"{' or '.join(map(str, allowed))}",
                        evidence=f"the tool's description says {allowed[0]!r} {parent.name.lower()}",
                        target_entity=parent.name,
                        via=fk.name,
                        field=status.name,
                        values=allowed,
                    )
                )
        if not any(r.kind == "parent_status" and r.via == fk.name for r in rules):
            rules += _parent_not_stopped(entity, fk, parent, bound)
        amount = _money(entity, ("amount", "total"))
        whole = _money(parent, WHOLE_NAMES)
        if is_refund_like(entity) and amount is not None and whole is not None and fk.name in bound:
            rules.append(
                BusinessRule(
                    kind="within_parent_amount",
                    statement=f"a {entity.name}'s {amount.name} is at most what is left of its "
                    f"{parent.name}'s {whole.name} after earlier {entity.collection}",
                    evidence=f"{entity.name} is refund-like and {parent.name} has {whole.name}",
                    field=amount.name,
                    target_entity=parent.name,
                    via=fk.name,
                    other_field=whole.name,
                )
            )
            refunded = next(
                (p for p in parent.fields if p.semantic == "money" and "refunded" in words(p.name)), None
            )
            if refunded is not None:
                rules.append(
                    BusinessRule(
                        kind="accumulate_parent",
                        statement=f"creating a {entity.name} adds its {amount.name} to the "
                        f"{parent.name}'s {refunded.name}",
                        evidence=f"{parent.name} has {refunded.name}",
                        field=amount.name,
                        target_entity=parent.name,
                        via=fk.name,
                        other_field=refunded.name,
                    )
                )
            parent_status = next(
                (p for p in parent.fields if p.enum and "refunded" in [str(v) for v in p.enum]), None
            )
            if parent_status is not None:
                partial = "partially_refunded" if "partially_refunded" in parent_status.enum else None
                rules.append(
                    BusinessRule(
                        kind="set_parent_status",
                        statement=f"the {parent.name}'s {parent_status.name} becomes refunded when "
                        f"nothing is left" + (", else partially_refunded" if partial else ""),
                        evidence=f"{parent.name}.{parent_status.name} has the value 'refunded'",
                        field=amount.name,
                        target_entity=parent.name,
                        via=fk.name,
                        other_field=whole.name,
                        values=["refunded", partial] if partial else ["refunded"],
                        value=parent_status.name,
                    )
                )
        quantity = next(
            (f for f in entity.fields if f.semantic == "quantity" and f.name in ("quantity", "qty")), None
        )
        stock = next((p for p in parent.fields if p.semantic == "stock" and p.type == "integer"), None)
        if quantity is not None and stock is not None and fk.name in bound and quantity.type == "integer":
            common = {
                "target_entity": parent.name,
                "via": fk.name,
                "field": quantity.name,
                "other_field": stock.name,
                "evidence": f"{entity.name} has {quantity.name} and {parent.name} has {stock.name}",
            }
            rules.append(
                BusinessRule(
                    kind="stock_available",
                    statement=f"the {parent.name} must have {stock.name} >= the {quantity.name} asked for",
                    **common,
                )
            )
            rules.append(
                BusinessRule(
                    kind="take_stock",
                    statement=f"creating a {entity.name} takes its {quantity.name} from the "
                    f"{parent.name}'s {stock.name}",
                    **common,
                )
            )
    inherited = inherited_fields(entity, by_name)
    required = set(tool.input_schema.get("required", []))
    bound_required = {tool.param_fields[p] for p in required if p in tool.param_fields}
    for name, (fk, parent_field) in inherited.items():
        if name in bound_required or fk not in bound:
            continue
        fk_field = next(f for f in entity.fields if f.name == fk)
        rules.append(
            BusinessRule(
                kind="default_from_parent",
                statement=f"without a {name}, a new {entity.name} takes the {fk_field.ref_entity}'s "
                f"{parent_field}",
                evidence=f"{entity.name}.{name} copies {fk_field.ref_entity}.{parent_field} "
                f"({next(f.semantic for f in entity.fields if f.name == name)})",
                field=name,
                target_entity=fk_field.ref_entity,
                via=fk,
                other_field=parent_field,
            )
        )
    return rules


def _rules_for_fields(tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    """Rules on the row a create or update writes: natural keys and ordered pairs."""
    rules: list[BusinessRule] = []
    bound = _bound_fields(tool)
    for f in entity.fields:
        reason = natural_key_reason(f, entity)
        if reason is not None and f.name in bound:
            rules.append(
                BusinessRule(
                    kind="unique_key",
                    statement=f"no two {entity.collection} share a {f.name}",
                    evidence=reason,
                    field=f.name,
                )
            )
    for first, second in ordered_pairs(entity):
        if set(words(first)) & CREATED_WORDS or not ({first, second} & bound):
            continue
        rules.append(
            BusinessRule(
                kind="ordered_fields",
                statement=f"{first} is not after {second}",
                evidence=f"the field names pair {first} with {second}",
                field=first,
                other_field=second,
            )
        )
    return rules


def _parent_not_stopped(
    entity: EntitySpec, fk: FieldSpec, parent: EntitySpec, bound: set[str] | None
) -> list[BusinessRule]:
    """Nothing is added or moved forward under a parent that has ended (cancelled, archived)."""
    status = _status_field(parent)
    stops = [v for v in (status.enum or []) if str(v).lower() in STOP_VALUES] if status else []
    if not stops or (bound is not None and fk.name not in bound):
        return []
    return [
        BusinessRule(
            kind="parent_not_stopped",
            statement=f"no {entity.name} is added or changed under a {parent.name} that is "
            f"{' or '.join(map(str, stops))}",
            evidence=f"{parent.name}.{status.name} has the ending value(s) {', '.join(map(str, stops))}",  # type: ignore[union-attr]
            target_entity=parent.name,
            via=fk.name,
            field=status.name,  # type: ignore[union-attr]
            values=stops,
        )
    ]


def _rules_under_parents(spec: EnvSpec, tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    """Updates and forward transitions of a row whose parent has ended are refused."""
    if tool.transition is not None and _spellings(tool.transition.to_value) & STOP_VALUES:
        return []
    return [r for fk, parent in _parents(spec, entity) for r in _parent_not_stopped(entity, fk, parent, None)]


def _rules_for_update(tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    status = _status_field(entity)
    if status is None or status.name in _bound_fields(tool):
        return []
    stops = [v for v in status.enum or [] if str(v).lower() in STOP_VALUES]
    if not stops:
        return []
    return [
        BusinessRule(
            kind="frozen_when_stopped",
            statement=f"a {entity.name} that is {' or '.join(map(str, stops))} cannot be changed",
            evidence=f"{entity.name}.{status.name} has the ending value(s) {', '.join(map(str, stops))}",
            field=status.name,
            values=stops,
        )
    ]


def _delete_says_cascade(tool: ToolSpec, child: EntitySpec, fk: FieldSpec) -> str | None:
    if fk.on_delete == "cascade":
        return "the document marks the reference x-on-delete: cascade"
    text = tool.description.lower()
    nouns = [" ".join(words(child.collection)), " ".join(words(child.name))]
    for noun in nouns:
        listed = rf"(\w+(\s*,\s*|\s+and\s+))*{noun}"  # "its comments and worklogs"
        if re.search(rf"\b(and|with|along with|including)\s+(all\s+)?(its|their|the)\s+{listed}\b", text):
            return f"the tool's description says it removes {noun}"
    return None


def _subtree(spec: EnvSpec, entity: EntitySpec, seen: set[str]) -> list[dict[str, str]]:
    """Rows below a cascaded row that go with it (their reference to it is required), breadth
    first: `{collection, via, parent}` (a deleted repository takes its issues' comments too)."""
    found: list[dict[str, str]] = []
    level = [entity]
    while level:
        nxt = []
        for parent in level:
            for child, fk in _children(spec, parent):
                if child.name in seen or child.collection.endswith("_requests") or fk.nullable:
                    continue
                seen.add(child.name)
                found.append({"collection": child.collection, "via": fk.name, "parent": parent.collection})
                nxt.append(child)
        level = nxt
    return found


def _rules_for_delete(spec: EnvSpec, tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    rules = []
    for child, fk in _children(spec, entity):
        if child.collection.endswith("_requests"):
            continue
        common = {"target_entity": child.name, "via": fk.name}
        cascade = _delete_says_cascade(tool, child, fk)
        if cascade is not None:
            deeper = _subtree(spec, child, {entity.name, child.name})
            also = f" (and their {', '.join(d['collection'] for d in deeper)})" if deeper else ""
            rules.append(
                BusinessRule(
                    kind="cascade_delete",
                    statement=f"deleting a {entity.name} deletes its {child.collection}{also}",
                    evidence=cascade,
                    values=deeper,
                    **common,
                )
            )
        elif fk.nullable or fk.on_delete == "set_null":
            rules.append(
                BusinessRule(
                    kind="set_null_on_delete",
                    statement=f"deleting a {entity.name} clears {fk.name} of its {child.collection}",
                    evidence=f"{child.name}.{fk.name} is optional",
                    **common,
                )
            )
        else:
            rules.append(
                BusinessRule(
                    kind="restrict_delete",
                    statement=f"a {entity.name} that {child.collection} still reference cannot be deleted",
                    evidence=f"{child.name}.{fk.name} is a required reference to {entity.name}",
                    **common,
                )
            )
    return rules


def _spellings(value: Any) -> set[str]:
    text = str(value).lower()
    return {text, text.replace("cancelled", "canceled"), text.replace("canceled", "cancelled")}


def _rules_for_transition(spec: EnvSpec, tool: ToolSpec, entity: EntitySpec) -> list[BusinessRule]:
    transition = tool.transition
    if transition is None or transition.field != entity.status_field:
        return []
    target = str(transition.to_value).lower()
    if not _spellings(target) & STOP_VALUES:
        return []
    rules = []
    for child, fk in _children(spec, entity):
        status = _status_field(child)
        if status is None:
            continue
        match = next((v for v in status.enum or [] if _spellings(v) & _spellings(target)), None)
        if match is None:
            continue
        movable = [v for v in status.enum or [] if v != match and str(v).lower() not in FINAL_VALUES]
        if not movable:
            continue
        rules.append(
            BusinessRule(
                kind="move_children_status",
                statement=f"when a {entity.name} becomes {transition.to_value}, its {child.collection} "
                f"still {' or '.join(map(str, movable))} become {match}",
                evidence=f"{child.name}.{status.name} has the value {match!r} too",
                target_entity=child.name,
                via=fk.name,
                field=status.name,
                values=movable,
                value=match,
            )
        )
    return rules


def _request_foreign_keys(spec: EnvSpec) -> EnvSpec:
    """Recorded requests reference existing rows: `order_id` of a request names an Order."""
    by_key = {f"{snake_case(e.name)}_{e.key_field}": e.name for e in spec.entities}
    by_key.update({f"{snake_case(e.name)}_id": e.name for e in spec.entities})
    entities = []
    for e in spec.entities:
        if e.collection.endswith("_requests") and e.key_field == "request_id":
            fields = [
                f.model_copy(update={"ref_entity": by_key[f.name], "semantic": "foreign_key"})
                if f.name in by_key and f.type == "string" and not f.ref_entity and by_key[f.name] != e.name
                else f
                for f in e.fields
            ]
            e = e.model_copy(update={"fields": fields})
        entities.append(e)
    return spec.model_copy(update={"entities": entities})


def infer_business_rules(spec: EnvSpec) -> EnvSpec:
    """The spec with the rules of every write tool stated (ids `R1`, `R2`, ... per tool), and
    their statements added to the tool's preconditions and effects."""
    spec = _request_foreign_keys(spec)
    entities = {e.name: e for e in spec.entities}
    tools = []
    for tool in spec.tools:
        entity = entities.get(tool.entity or "")
        rules: list[BusinessRule] = []
        if entity is not None and tool.kind == "write":
            if tool.action == "create":
                rules = _rules_for_fields(tool, entity) + _rules_for_create(spec, tool, entity)
            elif tool.action == "update":
                rules = (
                    _rules_for_update(tool, entity)
                    + _rules_under_parents(spec, tool, entity)
                    + _rules_for_fields(tool, entity)
                )
            elif tool.action == "delete":
                rules = _rules_for_delete(spec, tool, entity)
            elif tool.action == "transition":
                rules = _rules_under_parents(spec, tool, entity) + _rules_for_transition(spec, tool, entity)
        rules = [r.model_copy(update={"id": f"R{i}"}) for i, r in enumerate(rules, 1)]
        preconditions = list(tool.preconditions) + [
            r.statement for r in rules if r.kind in PRECONDITION_KINDS
        ]
        effects = list(tool.effects) + [r.statement for r in rules if r.kind not in PRECONDITION_KINDS]
        tools.append(
            tool.model_copy(update={"rules": rules, "preconditions": preconditions, "effects": effects})
        )
    return spec.model_copy(update={"tools": tools})


PRECONDITION_KINDS = frozenset(
    {
        "unique_key",
        "ordered_fields",
        "parent_status",
        "within_parent_amount",
        "stock_available",
        "restrict_delete",
    }
)
SECOND_COLLECTION_KINDS = frozenset(
    {"accumulate_parent", "set_parent_status", "take_stock", "cascade_delete", "set_null_on_delete",
     "move_children_status"}
)  # fmt: skip


def collection_of(spec: EnvSpec, entity_name: str) -> str:
    entity = next((e for e in spec.entities if e.name == entity_name), None)
    return entity.collection if entity is not None else collection_name(entity_name)
