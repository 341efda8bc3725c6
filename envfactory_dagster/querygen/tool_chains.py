"""Tool chains sampled from the dependency graph: the paper's topology-aware sampler and a random walk.

Topology-aware (METHOD QueryGen §2): pick a start tool and queue it. Pop a tool T; for each input p
of T: skip with `p_skip_optional` if p is optional; skip with `p_skip_satisfied` if p is already
satisfiable (user-provided, or fed by a tool already in the chain); otherwise pick a producer of p
at random (only from environments in use once `max_envs` are), resolve the producer's own inputs
the same way (depth + 1 <= `max_depth`), and put its prerequisites and then it before T. A
required input that stays unsatisfiable drops T. Append T. Forward expansion: queue a random
non-empty subset of T's unvisited successors (or one random tool of T's environment if none).
Stop at `max_nodes` tools or an empty queue.

Random walk (baseline): a random start tool, then one random successor per step, to a length
drawn like the topology-aware chains' (2..`max_nodes`), without any input resolution.

Both split a chain into turns: a turn closes at `max_calls_per_turn` calls, or with probability
len/`max_calls_per_turn` after each append. Everything is drawn from `random.Random` seeded per
chain from (`seed`, index), so the same graph and seed give the same chains.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from envfactory_dagster.lineage import content_id
from envfactory_dagster.querygen.tool_graph import ToolGraph

Sampler = Literal["topology", "random_walk"]


class Chain(BaseModel):
    """A sampled tool chain: tool ids (`env_id::tool`) in call order, split into turns."""

    model_config = ConfigDict(extra="forbid")

    id: str  # content hash of (domain, sampler, tools, turns)
    domain: str
    seed: int  # the per-chain seed (sampling here, initial states and arguments in execution)
    sampler: Sampler
    env_ids: list[str]  # in order of first use
    tools: list[str]
    turns: list[list[int]]  # indices into `tools`, one list per turn
    valid: bool = False
    problems: list[str] = []


def chain_seed(seed: int, index: int) -> int:
    """The seed of the `index`-th chain of a run seeded with `seed` (stable, no hashing of str)."""
    return (seed * 1_000_003 + index * 7_919) % (2**31 - 1)


def split_turns(n_calls: int, rng: random.Random, max_calls_per_turn: int = 5) -> list[list[int]]:
    """Turns over call indices 0..n-1: close at `max_calls_per_turn` or with probability len/max."""
    turns: list[list[int]] = []
    current: list[int] = []
    for index in range(n_calls):
        current.append(index)
        if len(current) >= max_calls_per_turn or rng.random() < len(current) / max_calls_per_turn:
            turns.append(current)
            current = []
    if current:
        turns.append(current)
    return turns


def _satisfiable(graph: ToolGraph, input_id: str, prefix: set[str]) -> bool:
    return (
        graph.user_provided(input_id)
        or bool(graph.from_state(input_id))
        or any(t in prefix for t in graph.input_producers.get(input_id, ()))
    )


def validate_chain(chain: Chain, graph: ToolGraph, *, max_envs: int = 3) -> list[str]:
    """Problems of a chain (empty = valid): unknown tools, too many environments, a required
    input neither user-provided, nor state-scoped, nor fed by an earlier tool of the chain, turns not
    covering the calls."""
    problems: list[str] = []
    prefix: set[str] = set()
    for position, tool in enumerate(chain.tools):
        if tool not in graph.tool_inputs:
            problems.append(f"call {position}: unknown tool {tool}")
            continue
        for p in graph.tool_inputs[tool]:
            if graph.required(p) and not _satisfiable(graph, p, prefix):
                problems.append(
                    f"call {position} {tool}: required input {graph.node(p)['name']!r} "
                    "has no earlier producer and is neither user-provided nor state-scoped"
                )
        prefix.add(tool)
    envs = {t.split("::", 1)[0] for t in chain.tools}
    if len(envs) > max_envs:
        problems.append(f"chain uses {len(envs)} environments, more than {max_envs}")
    if sorted(i for turn in chain.turns for i in turn) != list(range(len(chain.tools))) or any(
        not t for t in chain.turns
    ):
        problems.append("turns do not cover the calls once each, in order")
    return problems


class _TopologySampler:
    def __init__(
        self,
        graph: ToolGraph,
        rng: random.Random,
        *,
        max_envs: int,
        max_depth: int,
        max_nodes: int,
        p_skip_optional: float,
        p_skip_satisfied: float,
    ) -> None:
        self.graph, self.rng = graph, rng
        self.max_envs, self.max_depth, self.max_nodes = max_envs, max_depth, max_nodes
        self.p_skip_optional, self.p_skip_satisfied = p_skip_optional, p_skip_satisfied
        self.chain: list[str] = []
        self.envs: list[str] = []

    def env_allowed(self, tool: str, extra: list[str]) -> bool:
        env = self.graph.env_of(tool)
        used = set(self.envs) | {self.graph.env_of(t) for t in extra}
        return env in used or len(used) < self.max_envs

    def resolve(self, tool: str, depth: int, planned: list[str], waiting: list[str]) -> list[str] | None:
        """Tools to insert before `tool` (its prerequisites, in order), or None if it cannot run.

        `planned`: tools already placed before `tool`; `waiting`: `tool`'s dependants, placed after
        it (they count for the environment limit, not for satisfying inputs)."""
        insert: list[str] = []
        for p in self.graph.tool_inputs[tool]:
            required = self.graph.required(p)
            if not required and self.rng.random() < self.p_skip_optional:
                continue
            prefix = set(self.chain) | set(planned) | set(insert)
            satisfied = _satisfiable(self.graph, p, prefix)
            if satisfied and self.rng.random() < self.p_skip_satisfied:
                continue
            candidates = [
                t
                for t in self.graph.input_producers.get(p, ())
                if t != tool and t not in prefix and self.env_allowed(t, planned + insert + waiting + [tool])
            ]
            if not candidates or depth + 1 > self.max_depth:
                if required and not satisfied:
                    return None
                continue
            producer = self.rng.choice(candidates)
            before = self.resolve(producer, depth + 1, planned + insert, [*waiting, tool])
            if before is None:
                if required and not satisfied:
                    return None
                continue
            insert += [*before, producer]
        return insert

    def sample(self) -> list[str]:
        tools = self.graph.tools
        queue = [self.rng.choice(tools)]
        while queue and len(self.chain) < self.max_nodes:
            tool = queue.pop(0)
            if tool in self.chain or not self.env_allowed(tool, []):
                continue
            before = self.resolve(tool, 0, [], [])
            if before is None or len(self.chain) + len(before) + 1 > self.max_nodes:
                continue
            for t in [*before, tool]:
                self.chain.append(t)
                env = self.graph.env_of(t)
                if env not in self.envs:
                    self.envs.append(env)
            successors = [
                s for s in self.graph.tool_successors[tool] if s not in self.chain and self.env_allowed(s, [])
            ]
            if not successors:
                same_env = [
                    t for t in self.graph.tools_by_env[self.graph.env_of(tool)] if t not in self.chain
                ]
                successors = [self.rng.choice(same_env)] if same_env else []
            if successors:
                queue += self.rng.sample(successors, self.rng.randint(1, len(successors)))
        return self.chain


def _random_walk(graph: ToolGraph, rng: random.Random, *, max_envs: int, max_nodes: int) -> list[str]:
    length = rng.randint(2, max_nodes)
    chain = [rng.choice(graph.tools)]
    while len(chain) < length:
        envs = {graph.env_of(t) for t in chain}
        successors = [
            s
            for s in graph.tool_successors[chain[-1]]
            if s not in chain and (graph.env_of(s) in envs or len(envs) < max_envs)
        ]
        if not successors:
            break
        chain.append(rng.choice(successors))
    return chain


def _make_chain(
    graph: ToolGraph, tools: list[str], sampler: Sampler, seed: int, rng: random.Random, max_envs: int
) -> Chain:
    turns = split_turns(len(tools), rng)
    env_ids = list(dict.fromkeys(graph.env_of(t) for t in tools))
    body = {"domain": graph.domain, "sampler": sampler, "tools": tools, "turns": turns}
    chain = Chain(id=content_id(body, "chain_"), seed=seed, env_ids=env_ids, **body)
    problems = validate_chain(chain, graph, max_envs=max_envs)
    return chain.model_copy(update={"valid": not problems, "problems": problems})


def _sample(
    graph: ToolGraph,
    draw: Callable[[random.Random], list[str]],
    sampler: Sampler,
    *,
    seed: int,
    n_chains: int,
    max_envs: int,
    min_calls: int,
    max_attempts_factor: int,
) -> list[Chain]:
    chains: list[Chain] = []
    seen: set[str] = set()
    if not graph.tools:
        return chains
    for index in range(n_chains * max_attempts_factor):
        if len(chains) >= n_chains:
            break
        s = chain_seed(seed, index)
        rng = random.Random(s)
        tools = draw(rng)
        if len(tools) < min_calls:
            continue
        chain = _make_chain(graph, tools, sampler, s, rng, max_envs)
        if chain.id not in seen:
            seen.add(chain.id)
            chains.append(chain)
    return chains


def sample_chains(
    graph: ToolGraph,
    *,
    seed: int,
    n_chains: int,
    max_envs: int = 3,
    max_depth: int = 5,
    max_nodes: int = 10,
    p_skip_optional: float = 0.6,
    p_skip_satisfied: float = 0.9,
    min_calls: int = 2,
    max_attempts_factor: int = 4,
) -> list[Chain]:
    """Up to `n_chains` distinct topology-aware chains with at least `min_calls` tools.

    Draws stop after `n_chains * max_attempts_factor` attempts (too-short and repeated chains are
    drawn again), so a small graph may give fewer chains; each carries `valid` and `problems`.
    """

    def draw(rng: random.Random) -> list[str]:
        return _TopologySampler(
            graph,
            rng,
            max_envs=max_envs,
            max_depth=max_depth,
            max_nodes=max_nodes,
            p_skip_optional=p_skip_optional,
            p_skip_satisfied=p_skip_satisfied,
        ).sample()

    return _sample(
        graph,
        draw,
        "topology",
        seed=seed,
        n_chains=n_chains,
        max_envs=max_envs,
        min_calls=min_calls,
        max_attempts_factor=max_attempts_factor,
    )


def random_walk_chains(
    graph: ToolGraph,
    *,
    seed: int,
    n_chains: int,
    max_envs: int = 3,
    max_nodes: int = 10,
    min_calls: int = 2,
    max_attempts_factor: int = 4,
) -> list[Chain]:
    """The baseline: up to `n_chains` distinct random walks over tool -> tool edges."""

    def draw(rng: random.Random) -> list[str]:
        return _random_walk(graph, rng, max_envs=max_envs, max_nodes=max_nodes)

    return _sample(
        graph,
        draw,
        "random_walk",
        seed=seed,
        n_chains=n_chains,
        max_envs=max_envs,
        min_calls=min_calls,
        max_attempts_factor=max_attempts_factor,
    )


def chain_rows(chains: list[Chain]) -> list[dict[str, Any]]:
    """`tool_chains` rows: the chain fields plus call/turn/env counts."""
    return [
        {**c.model_dump(), "calls": len(c.tools), "turn_count": len(c.turns), "env_count": len(c.env_ids)}
        for c in chains
    ]


def compare_samplers(graph: ToolGraph, *, seed: int, n_chains: int, **options: Any) -> dict[str, Any]:
    """Valid multi-step chains (>= 2 calls, `validate_chain` clean) per sampler, same graph and seeds.

    The share is over `n_chains` draws (a draw that yields fewer than 2 tools counts as not valid).
    """
    out: dict[str, Any] = {"draws": n_chains}
    max_envs = options.get("max_envs", 3)
    max_nodes = options.get("max_nodes", 10)
    topo_options = {
        k: v for k, v in options.items() if k in ("max_depth", "p_skip_optional", "p_skip_satisfied")
    }
    for name, draw in (
        (
            "topology",
            lambda rng: _TopologySampler(
                graph,
                rng,
                max_envs=max_envs,
                max_nodes=max_nodes,
                **{"max_depth": 5, "p_skip_optional": 0.6, "p_skip_satisfied": 0.9, **topo_options},
            ).sample(),
        ),
        ("random_walk", lambda rng: _random_walk(graph, rng, max_envs=max_envs, max_nodes=max_nodes)),
    ):
        valid = 0
        calls: Counter[int] = Counter()
        for index in range(n_chains):
            s = chain_seed(seed, index)
            rng = random.Random(s)
            tools = draw(rng) if graph.tools else []
            calls[len(tools)] += 1
            if len(tools) >= 2 and _make_chain(graph, tools, name, s, rng, max_envs).valid:  # type: ignore[arg-type]
                valid += 1
        out[f"{name}_valid_multistep"] = valid
        out[f"{name}_valid_multistep_share"] = round(valid / n_chains, 4) if n_chains else 0.0
    return out
