"""User-only tools: actions only the user can do (a physical step, a secret the assistant must not see).

No OpenAPI, MCP or function-calling standard field says who performs an operation, so a tool is
run by the user on one of two grounds, stored with the tool (`ToolSpec.performed_by`) so a user
can see why:

- the mark (`rule="mark"`): the operation carries the extension `x-performed-by: user` (an
  OpenAPI/Swagger operation, an MCP tool or its `annotations`, a function-catalog entry: every
  ingest kind keeps `x-*` keys). `x-performed-by: assistant` keeps a tool with the assistant even
  when the heuristic below would move it;
- the secret-input heuristic (`rule="secret_input_heuristic"`, offline, for real documents that
  say nothing): a required string or integer input is a secret the user holds, by its name (a
  last word such as `password`, `passcode`, `pin`, `otp`, `cvv`, or `verification_code`) or its
  description ("one-time code", "verification code", "security code", "password", an upper-case
  "PIN"/"OTP"/"CVV"). Optional inputs never decide: a tool that merely accepts a secret is still
  the assistant's.

Conversational exports let the assistant ask the user to run these tools (export/user_actions.py);
the other exports leave the assistant no such tool (see export/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from envfactory_dagster.envgen.env_spec import EnvSpec, PerformedBy, ToolSpec
from envfactory_dagster.ingest.normalized_spec import NormalizedOperation, NormalizedSpec

PERFORMED_BY = "x-performed-by"
PERFORMERS = ("user", "assistant")
# last word of an input's name that names a secret the user holds
SECRET_NAME_WORDS = frozenset(
    {"password", "passwd", "passcode", "passphrase", "pin", "otp", "totp", "cvv", "cvv2", "cvc", "csc"}
)
# `<word>_code` inputs that are secrets (a confirmation or authorization code is not the user's secret)
SECRET_CODE_WORDS = frozenset(
    {"verification", "security", "otp", "mfa", "2fa", "sms", "one_time", "passcode"}
)
SECRET_DESCRIPTION = re.compile(
    r"(?i:\bone[- ]time (?:pass)?(?:code|password|token)|\bverification code|\bsecurity code"
    r"|\bpasscode|\bpassword\b|\bcard verification value)|\b(?:PIN|OTP|CVV|CVC|TOTP)\b"
)
SECRET_TYPES = ("string", "integer")


def _name_words(name: str) -> list[str]:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_").split("_")


def secret_reason(name: str, schema: Mapping[str, Any]) -> str | None:
    """Why input `name` (its JSON schema `schema`) holds a secret of the user's, or None."""
    types = schema.get("type")
    if not any(t in SECRET_TYPES for t in (types if isinstance(types, list) else [types])):
        return None
    words = [w for w in _name_words(name) if w]
    if words and words[-1] in SECRET_NAME_WORDS:
        return f"its name {name!r} names a secret"
    if len(words) > 1 and words[-1] == "code" and "_".join(words[:-1]) in SECRET_CODE_WORDS:
        return f"its name {name!r} names a secret"
    match = SECRET_DESCRIPTION.search(str(schema.get("description") or ""))
    if match:
        return f"its description says {match.group(0)!r}"
    return None


def secret_inputs(input_schema: Mapping[str, Any]) -> dict[str, str]:
    """The required inputs of a tool that hold a secret of the user's, with the reason each does."""
    properties = input_schema.get("properties") or {}
    required = set(input_schema.get("required") or [])
    found = {}
    for name in sorted(required):
        schema = properties.get(name)
        reason = secret_reason(name, schema) if isinstance(schema, Mapping) else None
        if reason:
            found[name] = reason
    return found


def declared_performer(extensions: Mapping[str, Any]) -> str | None:
    """`x-performed-by` of an operation (its own key, or inside MCP `annotations`), or None.

    Raises ValueError naming the value when it is neither "user" nor "assistant"."""
    annotations = extensions.get("x-mcp-annotations")
    value = extensions.get(PERFORMED_BY)
    if value is None and isinstance(annotations, Mapping):
        value = annotations.get(PERFORMED_BY)
    if value is None:
        return None
    if value not in PERFORMERS:
        raise ValueError(f"{PERFORMED_BY} is {value!r}; expected one of {', '.join(PERFORMERS)}")
    return str(value)


def tool_performer(tool: ToolSpec, operation: NormalizedOperation | None) -> PerformedBy | None:
    """Who performs `tool` when it is the user (its source `operation`'s mark, else the heuristic)."""
    secrets = secret_inputs(tool.input_schema)
    declared = declared_performer(operation.extensions) if operation is not None else None
    if declared == "user":
        return PerformedBy(rule="mark", evidence=f"{PERFORMED_BY}: user", secret_inputs=sorted(secrets))
    if declared == "assistant" or not secrets:
        return None
    evidence = "; ".join(f"required input {name!r}: {why}" for name, why in secrets.items())
    return PerformedBy(rule="secret_input_heuristic", evidence=evidence, secret_inputs=sorted(secrets))


def source_operation(
    tool: ToolSpec, specs_by_resource: Mapping[str, NormalizedSpec]
) -> NormalizedOperation | None:
    """The operation `tool` was made from (`source_operation_id` = `<resource id>:<operation id>`)."""
    resource_id, _, operation_id = str(tool.source_operation_id or "").partition(":")
    spec = specs_by_resource.get(resource_id)
    if spec is None:
        return None
    return next((op for op in spec.operations if op.operation_id == operation_id), None)


def mark_user_only_tools(
    spec: EnvSpec, specs_by_resource: Mapping[str, NormalizedSpec]
) -> tuple[EnvSpec, list[str]]:
    """`spec` with `performed_by` set on its user-only tools, and problems (an unreadable mark)."""
    tools, problems = [], []
    for tool in spec.tools:
        try:
            performer = tool_performer(tool, source_operation(tool, specs_by_resource))
        except ValueError as exc:
            problems.append(f"{spec.class_name}.{tool.name}: {exc}; the tool stays the assistant's")
            performer = None
        tools.append(tool if performer is None else tool.model_copy(update={"performed_by": performer}))
    return spec.model_copy(update={"tools": tools}), problems


def user_only_tools(spec: EnvSpec) -> list[dict[str, Any]]:
    """`[{tool, rule, evidence, secret_inputs}]` of a spec's user-only tools (the stored column)."""
    return [
        {"tool": t.name, **t.performed_by.model_dump(mode="json", exclude={"by"})}
        for t in spec.tools
        if t.performed_by is not None
    ]
