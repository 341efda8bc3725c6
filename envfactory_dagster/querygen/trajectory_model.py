"""The trajectory: an executed, replayable multi-turn tool-use episode.

Produced by `trajectories` (chain execution + template/LLM queries), rewritten by
`refined_trajectories`, exported by `sft_dataset` / `rl_tasks`. Stored as JSON
(`trajectory_json`) in the rows, with flat lineage columns beside it.

Environments inside a trajectory are addressed by their registry id (`env_id`, the verified
environment version); a chain may span up to 3 of them. States belong to worlds (one per source
service, `envgen.worlds`): environments of one service share one state, so `initial_states` and
`final_states` are keyed by world id, and `env_worlds` says which world each environment uses.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ArgumentSource(BaseModel):
    """Where the value of one gold argument comes from."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["user", "output", "state"]
    # kind="output": the earlier call (turn index, call index within the turn) and the JSON path
    # into its output, e.g. "order.id" or "orders[0].id"
    turn: int | None = None
    call: int | None = None
    path: str | None = None
    # kind="state": the entity row the value was read from (collection, key, field)
    collection: str | None = None
    key: str | None = None
    field: str | None = None


class GoldCall(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env_id: str
    tool: str
    arguments: dict[str, Any]
    output: dict[str, Any]  # the tool's result, or {"error": {...}} (never kept in trajectories)
    argument_sources: dict[str, ArgumentSource] = Field(default_factory=dict)
    masked_arguments: list[str] = Field(default_factory=list)  # values that do not change the outcome
    masked_reasons: dict[str, str] = Field(default_factory=dict)  # argument -> why (querygen.masking)
    # collection -> {added, changed, removed}, in the state of the environment's world
    state_diff: dict[str, Any] = Field(default_factory=dict)
    # collection -> [before, after] of the world's id counters the call moved (with `state_diff`,
    # the exact state after the call: `replay.recorded_replay` rebuilds turn states from both)
    counter_changes: dict[str, list[int]] = Field(default_factory=dict)


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int
    query: str  # first-person user message; never names a tool or parameter
    calls: list[GoldCall]
    targets: list[int] = Field(default_factory=list)  # calls the user asks for; the others feed them
    answer: str = ""  # the assistant's closing message for the turn


class Trajectory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str  # content hash of (env ids, initial states, calls)
    domain: str
    chain_id: str
    seed: int
    env_ids: list[str]
    env_worlds: dict[str, str]  # env_id -> world_id
    initial_states: dict[str, dict[str, Any]]  # world_id -> state before turn 0
    turns: list[Turn]
    final_states: dict[str, dict[str, Any]]  # world_id -> state after the last turn
    persona: str = ""  # who asks ("Maya Chen, an online seller using Shopify, wants to ...")
    goal: str = ""  # what they want done, in their words
    opening: str = ""  # the sentence that opens the first turn and motivates the session
    backend: Literal["template", "llm"] = "template"
    model: str | None = None
    prompt_version: str | None = None


class TrajectoryCalls(BaseModel):
    """A stored trajectory read without its world states, for readers of its queries and calls
    only (duplicate flags, splits, guards, figures): the states are most of the record, so this
    parse costs about a third of a full `Trajectory` parse."""

    model_config = ConfigDict(extra="ignore")

    id: str
    domain: str
    chain_id: str
    env_ids: list[str]
    env_worlds: dict[str, str]
    turns: list[Turn]
