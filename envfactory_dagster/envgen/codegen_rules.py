# ruff: noqa: E501  (lines are templates of generated code: readable whole, not wrapped)
"""Business rules as code: one delimited block per rule in a generated tool body.

Each block starts with `# rule <tool>.<id> (<kind>): <statement>` and ends with
`# end rule <tool>.<id>`, so a reader finds every rule and the mutation check (rule_mutation.py)
can break exactly one. Preconditions raise `ToolError` before anything is written (refusals stay
atomic); effects run after the row is stored. Blocks read rows through `self.table(...)` and
never mutate a row in place (`self.put(coll, key, {**row, ...})`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from envfactory_dagster.envgen.env_spec import BusinessRule, EntitySpec, EnvSpec, ToolSpec

Add = Callable[[str, int], None]


def _scalar(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False) if isinstance(value, str) else repr(value)


def _members(values: list[Any]) -> str:
    return "(" + ", ".join(_scalar(v) for v in values) + ("," if len(values) == 1 else "") + ")"


def _text(value: str) -> str:
    """Literal text safe inside a generated double-quoted f-string."""
    return value.replace("\\", "/").replace('"', "'").replace("{", "{{").replace("}", "}}")


class RuleEmitter:
    """Emits the rule blocks of one tool at the points its body calls."""

    def __init__(self, spec: EnvSpec, tool: ToolSpec, entity: EntitySpec, add: Add) -> None:
        self.spec, self.tool, self.entity, self._add = spec, tool, entity, add
        self.entities = {e.name: e for e in spec.entities}

    def _coll(self, entity_name: str | None) -> str:
        return self.entities[entity_name or ""].collection

    def _block(self, rule: BusinessRule, lines: list[tuple[int, str]], depth: int = 0) -> None:
        label = f"{self.tool.name}.{rule.id}"
        self._add(f"# rule {label} ({rule.kind}): {' '.join(rule.statement.split())}", depth)
        for extra, line in lines:
            self._add(line, depth + extra)
        self._add(f"# end rule {label}", depth)

    def _rules(self, *kinds: str) -> list[BusinessRule]:
        return [r for r in self.tool.rules if r.kind in kinds]

    # -- create --------------------------------------------------------------------------
    def create_checks(self) -> None:
        """After `_row` is built, before its key is drawn: defaults from parents, then checks."""
        for rule in self._rules("default_from_parent"):
            param = self._param_of(rule.field)
            parent = f'self.table("{self._coll(rule.target_entity)}")[_row["{rule.via}"]]'
            missing = f"{param} is None and " if param else ""
            self._block(
                rule,
                [
                    (0, f'if {missing}_row["{rule.via}"] is not None:'),
                    (1, f'_row["{rule.field}"] = {parent}["{rule.other_field}"]'),
                ],
            )
        for rule in self._rules("unique_key"):
            self._block(
                rule,
                [
                    (0, f'if _row["{rule.field}"] is not None and any('),
                    (1, f'_r["{rule.field}"] == _row["{rule.field}"] for _r in self.table("{self.entity.collection}").values()'),
                    (0, "):"),
                    (1, f'_taken = _row["{rule.field}"]'),
                    (1, f'raise ToolError("conflict", f"a {self.entity.name} with {rule.field} {{_taken!r}} already exists")'),
                ],
            )  # fmt: skip
        self._ordered("_row")
        self._parent_checks()
        for rule in self._rules("within_parent_amount"):
            coll, child = self._coll(rule.target_entity), self.entity.collection
            param = self._param_of(rule.field)
            lines = [
                (0, f'if _row["{rule.via}"] is not None:'),
                (1, f'_parent = self.table("{coll}")[_row["{rule.via}"]]'),
                (1, f'_given = sum(_r["{rule.field}"] or 0 for _r in self.table("{child}").values()'),
                (2, f'if _r["{rule.via}"] == _row["{rule.via}"])'),
                (1, f'_left = round((_parent["{rule.other_field}"] or 0) - _given, 6)'),
            ]
            if param is not None and param not in self._required():
                lines.append((1, f"if {param} is None:  # the whole remaining amount"))
                lines.append((2, f'_row["{rule.field}"] = _left'))
            lines += [
                (1, f'if _left <= 0 or _row["{rule.field}"] > _left:'),
                (2, f'raise ToolError("invalid_state", f"only {{_left}} of the {rule.target_entity} is left, '
                    f'asked for {{_row[{rule.field!r}]}}")'),
            ]  # fmt: skip
            self._block(rule, lines)
        for rule in self._rules("stock_available"):
            coll = self._coll(rule.target_entity)
            self._block(
                rule,
                [
                    (0, f'if _row["{rule.via}"] is not None:'),
                    (1, f'_stock = self.table("{coll}")[_row["{rule.via}"]]["{rule.other_field}"] or 0'),
                    (1, f'if _stock < (_row["{rule.field}"] or 0):'),
                    (2, f'raise ToolError("insufficient_stock", f"only {{_stock}} left, asked for {{_row[{rule.field!r}]}}")'),
                ],
            )  # fmt: skip

    def create_effects(self) -> None:
        """After the new row is stored: what it does to the rows it references."""
        for rule in self._rules("take_stock", "accumulate_parent", "set_parent_status"):
            coll = self._coll(rule.target_entity)
            lines = [
                (0, f'if _row["{rule.via}"] is not None:'),
                (1, f'_parent = self.table("{coll}")[_row["{rule.via}"]]'),
            ]
            if rule.kind == "take_stock":
                new = f'(_parent["{rule.other_field}"] or 0) - (_row["{rule.field}"] or 0)'
                lines.append(
                    (1, f'self.put("{coll}", _row["{rule.via}"], {{**_parent, "{rule.other_field}": {new}}})')
                )
            elif rule.kind == "accumulate_parent":
                new = f'(_parent["{rule.other_field}"] or 0) + (_row["{rule.field}"] or 0)'
                lines.append(
                    (1, f'self.put("{coll}", _row["{rule.via}"], {{**_parent, "{rule.other_field}": {new}}})')
                )
            else:
                child = self.entity.collection
                lines += [
                    (1, f'_given = sum(_r["{rule.field}"] or 0 for _r in self.table("{child}").values()'),
                    (2, f'if _r["{rule.via}"] == _row["{rule.via}"])'),
                    (1, f'_left = round((_parent["{rule.other_field}"] or 0) - _given, 6)'),
                ]
                if len(rule.values) > 1:
                    status = f'"{rule.values[0]}" if _left <= 0 else "{rule.values[1]}"'
                    lines.append(
                        (
                            1,
                            f'self.put("{coll}", _row["{rule.via}"], {{**_parent, "{rule.value}": {status}}})',
                        )
                    )
                else:
                    lines.append((1, "if _left <= 0:"))
                    lines.append(
                        (
                            2,
                            f'self.put("{coll}", _row["{rule.via}"], {{**_parent, "{rule.value}": "{rule.values[0]}"}})',
                        )
                    )
            self._block(rule, lines)  # fmt: skip

    # -- update / transition -------------------------------------------------------------
    def row_checks(self) -> None:
        """After the row is read (update, transition): the row's own state and its parents."""
        for rule in self._rules("frozen_when_stopped"):
            self._block(
                rule,
                [
                    (0, f'if _row["{rule.field}"] in {_members(rule.values)}:'),
                    (1, f'raise ToolError("invalid_state", f"{self.entity.name} is {{_row[{rule.field!r}]}} and cannot be changed")'),
                ],
            )  # fmt: skip
        self._parent_checks()

    def change_checks(self, key_param: str) -> None:
        """After `_changes` is built (update): natural keys and ordered pairs of the result."""
        for rule in self._rules("unique_key"):
            field = rule.field
            self._block(
                rule,
                [
                    (0, f'if _changes.get("{field}") is not None and any('),
                    (1, f'_r["{field}"] == _changes["{field}"]'),
                    (1, f'for _k, _r in self.table("{self.entity.collection}").items()'),
                    (1, f"if _k != {key_param}"),
                    (0, "):"),
                    (1, f'_taken = _changes["{field}"]'),
                    (1, f'raise ToolError("conflict", f"a {self.entity.name} with {field} {{_taken!r}} already exists")'),
                ],
            )  # fmt: skip
        if self._rules("ordered_fields"):
            self._add("_after = {**_row, **_changes}", 0)
            self._ordered("_after")

    def transition_effects(self, key_param: str) -> None:
        for rule in self._rules("move_children_status"):
            coll = self._coll(rule.target_entity)
            self._block(
                rule,
                [
                    (0, f'for _k, _r in list(self.table("{coll}").items()):'),
                    (1, f'if _r["{rule.via}"] == {key_param} and _r["{rule.field}"] in {_members(rule.values)}:'),
                    (2, f'self.put("{coll}", _k, {{**_r, "{rule.field}": {_scalar(rule.value)}}})'),
                ],
            )  # fmt: skip

    # -- delete --------------------------------------------------------------------------
    def delete_rules(self, key_param: str) -> None:
        """Before the row is removed: refuse while rows reference it, then cascade or clear."""
        for rule in self._rules("restrict_delete"):
            coll = self._coll(rule.target_entity)
            self._block(
                rule,
                [
                    (0, f'_refs = [_k for _k, _r in self.table("{coll}").items() if _r["{rule.via}"] == {key_param}]'),
                    (0, "if _refs:"),
                    (1, f'raise ToolError("conflict", f"{self.entity.name} {{{key_param}!r}} is still referenced by '
                        f'{{len(_refs)}} {coll} (first: {{_refs[0]}})")'),
                ],
            )  # fmt: skip
        for rule in self._rules("cascade_delete", "set_null_on_delete"):
            coll = self._coll(rule.target_entity)
            if rule.kind == "cascade_delete":
                lines = [
                    (
                        0,
                        f'_removed = {{"{coll}": [_k for _k, _r in self.table("{coll}").items() if _r["{rule.via}"] == {key_param}]}}',
                    ),
                ]
                for below in rule.values:  # rows below the removed ones go with them
                    lines.append(
                        (
                            0,
                            f'_removed["{below["collection"]}"] = [_k for _k, _r in self.table("{below["collection"]}").items() '
                            f'if _r["{below["via"]}"] in _removed["{below["parent"]}"]]',
                        )
                    )
                lines += [
                    (0, "for _coll, _keys in _removed.items():"),
                    (1, "for _k in _keys:"),
                    (2, "del self.table(_coll)[_k]"),
                ]
            else:
                lines = [
                    (0, f'for _k, _r in list(self.table("{coll}").items()):'),
                    (1, f'if _r["{rule.via}"] == {key_param}:'),
                    (2, f'self.put("{coll}", _k, {{**_r, "{rule.via}": None}})'),
                ]
            self._block(rule, lines)  # fmt: skip

    # -- shared --------------------------------------------------------------------------
    def _required(self) -> set[str]:
        return set(self.tool.input_schema.get("required", []))

    def _param_of(self, field: str | None) -> str | None:
        return next((p for p, f in self.tool.param_fields.items() if f == field), None)

    def _ordered(self, row: str) -> None:
        for rule in self._rules("ordered_fields"):
            a, b = rule.field, rule.other_field
            self._block(
                rule,
                [
                    (0, f'if {row}["{a}"] is not None and {row}["{b}"] is not None and {row}["{a}"] > {row}["{b}"]:'),
                    (1, f'raise ToolError("invalid_value", f"{a} {{{row}[{a!r}]}} is after {b} {{{row}[{b!r}]}}")'),
                ],
            )  # fmt: skip

    def _parent_checks(self) -> None:
        for rule in self._rules("parent_status", "parent_not_stopped"):
            coll = self._coll(rule.target_entity)
            test = "not in" if rule.kind == "parent_status" else "in"
            listed = _text(" or ".join(map(str, rule.values)))
            wording = f"must be {listed}" if rule.kind == "parent_status" else "has ended"
            self._block(
                rule,
                [
                    (0, f'_parent = self.table("{coll}").get(_row["{rule.via}"])'),
                    (0, f'if _parent is not None and _parent["{rule.field}"] {test} {_members(rule.values)}:'),
                    (1, f'_status = _parent["{rule.field}"]'),
                    (1, f'raise ToolError("invalid_state", f"{rule.target_entity} {{_row[{rule.via!r}]}} is {{_status}}: it {wording}")'),
                ],
            )  # fmt: skip
