"""Tests of business rules, and arranging valid calls so the rules let them through.

For each rule of a write tool (see business_rules.py) one `rule` test: a state arranged by
`setup` operations and arguments that the rule must refuse (`tool_error`), or a call that must
succeed with the rule's effect visible in the state (`expect_state`). `arrange(...)` makes the
generated valid calls satisfy every precondition (a fresh natural key, a parent in an allowed
status, enough stock), so "valid" still means valid once rules exist.

Setup operations (JSON): `{"op": "set", collection, key, field, value}`,
`{"op": "delete_where", collection, field, value}`, `{"op": "clear", collection}` and
`{"op": "keep_only", collection, key}`. Expectations (JSON), checked against the
state before (after setup) and after the call; `"$new"` names the row the call added:
`field_equals`, `field_delta_of_new`, `no_rows_where`, `rows_where_all`, `row_count_delta`,
`new_field_equals`.
"""

from __future__ import annotations

import re
from typing import Any

from envfactory_dagster.envgen.env_spec import BusinessRule, EntitySpec, EnvSpec, ToolSpec
from envfactory_dagster.envgen.world_codes import COMMON_CURRENCIES

NEW_ROW = "$new"


def apply_setup(state: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of `state` with the setup operations applied (the input is not changed)."""
    if not ops:
        return state
    out = dict(state)
    for op in ops:
        table = dict(out.get(op["collection"]) or {})
        if op["op"] == "set" and op["key"] in table:
            table[op["key"]] = {**table[op["key"]], op["field"]: op["value"]}
        elif op["op"] == "clear":
            table = {}
        elif op["op"] == "keep_only":
            table = {k: r for k, r in table.items() if k == op["key"]}
        elif op["op"] == "delete_where":
            table = {k: r for k, r in table.items() if r.get(op["field"]) != op["value"]}
        out[op["collection"]] = table
    return out


def _set(collection: str, key: Any, field: str, value: Any) -> dict[str, Any]:
    return {"op": "set", "collection": collection, "key": key, "field": field, "value": value}


class RuleArranger:
    """Arranges and tests the rules of one tool against one seed state."""

    def __init__(self, spec: EnvSpec, tool: ToolSpec, state: dict[str, Any]) -> None:
        self.spec, self.tool, self.state = spec, tool, state
        self.entities = {e.name: e for e in spec.entities}
        self.entity: EntitySpec = self.entities[tool.entity or ""]
        self.params = {f: p for p, f in tool.param_fields.items()}  # field -> parameter
        self.key_param = next((p for p, f in tool.param_fields.items() if f == self.entity.key_field), None)

    def _coll(self, entity_name: str | None) -> str:
        return self.entities[entity_name or ""].collection

    def _rows(self, collection: str, state: dict[str, Any] | None = None) -> dict[str, Any]:
        return (state or self.state).get(collection) or {}

    def _field(self, entity_name: str | None, field: str | None) -> Any:
        entity = self.entities[entity_name or ""]
        return next(f for f in entity.fields if f.name == field)

    def _via_value(self, args: dict[str, Any], row: dict[str, Any] | None, rule: BusinessRule) -> Any:
        if self.tool.action in ("update", "transition") and row is not None and rule.via in row:
            return row[rule.via]  # the checks read the row's current parent
        param = self.params.get(rule.via or "")
        if param is not None and args.get(param) is not None:
            return args[param]
        return (row or {}).get(rule.via or "")

    # -- arranging valid calls ----------------------------------------------------------
    def arrange(
        self, args: dict[str, Any], row: dict[str, Any] | None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Arguments and setup under which every precondition of the tool holds."""
        args = dict(args)
        setup: list[dict[str, Any]] = []
        for rule in self.tool.rules:
            state = apply_setup(self.state, setup)
            if rule.kind == "unique_key":
                self._fresh_key(rule, args, state, row)
            elif rule.kind == "ordered_fields":
                self._in_order(rule, args, row)
            elif rule.kind in ("parent_status", "parent_not_stopped"):
                parent = self._via_value(args, row, rule)
                status = self._rows(self._coll(rule.target_entity), state).get(parent, {}).get(rule.field)
                ok = status in rule.values if rule.kind == "parent_status" else status not in rule.values
                if parent is not None and status is not None and not ok:
                    setup.append(
                        _set(self._coll(rule.target_entity), parent, rule.field, self._allowed(rule))
                    )
            elif (
                rule.kind == "frozen_when_stopped" and row is not None and row.get(rule.field) in rule.values
            ):
                setup.append(
                    _set(self.entity.collection, row[self.entity.key_field], rule.field, self._other(rule))
                )
            elif rule.kind == "within_parent_amount":
                setup += self._room_for_amount(rule, args, row, state)
            elif rule.kind == "stock_available":
                parent = self._via_value(args, row, rule)
                need = args.get(self.params.get(rule.field or "", ""), 1) or 1
                have = (
                    self._rows(self._coll(rule.target_entity), state).get(parent, {}).get(rule.other_field)
                    or 0
                )
                if parent is not None and have < need:
                    setup.append(_set(self._coll(rule.target_entity), parent, rule.other_field, need + 5))
            elif rule.kind == "restrict_delete" and self.key_param and args.get(self.key_param) is not None:
                coll = self._coll(rule.target_entity)
                setup.append(
                    {
                        "op": "delete_where",
                        "collection": coll,
                        "field": rule.via,
                        "value": args[self.key_param],
                    }
                )
        return args, setup

    def _allowed(self, rule: BusinessRule) -> Any:
        if rule.kind == "parent_status":
            return rule.values[0]
        return self._other(rule)

    def _other(self, rule: BusinessRule) -> Any:
        """A status value of the rule's field outside `rule.values`."""
        entity = rule.target_entity if rule.kind != "frozen_when_stopped" else self.entity.name
        field = self._field(entity, rule.field)
        return next(v for v in field.enum if v not in rule.values)

    def _fresh_key(
        self, rule: BusinessRule, args: dict[str, Any], state: dict[str, Any], row: dict[str, Any] | None
    ) -> None:
        param = self.params.get(rule.field or "")
        if param is None or args.get(param) is None:
            return
        taken = {r.get(rule.field) for r in self._rows(self.entity.collection, state).values()}
        if row is not None and self.tool.action == "update":
            taken.discard(row.get(rule.field))
        value = args[param]
        n = 1
        while value in taken:
            text = str(args[param])
            value = f"new{n}.{text}" if "@" in text else f"{text}-new{n}"
            n += 1
        args[param] = value

    def _in_order(self, rule: BusinessRule, args: dict[str, Any], row: dict[str, Any] | None) -> None:
        first, second = self.params.get(rule.field or ""), self.params.get(rule.other_field or "")
        a = args.get(first) if first else None
        b = args.get(second) if second else None
        a = a if a is not None else (row or {}).get(rule.field or "")
        b = b if b is not None else (row or {}).get(rule.other_field or "")
        if a is None or b is None or not a > b:
            return
        if first and second and args.get(first) is not None and args.get(second) is not None:
            args[first], args[second] = b, a
        elif second and args.get(second) is not None:
            args[second] = a
        elif first and args.get(first) is not None:
            args[first] = b

    def _room_for_amount(
        self, rule: BusinessRule, args: dict[str, Any], row: dict[str, Any] | None, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        parent = self._via_value(args, row, rule)
        parents = self._rows(self._coll(rule.target_entity), state)
        if parent not in parents:
            return []
        given = sum(
            r.get(rule.field) or 0
            for r in self._rows(self.entity.collection, state).values()
            if r.get(rule.via) == parent
        )
        asked = args.get(self.params.get(rule.field or "", "")) or 0
        whole = parents[parent].get(rule.other_field) or 0
        if whole - given >= max(asked, 1):
            return []
        field = self._field(rule.target_entity, rule.other_field)
        room = given + max(asked, 1) * 2 + 100
        return [
            _set(
                self._coll(rule.target_entity),
                parent,
                rule.other_field,
                room if field.type == "integer" else float(room),
            )
        ]

    # -- rule tests ---------------------------------------------------------------------
    def rule_tests(
        self, args: dict[str, Any], setup: list[dict[str, Any]], row: dict[str, Any] | None
    ) -> list[dict[str, Any]]:
        """One test per rule: `{label, arguments, setup, expect, expect_state, rule}`."""
        tests = []
        for rule in self.tool.rules:
            test = self._rule_test(rule, dict(args), list(setup), row)
            if test is not None:
                tests.append(
                    {**test, "rule": rule.id, "label": f"rule {rule.id} ({rule.kind}): {test['label']}"}
                )
        return tests

    def _rule_test(
        self,
        rule: BusinessRule,
        args: dict[str, Any],
        setup: list[dict[str, Any]],
        row: dict[str, Any] | None,
    ) -> dict[str, Any] | None:
        state = apply_setup(self.state, setup)
        refuse = {"expect": "tool_error", "expect_state": []}
        kind = rule.kind
        key = args.get(self.key_param) if self.key_param else None
        parent = self._via_value(args, row, rule)
        parent_coll = self._coll(rule.target_entity) if rule.target_entity else ""
        if kind == "unique_key":
            param = self.params.get(rule.field or "")
            others = [
                r.get(rule.field)
                for k, r in self._rows(self.entity.collection, state).items()
                if r.get(rule.field) is not None and k != key
            ]
            if param is None or not others:
                return None
            return {
                "label": f"{rule.field} another row holds",
                "arguments": {**args, param: others[0]},
                "setup": setup,
                **refuse,
            }
        if kind == "ordered_fields":
            return self._disorder_test(rule, args, setup, row, refuse)
        if kind in ("parent_status", "parent_not_stopped") and parent is not None:
            field = self._field(rule.target_entity, rule.field)
            bad = (
                next((v for v in field.enum if v not in rule.values), None)
                if kind == "parent_status"
                else rule.values[0]
            )
            if bad is None:
                return None
            return {
                "label": f"{rule.target_entity} is {bad}",
                "arguments": args,
                "setup": [*setup, _set(parent_coll, parent, rule.field, bad)],
                **refuse,
            }
        if kind == "frozen_when_stopped" and row is not None:
            setup = [
                *setup,
                _set(self.entity.collection, row[self.entity.key_field], rule.field, rule.values[0]),
            ]
            return {"label": f"the row is {rule.values[0]}", "arguments": args, "setup": setup, **refuse}
        if kind == "within_parent_amount" and parent is not None:
            given = sum(
                r.get(rule.field) or 0
                for r in self._rows(self.entity.collection, state).values()
                if r.get(rule.via) == parent
            )
            field = self._field(rule.target_entity, rule.other_field)
            value = given if field.type == "integer" else float(given)
            return {
                "label": "nothing left to give back",
                "arguments": args,
                "setup": [*setup, _set(parent_coll, parent, rule.other_field, value)],
                **refuse,
            }
        if kind == "stock_available" and parent is not None:
            param = self.params.get(rule.field or "")
            if param is not None:
                args[param] = max(args.get(param) or 1, 1)
            return {
                "label": "no stock left",
                "arguments": args,
                "setup": [*setup, _set(parent_coll, parent, rule.other_field, 0)],
                **refuse,
            }
        if kind in ("take_stock", "accumulate_parent") and parent is not None:
            sign = -1 if kind == "take_stock" else 1
            expect = {
                "op": "field_delta_of_new",
                "collection": parent_coll,
                "key": parent,
                "field": rule.other_field,
                "new_field": rule.field,
                "sign": sign,
            }
            return {
                "label": f"{rule.target_entity}.{rule.other_field} follows",
                "arguments": args,
                "setup": setup,
                "expect": "success",
                "expect_state": [expect],
            }
        if kind == "set_parent_status" and parent is not None:
            return self._full_refund_test(rule, args, setup, parent, parent_coll, state)
        if kind == "default_from_parent" and parent is not None:
            param = self.params.get(rule.field or "")
            required = set(self.tool.input_schema.get("required", []))
            call = {p: v for p, v in args.items() if p in required or p != param}
            setup = [*setup, *self._distinct_parent_value(rule, parent, state)]
            expect = {
                "op": "new_field_equals",
                "field": rule.field,
                "collection": parent_coll,
                "key": parent,
                "parent_field": rule.other_field,
            }
            return {
                "label": f"{rule.field} comes from the {rule.target_entity}",
                "arguments": call,
                "setup": setup,
                "expect": "success",
                "expect_state": [expect],
            }
        if kind in ("restrict_delete", "cascade_delete", "set_null_on_delete") and key is not None:
            return self._child_test(rule, args, setup, key, state, refuse)
        if kind == "move_children_status" and key is not None:
            child = self._child_of(rule, key, state)
            if child is None:
                return None
            coll = self._coll(rule.target_entity)
            setup = [*setup, _set(coll, child, rule.via, key), _set(coll, child, rule.field, rule.values[0])]
            expect = {
                "op": "field_equals",
                "collection": coll,
                "key": child,
                "field": rule.field,
                "value": rule.value,
            }
            return {
                "label": f"its {coll} become {rule.value}",
                "arguments": args,
                "setup": setup,
                "expect": "success",
                "expect_state": [expect],
            }
        return None

    def _disorder_test(
        self,
        rule: BusinessRule,
        args: dict[str, Any],
        setup: list[dict[str, Any]],
        row: dict[str, Any] | None,
        refuse: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Arguments (or a row arranged by setup) that put the pair out of order."""
        first, second = self.params.get(rule.field or ""), self.params.get(rule.other_field or "")
        given_first = args.get(first) if first else None
        given_second = args.get(second) if second else None
        label = f"{rule.field} after {rule.other_field}"
        if given_first is not None and given_second is not None:
            low, high = sorted((given_first, given_second))
            if low == high:
                high = _later(high)
            if low != high:
                return {
                    "label": label,
                    "arguments": {**args, first: high, second: low},
                    "setup": setup,
                    **refuse,
                }
        if row is not None and self.tool.action in ("update", "transition"):
            key = row[self.entity.key_field]
            if given_second is not None and _later(given_second) != given_second:
                put = _set(self.entity.collection, key, rule.field, _later(given_second))
                return {"label": label, "arguments": args, "setup": [*setup, put], **refuse}
            if given_first is not None and _earlier(given_first) != given_first:
                put = _set(self.entity.collection, key, rule.other_field, _earlier(given_first))
                return {"label": label, "arguments": args, "setup": [*setup, put], **refuse}
        late = given_second if given_second is not None else (row or {}).get(rule.other_field or "")
        if first and late is not None and _later(late) != late:
            return {"label": label, "arguments": {**args, first: _later(late)}, "setup": setup, **refuse}
        early = given_first if given_first is not None else (row or {}).get(rule.field or "")
        if second and early is not None and _earlier(early) != early:
            return {"label": label, "arguments": {**args, second: _earlier(early)}, "setup": setup, **refuse}
        return None

    def _full_refund_test(
        self,
        rule: BusinessRule,
        args: dict[str, Any],
        setup: list[dict[str, Any]],
        parent: Any,
        parent_coll: str,
        state: dict[str, Any],
    ) -> dict[str, Any] | None:
        status_field = str(rule.value)
        field = self._field(rule.target_entity, status_field)
        start = next((v for v in field.enum if v not in rule.values), None)
        param = self.params.get(rule.field or "")
        asked = args.get(param) if param else None
        if start is None or not asked:
            return None
        given = sum(
            r.get(rule.field) or 0
            for r in self._rows(self.entity.collection, state).values()
            if r.get(rule.via) == parent
        )
        whole_field = self._field(rule.target_entity, rule.other_field)
        whole = given + asked if whole_field.type == "integer" else float(given + asked)
        setup = [
            *setup,
            _set(parent_coll, parent, rule.other_field, whole),
            _set(parent_coll, parent, status_field, start),
        ]
        expect = {
            "op": "field_equals",
            "collection": parent_coll,
            "key": parent,
            "field": status_field,
            "value": rule.values[0],
        }
        return {
            "label": f"a full refund makes the {rule.target_entity} {rule.values[0]}",
            "arguments": args,
            "setup": setup,
            "expect": "success",
            "expect_state": [expect],
        }

    def _distinct_parent_value(
        self, rule: BusinessRule, parent: Any, state: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Give the parent a value the new row's own default cannot hold, so the copy shows."""
        from envfactory_dagster.envgen.codegen import STANDARD_CODE_MEANINGS, _semantic_default

        field = self._field(self.entity.name, rule.field)
        if field.type != "string":
            return []
        standard = field.examples or field.semantic in STANDARD_CODE_MEANINGS
        default = _semantic_default(field, self.entity) if standard else ""
        rows = self._rows(self._coll(rule.target_entity), state)
        pool = [r.get(rule.other_field) for r in rows.values()]
        pool += [c for code in COMMON_CURRENCIES for c in (code, code.lower())]
        if field.pattern:
            pool = [v for v in pool if isinstance(v, str) and re.search(field.pattern, v)]
        current = rows.get(parent, {}).get(rule.other_field)
        if current is not None and current != default:
            return []
        choice = next((v for v in pool if isinstance(v, str) and v and v != default), None)
        return (
            [] if choice is None else [_set(self._coll(rule.target_entity), parent, rule.other_field, choice)]
        )

    def _child_of(self, rule: BusinessRule, key: Any, state: dict[str, Any]) -> Any:
        rows = self._rows(self._coll(rule.target_entity), state)
        own = [k for k, r in rows.items() if r.get(rule.via) == key]
        return own[0] if own else (sorted(rows)[0] if rows else None)

    def _child_test(
        self,
        rule: BusinessRule,
        args: dict[str, Any],
        setup: list[dict[str, Any]],
        key: Any,
        state: dict[str, Any],
        refuse: dict[str, Any],
    ) -> dict[str, Any] | None:
        coll = self._coll(rule.target_entity)
        setup = [  # other references stay removed: only this rule may refuse
            op
            for op in setup
            if not (op["op"] == "delete_where" and op["collection"] == coll and op["field"] == rule.via)
        ]
        child = self._child_of(rule, key, apply_setup(self.state, setup))
        if child is None:
            return None
        setup = [*setup, _set(coll, child, rule.via, key)]
        if rule.kind == "restrict_delete":
            return {"label": f"{coll} still reference it", "arguments": args, "setup": setup, **refuse}
        gone = {"op": "no_rows_where", "collection": coll, "field": rule.via, "value": key}
        expect = [gone]
        if rule.kind == "set_null_on_delete":
            expect.append({"op": "row_count_delta", "collection": coll, "delta": 0})
        return {
            "label": f"its {coll} follow",
            "arguments": args,
            "setup": setup,
            "expect": "success",
            "expect_state": expect,
        }


def _earlier(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return value - 1
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-":
        return "2000-01-01" + ("T00:00:00Z" if len(value) > 10 else "")
    if isinstance(value, str) and len(value) in (5, 8) and value[2] == ":":
        return "00:00" + (":00" if len(value) == 8 else "")
    return value


def _later(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value + 1
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-":
        return "2099-12-31" + ("T23:59:59Z" if len(value) > 10 else "")
    if isinstance(value, str) and len(value) in (5, 8) and value[2] == ":":
        return "23:59" + (":59" if len(value) == 8 else "")
    return value


def expectation_problems(
    expectations: list[dict[str, Any]], before: dict[str, Any], after: dict[str, Any], collection: str
) -> list[str]:
    """What of the expected state does not hold after the call (`collection`: the tool's own)."""
    added = sorted(set(after.get(collection) or {}) - set(before.get(collection) or {}))
    new_row = (after.get(collection) or {}).get(added[0]) if len(added) == 1 else None
    problems = []
    for e in expectations:
        op = e["op"]
        rows_after = after.get(e.get("collection", "")) or {}
        rows_before = before.get(e.get("collection", "")) or {}
        if op == "field_equals":
            got = (rows_after.get(e["key"]) or {}).get(e["field"])
            if got != e["value"]:
                problems.append(
                    f"{e['collection']}[{e['key']}].{e['field']} is {got!r}, expected {e['value']!r}"
                )
        elif op == "field_delta_of_new":
            if new_row is None:
                problems.append("the call added no row")
                continue
            old = (rows_before.get(e["key"]) or {}).get(e["field"]) or 0
            new = (rows_after.get(e["key"]) or {}).get(e["field"]) or 0
            want = old + e["sign"] * (new_row.get(e["new_field"]) or 0)
            if abs(new - want) > 1e-9:
                problems.append(
                    f"{e['collection']}[{e['key']}].{e['field']} went {old} -> {new}, expected {want}"
                )
        elif op == "new_field_equals":
            parent_value = (rows_after.get(e["key"]) or {}).get(e["parent_field"])
            if new_row is None or new_row.get(e["field"]) != parent_value:
                got = None if new_row is None else new_row.get(e["field"])
                problems.append(
                    f"new row's {e['field']} is {got!r}, not the {e['collection']} value {parent_value!r}"
                )
        elif op == "no_rows_where":
            left = [k for k, r in rows_after.items() if r.get(e["field"]) == e["value"]]
            if left:
                problems.append(f"{e['collection']} {left[:3]} still have {e['field']} = {e['value']!r}")
        elif op == "rows_where_all":
            wrong = [
                k
                for k, r in rows_after.items()
                if r.get(e["where_field"]) == e["where_value"] and r.get(e["field"]) != e["value"]
            ]
            if wrong:
                problems.append(f"{e['collection']} {wrong[:3]} did not become {e['field']} = {e['value']!r}")
        elif op == "row_count_delta" and len(rows_after) - len(rows_before) != e["delta"]:
            problems.append(f"{e['collection']} went {len(rows_before)} -> {len(rows_after)} rows")
    return problems
