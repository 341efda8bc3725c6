"""A scripted model shaped like a weak real one, for the LLM EnvGen path over HTTP.

It reads only what the prompts give (the tool briefs, the repair notes) and writes plain tool bodies
by action, never template code. Like a weak model it wraps code in chatter, ignores business
rules, forgets a transition's allowed source states on a first try, and — on some environments,
chosen by a hash of the class name — names a tool in camelCase, breaks the syntax, or is cut off
mid-answer. The reviser is more careful (it keeps the transition checks). The proposer groups each
resource's operations in chunks, in the order listed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from envfactory_dagster.llm.testing import ScriptedReply

CHUNK = 6  # operations per proposed environment
_PARAM = re.compile(
    r"the (?P<field>\w+) field(?: \(references (?P<entity>\w+) in collection '(?P<coll>\w+)'\))?"
)
_TOOLS_HEADER = re.compile(r"Tools to (?:re)?write now \(JSON\):\n")


def _quirk(name: str, salt: str, every: int) -> bool:
    return int(hashlib.sha256(f"{salt}:{name}".encode()).hexdigest(), 16) % every == 0


def answer(messages: list[dict[str, Any]]) -> str | ScriptedReply:
    system, first_user, last = messages[0]["content"], messages[1]["content"], messages[-1]["content"]
    if first_user.startswith("Domain:"):
        return _propose(first_user)
    if not _TOOLS_HEADER.search(first_user):
        raise AssertionError(f"weak coder: unexpected prompt {first_user[:80]!r}")
    briefs = json.loads(_TOOLS_HEADER.split(first_user, maxsplit=1)[1])
    careful = system.startswith("You fix tools")
    if len(messages) > 2:  # a repair: answer only the functions asked for, cleanly
        wanted = re.search(r"only the functions ([\w, ]+), complete", last)
        names = [n.strip() for n in wanted.group(1).split(",")] if wanted else [b["name"] for b in briefs]
        return _fenced([write_function(b, careful=True) for b in briefs if b["name"] in names])
    module = re.search(r"class (\w+)\(Environment\)", first_user)
    key = (module.group(1) if module else "") + ":" + ",".join(b["name"] for b in briefs)
    functions = [write_function(b, careful=careful) for b in briefs]
    if not careful and _quirk(key, "camel", 3):
        name = briefs[0]["name"]
        camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), name)
        functions[0] = functions[0].replace(f"def {name}(", f"def {camel}(", 1)
    if not careful and _quirk(key, "syntax", 5):
        functions[-1] = functions[-1].replace(") -> dict[str, Any]:", ") -> dict[str, Any]", 1)
    text = _fenced(functions)
    if not careful and len(briefs) > 1 and _quirk(key, "cut", 4):
        return ScriptedReply(content=text[: int(len(text) * 0.6)], finish_reason="length")
    return text


def _fenced(functions: list[str]) -> str:
    code = "\n\n".join(functions)
    return (
        f"Sure! Here are the implementations:\n\n```python\n{code}\n```\n\nLet me know if you need changes."
    )


def _propose(prompt: str) -> str:
    by_resource: dict[str, list[str]] = {}
    for line in prompt.splitlines():
        match = re.match(r"- (\S+?):(\S+) \(", line)
        if match:
            by_resource.setdefault(match.group(1), []).append(f"{match.group(1)}:{match.group(2)}")
    limit = int(re.search(r"Propose up to (\d+) environments", prompt).group(1))  # type: ignore[union-attr]
    proposals = []
    for resource, operations in by_resource.items():
        words = re.findall(r"[a-z]+", resource.split("_", 1)[-1])[:3]
        stem = "".join(w.capitalize() for w in words) or "Service"
        for number, start in enumerate(range(0, len(operations), CHUNK), 1):
            proposals.append(
                {
                    "class_name": f"{stem}Desk{number}",
                    "title": f"{stem} desk {number}",
                    "purpose": "Look up and manage the records this part of the API covers.",
                    "operation_ids": operations[start : start + CHUNK],
                }
            )
    return json.dumps({"proposals": proposals[:limit]})


def write_function(brief: dict[str, Any], *, careful: bool) -> str:
    """A plain body for one tool from its brief, the way a model without the template would."""
    lines = [brief["signature"]]
    body = _body(brief, careful)
    return "\n".join(lines + ["    " + line if line else "" for line in body])


def _params(
    brief: dict[str, Any],
) -> tuple[str | None, dict[str, tuple[str, str | None, str | None]], str | None, str | None, set[str]]:
    key, fields, query, limit, optional = None, {}, None, None, set()
    for param, meaning in brief["parameters"].items():
        if "optional" in meaning:
            optional.add(param)
        if meaning.startswith("the key of"):
            key = param
        elif meaning.startswith("free text"):
            query = param
        elif meaning.startswith("return at most"):
            limit = param
        else:
            match = _PARAM.match(meaning)
            if match:
                fields[param] = (match.group("field"), match.group("entity"), match.group("coll"))
    return key, fields, query, limit, optional


def _ref_checks(fields: dict[str, tuple[str, str | None, str | None]], optional: set[str]) -> list[str]:
    lines = []
    for param, (_, entity, coll) in fields.items():
        if coll is None:
            continue
        if param in optional:
            lines += [f"if {param} is not None:", f'    self.require("{coll}", {param}, "{entity}")']
        else:
            lines.append(f'self.require("{coll}", {param}, "{entity}")')
    return lines


def _body(brief: dict[str, Any], careful: bool) -> list[str]:
    entity = brief["entity"]
    coll, name, key_field = entity["collection"], entity["name"], entity["key_field"]
    out = next(iter(brief["returns"]))
    key, fields, query, limit, optional = _params(brief)
    action = brief["action"]
    if action == "get":
        lines = [f'row = self.require("{coll}", {key}, "{name}")']
        for param, (field, _, _) in fields.items():
            if param not in optional:
                lines += [
                    f'if row["{field}"] != {param}:',
                    f'    raise ToolError("not_found", f"{name} {{{key}!r}} not found")',
                ]
        return [*lines, f'return {{"{out}": dict(row)}}']
    if action in ("list", "search") or (action == "custom" and brief["kind"] == "read"):
        lines = _ref_checks(fields, optional)
        if key is not None:
            lines.append(f'self.require("{coll}", {key}, "{name}")')
        lines += ["rows = []", f'for row in self.table("{coll}").values():']
        for param, (field, _, _) in fields.items():
            test = f'row["{field}"] != {param}'
            lines += [
                f"    if {param} is not None and {test}:" if param in optional else f"    if {test}:",
                "        continue",
            ]
        if query is not None:
            text = '" ".join(str(v) for v in row.values() if isinstance(v, str)).lower()'
            lines += [f"    if {query} is not None and {query}.lower() not in {text}:", "        continue"]
        lines.append("    rows.append(dict(row))")
        if limit is not None:
            lines += [f"if {limit} is not None:", f"    rows = rows[:{limit}]"]
        return [*lines, f'return {{"{out}": rows}}']
    if action in ("create", "custom"):
        lines = _ref_checks(fields, optional)
        defaults = brief.get("new_row_defaults", {})
        values = {f: defaults[f] for f in defaults}
        for param, (field, _, _) in fields.items():
            values[field] = (
                f"{param} if {param} is not None else {defaults.get(field, 'None')}"
                if param in optional
                else param
            )
        if key is not None:
            lines += [
                f'if {key} in self.table("{coll}"):',
                f'    raise ToolError("conflict", f"{name} {{{key}!r}} exists")',
                f"new_key = {key}",
            ]
        else:
            lines.append(f'new_key = self.next_id("{coll}", "{entity["id_prefix"]}")')
        lines.append(f'row = {{"{key_field}": new_key,')
        lines += [f'    "{field}": {value},' for field, value in values.items()]
        lines.append("}")
        return [*lines, f'return {{"{out}": self.put("{coll}", new_key, row)}}']
    if action == "delete":
        lines = [f'self.require("{coll}", {key}, "{name}")', f'del self.table("{coll}")[{key}]']
        result = ", ".join(f'"{k}": True' if k == "deleted" else f'"{k}": {key}' for k in brief["returns"])
        return [*lines, f"return {{{result}}}"]
    # update, transition
    lines = [f'row = self.require("{coll}", {key}, "{name}")', "changes = {}"]
    transition = brief.get("transition")
    if transition is not None:
        allowed = transition["from_values"]
        status = transition["field"]
        if allowed and careful:
            lines += [
                f'if row["{status}"] not in {allowed!r}:',
                f'    raise ToolError("invalid_state", f"{name} {{{key}!r}} is {{row[{status!r}]}}")',
            ]
        lines.append(f'changes["{transition["field"]}"] = {transition["to_value"]!r}')
    for param, (field, entity_name, ref_coll) in fields.items():
        if param == key:
            continue
        lines.append(f"if {param} is not None:")
        if ref_coll is not None:
            lines.append(f'    self.require("{ref_coll}", {param}, "{entity_name}")')
        lines.append(f'    changes["{field}"] = {param}')
    if brief.get("on_change_set_to_now"):
        lines.append(f'changes["{brief["on_change_set_to_now"]}"] = self.state["now"]')
    return [*lines, f'return {{"{out}": self.put("{coll}", {key}, {{**row, **changes}})}}']
