"""Static screen of untrusted environment code, run before the sandbox ever imports it.

The first of two layers (the second is `sandbox.py`: resource limits, audit hook, no network):
refuse imports outside an allow-list and the calls and attributes that reach the interpreter's
internals, the file system, the clock or dynamic code. Each refusal names the line and the reason,
so a reviser (LLM) can fix it.
"""

from __future__ import annotations

import ast

CONTRACT_MODULE = "envfactory_dagster.runtime.contract"

# Top-level modules an environment may import; `datetime` for parsing the state's `now` only
# (the wall-clock constructors are refused below).
ALLOWED_IMPORT_ROOTS = frozenset(
    {
        "__future__",
        "typing",
        "typing_extensions",
        "pydantic",
        "re",
        "math",
        "decimal",
        "fractions",
        "enum",
        "dataclasses",
        "collections",
        "itertools",
        "functools",
        "operator",
        "copy",
        "json",
        "datetime",
        "string",
        "bisect",
        "heapq",
        "statistics",
        "abc",
    }
)

REFUSED_CALLS = frozenset(
    {
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "breakpoint",
        "input",
        "help",
        "exit",
        "quit",
        "memoryview",
        "setattr",
        "delattr",
    }
)
# Wall-clock readers: "now" is a state field in an environment, never the machine's clock.
REFUSED_METHOD_CALLS = frozenset({"now", "today", "utcnow", "time", "time_ns", "perf_counter", "monotonic"})
# Attribute names that lead from an allowed module or object to the interpreter: `typing.sys`,
# `sys.modules`, `os`, `builtins`, frames (`f_globals`, `gi_frame`, `tb_frame`) and code objects.
# Refused wherever they appear in an attribute chain, and as getattr's literal name.
REFUSED_ATTRIBUTES = frozenset(
    {
        "sys",
        "modules",
        "os",
        "posix",
        "builtins",
        "importlib",
        "subprocess",
        "socket",
        "ctypes",
        "gc",
        "inspect",
        "io",
        "_io",
        "system",
        "popen",
        "f_globals",
        "f_locals",
        "f_builtins",
        "f_back",
        "f_code",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "ag_code",
        "tb_frame",
        "tb_next",
        "co_code",
        "func_globals",
        "_getframe",
    }
)
# Dunder names an environment legitimately touches; any other dunder reaches interpreter internals
# (`().__class__.__mro__[1].__subclasses__()`, `f.__globals__`, `__builtins__`).
ALLOWED_DUNDERS = frozenset({"__init__", "__name__", "__doc__", "__slots__", "__future__", "__all__"})


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__") and len(name) > 4


def _import_allowed(module: str) -> bool:
    if module == CONTRACT_MODULE:
        return True
    return module.split(".")[0] in ALLOWED_IMPORT_ROOTS


def screen_source(source: str) -> list[str]:
    """Reasons to refuse `source` before running it (empty list = admitted to the sandbox)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: syntax error: {exc.msg}"]
    problems: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not _import_allowed(alias.name):
                    problems.append(f"line {line}: import of {alias.name!r} is not allowed")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                problems.append(
                    f"line {line}: relative import 'from {'.' * node.level}{module}' is not allowed"
                )
            elif not _import_allowed(module):
                problems.append(f"line {line}: import from {module!r} is not allowed")
        elif isinstance(node, ast.Call):
            problems.extend(_screen_call(node, line))
        elif isinstance(node, ast.Attribute) and _is_dunder(node.attr) and node.attr not in ALLOWED_DUNDERS:
            problems.append(f"line {line}: access to the internal attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr in REFUSED_ATTRIBUTES:
            problems.append(f"line {line}: the attribute {node.attr!r} leads to the interpreter's internals")
        elif isinstance(node, ast.Name) and _is_dunder(node.id) and node.id not in ALLOWED_DUNDERS:
            problems.append(f"line {line}: use of the internal name {node.id!r} is not allowed")
        elif isinstance(node, ast.Global | ast.Nonlocal):
            problems.append(
                f"line {line}: 'global'/'nonlocal' state is not allowed (state lives in self.state)"
            )
    return problems


def _screen_call(node: ast.Call, line: int) -> list[str]:
    func = node.func
    if isinstance(func, ast.Name):
        if func.id in REFUSED_CALLS:
            return [f"line {line}: call of {func.id}() is not allowed"]
        if func.id == "getattr":
            return _screen_getattr(node, line)
    elif isinstance(func, ast.Attribute) and func.attr in REFUSED_METHOD_CALLS:
        return [f"line {line}: call of .{func.attr}() reads the wall clock; use the state's `now` field"]
    return []


def _screen_getattr(node: ast.Call, line: int) -> list[str]:
    """getattr with a computed or private name can reach any module attribute: only literals pass."""
    if len(node.args) < 2:
        return []
    name = node.args[1]
    if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
        return [f"line {line}: getattr() with a computed attribute name is not allowed"]
    if name.value.startswith("_"):
        return [f"line {line}: getattr() of the private attribute {name.value!r} is not allowed"]
    if name.value in REFUSED_ATTRIBUTES:
        return [f"line {line}: getattr() of {name.value!r} leads to the interpreter's internals"]
    return []
