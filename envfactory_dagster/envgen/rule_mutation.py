"""Mutation check: do the generated tests notice a broken business rule?

Each rule block of a generated module (`# rule <tool>.<id> ...` to `# end rule <tool>.<id>`,
see codegen_rules.py) yields up to two mutants, each a copy of the module with one change:
- `flip`: the condition of the block's guard (the `if` whose body raises, else its first `if`)
  is negated;
- `drop`: the block's statements are removed (replaced by `pass`).
A mutant is killed when verification of the copy fails: its tool's tests, with their output
and state-effect checks (the whole-module checks, round trip and replay, are left out: the
module passed them, and a rule is the tests' to notice). The kill rate is the share of killed
mutants among those run; a rule whose mutants survive is a rule the tests do not check.

Every drop mutant runs. A flip turns a refusal into the normal path, so any valid call of the
tool kills it; `flip_every=n` runs one flip in n (chosen by a hash of the rule's label, so the
same rules every run) and reports the others as not run (`killed=None`).
"""

from __future__ import annotations

import ast
import hashlib
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.envgen.code_screen import screen_source
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
    killed: bool | None  # None: not run (a flip left out by `flip_every`)
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


def _statements_in(tree: ast.Module, first: int, last: int) -> list[ast.stmt] | None:
    """The statements of the block: those of the innermost statement list within its lines."""
    for node in ast.walk(tree):
        for name in ("body", "orelse"):
            body = getattr(node, name, None)
            if not isinstance(body, list) or isinstance(node, ast.Module):
                continue
            inside = [s for s in body if isinstance(s, ast.stmt) and first <= s.lineno <= last]
            if inside:
                return inside
    return None


def _guard(statements: list[ast.stmt]) -> ast.If | None:
    ifs = [n for s in statements for n in ast.walk(s) if isinstance(n, ast.If)]
    raising = [n for n in ifs if any(isinstance(b, ast.Raise) for b in n.body)]
    return (raising or ifs or [None])[0]


def _splice(lines: list[bytes], node: ast.expr, text: bytes) -> list[bytes]:
    """`lines` with `node`'s source replaced by `text` (AST offsets are UTF-8 byte offsets)."""
    start, end = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    head = lines[start][: node.col_offset]
    tail = lines[end][node.end_col_offset :]
    return [*lines[:start], head + text + tail, *lines[end + 1 :]]


def mutants(source: str) -> list[Mutant]:
    """Every flip and drop mutant of the module's rule blocks.

    Each mutant is the module's text with one splice (one parse for all of them; rebuilding the
    text from the tree per mutant was most of the mutation check's time), so it keeps the
    module's comments and layout and differs from the screened module only where it says.
    """
    tree = ast.parse(source)
    lines = source.encode().splitlines(keepends=True)
    out = []
    for label, kind, first, last in rule_blocks(source):
        block = _statements_in(tree, first, last)
        if block is None:
            continue
        guard = _guard(block)
        if guard is not None:
            test = ast.get_source_segment(source, guard.test) or ""
            flipped = _splice(lines, guard.test, f"not ({test})".encode())
            out.append(Mutant(rule=label, kind=kind, operator="flip", source=b"".join(flipped).decode()))
        begin, end = block[0].lineno - 1, (block[-1].end_lineno or block[-1].lineno) - 1
        indent = lines[begin][: block[0].col_offset]
        dropped = [*lines[:begin], indent + b"pass\n", *lines[end + 1 :]]
        out.append(Mutant(rule=label, kind=kind, operator="drop", source=b"".join(dropped).decode()))
    return out


def _runs(mutant: Mutant, flip_every: int) -> bool:
    if mutant.operator != "flip" or flip_every <= 1:
        return True
    return int(hashlib.sha256(mutant.rule.encode()).hexdigest(), 16) % flip_every == 0


def mutation_check(
    items: list[tuple[EnvSpec, str, dict[str, Any]]], *, flip_every: int = 1
) -> list[MutationOutcome]:
    """Verify the rule mutants of every `(spec, source, seed_state)`; one outcome per mutant
    (`killed=None` for a flip `flip_every` left out, see the module docstring).

    Each module is screened once, not each mutant: a mutant only deletes statements or negates a
    condition, so it names nothing its module did not (the sandbox still runs every mutant).
    A module the screen refuses is a ValueError: its mutants would count as killed by the screen.
    """
    batch: list[tuple[EnvSpec, str, dict[str, Any]]] = []
    labels: list[Mutant] = []
    skipped: list[Mutant] = []
    for spec, source, seed_state in items:
        refusals = screen_source(source)
        if refusals:
            raise ValueError(f"mutation check of {spec.class_name}: the screen refuses it: {refusals[0]}")
        for mutant in mutants(source):
            if not _runs(mutant, flip_every):
                skipped.append(mutant)
                continue
            batch.append((spec, mutant.source, seed_state))
            labels.append(mutant)
    # a mutant changes one tool's body and every test starts from the seed: only its tests can fail
    tested = [frozenset({m.rule.split(".", 1)[0]}) for m in labels]
    reports = (
        verify_batch(batch, tested_tools=tested, static_screen=False, module_checks=False) if batch else []
    )
    run = [
        MutationOutcome(
            rule=m.rule,
            kind=m.kind,
            operator=m.operator,
            killed=not report.passed,
            first_failure=report.failures[0][:300] if report.failures else "",
        )
        for m, report in zip(labels, reports, strict=True)
    ]
    not_run = [MutationOutcome(rule=m.rule, kind=m.kind, operator=m.operator, killed=None) for m in skipped]
    return run + not_run


def kill_rate(outcomes: list[MutationOutcome]) -> float | None:
    """Share of killed mutants among those run (None when none ran)."""
    ran = [o for o in outcomes if o.killed is not None]
    return round(sum(bool(o.killed) for o in ran) / len(ran), 4) if ran else None
