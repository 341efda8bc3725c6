"""The simulated user of verl's multi-turn rollout, in verl's interaction shape (duck-typed).

verl (volcengine/verl@b178a3cd `verl/interactions/base.py`, `experimental/agent_loop/
tool_agent_loop.py`): with `actor_rollout_ref.rollout.multi_turn.interaction_config_path` set,
`ToolAgentLoop` reads `extra_info.interaction_kwargs` of every row (its `name` picks the
interaction), calls `await start_interaction(request_id, **interaction_kwargs)`, and after each
assistant message without tool calls `await generate_response(request_id, messages,
**interaction_kwargs)` -> `(should_terminate, user_message, turn_score, metrics)`: the user
message is appended and generation goes on unless it terminates. The config file:

    interaction:
      - name: envfactory_user
        class_name: envfactory_dagster.serve.verl_interaction.EnvFactoryUserInteraction
        config: {home: /data/envfactory}      # optional; llm: {default_model: ..., api_base: ...}

The verl export writes `interaction_kwargs = {"name": "envfactory_user", "task_id": ...}`.
`start_interaction` opens the task's rollout in the process's `RolloutTable` under the request
id; the task's tools (`trainer_tools.VerlEnvironmentTool`) run their calls on that same rollout,
so the interaction sees the state the calls made. A conversational task (non-empty
`user_knows` or `user_calls`: steps only the user can do, which the simulated user runs on the
same rollout when the assistant asks) is answered by `conversation.UserSimulator` (the persona offline; the
`user_simulator` and `judge` roles when `config["llm"]` configures a model) until the conversation
is over; any other task ends at the assistant's first answer. `turn_score` is the rollout's reward
so far (`score_rollout`), so verl's `turn_scores` end with the episode's reward.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from uuid import uuid4

from envfactory_dagster.export.conversation import UserSimulator
from envfactory_dagster.serve.gym_env import MAX_USER_REPLIES
from envfactory_dagster.serve.trainer_tools import RolloutTable, rollout_table_for_home
from envfactory_dagster.settings import envfactory_home

CLOSING = "Thanks, that's all."  # the user's last message when the conversation is over


def gateway_from_config(llm: Mapping[str, Any] | None, home: str) -> Any:
    """An LLMGateway from the interaction config's `llm` mapping (LLMSettings fields; the cache
    under `home`), or None (offline)."""
    if not llm:
        return None
    from envfactory_dagster.llm.config import LLMSettings, cache_dir_for_home
    from envfactory_dagster.llm.gateway import LLMGateway

    return LLMGateway(LLMSettings(**{"cache_dir": cache_dir_for_home(home), **dict(llm)}))


class EnvFactoryUserInteraction:
    """verl `BaseInteraction` shape over the tasks and environments of a data directory.

    `config`: `{"name", "home"?, "llm"?}` from verl's interaction YAML, or `{"table": RolloutTable}`
    in-process. To subclass verl's real class: `class MyUser(EnvFactoryUserInteraction,
    verl.interactions.base.BaseInteraction)`.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self.name: str = self.config.get("name", "envfactory_user")
        home = self.config.get("home") or envfactory_home()
        self.table: RolloutTable = self.config.get("table") or rollout_table_for_home(home)
        self.gateway = self.config.get("gateway") or gateway_from_config(self.config.get("llm"), home)
        self.users: dict[str, UserSimulator | None] = {}

    async def start_interaction(self, instance_id: str | None = None, **kwargs: Any) -> str:
        """Open the rollout of `kwargs["task_id"]` (or `kwargs["task"]`) under `instance_id`."""
        instance_id = instance_id or uuid4().hex
        task = kwargs.get("task")
        if task is None:
            if not kwargs.get("task_id"):
                raise ValueError(f"{self.name}: interaction_kwargs need the task_id the verl export writes")
            task = self.table.task(kwargs["task_id"])
        self.table.open(instance_id, task)
        rl_task = self.table.rollouts[instance_id].task
        self.users[instance_id] = (
            UserSimulator(
                rl_task.user_knows,
                goal=" ".join(m["content"] for m in rl_task.messages if m.get("role") == "user"),
                gateway=self.gateway,
                stage="verl_interaction",
                max_replies=MAX_USER_REPLIES,
                tool_names=[t["function"]["name"] for t in rl_task.tools],
                user_calls=[c.model_dump() for c in rl_task.user_calls],
                run_tool=self.table.rollouts[instance_id].user_call,
            )
            if rl_task.user_knows or rl_task.user_calls
            else None
        )
        return instance_id

    async def generate_response(
        self, instance_id: str, messages: list[dict[str, Any]], **kwargs: Any
    ) -> tuple[bool, str, float, dict[str, Any]]:
        """The user's next message, whether the episode ends, and the reward so far."""
        rollout = self.table.rollouts[instance_id]
        user = self.users.get(instance_id)
        reply = None
        if user is not None:
            gold_reached = rollout.final_states() == rollout.task.gold_final_states
            # the judge and user_simulator calls block: keep them off verl's event loop
            reply = await asyncio.get_running_loop().run_in_executor(
                None, lambda: user.respond(messages, gold_reached=gold_reached)
            )
        score = rollout.score().total
        metrics: dict[str, Any] = {"user_replies": user.replies if user else 0}
        if user is not None and user.endings:
            metrics["ended_by"] = user.endings[-1].ended_by
        if reply is None:
            return True, CLOSING, score, metrics
        return False, reply, score, metrics

    async def calculate_score(self, instance_id: str, **kwargs: Any) -> float:
        return self.table.rollouts[instance_id].score().total

    async def finalize_interaction(self, instance_id: str, **kwargs: Any) -> None:
        self.users.pop(instance_id, None)
        self.table.close(instance_id)
