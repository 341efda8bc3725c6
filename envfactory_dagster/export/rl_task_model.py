"""The RL task: one row of `rl_tasks`, the canonical form every RL export and server reads.

A task is one agent episode over up to three environments: load `initial_states` into a
`Toolset`, show `messages`, let the policy call `tools`, then score the calls and the final states
with `envfactory_dagster.export.reward.score_rollout` against `gold_calls` / `gold_final_states`.

A task covers a whole refined trajectory. `messages` is the system prompt plus ONE user message
that carries every turn's request in order (the paper's goal expansion, so single-prompt trainers
such as verl see the whole goal); `user_turns` keeps the per-turn requests for trainers that
simulate a multi-turn user (send `user_turns[k]` when the assistant closes turn k-1 without a call).
Gold calls replay in order from `initial_states` to `gold_final_states`, which the `rl_tasks`
builder checks by execution before a task is emitted.
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

    name: str  # exported name in the task's Toolset (`<ClassName>__<tool>` when names clash)
    arguments: dict[str, Any]
    masked_arguments: list[str] = Field(default_factory=list)  # ignored by the trace match
    env_id: str
    turn: int


class RLTask(BaseModel):
    """One row of `rl_tasks` (nested values stored as JSON in Parquet; see rl_tasks.py)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    domain: str
    trajectory_id: str
    chain_id: str
    split: Literal["train", "validation"] = "train"
    env_ids: list[str]
    messages: list[dict[str, Any]]  # OpenAI chat messages: system + the user's request
    user_turns: list[str] = Field(default_factory=list)  # per-turn requests (multi-turn user simulation)
    tools: list[dict[str, Any]]  # Toolset.openai_tools()
    initial_states: dict[str, dict[str, Any]]  # world_id -> state (envgen.worlds)
    gold_calls: list[RLGoldCall]
    gold_final_states: dict[str, dict[str, Any]]  # world_id -> state after the gold calls
    reward_spec: RewardSpec = Field(default_factory=RewardSpec)
    resource_ids: list[str] = Field(default_factory=list)
    lookalike_tags: list[str] = Field(default_factory=list)
    seed: int = 0
    backend: Literal["template", "llm"] = "template"
    model: str | None = None
    prompt_version: str | None = None
