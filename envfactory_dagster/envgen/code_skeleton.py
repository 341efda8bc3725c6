"""What the LLM coder is given and what is taken from its answer: the module skeleton and tool bodies.

A whole module reproduces every schema of the spec verbatim (~6k tokens for ten tools): a real
model cut off at its answer limit, or one that retypes a schema slightly wrong, never passes. So
the skeleton — imports, entity models, `State`, row schemas, the class with each tool's
`@tool(...)` decorator and signature, `ENVIRONMENT_CLASS` — is rendered from the spec by the same
code as the template backend (`codegen.render_module`), and the model writes only tool bodies,
a few tools per call. `parse_tool_bodies` reads an answer (fenced or not, functions at top level
or inside a class, a cut answer's complete functions kept) and names every problem;
`merge_tool_bodies` puts bodies into the skeleton or into an earlier version, by tool name.
"""

from __future__ import annotations

import ast
import re
import textwrap
from typing import Any

from envfactory_dagster.envgen.codegen import (
    INDENT,
    model_names,
    new_row_default,
    render_module,
    tool_signature_line,
    updated_stamp_field,
)
from envfactory_dagster.envgen.env_spec import EntitySpec, EnvSpec, ToolSpec
from envfactory_dagster.envgen.key_forms import new_key_expression
from envfactory_dagster.llm.prompts import extract_code_block

PLACEHOLDER_NOTE = "tool body not written yet"
_OPEN_FENCE = re.compile(r"```[a-zA-Z0-9_+-]*[ \t]*\n")


def _placeholder_body(tool: ToolSpec, entities: dict[str, EntitySpec], spec: EnvSpec) -> list[str]:
    # An environment bug on purpose: verification reports the tool as crashing, never as passing.
    return [f"{INDENT * 2}raise NotImplementedError({tool.name!r})  # {PLACEHOLDER_NOTE}"]


def module_skeleton(spec: EnvSpec) -> str:
    """The module with every tool body a placeholder: all the coder must not get wrong, from the spec."""
    return render_module(
        spec,
        _placeholder_body,
        made_by="an LLM-written environment (skeleton from the spec)",
        schema_constants=False,  # the spec's schemas verbatim: equal by construction
    )


def skeleton_excerpt(spec: EnvSpec, tool_names: list[str]) -> str:
    """The skeleton of only `tool_names` and the entities they read or reference: the context of
    one call (the rest of the module would only cost tokens)."""
    tools = [t for t in spec.tools if t.name in tool_names]
    by_name = {e.name: e for e in spec.entities}
    wanted: set[str] = set()
    for tool in tools:
        entity = by_name.get(tool.entity or "")
        if entity is None:
            continue
        wanted.add(entity.name)
        wanted |= {f.ref_entity for f in entity.fields if f.ref_entity in by_name}  # type: ignore[misc]
        wanted |= {r.target_entity for r in tool.rules if r.target_entity in by_name}  # type: ignore[misc]
    entities = [e for e in spec.entities if e.name in wanted]
    excerpt = spec.model_copy(update={"tools": tools, "entities": entities})
    return render_module(
        excerpt, _placeholder_body, made_by="an excerpt of the module skeleton", schema_constants=False
    )


def tool_brief(spec: EnvSpec, tool: ToolSpec) -> dict[str, Any]:
    """What the coder needs to write one tool's body, in the spec's words (no code)."""
    entities = {e.name: e for e in spec.entities}
    entity = entities.get(tool.entity or "")
    fields = {f.name: f for f in entity.fields} if entity else {}
    required = set(tool.input_schema.get("required", []))
    parameters: dict[str, str] = {}
    for param, field in tool.param_fields.items():
        if field == "$query":
            meaning = "free text: keep rows whose text fields contain it (case-insensitive)"
        elif field == "$limit":
            meaning = "return at most this many rows"
        elif entity is not None and field == entity.key_field:
            meaning = f"the key of the {entity.name} row"
        else:
            meaning = f"the {field} field"
            target = entities.get(fields[field].ref_entity or "") if field in fields else None
            if target is not None:
                meaning += f" (references {target.name} in collection {target.collection!r})"
        parameters[param] = meaning + ("" if param in required else "; optional, None when not given")
    brief: dict[str, Any] = {
        "name": tool.name,
        "signature": tool_signature_line(tool),
        "kind": tool.kind,
        "action": tool.action,
        "description": tool.description,
        "parameters": parameters,
        "returns": {
            key: _describe_output(schema, entity)
            for key, schema in tool.output_schema.get("properties", {}).items()
        },
    }
    if entity is not None:
        brief["entity"] = {
            "name": entity.name,
            "model_class": model_names(spec)[entity.name],
            "collection": entity.collection,
            "key_field": entity.key_field,
            "id_prefix": entity.id_prefix,
            "new_key": new_key_expression(entity),  # the key form the document states
        }
    if tool.transition is not None:
        brief["transition"] = tool.transition.model_dump(mode="json")
    rules = [f"{r.id}: {r.statement}" for r in tool.rules]
    for name, items in (("preconditions", tool.preconditions), ("effects", tool.effects), ("rules", rules)):
        if items:
            brief[name] = list(items)
    if entity is not None and (tool.action == "create" or (tool.action == "custom" and tool.kind == "write")):
        brief["new_row_defaults"] = {  # Python source of each field's value when no argument sets it
            f.name: "None" if f.nullable else new_row_default(f, entity)
            for f in entity.fields
            if f.name != entity.key_field
        }
    stamp = updated_stamp_field(tool, entity) if entity is not None else None
    if stamp is not None:
        brief["on_change_set_to_now"] = stamp
    return brief


def _describe_output(schema: dict[str, Any], entity: EntitySpec | None) -> str:
    name = entity.name if entity else "row"
    if schema.get("type") == "array" and schema.get("items", {}).get("properties") is not None:
        return f"a list of {name} rows (dicts)"
    if schema.get("properties") is not None:
        return f"one {name} row (a dict)"
    return str(schema.get("type", "value"))


def parse_tool_bodies(
    answer: str, expected: list[str], *, cut: bool = False
) -> tuple[dict[str, str], list[str]]:
    """(tool name -> body source, dedented) for each expected tool found in `answer`, and the
    problems: no parse, unknown function names, missing tools. A cut answer (`cut`, or a code
    fence never closed) keeps its complete functions: the last one is dropped, it may stop at a
    line that happens to parse."""
    code = extract_code_block(answer)
    opening = _OPEN_FENCE.search(code)
    if opening is not None:  # a fence opened and never closed: a cut answer
        code, cut = code[opening.end() :], True
    problems: list[str] = []
    try:
        module = ast.parse(code)
    except SyntaxError as exc:
        problems.append(f"the code does not parse: line {exc.lineno}: {exc.msg}")
        module = _complete_prefix(code, exc.lineno or 0)
    else:
        if cut and module.body:
            module.body = module.body[:-1]
    functions = _function_defs(module)
    bodies: dict[str, str] = {}
    lines = code.splitlines()
    for node in functions:
        if node.name not in expected:
            problems.append(f"`{node.name}` is not one of the tools asked for ({', '.join(expected)})")
            continue
        body = "\n".join(lines[node.body[0].lineno - 1 : node.end_lineno])
        bodies[node.name] = textwrap.dedent(body)
    missing = [name for name in expected if name not in bodies]
    if missing:
        problems.append(f"no body for {', '.join(missing)}")
    return bodies, problems


def _complete_prefix(code: str, error_line: int) -> ast.Module:
    """The module up to the last function start before a syntax error (empty when none parses)."""
    lines = code.splitlines()
    starts = [i for i, line in enumerate(lines[: max(error_line - 1, 0)]) if line.lstrip().startswith("def ")]
    for start in reversed(starts):
        try:
            return ast.parse("\n".join(lines[:start]))
        except SyntaxError:
            continue
    return ast.Module(body=[], type_ignores=[])


def _function_defs(module: ast.Module) -> list[ast.FunctionDef]:
    found: list[ast.FunctionDef] = []
    for node in module.body:
        if isinstance(node, ast.FunctionDef):
            found.append(node)
        elif isinstance(node, ast.ClassDef):
            found += [n for n in node.body if isinstance(n, ast.FunctionDef)]
    return found


def merge_tool_bodies(code: str, bodies: dict[str, str]) -> str:
    """`code` (the skeleton or an earlier version) with the named tools' bodies replaced."""
    module = ast.parse(code)
    lines = code.splitlines()
    targets = sorted(
        (node for node in _function_defs(module) if node.name in bodies), key=lambda n: n.lineno, reverse=True
    )
    for node in targets:  # bottom-up: earlier line numbers stay valid
        body = textwrap.indent(bodies[node.name].rstrip("\n"), INDENT * 2).splitlines()
        lines[node.body[0].lineno - 1 : node.end_lineno] = body
    return "\n".join(lines) + "\n"


def unwritten_tools(code: str) -> list[str]:
    """Tools whose body is still the skeleton's placeholder (`raise NotImplementedError(...)`)."""
    return [node.name for node in _function_defs(ast.parse(code)) if _is_placeholder(node)]


def _is_placeholder(node: ast.FunctionDef) -> bool:
    [first, *rest] = node.body
    return (
        not rest
        and isinstance(first, ast.Raise)
        and isinstance(first.exc, ast.Call)
        and getattr(first.exc.func, "id", None) == "NotImplementedError"
    )
