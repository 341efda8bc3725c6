"""Audits of written export files, by the rules of the trainers that read them (not by our writers).

Each check reads a record as the consumer would and returns its problems (empty = accepted):

- `sharegpt_problems`: LLaMA-Factory's ShareGPT converter and function formatter
  (hiyouga/LLaMA-Factory@ff6d4d12 `src/llamafactory/data/converter.py`
  `SharegptDatasetConverter.__call__`, `data/formatter.py` `FunctionFormatter.apply`): after an
  optional leading system entry, entries alternate human|observation (even positions) and
  gpt|function_call (odd positions), their number is even (else the sample is silently dropped),
  and a function_call value is JSON: one `{"name", "arguments"}` or a list of them.
- `openai_problems`: OpenAI's fine-tuning line (`FineTuneChatRequestInput` in openai-openapi): roles
  and their keys, `tool_calls` as `{id, type: "function", function: {name, arguments: <JSON text>}}`,
  every `tool` message answering an earlier call id, called names among `tools`, >= 1 assistant
  message (the cookbook checker's rule).
- `unseen_ids`: arguments of assistant tool calls that carry an identifier not yet shown anywhere
  earlier in the conversation (system, user, tool results, assistant text): a model trained on such
  a call learns to guess ids. Values the tool's schema enumerates are options, not identifiers.
- `turn_answers` / `most_shared_answer`: the closing assistant text of every turn, and how often
  the most common one repeats.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# LLaMA-Factory DatasetAttr defaults for sharegpt (data/parser.py @ff6d4d12)
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_MESSAGE_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {"role", "content", "name", "tool_calls", "weight", "refusal", "function_call"},
    "tool": {"role", "content", "tool_call_id"},
}
# an identifier-looking string: a letter-led token with a separator and a digit (`ord_0005`,
# `sub-12`, `usr_a1b2`), or any string under an `id`-named key
ID_VALUE = re.compile(r"^[A-Za-z][A-Za-z0-9]*[_-][A-Za-z0-9_-]*[0-9][A-Za-z0-9_-]*$")
ID_KEY = re.compile(r"(^|_)ids?$|[a-z]Ids?$")


def sharegpt_problems(record: Mapping[str, Any], columns: Mapping[str, str] | None = None) -> list[str]:
    """Why LLaMA-Factory would drop or fail on this ShareGPT record (empty: it trains on it)."""
    tags = SHAREGPT_TAGS
    messages = record.get((columns or {}).get("messages", "conversations"))
    if not isinstance(messages, list) or not messages:
        return ["no conversation list"]
    role, content = tags["role_tag"], tags["content_tag"]
    if messages[0].get(role) == tags["system_tag"]:
        messages = messages[1:]
    accepted = (
        (tags["user_tag"], tags["observation_tag"]),
        (tags["assistant_tag"], tags["function_tag"]),
    )
    problems = []
    for position, message in enumerate(messages):
        if message.get(role) not in accepted[position % 2]:
            problems.append(f"entry {position}: role {message.get(role)!r} where {accepted[position % 2]} go")
            break
        if not isinstance(message.get(content), str):
            problems.append(f"entry {position}: value is not text")
        if message.get(role) == tags["function_tag"]:
            problems.extend(f"entry {position}: {p}" for p in _function_call_problems(message.get(content)))
    if len(messages) % 2:
        problems.append(f"odd number of entries ({len(messages)}) after the system entry")
    tools = record.get((columns or {}).get("tools", "tools"))
    if tools is not None and not _is_json_list(tools):
        problems.append("tools is not JSON text of a list")
    return problems


def _function_call_problems(value: Any) -> list[str]:
    try:
        calls = json.loads(value)
    except (TypeError, json.JSONDecodeError):
        return ["function_call value is not JSON"]
    calls = calls if isinstance(calls, list) else [calls]
    if not calls:
        return ["function_call holds no call"]
    return [
        f"function_call item {i} lacks name/arguments"
        for i, call in enumerate(calls)
        if not (isinstance(call, dict) and isinstance(call.get("name"), str) and "arguments" in call)
    ]


def _is_json_list(text: Any) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except (TypeError, json.JSONDecodeError):
        return False


def openai_problems(record: Mapping[str, Any]) -> list[str]:
    """Why an OpenAI fine-tuning line is malformed (empty: valid)."""
    problems = [
        f"unknown top-level key {k!r}"
        for k in record
        if k not in {"messages", "tools", "parallel_tool_calls"}
    ]
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*problems, "messages must be a non-empty list"]
    tools = record.get("tools") or []
    names = {
        t.get("function", {}).get("name")
        for t in tools
        if isinstance(t, dict) and t.get("type") == "function"
    }
    if len(names) != len(tools):
        problems.append("every tool must be {type: function, function: {name, ...}}")
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in OPENAI_MESSAGE_KEYS:
            problems.append(f"message {i}: unknown role {role!r}")
            continue
        problems.extend(
            f"message {i}: unknown key {k!r}" for k in message if k not in OPENAI_MESSAGE_KEYS[role]
        )
        content = message.get("content")
        if role == "assistant":
            calls = message.get("tool_calls") or []
            if not calls and not isinstance(content, str):
                problems.append(f"message {i}: assistant message without content or tool_calls")
            if message.get("weight") not in (None, 0, 1):
                problems.append(f"message {i}: weight must be 0 or 1")
            for call in calls:
                problems.extend(f"message {i}: {p}" for p in _tool_call_problems(call, names))
                open_calls.add(call.get("id"))
        elif role == "tool":
            if message.get("tool_call_id") not in open_calls:
                problems.append(
                    f"message {i}: tool_call_id {message.get('tool_call_id')!r} answers no earlier call"
                )
            open_calls.discard(message.get("tool_call_id"))
            if not isinstance(content, str):
                problems.append(f"message {i}: tool content must be text")
        elif not isinstance(content, str) or not content:
            problems.append(f"message {i}: {role} content must be non-empty text")
    if not any(m.get("role") == "assistant" for m in messages):
        problems.append("no assistant message")
    if open_calls:
        problems.append(f"tool calls without a result: {sorted(open_calls)}")
    return problems


def _tool_call_problems(call: Mapping[str, Any], names: set[Any]) -> list[str]:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    problems = []
    if not isinstance(call.get("id"), str) or call.get("type") != "function":
        problems.append("a tool call needs an id and type 'function'")
    if function.get("name") not in names:
        problems.append(f"tool {function.get('name')!r} is not in tools")
    try:
        if not isinstance(json.loads(function.get("arguments")), dict):
            problems.append("arguments must be JSON text of an object")
    except (TypeError, json.JSONDecodeError):
        problems.append("arguments must be JSON text of an object")
    return problems


def identifier_values(value: Any, key: str = "") -> Iterable[tuple[str, str]]:
    """(path, value) of identifier-looking strings inside a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from identifier_values(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from identifier_values(v, f"{key}[{i}]")
    elif isinstance(value, str) and value:
        last_key = re.sub(r"\[\d+\]$", "", key).rsplit(".", 1)[-1]
        if ID_VALUE.match(value) or (ID_KEY.search(last_key) and " " not in value):
            yield key, value


def call_arguments(call: Mapping[str, Any]) -> Any:
    """A tool call's arguments as a JSON value (OpenAI text, or a dict as HF templates take it)."""
    arguments = call.get("function", call).get("arguments")
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except json.JSONDecodeError:
            return None
    return arguments


def enum_values(schema: Any) -> set[str]:
    """Every string an `enum` (or `const`) anywhere in a JSON Schema allows: named options, not ids."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for option in [*(schema.get("enum") or []), *([schema["const"]] if "const" in schema else [])]:
            if isinstance(option, str):
                found.add(option)
        for value in schema.values():
            found |= enum_values(value)
    elif isinstance(schema, list):
        for value in schema:
            found |= enum_values(value)
    return found


def unseen_ids(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Tool-call arguments holding an identifier that no earlier message shows, one entry each.

    `tools` (the row's OpenAI tools): a value the called tool's schema lists in an `enum` is a
    named option (`net_60`, `DAYS_7`), not an identifier, even when it looks like one."""
    options = {t["function"]["name"]: enum_values(t["function"].get("parameters")) for t in tools}
    seen_text: list[str] = []
    found = []
    for i, message in enumerate(messages):
        shown = "\n".join(seen_text)
        for call in message.get("tool_calls") or []:
            name = call.get("function", {}).get("name")
            for path, value in identifier_values(call_arguments(call)):
                if value not in shown and value not in options.get(name, ()):
                    found.append({"message": i, "tool": name, "argument": path, "value": value})
        if isinstance(message.get("content"), str):
            seen_text.append(message["content"])
    return found


def turn_answers(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """The assistant's closing text of each turn (assistant messages without tool calls)."""
    return [
        m.get("content") or "" for m in messages if m.get("role") == "assistant" and not m.get("tool_calls")
    ]


def most_shared_answer(conversations: Iterable[Sequence[Mapping[str, Any]]]) -> tuple[float, str, int]:
    """(share of all turns, text, number of turns) of the most repeated closing answer."""
    counts = Counter(answer for messages in conversations for answer in turn_answers(messages))
    total = sum(counts.values())
    if not total:
        return 0.0, "", 0
    text, count = counts.most_common(1)[0]
    return count / total, text, total
