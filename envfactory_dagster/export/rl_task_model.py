"""The RL task: one row of `rl_tasks`, the canonical form every RL export and server reads.

A task is one agent episode over up to three environments: load `initial_states` into a
`Toolset`, show `messages`, let the policy call `tools`, then score the calls and the final states
with `envfactory_dagster.export.reward.score_rollout` against `gold_calls` / `gold_final_states`.

A task is ONE TURN of a refined trajectory, with the conversation before it: `messages` is the
system prompt, every earlier turn as it happened (user message, assistant tool calls, tool
results, the assistant's closing answer; see chat_messages.py) and the current user message.
`initial_states` are the states at the start of that turn, `gold_calls` the turn's calls,
`gold_final_states` the states after them. Why per turn rather than whole trajectories driven by
a user simulator: every turn boundary has a state proven by execution, so each task is scored on
its own without a simulated user (whose replies would move the task away from its gold calls);
earlier turns teach the use of context (values from earlier results), and tasks stay short (the
paper's release: ≈3.09k per-turn rows, median 3 gold calls). Gold calls replay in order from
`initial_states` to `gold_final_states`, which the `rl_tasks` builder checks by execution before
a task is emitted. Tool names are the training names (`<ClassName>__<tool>`, one rule everywhere).

Conversational mode (export/conversation.py): the task of a turn whose user left a value out ends
at that opening message, and `user_knows` holds what the user simulator may tell; the Gym
environment answers the policy's questions from it (serve/gym_env.py), so the gold calls are
reachable only by asking. Other tasks have an empty `user_knows`.

User-performed steps (export/user_actions.py): a turn's call of a tool only the user can run is
not a gold call of the policy's; it is in `user_calls` (with its place among the turn's calls and
its secret inputs), the tool is in `user_tools`, not in `tools`, and the task's user simulator
runs the call on the rollout's environments when the policy asks for the step
(`UserActionRunner`), so `gold_final_states` hold its effect. Non-conversational exports have
no task at or after a turn with such a step.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RewardWeights(BaseModel):
    """Weights of the reward components (defaults: the paper's)."""

    model_config = ConfigDict(extra="forbid")

    trace: float = 0.5
    state: float = 0.5
    format: float = 0.05  # subtracted per malformed call
    length: float = 0.05  # subtracted per call beyond the number of gold calls


class RewardSpec(BaseModel):
    """How a rollout of this task is scored (see reward.py)."""

    model_config = ConfigDict(extra="forbid")

    weights: RewardWeights = Field(default_factory=RewardWeights)
    numeric_rel_tol: float = 1e-6  # numbers in arguments and states compare within this relative tolerance
    penalty_cap: float = 0.5  # each penalty (format, length) is capped at this
    # "all": trace is 1 iff every gold call matches a distinct made call (the paper);
    # "share": trace is the share of gold calls matched (denser signal)
    trace_mode: Literal["all", "share"] = "all"
    max_calls: int = 15  # rollout budget a runner should enforce (the paper's 15 iterations)


class RLGoldCall(BaseModel):
    """One gold call as the policy must make it (under the task's exported tool name)."""

    model_config = ConfigDict(extra="forbid")

    name: str  # training name: `<ClassName>__<tool>` (Toolset(..., qualify="always"))
    arguments: dict[str, Any]
    masked_arguments: list[str] = Field(default_factory=list)  # ignored by the trace match
    env_id: str
    turn: int


class RLUserCall(BaseModel):
    """A call the user performs when the policy asks for it (conversational tasks)."""

    model_config = ConfigDict(extra="forbid")

    name: str  # training name
    arguments: dict[str, Any]  # as the user runs it, secret inputs included (never shown to the policy)
    env_id: str
    turn: int
    position: int  # index among the turn's recorded calls (gold calls fill the other places, in order)
    label: str  # the action in words; the policy's message must name it
    secret_inputs: list[str] = Field(default_factory=list)


class RLTask(BaseModel):
    """One row of `rl_tasks` (nested values stored as JSON in Parquet; see rl_tasks.py)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    domain: str
    trajectory_id: str
    chain_id: str
    split: Literal["train", "validation"] = "train"
    env_ids: list[str]
    turn: int = 0  # index of the task's turn in its trajectory
    n_turns: int = 1  # turns of the trajectory
    messages: list[dict[str, Any]]  # OpenAI chat messages: system, earlier turns, the turn's user message
    tools: list[dict[str, Any]]  # Toolset.openai_tools()
    initial_states: dict[str, dict[str, Any]]  # world_id -> state at the start of the turn (envgen.worlds)
    gold_calls: list[RLGoldCall]
    gold_final_states: dict[str, dict[str, Any]]  # world_id -> state after the turn's gold calls
    reward_spec: RewardSpec = Field(default_factory=RewardSpec)
    resource_ids: list[str] = Field(default_factory=list)
    lookalike_tags: list[str] = Field(default_factory=list)
    user_knows: dict[str, Any] = Field(default_factory=dict)  # conversational: field words -> value
    user_tools: list[dict[str, Any]] = Field(default_factory=list)  # OpenAI defs of the user's tools
    user_calls: list[RLUserCall] = Field(default_factory=list)  # conversational: steps the user runs
    seed: int = 0
    backend: Literal["template", "llm"] = "template"
    model: str | None = None
    prompt_version: str | None = None
