"""Conversational mode (the paper's SFT_CONV preset): the assistant asks for what only the user knows.

In one turn of a trajectory the user leaves out a value they typed (a quoted name, title or text
of a `user` argument) and says to ask for it; the assistant asks one clarifying question naming
the value's field; a user simulator answers from what the persona knows. The calls, their
arguments and the states stay the recorded ones, so the trajectory replays as before and the
value the call passes is written in the user's answer before the call.

Simulators: `persona_reply` (offline, deterministic) answers a question that names a field whose
value the persona knows (every `user` value of the trajectory) and declines anything else (ids,
values from the state or from tool results: the assistant must look those up). `llm_reply` asks
the `user_simulator` role (prompt `user_sim`) with the persona, the goal and the known values; an
answer that does not state the value, or names a tool, is replaced by the persona's reply and
the problem is reported.

The end of a conversation: with a `judge` model configured, the judge (prompt `conversation_end`)
reads the conversation and says whether it is over; offline, it is over once the gold state is
reached (`conversation_ending`, which names who decided). `UserSimulator` plays the user of a
served conversational task (Gym environment, verl interaction) with the same rules, and runs the
task's user-performed steps when the assistant asks for them (export/user_actions.py; the step's
report is the reply, never the LLM's: the outcome is what the environment did).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.export.user_actions import UserActionRunner
from envfactory_dagster.querygen.surface import contains_token, field_label, is_literal_in
from envfactory_dagster.querygen.trajectory_model import Trajectory

ASK_ME = "(ask me)"
DECLINE = "I don't have that - could you look it up?"
QUESTIONS = (
    "Before I go ahead: what {label} should I use?",
    "Which {label} would you like?",
    "Could you tell me the {label}?",
)


class Clarification(BaseModel):
    """One clarifying exchange: where it is, what was withheld, and who answered."""

    model_config = ConfigDict(extra="forbid")

    turn: int
    call: int
    argument: str
    value: str
    label: str
    opening: str  # the user's message with the value left out
    question: str
    answer: str
    answered_by: Literal["persona", "llm"] = "persona"
    model: str | None = None
    ending: Ending | None = None  # whether the whole conversation was judged over (sft export)


class ConversationEnd(BaseModel):
    """What the `judge` role returns for prompt `conversation_end`."""

    model_config = ConfigDict(extra="forbid")

    done: bool
    reason: str = ""


class Ending(BaseModel):
    """Whether a conversation is over, and who decided: the judge, or (offline, or the judge
    failed) whether the gold state is reached."""

    model_config = ConfigDict(extra="forbid")

    done: bool
    ended_by: Literal["judge", "gold_state"]
    reason: str
    model: str | None = None


class SimulatedUser(BaseModel):
    """What the `user_simulator` role returns."""

    model_config = ConfigDict(extra="forbid")

    message: str
    done: bool = False


def known_values(trajectory: Trajectory) -> dict[str, Any]:
    """What the persona knows: each value it types (`user` arguments), by the field's words."""
    known: dict[str, Any] = {}
    for turn in trajectory.turns:
        for call in turn.calls:
            for argument, value in call.arguments.items():
                source = call.argument_sources.get(argument)
                if source is not None and source.kind == "user" and argument not in call.masked_arguments:
                    known.setdefault(field_label(argument), value)
    return known


def persona_reply(question: str, known: Mapping[str, Any]) -> str:
    """The offline simulator: the value of the longest known field the question names, quoted as the
    user first typed it; a polite refusal for anything else."""
    for label in sorted(known, key=len, reverse=True):
        value = known[label]
        if contains_token(question, label, ignore_case=True):
            return f'It\'s "{value}".' if isinstance(value, str) else f"It's {value}."
    return DECLINE


def withheld_value(
    trajectory: Trajectory, user_steps: Collection[tuple[int, int]] = ()
) -> tuple[int, int, str, str] | None:
    """(turn, call, argument, value) of the first user-typed text value written once, quoted, in its
    turn's message and passed by no other call of the trajectory (so the answer is the only source).
    Calls in `user_steps` (turn, call) are the user's own (export/user_actions.py): nothing to ask."""
    passed = [v for t in trajectory.turns for c in t.calls for v in c.arguments.values()]
    for turn in trajectory.turns:
        for index, call in enumerate(turn.calls):
            if (turn.index, index) in user_steps:
                continue
            for argument, value in call.arguments.items():
                source = call.argument_sources.get(argument)
                if (
                    source is None
                    or source.kind != "user"
                    or argument in call.masked_arguments
                    or not isinstance(value, str)
                    or len(value) < 3
                    or turn.query.count(f'"{value}"') != 1
                    or passed.count(value) != 1
                ):
                    continue
                return turn.index, index, argument, value
    return None


def clarify(
    trajectory: Trajectory,
    *,
    seed: int,
    gateway: Any = None,
    user_steps: Collection[tuple[int, int]] = (),
) -> tuple[Clarification | None, list[str]]:
    """The clarifying exchange of a trajectory (None when no value can be withheld) and problems;
    `user_steps`: calls the user performs, whose values are not asked for."""
    found = withheld_value(trajectory, user_steps)
    if found is None:
        return None, []
    turn, call, argument, value = found
    label = field_label(argument)
    opening = trajectory.turns[turn].query.replace(f'"{value}"', ASK_ME, 1)
    question = random.Random(f"{seed}:{trajectory.id}").choice(QUESTIONS).format(label=label)
    known = known_values(trajectory)
    clarification = Clarification(
        turn=turn,
        call=call,
        argument=argument,
        value=value,
        label=label,
        opening=opening,
        question=question,
        answer=persona_reply(question, known),
    )
    if gateway is None or not gateway.is_configured("user_simulator"):
        return clarification, []
    return llm_reply(clarification, trajectory, known, gateway)


def llm_reply(
    clarification: Clarification, trajectory: Trajectory, known: Mapping[str, Any], gateway: Any
) -> tuple[Clarification, list[str]]:
    """The `user_simulator` role answers the question; kept only if it states the value."""
    from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError

    tools = {c.tool for t in trajectory.turns for c in t.calls}
    try:
        result = gateway.complete_structured(
            stage="sft_dataset",
            role="user_simulator",
            prompt="user_sim",
            variables={
                "persona": trajectory.persona or "a user of these services",
                "goal": trajectory.goal or trajectory.turns[clarification.turn].query,
                "known_values": dict(known),
                "conversation": [
                    {"role": "user", "content": clarification.opening},
                    {"role": "assistant", "content": clarification.question},
                ],
            },
            output_model=SimulatedUser,
        )
    except (BudgetExceeded, LLMOutputError, LLMProviderError) as exc:
        return clarification, [f"{trajectory.id}: user simulator failed, persona reply kept ({exc})"]
    message = result.value.message.strip()
    faults = (
        [] if is_literal_in(clarification.value, message) else [f"does not state {clarification.value!r}"]
    )
    faults += [f"names tool {t}" for t in sorted(tools) if contains_token(message, t, ignore_case=False)]
    if faults:
        return clarification, [f"{trajectory.id}: user simulator answer replaced ({'; '.join(faults)})"]
    return clarification.model_copy(
        update={"answer": message, "answered_by": "llm", "model": result.model}
    ), []


JUDGE_RESULT_CHARS = 600  # a tool result as the judge reads it: enough for ids and statuses


def judge_view(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the judge reads it: no system prompt, calls as name and arguments,
    tool results cut to JUDGE_RESULT_CHARS."""
    view: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        if message.get("tool_calls"):
            view.append(
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"name": c["function"]["name"], "arguments": c["function"]["arguments"]}
                        for c in message["tool_calls"]
                    ],
                }
            )
        elif role == "tool":
            view.append({"role": "tool", "result": str(message.get("content") or "")[:JUDGE_RESULT_CHARS]})
        else:
            view.append({"role": role, "content": message.get("content") or ""})
    return view


def conversation_ending(
    messages: Sequence[Mapping[str, Any]], goal: str, *, gold_reached: bool, gateway: Any, stage: str
) -> tuple[Ending, list[str]]:
    """Whether the conversation `messages` is over, and problems. The `judge` role decides when a
    model answers for it; offline, or when the judge fails, the conversation is over once the gold
    state is reached (`gold_reached`), and the ending says so."""
    from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError

    offline = Ending(
        done=gold_reached,
        ended_by="gold_state",
        reason="the gold state is reached" if gold_reached else "the gold state is not reached yet",
    )
    if gateway is None or not gateway.is_configured("judge"):
        return offline, []
    try:
        result = gateway.complete_structured(
            stage=stage,
            role="judge",
            prompt="conversation_end",
            variables={"goal": goal, "conversation": judge_view(messages)},
            output_model=ConversationEnd,
        )
    except (BudgetExceeded, LLMOutputError, LLMProviderError) as exc:
        return offline, [f"end-of-conversation judge failed, gold-state rule used ({exc})"]
    verdict: ConversationEnd = result.value
    return Ending(done=verdict.done, ended_by="judge", reason=verdict.reason, model=result.model), []


class UserSimulator:
    """The user of one served conversational task: answers the assistant's messages until the
    conversation is over.

    `known`: what the user may tell (an RL task's `user_knows`); `goal`: what they want (the task's
    user messages); `user_calls` (the task's) with `run_tool(name, arguments)`: the steps the user
    performs on the rollout's environments when the assistant's message asks for one. The reply is
    that step's outcome; else the `user_simulator` role's when it answers for it and its answer
    names no tool, else the persona's (`persona_reply`); the ending is `conversation_ending`'s, and
    the conversation is over after `max_replies` replies in any case.
    """

    def __init__(
        self,
        known: Mapping[str, Any],
        *,
        goal: str,
        gateway: Any = None,
        stage: str = "serve",
        max_replies: int = 3,
        tool_names: Iterable[str] = (),
        user_calls: Sequence[Mapping[str, Any]] = (),
        run_tool: Callable[[str, dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.known = dict(known)
        self.actions = UserActionRunner(user_calls, run_tool) if user_calls and run_tool else None
        self.goal = goal
        self.gateway = gateway
        self.stage = stage
        self.max_replies = max_replies
        self.tool_names = sorted(tool_names)
        self.replies = 0
        self.endings: list[Ending] = []
        self.problems: list[str] = []

    def respond(self, messages: Sequence[Mapping[str, Any]], *, gold_reached: bool) -> str | None:
        """The user's reply to the conversation so far, or None when the conversation is over."""
        if self.replies >= self.max_replies:
            return None
        ending, problems = conversation_ending(
            messages, self.goal, gold_reached=gold_reached, gateway=self.gateway, stage=self.stage
        )
        self.endings.append(ending)
        self.problems += problems
        if ending.done:
            return None
        self.replies += 1
        last = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "assistant"), "")
        performed = self.actions.reply(last) if self.actions is not None else None
        return performed or self._llm_reply(messages) or persona_reply(last, self.known)

    def _llm_reply(self, messages: Sequence[Mapping[str, Any]]) -> str | None:
        from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError

        if self.gateway is None or not self.gateway.is_configured("user_simulator"):
            return None
        try:
            result = self.gateway.complete_structured(
                stage=self.stage,
                role="user_simulator",
                prompt="user_sim",
                variables={
                    "persona": "a user of these services",
                    "goal": self.goal,
                    "known_values": self.known,
                    "conversation": judge_view(messages),
                },
                output_model=SimulatedUser,
            )
        except (BudgetExceeded, LLMOutputError, LLMProviderError) as exc:
            self.problems.append(f"user simulator failed, persona reply used ({exc})")
            return None
        message = result.value.message.strip()
        named = [t for t in self.tool_names if contains_token(message, t, ignore_case=False)]
        if not message or named:
            self.problems.append(f"user simulator answer replaced (empty or names {named})")
            return None
        return message
