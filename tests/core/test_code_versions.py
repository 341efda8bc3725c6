"""Code versions find a module's imports from its text; parsing the module must agree (an import
statement written inside a string, such as generated code, may count too: it only widens a version)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from envfactory_dagster.catalog.code_versions import PROJECT_PACKAGES, imported_names

REPO = Path(__file__).resolve().parents[2]


def parsed_imports(source: str) -> set[tuple[int, str | None, tuple[str, ...]]]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.add((0, None, tuple(alias.name for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            found.add((node.level, node.module, tuple(alias.name for alias in node.names)))
    return found


def scanned_imports(source: str) -> set[tuple[int, str | None, tuple[str, ...]]]:
    return {(level, module, tuple(names)) for level, module, names in imported_names(source)}


PROJECT_MODULES = sorted(path for package in PROJECT_PACKAGES for path in (REPO / package).rglob("*.py"))


@pytest.mark.parametrize("path", PROJECT_MODULES, ids=lambda path: str(path.relative_to(REPO)))
def test_the_scan_finds_the_imports_parsing_finds(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    scanned, parsed = scanned_imports(source), parsed_imports(source)
    assert parsed <= scanned, f"missed: {parsed - scanned}"
    in_strings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            in_strings |= scanned_imports(node.value)
    assert scanned - parsed <= in_strings, f"not import statements: {scanned - parsed - in_strings}"


def test_the_scan_reads_every_statement_form() -> None:
    source = '''
import os, sys as system
from . import sibling
from ..package.module import (
    first,  # a comment
    second as other,
)
def later():
    from pkg.sub import name; x = 1
    import deep.module as dm
from star import *
text = """not code:
import in_a_string
"""
'''
    assert scanned_imports(source) == {
        (0, None, ("os", "sys")),
        (1, None, ("sibling",)),
        (2, "package.module", ("first", "second")),
        (0, "pkg.sub", ("name",)),
        (0, None, ("deep.module",)),
        (0, "star", ("*",)),
        (0, None, ("in_a_string",)),  # a string's text counts: at worst a version covers more
    }


def test_every_project_module_is_compared() -> None:
    assert len(PROJECT_MODULES) > 50  # the parametrized comparison above is not run on an empty list
