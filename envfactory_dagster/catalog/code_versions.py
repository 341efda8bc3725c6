"""Per-stage code versions: a hash of the code that computes the stage.

A stage's version covers its compute function's own source, the source of the helpers and
classes it names from its own module, and every project module it reaches: the modules of the
project objects it names and, transitively, their project imports (lazy imports inside
functions included). Editing a module therefore changes the version of exactly the stages that
reach it, and editing one asset function changes only that stage, so Dagster's staleness can say
which stage's code changed.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import types
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path

from envfactory_dagster.lineage import sha256_hex

# Top-level packages of this project; modules outside them (the standard library, Dagster,
# pandas...) are pinned by the environment, not by the stage's code.
PROJECT_PACKAGES = ("envfactory_dagster", "assets", "resources")
VERSION_LENGTH = 12


def stage_code_version(function: Callable, overrides: Mapping[str, str] | None = None) -> str:
    """The code version of the stage computed by `function`.

    `overrides` maps a module name to a source text used instead of the file's (what a code
    change would be; tests use it to show which stages a change reaches).
    """
    overrides = overrides or {}
    sources, modules = _function_closure(function)
    reached: set[str] = set()
    for module in sorted(modules):
        reached |= _module_closure(module)
    digest_parts = [f"fn:{sha256_hex(source)}" for source in sorted(sources)]
    for module in sorted(reached):
        text = overrides.get(module)
        digest_parts.append(f"{module}:{sha256_hex(text) if text is not None else _module_digest(module)}")
    return sha256_hex("\n".join(digest_parts))[:VERSION_LENGTH]


def reached_modules(function: Callable) -> set[str]:
    """The project modules whose source is part of `function`'s stage version."""
    _, modules = _function_closure(function)
    reached: set[str] = set()
    for module in modules:
        reached |= _module_closure(module)
    return reached


def _is_project(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in PROJECT_PACKAGES


def _code_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    yield from code.co_freevars
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_names(constant)


def _function_closure(function: Callable) -> tuple[set[str], set[str]]:
    """(sources of `function` and of the same-module objects it names, project modules it names)."""
    home = function.__module__
    sources: set[str] = set()
    modules: set[str] = set()
    seen: set[int] = set()
    pending: list[object] = [function]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        sources.add(inspect.getsource(item))  # decorators included: they configure the stage
        namespace = getattr(item, "__globals__", None) or vars(inspect.getmodule(item))
        names = set(_code_names(item.__code__)) if hasattr(item, "__code__") else set(_class_names(item))
        cells = _closure_values(item)
        for name in names:
            value = cells.get(name, namespace.get(name))
            if value is None:
                continue
            if isinstance(value, types.ModuleType):
                if _is_project(value.__name__):
                    modules.add(value.__name__)
                continue
            module = getattr(value, "__module__", None)
            if not isinstance(module, str) or not _is_project(module):
                continue
            if module == home and (inspect.isfunction(value) or inspect.isclass(value)):
                pending.append(value)
            elif module != home:
                modules.add(module)
    return sources, modules


def _closure_values(function: object) -> dict[str, object]:
    code = getattr(function, "__code__", None)
    cells = getattr(function, "__closure__", None) or ()
    if code is None:
        return {}
    values = {}
    for name, cell in zip(code.co_freevars, cells, strict=True):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: a name assigned after the function was defined
            continue
    return values


def _class_names(cls: type) -> Iterator[str]:
    """Names a class body and its methods use (read from its source)."""
    tree = ast.parse(inspect.getsource(cls).lstrip())
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            yield node.id


@cache
def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):  # `pkg.module.attribute`: a name inside a module
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


@cache
def _module_digest(module: str) -> str:
    path = _module_file(module)
    return sha256_hex(path.read_bytes()) if path else "missing"


# Import statements, found by their text rather than by parsing the module: every process that
# loads the definitions (each run's orchestrator, each worker) computes the versions, and parsing
# the whole project made importing the definitions take 2.2 s instead of 1.5 s. A statement starts
# a line (any indentation: lazy imports count); a parenthesized name list may span lines. A match
# inside a string only adds a module, which at worst widens a version; tests/core/test_code_versions.py
# checks the scan finds every import parsing finds, and nothing but statements written in strings.
IMPORT_STATEMENT = re.compile(
    r"^[ \t]*(?:import[ \t]+(?P<modules>[\w. \t,]+)"
    r"|from[ \t]+(?P<base>\.*[\w.]*)[ \t]+import[ \t]+(?:\((?P<grouped>[^)]*)\)|(?P<names>[\w. \t,*]+)))",
    re.MULTILINE,
)


def imported_names(source: str) -> Iterator[tuple[int, str | None, list[str]]]:
    """(relative level, module, names) of each `from module import names` statement, and
    (0, None, modules) of each `import modules` statement, in `source`."""
    for match in IMPORT_STATEMENT.finditer(source):
        if match["modules"] is not None:
            yield 0, None, [part.split()[0] for part in match["modules"].split(",") if part.strip()]
            continue
        base = match["base"]
        level = len(base) - len(base.lstrip("."))
        listed = match["grouped"] if match["grouped"] is not None else match["names"]
        names = [line.split("#")[0] for line in listed.splitlines()]
        aliases = [part.split()[0] for part in ",".join(names).split(",") if part.strip()]
        yield level, base[level:] or None, aliases


@cache
def _direct_imports(module: str) -> frozenset[str]:
    path = _module_file(module)
    if path is None:
        return frozenset()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for level, base_module, names in imported_names(path.read_text(encoding="utf-8")):
        if base_module is None and level == 0:
            found.update(names)
            continue
        base = _absolute(base_module, level, package)
        found.add(base)
        # `from pkg import submodule` names a module, not just an attribute. Only project
        # packages are looked up: find_spec imports the parents of what it finds, so asking about
        # `great_expectations.x.y` would import great_expectations (seconds) in every process
        # that loads the definitions.
        if _is_project(base):
            found.update(f"{base}.{name}" for name in names if _module_file(f"{base}.{name}"))
    return frozenset(name for name in found if _is_project(name) and _module_file(name))


def _absolute(module: str | None, level: int, package: str) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{module}" if module else base


@cache
def _module_closure(module: str) -> frozenset[str]:
    reached: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in reached or not _module_file(name):
            continue
        reached.add(name)
        pending.extend(_direct_imports(name) - reached)
    return frozenset(reached)
