"""Tool chains sampled from the dependency graph: right-sized tasks, and a random-walk baseline.

A chain is a task a person would give: a few turns, each asking for one thing (sometimes two),
with the lookups that thing needs in front of it. The sampler keeps the paper's topology-aware
resolution (METHOD QueryGen §2) and sizes chains by a distribution instead of filling a cap:

1. Draw the number of turns (`TURN_COUNTS`: 1-5, median 2) and, per turn, the number of requested
   calls (`TARGETS_PER_TURN`: 1 or 2).
2. A turn's requested call (a *target*) is drawn: the first one from all tools (writes weighted
   up: tasks are mostly about doing something); later ones from the worlds already in use,
   weighted toward tools that read an earlier target's output, then tools on the same entity,
   then the same environment. With `p_second_service` a later target may come from a second
   service (at most `max_worlds`), whose inputs then come from the user or that service only.
3. The target's inputs are resolved as in the paper: skip an optional input with
   `p_skip_optional`, an input already satisfiable (user-provided, state-scoped or produced by an
   earlier call of the same world) with `p_skip_satisfied`; otherwise a producer of the same world
   is inserted before it (recursively, depth <= `max_depth`). Producers never come from another
   service: an id does not cross services (`envgen.worlds`).
4. A turn holds at most `max_calls_per_turn` calls; a target that needs more is drawn again.

`targets` lists the positions the user asks for; the others are prerequisites that feed them
(execution drops a prerequisite whose output no later call uses). The random walk (baseline)
takes one random successor per step, to a length drawn like the sampler's, without resolution.
Everything is drawn from `random.Random` seeded per chain from (`seed`, index).
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

TURN_COUNTS = {1: 0.17, 2: 0.36, 3: 0.27, 4: 0.13, 5: 0.07}
TARGETS_PER_TURN = {1: 0.75, 2: 0.25}
MAX_CALLS_PER_TURN = 4


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
    targets: list[int] = []  # indices the user asks for; the others feed them
    valid: bool = False
    problems: list[str] = []


def chain_seed(seed: int, index: int) -> int:
    """The seed of the `index`-th chain of a run seeded with `seed` (stable, no hashing of str)."""
    return (seed * 1_000_003 + index * 7_919) % (2**31 - 1)


def _draw(rng: random.Random, distribution: dict[int, float]) -> int:
    return rng.choices(list(distribution), weights=list(distribution.values()))[0]


def _satisfiable(graph: ToolGraph, input_id: str, prefix: set[str]) -> bool:
    """User-provided, state-scoped, or produced by an earlier tool of the same world."""
    if graph.user_provided(input_id) or graph.from_state(input_id):
        return True
    world = graph.envs[graph.node(input_id)["env_id"]].spec.world_id or graph.node(input_id)["env_id"]
    return any(t in prefix and graph.world_of(t) == world for t in graph.input_producers.get(input_id, ()))


def validate_chain(chain: Chain, graph: ToolGraph, *, max_envs: int = 3) -> list[str]:
    """Problems of a chain (empty = valid): unknown tools, too many environments, a required input
    neither user-provided, nor state-scoped, nor fed by an earlier tool of the same world, turns
    not covering the calls, targets outside the chain."""
    problems: list[str] = []
    prefix: set[str] = set()
    for position, tool in enumerate(chain.tools):
        if tool not in graph.tool_inputs:
            problems.append(f"call {position}: unknown tool {tool}")
            continue
        for p in graph.tool_inputs[tool]:
            if graph.required(p) and not _satisfiable(graph, p, prefix):
                problems.append(
                    f"call {position} {tool}: required input {graph.node(p)['name']!r} has no earlier "
                    "producer of its service and is neither user-provided nor state-scoped"
                )
        prefix.add(tool)
    envs = {t.split("::", 1)[0] for t in chain.tools}
    if len(envs) > max_envs:
        problems.append(f"chain uses {len(envs)} environments, more than {max_envs}")
    if sorted(i for turn in chain.turns for i in turn) != list(range(len(chain.tools))) or any(
        not t for t in chain.turns
    ):
        problems.append("turns do not cover the calls once each, in order")
    if any(not 0 <= t < len(chain.tools) for t in chain.targets):
        problems.append("a target is not a call of the chain")
    return problems


class _TaskSampler:
    def __init__(
        self,
        graph: ToolGraph,
        rng: random.Random,
        *,
        max_envs: int,
        max_worlds: int,
        max_depth: int,
        max_nodes: int,
        max_calls_per_turn: int,
        p_skip_optional: float,
        p_skip_satisfied: float,
        p_second_service: float,
    ) -> None:
        self.graph, self.rng = graph, rng
        self.max_envs, self.max_worlds, self.max_depth = max_envs, max_worlds, max_depth
        self.max_nodes, self.max_calls_per_turn = max_nodes, max_calls_per_turn
        self.p_skip_optional, self.p_skip_satisfied = p_skip_optional, p_skip_satisfied
        self.p_second_service = p_second_service
        self.chain: list[str] = []
        self.turns: list[list[int]] = []
        self.targets: list[int] = []

    def _worlds(self, tools: list[str]) -> set[str]:
        return {self.graph.world_of(t) for t in tools}

    def allowed(self, tool: str, extra: list[str]) -> bool:
        tools = [*self.chain, *extra]
        return self._fits(tool, {self.graph.env_of(t) for t in tools}, self._worlds(tools))

    def _fits(self, tool: str, envs: set[str], worlds: set[str]) -> bool:
        """`tool` keeps the chain (using `envs` and `worlds`) within its env and world limits."""
        return (self.graph.env_of(tool) in envs or len(envs) < self.max_envs) and (
            self.graph.world_of(tool) in worlds or len(worlds) < self.max_worlds
        )

    def resolve(self, tool: str, depth: int, planned: list[str], waiting: list[str]) -> list[str] | None:
        """Tools to insert before `tool` (its prerequisites, in order), or None if it cannot run.

        `planned`: tools already placed before `tool`; `waiting`: the tools that wait for `tool`
        (never their own prerequisites). A prerequisite is a lookup (a read) where one exists; a
        create only where nothing can be looked up (the thing has to be made first); other writes
        never are: nobody cancels one record to find another."""
        insert: list[str] = []
        world = self.graph.world_of(tool)
        for p in self.graph.tool_inputs[tool]:
            required = self.graph.required(p)
            if not required and self.rng.random() < self.p_skip_optional:
                continue
            prefix = set(self.chain) | set(planned) | set(insert)
            produced_before = any(
                t in prefix and self.graph.world_of(t) == world for t in self.graph.input_producers.get(p, ())
            )
            satisfied = produced_before or _satisfiable(self.graph, p, prefix)
            # something the task already found or made is not looked up again
            skip = 0.9 if produced_before else self.p_skip_satisfied
            if satisfied and self.rng.random() < skip:
                continue
            candidates = [
                t
                for t in self.graph.input_producers.get(p, ())
                if t != tool
                and t not in prefix
                and t not in waiting
                and self.graph.world_of(t) == world
                and self.allowed(t, [*planned, *insert, tool])
            ]
            reads = [t for t in candidates if self.graph.tool_spec(t).kind == "read"]
            candidates = reads or [t for t in candidates if self.graph.tool_spec(t).action == "create"]
            if not candidates or depth + 1 > self.max_depth:
                if required and not satisfied:
                    return None
                continue
            producer = self.rng.choice(candidates)
            before = self.resolve(producer, depth + 1, [*planned, *insert], [*waiting, tool])
            if before is None:
                if required and not satisfied:
                    return None
                continue
            insert += [*before, producer]
        return insert

    def _candidates(self, first: bool) -> tuple[list[str], list[float]]:
        graph, used = self.graph, set(self.chain)
        if first:
            tools = list(graph.tools)
            return tools, [3.0 if graph.tool_spec(t).kind == "write" else 1.0 for t in tools]
        worlds = self._worlds(self.chain)
        targets = [self.chain[i] for i in self.targets]
        successors = {s for t in targets for s in graph.tool_successors.get(t, ())}
        entities = {(graph.env_of(t), graph.tool_spec(t).entity) for t in targets}
        envs = {graph.env_of(t) for t in self.chain}
        second = len(worlds) < self.max_worlds and self.rng.random() < self.p_second_service
        tools, weights = [], []
        for t in graph.tools:
            if t in used or not self._fits(t, envs, worlds):
                continue
            if (graph.world_of(t) in worlds) == second:
                continue
            spec = graph.tool_spec(t)
            weight = 1.0 if spec.kind == "read" else 2.0
            if t in successors:
                weight *= 4
            elif (graph.env_of(t), spec.entity) in entities:
                weight *= 3
            elif graph.env_of(t) in envs:
                weight *= 2
            tools.append(t)
            weights.append(weight)
        return tools, weights

    def add_target(self, first: bool, turn: list[int]) -> bool:
        """Draw a target that fits the turn, with its prerequisites; False when none fits."""
        for _ in range(6):
            tools, weights = self._candidates(first)
            if not tools:
                return False
            target = self.rng.choices(tools, weights=weights)[0]
            before = self.resolve(target, 0, [], [])
            if before is None:
                continue
            if len(turn) + len(before) + 1 > self.max_calls_per_turn:
                continue
            if len(self.chain) + len(before) + 1 > self.max_nodes:
                return False
            for t in [*before, target]:
                turn.append(len(self.chain))
                self.chain.append(t)
            self.targets.append(len(self.chain) - 1)
            return True
        return False

    def sample(self) -> tuple[list[str], list[list[int]], list[int]]:
        for index in range(_draw(self.rng, TURN_COUNTS)):
            turn: list[int] = []
            for count in range(_draw(self.rng, TARGETS_PER_TURN)):
                if not self.add_target(index == 0 and count == 0, turn):
                    break
            if not turn:
                break
            self.turns.append(turn)
        return self.chain, self.turns, self.targets


def _random_walk(graph: ToolGraph, rng: random.Random, *, max_envs: int, max_nodes: int) -> list[str]:
    length = min(max_nodes, sum(_draw(rng, TURN_COUNTS) for _ in range(2)))
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


def _walk_turns(n_calls: int, rng: random.Random) -> list[list[int]]:
    """Turns of a random walk: consecutive runs of 1-`MAX_CALLS_PER_TURN` calls."""
    turns: list[list[int]] = []
    index = 0
    while index < n_calls:
        size = min(n_calls - index, rng.randint(1, MAX_CALLS_PER_TURN))
        turns.append(list(range(index, index + size)))
        index += size
    return turns


def _make_chain(
    graph: ToolGraph,
    tools: list[str],
    turns: list[list[int]],
    targets: list[int],
    sampler: Sampler,
    seed: int,
    max_envs: int,
) -> Chain:
    env_ids = list(dict.fromkeys(graph.env_of(t) for t in tools))
    body = {"domain": graph.domain, "sampler": sampler, "tools": tools, "turns": turns, "targets": targets}
    chain = Chain(id=content_id(body, "chain_"), seed=seed, env_ids=env_ids, **body)
    problems = validate_chain(chain, graph, max_envs=max_envs)
    return chain.model_copy(update={"valid": not problems, "problems": problems})


Draw = Callable[[random.Random], tuple[list[str], list[list[int]], list[int]]]


def _sample(
    graph: ToolGraph,
    draw: Draw,
    sampler: Sampler,
    *,
    seed: int,
    n_chains: int,
    max_envs: int,
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
        tools, turns, targets = draw(random.Random(s))
        if not tools:
            continue
        chain = _make_chain(graph, tools, turns, targets, sampler, s, max_envs)
        if chain.id not in seen:
            seen.add(chain.id)
            chains.append(chain)
    return chains


def _task_draw(graph: ToolGraph, options: dict[str, Any]) -> Draw:
    settings = {
        "max_envs": 3,
        "max_worlds": 2,
        "max_depth": 2,
        "max_nodes": 10,
        "max_calls_per_turn": MAX_CALLS_PER_TURN,
        "p_skip_optional": 0.6,
        "p_skip_satisfied": 0.6,
        "p_second_service": 0.15,
        **options,
    }
    return lambda rng: _TaskSampler(graph, rng, **settings).sample()


def sample_chains(
    graph: ToolGraph,
    *,
    seed: int,
    n_chains: int,
    max_attempts_factor: int = 4,
    **options: Any,
) -> list[Chain]:
    """Up to `n_chains` distinct right-sized chains (see the module docstring for `options`:
    max_envs, max_worlds, max_depth, max_nodes, max_calls_per_turn, p_skip_optional,
    p_skip_satisfied, p_second_service). Repeated draws are drawn again, up to
    `n_chains * max_attempts_factor` attempts; each chain carries `valid` and `problems`."""
    return _sample(
        graph,
        _task_draw(graph, options),
        "topology",
        seed=seed,
        n_chains=n_chains,
        max_envs=options.get("max_envs", 3),
        max_attempts_factor=max_attempts_factor,
    )


def random_walk_chains(
    graph: ToolGraph,
    *,
    seed: int,
    n_chains: int,
    max_envs: int = 3,
    max_nodes: int = 10,
    max_attempts_factor: int = 4,
) -> list[Chain]:
    """The baseline: up to `n_chains` distinct random walks over tool -> tool edges (every call a target)."""

    def draw(rng: random.Random) -> tuple[list[str], list[list[int]], list[int]]:
        tools = _random_walk(graph, rng, max_envs=max_envs, max_nodes=max_nodes)
        return tools, _walk_turns(len(tools), rng), list(range(len(tools)))

    return _sample(
        graph,
        draw,
        "random_walk",
        seed=seed,
        n_chains=n_chains,
        max_envs=max_envs,
        max_attempts_factor=max_attempts_factor,
    )


def chain_rows(chains: list[Chain]) -> list[dict[str, Any]]:
    """`tool_chains` rows: the chain fields plus call/turn/env counts."""
    return [
        {**c.model_dump(), "calls": len(c.tools), "turn_count": len(c.turns), "env_count": len(c.env_ids)}
        for c in chains
    ]


def compare_samplers(graph: ToolGraph, *, seed: int, n_chains: int, **options: Any) -> dict[str, Any]:
    """Valid multi-step chains (>= 2 calls, `validate_chain` clean) per sampler, same graph and seeds,
    and the calls per chain of each. The share is over `n_chains` draws."""
    out: dict[str, Any] = {"draws": n_chains}
    max_envs = options.get("max_envs", 3)
    walk = lambda rng: (  # noqa: E731
        (tools := _random_walk(graph, rng, max_envs=max_envs, max_nodes=options.get("max_nodes", 10))),
        _walk_turns(len(tools), rng),
        list(range(len(tools))),
    )
    for name, draw in (("topology", _task_draw(graph, options)), ("random_walk", walk)):
        valid = 0
        calls: Counter[int] = Counter()
        for index in range(n_chains):
            s = chain_seed(seed, index)
            tools, turns, targets = draw(random.Random(s)) if graph.tools else ([], [], [])
            calls[len(tools)] += 1
            if len(tools) >= 2 and _make_chain(graph, tools, turns, targets, name, s, max_envs).valid:  # type: ignore[arg-type]
                valid += 1
        out[f"{name}_valid_multistep"] = valid
        out[f"{name}_valid_multistep_share"] = round(valid / n_chains, 4) if n_chains else 0.0
        out[f"{name}_calls_distribution"] = dict(sorted(calls.items()))
    return out
