"""Mutation check: do the generated tests notice a broken business rule?

Each rule block of a generated module (`# rule <tool>.<id> ...` to `# end rule <tool>.<id>`,
see codegen_rules.py) yields up to two mutants, each a copy of the module with one change:
- `flip`: the condition of the block's guard (the `if` whose body raises, else its first `if`)
  is negated;
- `drop`: the block's statements are removed (replaced by `pass`).
A mutant is killed when verification of the copy fails. The kill rate is the share of killed
mutants; a rule whose mutants survive is a rule the tests do not check.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.verification import verify_batch

_START = re.compile(r"^\s*# rule (?P<label>[\w.]+) \((?P<kind>\w+)\)")
_END = re.compile(r"^\s*# end rule (?P<label>[\w.]+)")


class Mutant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str  # <tool>.<id>
    kind: str  # the rule's kind
    operator: str  # flip | drop
    source: str


class MutationOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    kind: str
    operator: str
    killed: bool
    first_failure: str = ""


def rule_blocks(source: str) -> list[tuple[str, str, int, int]]:
    """(label, kind, first line, last line) of each rule block, 1-based line numbers of its code."""
    blocks = []
    open_blocks: dict[str, tuple[str, int]] = {}
    for number, line in enumerate(source.splitlines(), 1):
        start, end = _START.match(line), _END.match(line)
        if start:
            open_blocks[start["label"]] = (start["kind"], number + 1)
        elif end and end["label"] in open_blocks:
            kind, first = open_blocks.pop(end["label"])
            blocks.append((end["label"], kind, first, number - 1))
    return blocks


def _statements_in(tree: ast.Module, first: int, last: int) -> tuple[list[ast.stmt], int] | None:
    """The statement list that holds the block, and the index of the block's first statement."""
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            body = getattr(node, name, None)
            if not isinstance(body, list):
                continue
            inside = [i for i, s in enumerate(body) if isinstance(s, ast.stmt) and first <= s.lineno <= last]
            if inside and not isinstance(node, ast.Module):
                return body, inside[0]
    return None


def _guard(statements: list[ast.stmt]) -> ast.If | None:
    ifs = [n for s in statements for n in ast.walk(s) if isinstance(n, ast.If)]
    raising = [n for n in ifs if any(isinstance(b, ast.Raise) for b in n.body)]
    return (raising or ifs or [None])[0]


def mutants(source: str) -> list[Mutant]:
    """Every flip and drop mutant of the module's rule blocks."""
    out = []
    for label, kind, first, last in rule_blocks(source):
        for operator in ("flip", "drop"):
            tree = ast.parse(source)
            found = _statements_in(tree, first, last)
            if found is None:
                continue
            body, start = found
            block = [s for s in body[start:] if s.lineno <= last]
            if operator == "flip":
                guard = _guard(block)
                if guard is None:
                    continue
                guard.test = ast.UnaryOp(op=ast.Not(), operand=guard.test)
            else:
                body[start : start + len(block)] = [ast.Pass()]
            out.append(
                Mutant(
                    rule=label,
                    kind=kind,
                    operator=operator,
                    source=ast.unparse(ast.fix_missing_locations(tree)),
                )
            )
    return out


def mutation_check(items: list[tuple[EnvSpec, str, dict[str, Any]]]) -> list[MutationOutcome]:
    """Verify every rule mutant of every `(spec, source, seed_state)`; one outcome per mutant."""
    batch: list[tuple[EnvSpec, str, dict[str, Any]]] = []
    labels: list[Mutant] = []
    for spec, source, seed_state in items:
        for mutant in mutants(source):
            batch.append((spec, mutant.source, seed_state))
            labels.append(mutant)
    reports = verify_batch(batch) if batch else []
    return [
        MutationOutcome(
            rule=m.rule,
            kind=m.kind,
            operator=m.operator,
            killed=not report.passed,
            first_failure=report.failures[0][:300] if report.failures else "",
        )
        for m, report in zip(labels, reports, strict=True)
    ]


def kill_rate(outcomes: list[MutationOutcome]) -> float | None:
    """Share of killed mutants (None when there were none)."""
    return round(sum(o.killed for o in outcomes) / len(outcomes), 4) if outcomes else None
