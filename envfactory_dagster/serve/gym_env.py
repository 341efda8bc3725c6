"""A Gymnasium-style `reset(task)` / `step(tool_call)` environment over verified environments.

    env = ToolUseEnv(envs_by_id)
    observation, info = env.reset(task)          # task: RLTask or an rl_tasks row (dict)
    observation, reward, terminated, truncated, info = env.step({"name": ..., "arguments": {...}})
    ...
    env.step("Your order is placed.")            # a final answer ends the episode

Observation: `{"messages": [...], "tools": [...]}` — OpenAI chat messages so far (the task's
system + user messages, then each assistant tool call and its `tool` result) and the task's tools.
Actions: `{"name", "arguments"}` (arguments a dict or JSON text), an OpenAI tool call
`{"type": "function", "function": {...}}`, an assistant message (with `tool_calls`, executed in
order, or with only `content` = final answer), or a plain string (final answer).

Reward: 0.0 on every step but the last; at the end (final answer, or `max_steps` calls reached:
`truncated`), the task's reward `score_rollout` — its components in `info["reward"]`.

Conversational tasks (a non-empty `user_knows`, export/conversation.py): an assistant message
without calls goes to the user simulator (`conversation.UserSimulator`), whose reply (the value of
a field the message names, or a refusal; the `user_simulator` role's answer when `gateway` has a
model for it) is the next observation. The episode ends at a message the end-of-conversation judge
(the `judge` role) calls over, or, offline, once the gold state is reached; and after
`MAX_USER_REPLIES` replies in any case. A task with `user_calls` (steps only the user can do,
export/user_actions.py) is conversational too: a message that asks for a step has the simulated
user run it on the episode's environments (`Rollout.user_call`, not a call of the policy's) and
report the outcome. `info["endings"]` lists each decision and who made it.
Tool errors and malformed calls are observations, never exceptions; `info` counts them.

A task is parsed and its states validated on its first reset only (`rollout.TaskCache`, by task
id); later resets of it start from copy-on-write snapshots (microseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium

from envfactory_dagster.export.conversation import UserSimulator
from envfactory_dagster.export.rl_task_model import RLTask
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.serve.rollout import Rollout, TaskCache, observation_text

Action = Mapping[str, Any] | str
MAX_USER_REPLIES = 3


class ToolUseEnv(gymnasium.Env):
    """Episodes of RL tasks over a registry of verified environments (`env_id` -> environment).

    Spaces are not declared: observations and actions are JSON-like chat structures, which
    Gymnasium's `spaces` cannot describe; nothing here samples from them.
    """

    metadata = {"render_modes": []}  # noqa: RUF012 (Gymnasium's class attribute)

    def __init__(
        self,
        envs_by_id: Mapping[str, VerifiedEnvironment],
        *,
        max_steps: int | None = None,
        max_cached_tasks: int = 1024,
        gateway: Any = None,
    ) -> None:
        """`gateway`: an LLMGateway whose `judge` and `user_simulator` roles play the conversation's
        end and user (each falls back to the offline rule without a model)."""
        self.envs_by_id = dict(envs_by_id)
        self.gateway = gateway
        self.user: UserSimulator | None = None
        self.max_steps = max_steps  # None: the task's reward_spec.max_calls
        self.tasks = TaskCache(self.envs_by_id, max_cached_tasks)
        self.rollout: Rollout | None = None
        self.messages: list[dict[str, Any]] = []
        self.steps = 0
        self.done = False

    # -- Gymnasium API ---------------------------------------------------------------------
    def reset(
        self,
        task: RLTask | Mapping[str, Any] | None = None,
        *,
        seed: int | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode of `task` (or `options["task"]`, Gymnasium's keyword form)."""
        super().reset(seed=seed)
        if task is None:
            task = (options or {}).get("task")
        if task is None:
            raise ValueError("reset needs a task: reset(task) or reset(options={'task': task})")
        self.rollout = Rollout.of(self.tasks.get(task))
        self.messages = list(self.rollout.task.messages)  # the task's dicts are never mutated here
        self.steps = 0
        self.done = False
        task_of = self.rollout.task
        self.user = (
            UserSimulator(
                task_of.user_knows,
                goal=" ".join(m["content"] for m in task_of.messages if m.get("role") == "user"),
                gateway=self.gateway,
                max_replies=MAX_USER_REPLIES,
                tool_names=[t["function"]["name"] for t in task_of.tools],
                user_calls=[c.model_dump() for c in task_of.user_calls],
                run_tool=self.rollout.user_call,
            )
            if task_of.user_knows or task_of.user_calls
            else None
        )
        return self._observation(), self._info()

    def step(self, action: Action) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        if self.rollout is None or self.done:
            raise RuntimeError("step() after the episode ended or before reset(task)")
        if type(action) is dict and "name" in action:  # the common shape, one {name, arguments} call
            calls: Any = (action,)
        else:
            final_answer, calls = _read_action(action)
            if final_answer is not None:
                self.messages.append({"role": "assistant", "content": final_answer})
                if self._user_replies():
                    return self._observation(), 0.0, False, False, self._info()
                return self._finish(truncated=False)
        max_steps = self._max_steps()
        for call in calls:
            if self.steps >= max_steps:
                break
            self._execute(call)
        truncated = self.steps >= max_steps
        if truncated:
            return self._finish(truncated=True)
        return self._observation(), 0.0, False, False, self._info()

    # -- internals -------------------------------------------------------------------------
    def _user_replies(self) -> bool:
        """In a conversational task, the simulated user answers a message while the conversation is
        not over; True when it did."""
        assert self.rollout is not None
        if self.user is None:
            return False
        gold_reached = self.rollout.final_states() == self.rollout.task.gold_final_states
        reply = self.user.respond(self.messages, gold_reached=gold_reached)
        if reply is None:
            return False
        self.messages.append({"role": "user", "content": reply})
        return True

    def _max_steps(self) -> int:
        assert self.rollout is not None
        return self.max_steps if self.max_steps is not None else self.rollout.task.reward_spec.max_calls

    def _execute(self, call: Any) -> None:
        assert self.rollout is not None
        self.steps += 1
        call_id = f"call_{self.steps}"
        if type(call) is dict and "function" not in call:
            name, arguments = call.get("name"), call.get("arguments", {})
        else:
            name, arguments = _call_parts(call)
        result, _ok = self.rollout.call(name, arguments)
        self.messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": name if isinstance(name, str) else "",
                            "arguments": _arguments_text(arguments),
                        },
                    }
                ],
            }
        )
        self.messages.append({"role": "tool", "tool_call_id": call_id, "content": observation_text(result)})

    def _finish(self, *, truncated: bool) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        assert self.rollout is not None
        self.done = True
        breakdown = self.rollout.score()
        info = {**self._info(), "reward": breakdown.model_dump(), "final_states": self.rollout.final_states()}
        return self._observation(), breakdown.total, not truncated, truncated, info

    def _observation(self) -> dict[str, Any]:
        assert self.rollout is not None
        return {"messages": list(self.messages), "tools": self.rollout.task.tools}

    def _info(self) -> dict[str, Any]:
        assert self.rollout is not None
        return {
            "task_id": self.rollout.task.id,
            "steps": self.steps,
            "calls": len(self.rollout.calls),
            "malformed_calls": self.rollout.malformed_calls,
            "tool_errors": self.rollout.tool_errors,
            "user_replies": self.user.replies if self.user else 0,
            "endings": [e.model_dump() for e in self.user.endings] if self.user else [],
        }


def _read_action(action: Any) -> tuple[str | None, list[Any]]:
    """(final answer text, None) or (None, the calls to execute) for any accepted action shape."""
    if isinstance(action, str):
        return action, []
    if isinstance(action, Mapping):
        if "tool_calls" in action or action.get("role") == "assistant":
            calls = action.get("tool_calls") or []
            if not calls:
                content = action.get("content")
                return (content if isinstance(content, str) else ""), []
            return None, list(calls)
        return None, [action]
    return None, [action]  # anything else is one malformed call


def _call_parts(call: Any) -> tuple[Any, Any]:
    """(name, arguments) of `{name, arguments}` or an OpenAI `{type: function, function: {...}}`."""
    if not isinstance(call, Mapping):
        return None, None
    inner = call.get("function") if isinstance(call.get("function"), Mapping) else call
    return inner.get("name"), inner.get("arguments", {})


def _arguments_text(arguments: Any) -> str:
    """Arguments as the JSON text of an OpenAI tool call (as sent, when the policy sent text)."""
    if isinstance(arguments, str):
        return arguments
    return observation_text(arguments) if isinstance(arguments, Mapping) else ""
