"""User-performed steps: a chain step whose tool only the user can run (envgen/user_only.py).

Conversational mode: where a turn's recorded call is a user-only tool, the assistant makes no
call; it asks the user to do the step (naming the action and the record, never a secret input),
the user simulator runs the recorded call on the same environment state (in the trajectory it
already did: the call, its arguments and the states are the recorded ones, so the trajectory
replays as before) and reports the outcome in words; the assistant then goes on. The user's
reply states the identifiers and values of the result (later calls may pass them) and never a
secret input. A secret input the user typed in the turn's request is taken out of the message the
assistant reads (`withhold_secrets`): the user enters it themselves.

Other modes: the assistant has no user-only tool, so a trajectory is exported up to the turn
before its first user-performed step (sft.py, rl_tasks.py).

`UserActionRunner` plays the user's side in a served conversational task (serve/gym_env.py,
serve/verl_interaction.py): when the assistant's message asks for a pending step (it names the
action's words, `asks_for`), the step's recorded call runs on the rollout's environments, outside
the policy's calls, and the outcome is the user's reply.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.envgen.env_spec import ToolSpec
from envfactory_dagster.export.turn_answers import short, words_of
from envfactory_dagster.querygen.surface import field_label
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory
from envfactory_dagster.runtime.loader import VerifiedEnvironment

ASKS = (
    "Only you can do this step: could you {label}{target}? Tell me what it shows and I'll carry on.",
    "I can't {label} for you{target_paren}. Please do it on your side and let me know how it went.",
    "Next, please {label} yourself{target}; once it's done, tell me the result.",
)
SECRET_NOTE = " You'll need your {secrets} for it; please don't share it with me."
WITHHELD = "(I'll enter it myself)"
MAX_REPLY_FIELDS = 6


class UserAction(BaseModel):
    """One user-performed step of a conversation (stored per SFT row in `user_actions_json`)."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    call: int  # index of the recorded call in its turn
    tool: str  # training name
    label: str  # the action in words ("activate ticket")
    rule: str  # "mark" | "secret_input_heuristic" (why the user runs it)
    evidence: str
    secret_inputs: list[str] = Field(default_factory=list)
    ask: str
    reply: str


def user_only_specs(envs: Iterable[VerifiedEnvironment]) -> dict[tuple[str, str], ToolSpec]:
    """(env_id, tool) -> spec of each user-only tool of `envs`."""
    return {(e.env_id, t.name): t for e in envs for t in e.spec.tools if t.performed_by is not None}


def first_user_turn(trajectory: Trajectory, user_tools: Mapping[tuple[str, str], Any]) -> int | None:
    """Index (position in `turns`) of the first turn with a call of a user-only tool, or None."""
    return next(
        (
            t
            for t, turn in enumerate(trajectory.turns)
            if any((c.env_id, c.tool) in user_tools for c in turn.calls)
        ),
        None,
    )


def secret_values(call: GoldCall, secret_inputs: Sequence[str]) -> list[str]:
    """The values of a call's secret inputs, as text (what must never reach the assistant)."""
    return [str(call.arguments[name]) for name in secret_inputs if call.arguments.get(name) not in (None, "")]


def action_label(tool: ToolSpec) -> str:
    return words_of(tool.name)


def asks_for(message: str, label: str) -> bool:
    """Does the assistant's `message` ask for the action `label`? (every word of it is written)"""
    text = message.lower()
    return bool(label) and all(word in text for word in label.split())


def _target(call: GoldCall, secret_inputs: Sequence[str], label: str) -> tuple[str, str]:
    """(the action's words, the non-secret scalar arguments in words): a key of the record the
    label already names goes after the label ("check in class booking cb_1"), others follow it."""
    parts = []
    for name, value in call.arguments.items():
        if name in secret_inputs or not isinstance(value, str | int | float) or isinstance(value, bool):
            continue
        if label.endswith(field_label(name)) and not parts and name.endswith("_id"):
            label = f"{label} {short(value)}"
            continue
        parts.append(f"{field_label(name)} {short(value)}")
    return label, ", ".join(parts[:3])


def ask_text(call: GoldCall, tool: ToolSpec, *, seed: str) -> str:
    """The assistant's request that the user do the step (names no secret value)."""
    secrets = tool.performed_by.secret_inputs if tool.performed_by else []
    label, target = _target(call, secrets, action_label(tool))
    template = random.Random(seed).choice(ASKS)
    text = template.format(
        label=label,
        target=f" for {target}" if target else "",
        target_paren=f" ({target})" if target else "",
    )
    if secrets:
        text += SECRET_NOTE.format(secrets=" and ".join(field_label(s) for s in secrets))
    return text


def changed_fields(call: GoldCall) -> set[str]:
    """The fields the recorded call changed (its state diff)."""
    return {
        field
        for diff in call.state_diff.values()
        for change in (diff.get("changed") or {}).values()
        for field in change
    }


def _is_status(name: str) -> bool:
    return name in ("status", "state") or name.endswith(("_status", "_state"))


def outcome_reply(
    output: Mapping[str, Any], hidden: Sequence[str] = (), changed: Collection[str] = ()
) -> str:
    """The user's report of what the step did: identifiers, then the fields it `changed` and any
    status, then other plain values of the result (never a value in `hidden`, the secrets); a
    refusal's message when it failed."""
    error = output.get("error")
    if isinstance(error, Mapping):
        return f"I tried, but it didn't work: {error.get('message') or error.get('code') or 'an error'}."
    record = output
    if len(output) == 1 and isinstance(next(iter(output.values())), Mapping):
        record = next(iter(output.values()))  # {"ticket": {...}}: the record itself
    scalars = [
        (name, value)
        for name, value in record.items()
        if isinstance(value, str | int | float | bool) and str(value) not in hidden
    ]
    ids = [(n, v) for n, v in scalars if n == "id" or n.endswith("_id")]
    others = sorted(
        ((n, v) for n, v in scalars if (n, v) not in ids),
        key=lambda item: not (item[0] in changed or _is_status(item[0])),
    )
    shown = ids + others[: max(0, MAX_REPLY_FIELDS - len(ids))]
    if not shown:
        return "Done, it went through."
    return "Done. It now shows " + ", ".join(f"{field_label(n)} {short(v)}" for n, v in shown) + "."


def user_actions(
    trajectory: Trajectory,
    user_tools: Mapping[tuple[str, str], ToolSpec],
    names: Mapping[tuple[str, str], str],
) -> dict[tuple[int, int], UserAction]:
    """(turn index, call index) -> the user-performed step, for every call of a user-only tool."""
    actions = {}
    for turn in trajectory.turns:
        for index, call in enumerate(turn.calls):
            tool = user_tools.get((call.env_id, call.tool))
            if tool is None or tool.performed_by is None:
                continue
            secrets = tool.performed_by.secret_inputs
            actions[(turn.index, index)] = UserAction(
                turn=turn.index,
                call=index,
                tool=names[(call.env_id, call.tool)],
                label=action_label(tool),
                rule=tool.performed_by.rule,
                evidence=tool.performed_by.evidence,
                secret_inputs=list(secrets),
                ask=ask_text(call, tool, seed=f"{trajectory.seed}:{trajectory.id}:{turn.index}:{index}"),
                reply=outcome_reply(call.output, secret_values(call, secrets), changed_fields(call)),
            )
    return actions


def withhold_secrets(text: str, secrets: Iterable[str]) -> str:
    """`text` with each secret value (quoted or bare) replaced by WITHHELD: the user keeps it."""
    for value in secrets:
        text = text.replace(f'"{value}"', WITHHELD).replace(value, WITHHELD)
    return text


def leaked_secret(messages: Sequence[Mapping[str, Any]], secrets: Iterable[str]) -> int | None:
    """Index of the first user or assistant message (content or call arguments) that shows a secret."""
    values = [s for s in secrets if len(s) >= 3]
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            continue
        text = (message.get("content") or "") + "".join(
            str(c.get("function", {}).get("arguments")) for c in message.get("tool_calls") or []
        )
        if any(value in text for value in values):
            return i
    return None


class UserActionRunner:
    """The user's side of a served task's user-performed steps.

    `calls`: the task's `user_calls` (`{name, arguments, label, secret_inputs}`), run in order;
    `run_tool(name, arguments)`: executes a call on the rollout's environments (not as the policy's)."""

    def __init__(
        self, calls: Sequence[Mapping[str, Any]], run_tool: Callable[[str, dict[str, Any]], dict[str, Any]]
    ) -> None:
        self.pending = [dict(c) for c in calls]
        self.run_tool = run_tool
        self.performed: list[dict[str, Any]] = []

    def reply(self, message: str) -> str | None:
        """Run the first pending step `message` asks for and report it; None when it asks for none."""
        for step in self.pending:
            if asks_for(message, step.get("label") or ""):
                self.pending.remove(step)
                output = self.run_tool(step["name"], dict(step["arguments"]))
                self.performed.append({"name": step["name"], "output": output})
                hidden = [
                    str(step["arguments"][s])
                    for s in step.get("secret_inputs") or []
                    if s in step["arguments"]
                ]
                return outcome_reply(output, hidden)
        return None
