"""A trajectory as OpenAI chat messages, one assistant message per dependency level of each turn.

Per turn: the user's message; then the turn's calls in assistant messages, each followed by one
`tool` message per call (`tool_call_id` = `call_<turn>_<index>`); then the closing answer.
A call goes in the first assistant message after every call whose output it reads: its gold
`argument_sources` of kind "output" within the same turn, and any call of the turn whose output
first shows an identifier the call passes (a dependency a source record may have missed). Calls
whose inputs are all visible go together (parallel calls). When grouping by level would run the
calls in another order than recorded, the new order is run from the turn's recorded start state;
if any output or the end state differs, the calls keep their recorded order and a new message
starts only where a call needs the one before it.

Tool results are the text a model sees at serving time (`observation_text`). An assistant call
leaves out an optional argument the user never stated whose omission gives the same output and
state change (`shown_arguments`): the data must not teach filters nobody asked for.

A user-performed step (conversational mode, export/user_actions.py) is no call of the assistant's:
its place holds the assistant's request and the user's report of the outcome; calls of the same
level keep their recorded order around it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from envfactory_dagster.export.conversation import Clarification
from envfactory_dagster.export.export_audit import identifier_values
from envfactory_dagster.export.user_actions import UserAction, secret_values, withhold_secrets
from envfactory_dagster.lineage import canonical_json
from envfactory_dagster.querygen.masking import SAME_OUTCOME
from envfactory_dagster.querygen.replay import Replay, exported_name_of
from envfactory_dagster.querygen.surface import is_literal_in
from envfactory_dagster.querygen.trajectory_model import GoldCall, Trajectory, Turn
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, exported_tool_names

SYSTEM_PROMPT = (
    "You are a helpful assistant that can use tools. Complete the user's requests by calling the tools "
    "with JSON arguments; look up what you need instead of asking, reuse earlier results, and reply "
    "briefly when done."
)
# Conversational mode: the assistant may ask for what only the user knows (export/conversation.py).
CONVERSATIONAL_SYSTEM_PROMPT = (
    "You are a helpful assistant that can use tools. Complete the user's requests by calling the tools "
    "with JSON arguments; look up what the tools can tell you, ask the user only for what only they "
    "know, ask them to do the steps only they can do (on their own device, in person, or with a secret "
    "you must not see), reuse earlier results, and reply briefly when done."
)
OrderCheck = Callable[[int, list[int]], bool]


def observation_text(result: Mapping[str, Any]) -> str:
    """The text a model sees for a tool result or error (compact JSON, keys in tool order)."""
    return json.dumps(result, ensure_ascii=False, separators=(",", ":"))


def call_id(turn: int, index: int) -> str:
    return f"call_{turn}_{index}"


def shown_arguments(call: GoldCall, user_text: str) -> dict[str, Any]:
    """The arguments the assistant writes: the gold ones, less an optional argument that
    `user_text` (what the user said so far) does not state and whose omission gives the same
    output and state change (`querygen.masking.SAME_OUTCOME`), e.g. a filter that filtered
    nothing. Masks are proven one argument at a time, so a call with two or more such arguments
    keeps them all (their joint omission was never run). Presentation settings (a `limit`) stay:
    without them the output shown would differ."""
    unstated = [
        name
        for name in call.masked_arguments
        if call.masked_reasons.get(name) == SAME_OUTCOME
        and not is_literal_in(call.arguments[name], user_text)
    ]
    if len(unstated) != 1:
        return call.arguments
    return {k: v for k, v in call.arguments.items() if k != unstated[0]}


def call_dependencies(turn: Turn, shown_before: str) -> list[set[int]]:
    """For each call of `turn`, the earlier calls of the same turn whose output it needs."""
    outputs = [observation_text(c.output) for c in turn.calls]
    needs: list[set[int]] = []
    for i, call in enumerate(turn.calls):
        deps = {
            s.call
            for s in call.argument_sources.values()
            if s.kind == "output" and s.turn == turn.index and s.call is not None and s.call < i
        }
        for _, value in identifier_values(call.arguments):
            if value in shown_before:
                continue
            first = next((j for j in range(i) if value in outputs[j]), None)
            if first is not None:
                deps.add(first)
        needs.append(deps)
    return needs


def call_groups(needs: Sequence[set[int]], order_ok: Callable[[list[int]], bool]) -> list[list[int]]:
    """Call indices per assistant message: by dependency level if `order_ok` accepts the level
    order (or it is the recorded one), else contiguous runs of the recorded order."""
    levels: list[int] = []
    for deps in needs:
        levels.append(1 + max((levels[d] for d in deps), default=-1))
    order = sorted(range(len(needs)), key=lambda i: (levels[i], i))
    if order == sorted(order) or order_ok(order):
        return [[i for i in order if levels[i] == level] for level in sorted(set(levels))]
    groups: list[list[int]] = []
    for i, deps in enumerate(needs):
        if not groups or deps & set(groups[-1]):
            groups.append([])
        groups[-1].append(i)
    return groups


def turn_order_check(
    trajectory: Trajectory, envs: Sequence[VerifiedEnvironment], replay: Replay
) -> OrderCheck:
    """`check(turn, order)`: does running the turn's calls in `order` from the turn's recorded start
    state give the recorded outputs and end state?"""
    names = exported_name_of(list(envs))

    def check(turn_index: int, order: list[int]) -> bool:
        turn = trajectory.turns[turn_index]
        toolset = Toolset.from_snapshots(
            envs, replay.turn_states[turn_index], names=exported_tool_names(envs)
        )
        for i in order:
            call = turn.calls[i]
            try:
                output = toolset.call(names[(call.env_id, call.tool)], json.loads(json.dumps(call.arguments)))
            except ToolError as exc:
                output = exc.to_dict()
            if canonical_json(output) != canonical_json(call.output):
                return False
        end = (
            replay.turn_states[turn_index + 1]
            if turn_index + 1 < len(trajectory.turns)
            else replay.final_states
        )
        return canonical_json(toolset.states()) == canonical_json(end)

    return check


def trajectory_messages(
    trajectory: Trajectory,
    names: Mapping[tuple[str, str], str],
    answers: Sequence[str],
    order_ok: OrderCheck,
    clarifications: Sequence[Clarification] = (),
    user_actions: Mapping[tuple[int, int], UserAction] | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """(OpenAI messages, index of each turn's user message). `names`: (env_id, tool) -> exported
    name; `answers`: each turn's closing text; `order_ok(turn, order)`: see `turn_order_check`;
    `clarifications`: turns whose user message leaves a value out, then the assistant's question
    and the user's answer; `user_actions`: (turn, call) -> a step the user performs (both
    conversational mode, with its system prompt)."""
    asked = {c.turn: c for c in clarifications}
    actions = user_actions or {}
    system = CONVERSATIONAL_SYSTEM_PROMPT if clarifications or actions else SYSTEM_PROMPT
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    turn_starts = []
    for t, turn in enumerate(trajectory.turns):
        turn_starts.append(len(messages))
        clarification = asked.get(turn.index)
        secrets = [
            value
            for (at, i), action in actions.items()
            if at == turn.index
            for value in secret_values(turn.calls[i], action.secret_inputs)
        ]
        if clarification is None:
            messages.append({"role": "user", "content": withhold_secrets(turn.query, secrets)})
        else:
            messages += [
                {"role": "user", "content": withhold_secrets(clarification.opening, secrets)},
                {"role": "assistant", "content": clarification.question},
                {"role": "user", "content": withhold_secrets(clarification.answer, secrets)},
            ]
        shown = "\n".join(m["content"] for m in messages if m.get("content"))
        said = "\n".join(m["content"] for m in messages if m["role"] == "user")
        needs = call_dependencies(turn, shown)
        for level in call_groups(needs, lambda order, t=t: order_ok(t, order)):
            for group in _runs_around_user_steps(level, turn.index, actions):
                action = actions.get((turn.index, group[0]))
                if action is not None:
                    messages += [
                        {"role": "assistant", "content": action.ask},
                        {"role": "user", "content": action.reply},
                    ]
                    continue
                messages.append(
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [
                            {
                                "id": call_id(t, i),
                                "type": "function",
                                "function": {
                                    "name": names[(turn.calls[i].env_id, turn.calls[i].tool)],
                                    "arguments": json.dumps(
                                        shown_arguments(turn.calls[i], said), ensure_ascii=False
                                    ),
                                },
                            }
                            for i in group
                        ],
                    }
                )
                messages.extend(
                    {
                        "role": "tool",
                        "tool_call_id": call_id(t, i),
                        "content": observation_text(turn.calls[i].output),
                    }
                    for i in group
                )
        messages.append({"role": "assistant", "content": answers[t]})
    return messages, turn_starts


def _runs_around_user_steps(
    group: list[int], turn: int, actions: Mapping[tuple[int, int], UserAction]
) -> list[list[int]]:
    """The calls of one level as messages: each user-performed step alone, the assistant's calls
    between them together, in the level's (checked) order."""
    if not any((turn, i) in actions for i in group):
        return [group]
    runs: list[list[int]] = []
    for i in group:
        if (turn, i) in actions or not runs or (turn, runs[-1][0]) in actions:
            runs.append([])
        runs[-1].append(i)
    return runs
