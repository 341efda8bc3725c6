"""The verification checks, executed inside a sandboxed child (see sandbox.py and verification.py).

`run_verification_checks(payload)` imports the untrusted module and runs every check on it; it
returns a JSON-able dict and never raises for a bad module (a bad module is a result). Check
names, in rank order: import, class_and_state, tool_schemas, seed_state, roundtrip, tool_tests,
output_schemas, state_effects, read_only, atomic_refusals, copy_on_write, determinism.
"""

from __future__ import annotations

import inspect
import json
import statistics
import time
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.envgen.rule_tests import apply_setup, expectation_problems
from envfactory_dagster.envgen.test_generation import ToolTest, _bindings
from envfactory_dagster.lineage import canonical_json, sha256_hex
from envfactory_dagster.runtime.contract import Environment, ToolError
from envfactory_dagster.runtime.loader import load_environment_class

REPLAY_RUNS = 4  # run 1 warms up; all runs must agree; runs 2.. give the latency figures
MAX_DETAIL_LINES = 40


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "MemoryError: the module exceeded the sandbox's memory limit"
    return f"{type(exc).__name__}: {exc}"[:500]


class _Checks:
    """Named check results; a check fails with one line per problem."""

    def __init__(self) -> None:
        self.problems: dict[str, list[str]] = {}

    def start(self, name: str) -> None:
        self.problems.setdefault(name, [])

    def fail(self, name: str, problem: str) -> None:
        self.problems.setdefault(name, []).append(problem)

    def as_rows(self) -> list[dict[str, Any]]:
        rows = []
        for name, problems in self.problems.items():
            detail = "; ".join(problems[:MAX_DETAIL_LINES])
            if len(problems) > MAX_DETAIL_LINES:
                detail += f"; ... and {len(problems) - MAX_DETAIL_LINES} more"
            rows.append({"name": name, "passed": not problems, "detail": detail, "problems": problems})
        return rows


class TestResult(BaseModel):
    """One generated test as executed: what was called and what happened."""

    model_config = ConfigDict(extra="forbid")

    tool: str
    category: str
    label: str
    passed: bool
    detail: str = ""
    arguments: Any = None
    outcome: dict[str, Any] = Field(default_factory=dict)
    reached_body: bool = True  # False: the input schema refused the call before the tool ran
    rule: str | None = None


def _call(env: Environment, tool: str, arguments: Any) -> tuple[str, Any]:
    """("ok", output) | ("tool_error", code) | ("crash", "ExcType: message")."""
    kind, value, _ = _call_explained(env, tool, arguments)
    return kind, value


def _call_explained(env: Environment, tool: str, arguments: Any) -> tuple[str, Any, str]:
    """`_call` plus the refusal's message (what a failure report shows; replays compare codes)."""
    try:
        return "ok", env.call(tool, arguments), ""  # type: ignore[arg-type]
    except ToolError as exc:
        return "tool_error", exc.code, exc.message
    except Exception as exc:
        return "crash", _error_text(exc), ""


def _check_tool_schemas(env_class: type[Environment], spec: EnvSpec, checks: _Checks) -> None:
    checks.start("tool_schemas")
    declared = {t.name for t in spec.tools}
    for name in sorted(set(env_class.TOOLS) - declared):
        checks.fail("tool_schemas", f"tool {name!r} is not declared in the spec")
    for spec_tool in spec.tools:
        tool_def = env_class.TOOLS.get(spec_tool.name)
        if tool_def is None:
            checks.fail("tool_schemas", f"tool {spec_tool.name!r} of the spec is missing")
            continue
        if tool_def.kind != spec_tool.kind:
            checks.fail(
                "tool_schemas", f"tool {spec_tool.name!r} is {tool_def.kind}, the spec says {spec_tool.kind}"
            )
        for which, schema, expected in (
            ("input", tool_def.input_schema, spec_tool.input_schema),
            ("output", tool_def.output_schema, spec_tool.output_schema),
        ):
            if canonical_json(schema) == canonical_json(expected):
                continue  # the spec stage checked the spec's schemas against the meta-schema
            checks.fail("tool_schemas", f"tool {spec_tool.name!r}: {which} schema differs from the spec")
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                checks.fail(
                    "tool_schemas",
                    f"tool {spec_tool.name!r}: {which} schema is not valid JSON Schema: {exc.message}",
                )
        method = getattr(env_class, tool_def.method_name)
        parameters = inspect.signature(method).parameters
        has_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        properties = spec_tool.input_schema.get("properties", {})
        missing = [p for p in properties if p not in parameters and not has_kwargs]
        if missing:
            checks.fail("tool_schemas", f"tool {spec_tool.name!r}: method takes no parameter(s) {missing}")
        required = set(spec_tool.input_schema.get("required", []))
        no_default = [
            name
            for name, p in parameters.items()
            if name != "self"
            and p.default is inspect.Parameter.empty
            and p.kind is not inspect.Parameter.VAR_KEYWORD
            and name not in required
        ]
        if no_default:
            checks.fail(
                "tool_schemas", f"tool {spec_tool.name!r}: optional parameter(s) {no_default} need a default"
            )


def _nothing_changed(tool: ToolSpec, arguments: dict[str, Any]) -> str:
    given = ", ".join(sorted(arguments)) or "no arguments"
    target = f"{tool.entity} " if tool.entity else ""
    return (
        f"{tool.name} changed nothing: a {tool.action} write of {target}given {given} left every "
        "table as it was"
    )


def _state_effect_problems(
    tool: ToolSpec, spec: EnvSpec, arguments: dict[str, Any], before: dict[str, Any], after: dict[str, Any]
) -> list[str]:
    """Did a successful write change the state as its action declares?"""
    entity = next((e for e in spec.entities if e.name == tool.entity), None)
    if entity is None or tool.action not in ("create", "delete", "update", "transition"):
        return [] if canonical_json(before) != canonical_json(after) else [_nothing_changed(tool, arguments)]
    old_rows: dict[str, Any] = before.get(entity.collection, {})
    new_rows: dict[str, Any] = after.get(entity.collection, {})
    bindings = _bindings(tool, spec)
    key_param = next((p for p, b in bindings.items() if b.role == "key"), None)
    field_params = {
        p: (b.field.name if b.field is not None else p)
        for p, b in bindings.items()
        if b.role in ("field", "foreign_key") and p in arguments
    }
    if tool.action == "create":
        added = sorted(set(new_rows) - set(old_rows))
        if len(added) != 1 or len(new_rows) != len(old_rows) + 1:
            return [f"{tool.name} should add one {entity.name}; rows went {len(old_rows)} -> {len(new_rows)}"]
        row = new_rows[added[0]]
        return [
            f"{tool.name}: new {entity.name}.{f} is {row.get(f)!r}, not the given {arguments[p]!r}"
            for p, f in field_params.items()
            if f in row and row.get(f) != arguments[p]
        ]
    key = arguments.get(key_param) if key_param else None
    if key is None:
        return [] if canonical_json(before) != canonical_json(after) else [_nothing_changed(tool, arguments)]
    if tool.action == "delete":
        if key in new_rows or len(new_rows) != len(old_rows) - 1:
            counts = f"{len(old_rows)} -> {len(new_rows)}"
            return [f"{tool.name} should remove {entity.name} {key!r}; rows went {counts}"]
        return []
    row = new_rows.get(key)
    if row is None:
        return [f"{tool.name} removed {entity.name} {key!r} instead of changing it"]
    old_row = old_rows.get(key) or {}
    problems = []
    transition = tool.transition if tool.action == "transition" else None
    if transition is not None and row.get(transition.field) != transition.to_value:
        problems.append(
            f"{tool.name}: {entity.name}.{transition.field} is "
            f"{row.get(transition.field)!r}, not {transition.to_value!r}"
        )
    for param, field in field_params.items():
        if param != key_param and field in row and row.get(field) != arguments[param]:
            problems.append(
                f"{tool.name}: {entity.name}.{field} is {row.get(field)!r}, not the given "
                f"{arguments[param]!r}"
            )
    if canonical_json(before) == canonical_json(after) and transition is not None:
        problems.append(
            f"{tool.name} changed nothing: {entity.name}.{transition.field} stayed "
            f"{old_row.get(transition.field)!r} (the transition sets {transition.to_value!r})"
        )
    elif canonical_json(before) == canonical_json(after):
        problems.append(_why_nothing_changed(tool, entity.name, key_param, field_params, arguments, old_row))
    return problems


def _why_nothing_changed(
    tool: ToolSpec,
    entity: str,
    key_param: str | None,
    field_params: dict[str, str],
    arguments: dict[str, Any],
    old_row: dict[str, Any],
) -> str:
    """ "changed nothing", with the fields involved: none given, or given their current values."""
    changing = {p: f for p, f in field_params.items() if p != key_param}
    if not changing:
        given = ", ".join(sorted(arguments)) or "no arguments"
        return (
            f"{tool.name} changed nothing: none of its arguments ({given}) sets a field of {entity}, "
            f"so the {tool.action} has nothing to change"
        )
    same = [f"{entity}.{f}={arguments[p]!r}" for p, f in changing.items() if old_row.get(f) == arguments[p]]
    if len(same) == len(changing):
        return f"{tool.name} changed nothing: the test set {', '.join(same)}, the values it already had"
    fields = ", ".join(f"{entity}.{f}" for f in changing.values())
    return f"{tool.name} changed nothing although it was given new values for {fields}"


def _brief(arguments: Any, limit: int = 200) -> str:
    text = json.dumps(arguments, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit] + "..."


def _run_test(
    env: Environment,
    snapshot: dict[str, Any],
    test: ToolTest,
    tool: ToolSpec,
    spec: EnvSpec,
    output_validator: Draft202012Validator,
    checks: _Checks,
) -> TestResult:
    """Run one test from the snapshot; record contract violations in the named checks."""
    failures: list[str] = []
    chosen: Any = test.arguments[0] if test.arguments else {}
    result: tuple[str, Any] = ("crash", "no arguments")
    arranged = apply_setup(snapshot, test.setup)
    reached = False
    refusal = ""
    for arguments in test.arguments:
        env.reset(arranged)
        before = canonical_json(env.state)
        reached = reached or _passes_input_schema(env, test.tool, arguments)
        kind, value, refusal = _call_explained(env, test.tool, arguments)
        result = (kind, value)
        chosen = arguments
        after_state = env.state
        after = canonical_json(after_state)
        where = f"{test.tool} ({test.category}: {test.label})"
        if kind == "crash":
            failures.append(f"raised {value} instead of returning or raising ToolError")
            checks.fail("tool_tests", f"{where}: raised {value} instead of ToolError")
            break
        if kind == "tool_error":
            if before != after:
                checks.fail("atomic_refusals", f"{where}: refused with {value!r} but changed the state")
            if test.expect == "success":
                failures.append(f"refused with ToolError {value!r}")
                continue  # try the next candidate row
            break
        try:
            json.dumps(value, allow_nan=False)
            if not isinstance(value, dict):
                raise TypeError(f"returned {type(value).__name__}, not an object")
        except (TypeError, ValueError) as exc:
            checks.fail("output_schemas", f"{where}: output is not a JSON object: {exc}")
            failures.append("output is not a JSON object")
            break
        errors = sorted(output_validator.iter_errors(value), key=lambda e: list(e.path))
        if errors:
            path = "/".join(str(p) for p in errors[0].path) or "(root)"
            checks.fail(
                "output_schemas", f"{where}: output does not match its schema at {path}: {errors[0].message}"
            )
            failures.append("output does not match the output schema")
        if tool.kind == "read" and before != after:
            checks.fail("read_only", f"{where}: the read tool changed the state")
            failures.append("read tool changed the state")
        if tool.kind == "write" and test.category == "valid" and isinstance(arguments, dict):
            for problem in _state_effect_problems(tool, spec, arguments, json.loads(before), after_state):
                checks.fail("state_effects", f"{where}: {problem}")
                failures.append(problem)
        if test.expect_state and test.expect == "success":
            entity = next((e for e in spec.entities if e.name == tool.entity), None)
            collection = entity.collection if entity is not None else ""
            for problem in expectation_problems(
                test.expect_state, json.loads(before), after_state, collection
            ):
                checks.fail("rule_effects", f"{where}: {problem}")
                failures.append(problem)
        if test.expect == "tool_error":
            failures.append("succeeded but must raise ToolError")
            checks.fail("tool_tests", f"{where}: succeeded but must raise ToolError")
        else:
            failures = [f for f in failures if not f.startswith("refused with ToolError")]
        break
    if test.expect == "success" and result[0] == "tool_error":
        preconditions = "; ".join(tool.preconditions) or "none declared"
        checks.fail(
            "tool_tests",
            f"{test.tool} ({test.category}: {test.label}): every candidate was refused: {result[1]!r} "
            f"({refusal}) for {len(test.arguments)} candidate(s), the last {_brief(chosen)}; the tool's "
            f"preconditions: {preconditions}",
        )
    return TestResult(
        tool=test.tool,
        category=test.category,
        label=test.label,
        passed=not failures,
        detail="; ".join(failures),
        arguments=chosen,
        outcome={"kind": result[0], "value": result[1] if result[0] != "ok" else None},
        reached_body=reached,
        rule=test.rule,
    )


def _passes_input_schema(env: Environment, tool: str, arguments: Any) -> bool:
    """Whether a call gets past input validation, i.e. the tool body runs."""
    entry = env._DISPATCH.get(tool)
    if entry is None:
        return False
    try:
        entry[0](arguments if arguments is not None else {})
    except Exception:  # fastjsonschema's JsonSchemaException or a type error on a non-object
        return False
    return True


def _replay(
    env: Environment, snapshot: dict[str, Any], calls: list[tuple[str, Any]], timings: list[int] | None
) -> str:
    """Run `calls` in order from `snapshot` on one instance; the digest of outputs and final state."""
    env.reset(snapshot)
    record: list[Any] = []
    for tool, arguments in calls:
        started = time.perf_counter_ns()
        outcome = _call(env, tool, arguments)
        if timings is not None:
            timings.append(time.perf_counter_ns() - started)
        record.append(outcome)
    return sha256_hex(canonical_json({"calls": record, "state": env.state}))


def run_verification_checks(payload: dict[str, Any]) -> dict[str, Any]:
    """Import the module in `payload` and run every check (call only inside the sandbox)."""
    spec = EnvSpec.model_validate(payload["spec"])
    tests = [ToolTest.model_validate(t) for t in payload["tests"]]
    checks = _Checks()
    result: dict[str, Any] = {
        "tests": [],
        "tests_run": 0,
        "tests_passed": 0,
        "tests_per_tool": {},
        "tests_reaching_body": 0,
        "rule_tests": 0,
        "roundtrip_ok": False,
        "determinism_ok": False,
        "latency_p50_us": None,
        "latency_p95_us": None,
        "replay_digest": None,
    }

    def finish() -> dict[str, Any]:
        result["checks"] = checks.as_rows()
        return result

    checks.start("import")
    try:
        env_class = load_environment_class(payload["source"], payload["code_sha256"], spec.class_name)
    except BaseException as exc:  # untrusted module: SystemExit, MemoryError, sandbox refusals are results
        checks.fail("import", _error_text(exc))
        return finish()
    checks.start("class_and_state")
    state_model = getattr(env_class, "STATE_MODEL", None)
    if not (isinstance(state_model, type) and issubclass(state_model, BaseModel)):
        checks.fail("class_and_state", f"{spec.class_name}.STATE_MODEL is not a Pydantic model")
        return finish()
    _check_tool_schemas(env_class, spec, checks)

    checks.start("seed_state")
    try:
        env = env_class(payload["seed_state"])
        snapshot = env.dump_state()
    except Exception as exc:
        checks.fail("seed_state", f"the seed state does not load: {_error_text(exc)}")
        return finish()
    # a rule mutant (module_checks False) differs from its verified module in one tool body:
    # only that tool's tests can tell, the round trip and replay are the module's and passed
    module_checks = payload.get("module_checks", True)
    if module_checks:
        checks.start("roundtrip")
        try:
            dumped = canonical_json(snapshot)
            if json.loads(json.dumps(snapshot)) != snapshot:
                checks.fail("roundtrip", "dump_state() is not plain JSON")
            again = env_class(json.loads(dumped)).dump_state()
            if canonical_json(again) != dumped:
                checks.fail("roundtrip", "load_state(dump_state()) differs from dump_state()")
        except Exception as exc:
            checks.fail("roundtrip", f"load_state(dump_state()) failed: {_error_text(exc)}")
        result["roundtrip_ok"] = not checks.problems["roundtrip"]

    snapshot_before = canonical_json(snapshot)
    tools = {t.name: t for t in spec.tools}
    validators = {t.name: Draft202012Validator(t.output_schema) for t in spec.tools}
    for check in (
        "tool_tests",
        "rule_effects",
        "output_schemas",
        "state_effects",
        "read_only",
        "atomic_refusals",
    ):
        checks.start(check)
    outcomes: list[TestResult] = []
    for test in tests:
        if test.tool not in env_class.TOOLS:
            continue  # reported by tool_schemas
        outcomes.append(_run_test(env, snapshot, test, tools[test.tool], spec, validators[test.tool], checks))
    result["tests"] = [o.model_dump(mode="json") for o in outcomes]
    result["tests_run"] = len(outcomes)
    result["tests_passed"] = sum(o.passed for o in outcomes)
    group = payload.get("tools")  # a tool group of a large module, or a mutant's tool: only these
    per_tool: dict[str, int] = {t.name: 0 for t in spec.tools if group is None or t.name in group}
    for outcome in outcomes:
        per_tool[outcome.tool] += outcome.reached_body  # a call the schema refused proves only the schema
    result["tests_per_tool"] = per_tool
    result["tests_reaching_body"] = sum(o.reached_body for o in outcomes)
    result["rule_tests"] = sum(o.rule is not None for o in outcomes)
    for name, count in per_tool.items():
        if count < 3:
            checks.fail(
                "tool_tests", f"tool {name!r} has only {count} test(s) that reach its body, 3 are required"
            )

    checks.start("copy_on_write")
    if canonical_json(snapshot) != snapshot_before:
        checks.fail(
            "copy_on_write",
            "a tool mutated a shared row in place: the reset snapshot changed "
            "(write `self.put(collection, key, {**row, ...})`)",
        )

    if module_checks:
        checks.start("determinism")
        calls = [(o.tool, o.arguments) for o in outcomes]
        replay_snapshot = json.loads(snapshot_before)  # a clean snapshot, whatever copy-on-write did
        timings: list[int] = []
        digests = {
            _replay(env, replay_snapshot, calls, timings if run else None) for run in range(REPLAY_RUNS)
        }
        if len(digests) != 1:
            checks.fail(
                "determinism",
                f"replaying the same {len(calls)} calls from the same state gave "
                f"{len(digests)} different results",
            )
        result["determinism_ok"] = len(digests) == 1
        result["replay_digest"] = next(iter(digests)) if len(digests) == 1 else None
        if timings:
            quantiles = statistics.quantiles(timings, n=20) if len(timings) > 1 else [timings[0]] * 19
            result["latency_p50_us"] = round(statistics.median(timings) / 1000, 3)
            result["latency_p95_us"] = round(quantiles[18] / 1000, 3)
    return finish()


_WARM_UP_SOURCE = """
from typing import Any, Literal
from pydantic import BaseModel, ConfigDict, Field
from envfactory_dagster.runtime.contract import Environment, ToolError, tool

class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    status: Literal["open", "closed"]
    size: float = Field(ge=0)

class State(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: dict[str, Item] = Field(default_factory=dict)
    counters: dict[str, int] = Field(default_factory=dict)
    now: str = "2026-01-15T09:00:00Z"
    seed: int = 0

class WarmUp(Environment):
    STATE_MODEL = State
    __slots__ = ()

    @tool(kind="read", description="Get an item.", input_schema={"type": "object", "properties":
          {"item_id": {"type": "string"}}, "required": ["item_id"], "additionalProperties": False},
          output_schema={"type": "object", "properties": {"item": {"type": "object"}}, "required": ["item"]})
    def get_item(self, item_id: str) -> dict[str, Any]:
        return {"item": dict(self.require("items", item_id, "Item"))}
"""


def warm_up() -> None:
    """Import and exercise everything the checks need, once per sandbox worker before it forks.

    A child may run as `nobody` and cannot always read the interpreter's files, so every module
    an admitted environment may import is imported here, and a tiny environment is verified once.
    """
    import importlib

    from envfactory_dagster.envgen.code_screen import ALLOWED_IMPORT_ROOTS

    for name in sorted(ALLOWED_IMPORT_ROOTS - {"__future__"}):
        importlib.import_module(name)
    spec = {
        "class_name": "WarmUp",
        "title": "Warm-up",
        "description": "",
        "domain": "none",
        "entities": [],
        "tools": [
            {
                "name": "get_item",
                "description": "Get an item.",
                "kind": "read",
                "action": "get",
                "input_schema": {
                    "type": "object",
                    "properties": {"item_id": {"type": "string"}},
                    "required": ["item_id"],
                    "additionalProperties": False,
                },
                "output_schema": {
                    "type": "object",
                    "properties": {"item": {"type": "object"}},
                    "required": ["item"],
                },
            }
        ],
    }
    tests = [
        {
            "tool": "get_item",
            "category": "invalid",
            "label": "unknown id",
            "arguments": [{"item_id": "x"}],
            "expect": "tool_error",
        }
    ]
    run_verification_checks(
        {
            "spec": spec,
            "tests": tests,
            "source": _WARM_UP_SOURCE,
            "code_sha256": sha256_hex(_WARM_UP_SOURCE),
            "seed_state": {"items": {"i1": {"id": "i1", "status": "open", "size": 1.0}}},
        }
    )
