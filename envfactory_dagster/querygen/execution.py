"""Run one sampled chain on fresh environment instances: the one execution of a trajectory.

Per chain (all choices from `random.Random` seeded by the run seed and the chain's seed):
- Initial states: one state seed is drawn from a pool of `state_pool_size` seeds of the run; each
  world (service) of the chain gets `generate_state(world spec, state_seed)`, validated once and
  shared by the world's environments (a write through one is seen by the others).
- Arguments come from `binding.ArgumentBinder` (earlier outputs of the same service, values a user
  knows, fresh values; an update always changes something).
- Calls run in chain order; state carries over between turns; each call records its output, its
  state diff and the id counters it moved. A write that changes nothing but a timestamp rejects
  the chain (`noop_write`): a task never asks for a change that does not happen.
- Every call serves the goal: a prerequisite read whose output no later call uses is dropped; a
  prerequisite write nobody reads becomes a requested call (it changed the state, so the user asks
  for it).
- Masked arguments are decided here by re-running the call from its own snapshot
  (`masking.confirm_masks`), so no later stage re-executes anything.
- The persona and goal are composed from the requested calls (`persona`), and each turn gets an
  explicit query (`query_templates`): the baseline that refinement makes implicit.
A ToolError, a value that cannot be bound or a state that does not load rejects the chain with its
reason (a rejected row); nothing is kept silently.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
from faker import Faker
from pydantic import ValidationError

from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.envgen.seed_data import generate_state
from envfactory_dagster.envgen.worlds import world_spec_of
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.binding import UPDATED_NAMES, ArgumentBinder, BindingError
from envfactory_dagster.querygen.language_quality import is_identifier_value
from envfactory_dagster.querygen.masking import confirm_masks
from envfactory_dagster.querygen.persona import compose_persona
from envfactory_dagster.querygen.query_templates import entity_noun, render_turn_query
from envfactory_dagster.querygen.tool_chains import Chain, chain_seed
from envfactory_dagster.querygen.tool_graph import ToolGraph
from envfactory_dagster.querygen.trajectory_model import ArgumentSource, GoldCall, Trajectory, Turn
from envfactory_dagster.runtime.contract import Environment, ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, world_ids


class ChainRejected(Exception):
    """A chain could not be executed; `reason` says where and why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def state_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """collection -> {added: {key: row}, changed: {key: {field: [old, new]}}, removed: [key]}."""
    diff: dict[str, Any] = {}
    for name, table in after.items():
        if name == "counters" or not isinstance(table, dict):
            continue
        old = before.get(name) or {}
        added = {k: v for k, v in table.items() if k not in old}
        removed = sorted(k for k in old if k not in table)
        changed = {}
        for k, row in table.items():
            prev = old.get(k)
            if prev is not None and prev is not row and prev != row:
                changed[k] = {
                    f: [prev.get(f), row.get(f)]
                    for f in sorted(set(prev) | set(row))
                    if prev.get(f) != row.get(f)
                }
        if added or removed or changed:
            diff[name] = {"added": added, "changed": changed, "removed": removed}
    return diff


def counter_changes(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, list[int]]:
    return {k: [before.get(k, 0), v] for k, v in sorted(after.items()) if before.get(k) != v}


def changes_something(diff: Mapping[str, Any]) -> bool:
    """True when a diff adds or removes a row, or changes a field other than an update timestamp."""
    for change in diff.values():
        if change["added"] or change["removed"]:
            return True
        if any(set(fields) - UPDATED_NAMES for fields in change["changed"].values()):
            return True
    return False


def _table_copy(state: Mapping[str, Any]) -> dict[str, Any]:
    # rows are never mutated in place (contract), so a one-level copy is a faithful "before"
    return {k: v.copy() if isinstance(v, dict) else v for k, v in state.items()}


@dataclass
class _Executed:
    """One executed call before the trajectory is assembled."""

    turn: int
    index: int  # position within its turn at execution time
    tool_id: str
    env_id: str
    tool: ToolSpec
    spec: EnvSpec
    target: bool
    arguments: dict[str, Any]
    sources: dict[str, ArgumentSource]
    output: dict[str, Any]
    diff: dict[str, Any]
    counters: dict[str, list[int]]
    before: dict[str, Any]
    ref_hint: str = ""
    masked: dict[str, str] = field(default_factory=dict)


class ChainExecutor:
    """Shared per run: loaded environments, the graph, the state pool, compiled validators."""

    def __init__(
        self,
        envs: dict[str, VerifiedEnvironment],
        graph: ToolGraph,
        *,
        seed: int,
        state_pool_size: int,
        p_optional_output: float,
        p_optional_user: float,
        p_optional_control: float,
    ) -> None:
        self.envs, self.graph, self.seed = envs, graph, seed
        self.state_seeds = [chain_seed(seed, 1_000_000 + k) for k in range(max(1, state_pool_size))]
        self.p_optional_output, self.p_optional_user = p_optional_output, p_optional_user
        self.p_optional_control = p_optional_control
        self.faker = Faker("en_US")
        self._states: dict[tuple[str, int], dict[str, Any]] = {}
        self._validators: dict[str, Any] = {}
        self._tools = {(e, t.name): t for e, v in envs.items() for t in v.spec.tools}
        self.worlds: dict[str, list[VerifiedEnvironment]] = {}
        for env in envs.values():
            self.worlds.setdefault(env.world_id, []).append(env)
        self.world_of_env = {e: v.world_id for e, v in envs.items()}
        self._clocks: dict[str, datetime] = {}

    def tool_spec(self, env_id: str, name: str) -> ToolSpec:
        return self._tools[(env_id, name)]

    def clock(self, spec: EnvSpec) -> datetime:
        if spec.clock not in self._clocks:
            self._clocks[spec.clock] = datetime.fromisoformat(spec.clock.replace("Z", "+00:00")).astimezone(
                UTC
            )
        return self._clocks[spec.clock]

    def validator(self, schema: dict[str, Any]) -> Any:
        key = canonical_json(schema)
        check = self._validators.get(key)
        if check is None:
            compiled = fastjsonschema.compile(schema)

            def check(value: Any, compiled: Any = compiled) -> bool:
                try:
                    compiled(value)
                except fastjsonschema.JsonSchemaException:
                    return False
                return True

            self._validators[key] = check
        return check

    def initial_state(self, world: str, state_seed: int) -> dict[str, Any]:
        """The world's state for `state_seed` (generated from the world's spec, validated once)."""
        key = (world, state_seed)
        if key not in self._states:
            members = self.worlds[world]
            try:
                spec = world_spec_of([env.spec for env in members])
                self._states[key] = members[0].env_class(generate_state(spec, state_seed)).dump_state()
            except (ValidationError, ValueError) as exc:
                raise ChainRejected(
                    "state_load", f"world {world}: seeded state {state_seed} does not load: {exc}"[:1000]
                ) from None
        return self._states[key]

    def execute(self, chain: Chain, attempts: int) -> Trajectory:
        """Run the chain; on rejection retry with the next attempt's seed (other state, other values)."""
        first: ChainRejected | None = None
        for attempt in range(max(1, attempts)):
            rng = random.Random(chain_seed(self.seed + attempt, chain.seed))
            self.faker.seed_instance(rng.randrange(2**31))
            try:
                return _ChainRunner(self, chain, rng).run()
            except ChainRejected as exc:
                first = first or exc
        assert first is not None
        raise first


_HINT_FIELDS = ("name", "title", "display_name", "full_name", "email", "subject", "summary", "label", "code")


class _ChainRunner:
    """Executes one chain; holds the per-chain random generator, instances and records."""

    def __init__(self, executor: ChainExecutor, chain: Chain, rng: random.Random) -> None:
        self.x, self.chain, self.rng = executor, chain, rng

    def _ref_hint(self, sources: dict[str, ArgumentSource], outputs: dict[tuple[int, int], dict]) -> str:
        """`with name "X"` for a value taken from one element of a list output, so the user can
        say which row they mean; "" when the value came from a single object or the row has no
        field a person would name it by (a name, a title, a short text that is not a code)."""
        for source in sources.values():
            if source.kind != "output" or source.path is None or "[" not in source.path:
                continue
            prop, _, rest = source.path.partition("[")
            element = outputs[(source.turn, source.call)][prop][int(rest.split("]", 1)[0])]
            for name in _HINT_FIELDS:
                value = element.get(name)
                if isinstance(value, str) and 0 < len(value) <= 80 and not is_identifier_value(value):
                    return f'with {" ".join(words(name))} "{value}"'
            for name, value in sorted(element.items()):
                if (
                    isinstance(value, str)
                    and 3 <= len(value) <= 60
                    and " " in value
                    and words(name)[-1:] not in (["id"], ["at"])
                    and "T" not in value[10:11]
                ):
                    return f'with {" ".join(words(name))} "{value}"'
        return ""

    def _execute(self, instances: dict[str, Environment]) -> list[_Executed]:
        x, chain = self.x, self.chain
        binder = ArgumentBinder(
            x.graph,
            self.rng,
            x.faker,
            x.validator,
            x.world_of_env,
            clock=x.clock(x.envs[chain.env_ids[0]].spec),
            p_optional_output=x.p_optional_output,
            p_optional_user=x.p_optional_user,
            p_optional_control=x.p_optional_control,
        )
        targets = set(chain.targets) if chain.targets else set(range(len(chain.tools)))
        done: list[_Executed] = []
        outputs: dict[tuple[int, int], dict] = {}
        for turn_index, positions in enumerate(chain.turns):
            for call_index, position in enumerate(positions):
                tool_id = chain.tools[position]
                env_id, _, name = tool_id.partition("::")
                spec, tool, env = x.envs[env_id].spec, x.tool_spec(env_id, name), instances[env_id]
                try:
                    arguments, sources = binder.bind(tool_id, spec, tool, env)
                except BindingError as exc:
                    raise ChainRejected("unbound_input", str(exc)) from None
                before = _table_copy(env.state)
                try:
                    output = env.call(name, arguments)
                except ToolError as exc:
                    raise ChainRejected(
                        f"tool_error:{exc.code}",
                        f"turn {turn_index} call {call_index} {tool_id}: {exc.code}: {exc.message}",
                    ) from None
                output = json.loads(canonical_json(output))
                diff = state_diff(before, env.state)
                if tool.kind == "write" and not changes_something(diff):
                    raise ChainRejected(
                        "noop_write", f"turn {turn_index} call {call_index} {tool_id} changed nothing"
                    )
                done.append(
                    _Executed(
                        turn=turn_index,
                        index=call_index,
                        tool_id=tool_id,
                        env_id=env_id,
                        tool=tool,
                        spec=spec,
                        target=position in targets,
                        arguments=arguments,
                        sources=sources,
                        output=output,
                        diff=diff,
                        counters=counter_changes(before["counters"], env.state["counters"]),
                        before=before,
                        ref_hint=self._ref_hint(sources, outputs),
                    )
                )
                outputs[(turn_index, call_index)] = output
                binder.records.append((turn_index, call_index, tool_id, output))
        return done

    @staticmethod
    def _prune(done: list[_Executed]) -> list[_Executed]:
        """Drop prerequisite reads nobody reads from; a prerequisite write nobody reads is asked for."""
        kept = list(done)
        while True:  # until no dropped read was the only reader of another prerequisite
            used = {(s.turn, s.call) for c in kept for s in c.sources.values() if s.kind == "output"}
            unused = [c for c in kept if not c.target and (c.turn, c.index) not in used]
            for call in unused:
                call.target = call.tool.kind == "write"
            if all(c.target for c in unused):
                break
            kept = [c for c in kept if c.target or (c.turn, c.index) in used]
        # re-number the calls within each turn and the sources that point at them
        renumber: dict[tuple[int, int], int] = {}
        for call in kept:
            renumber[(call.turn, call.index)] = sum(1 for c in renumber if c[0] == call.turn)
        for call in kept:
            call.index = renumber[(call.turn, call.index)]
            call.sources = {
                p: s.model_copy(update={"call": renumber[(s.turn, s.call)]})
                if s.kind == "output" and s.turn is not None and s.call is not None
                else s
                for p, s in call.sources.items()
            }
        return kept

    def _masks(self, done: list[_Executed]) -> None:
        for call in done:
            used_paths = [
                s.path
                for later in done
                for s in later.sources.values()
                if s.kind == "output" and (s.turn, s.call) == (call.turn, call.index) and s.path
            ]
            env_class = self.x.envs[call.env_id].env_class

            def rerun(
                arguments: dict[str, Any], call: _Executed = call, env_class: type = env_class
            ) -> tuple:
                instance = env_class.__new__(env_class)
                instance.state = _table_copy(call.before)
                output = json.loads(canonical_json(instance.call(call.tool.name, arguments)))
                return output, state_diff(call.before, instance.state)

            call.masked = confirm_masks(call.tool, call.arguments, call.output, call.diff, used_paths, rerun)

    def run(self) -> Trajectory:
        chain, x = self.chain, self.x
        state_seed = x.state_seeds[self.rng.randrange(len(x.state_seeds))]
        missing = [e for e in chain.env_ids if e not in x.envs]
        if missing:
            raise ChainRejected("missing_env", f"environment(s) {', '.join(missing)} not loaded")
        envs = [x.envs[e] for e in chain.env_ids]
        initial = {world: x.initial_state(world, state_seed) for world in world_ids(envs)}
        # environments of one world share one state object (Toolset), so writes are seen across them
        toolset = Toolset.from_snapshots(envs, initial)
        done = self._prune(self._execute(toolset.instances))
        self._masks(done)
        requested = [(c.tool, entity_noun(c.tool, c.spec)) for c in done if c.target]
        services = list(dict.fromkeys(c.spec.service or c.spec.title.split(" — ")[0] for c in done))
        first = done[0].spec
        persona = compose_persona(
            self.rng,
            x.faker,
            service=services[0],
            targets=requested,
            entity_nouns=[" ".join(words(e.name)) for e in first.entities],
        )
        turns = self._turns(done, persona.context, multi_service=len(services) > 1)
        final = toolset.states()
        call_list = [[c.env_id, c.tool, c.arguments] for t in turns for c in t.calls]
        tid = content_id({"env_ids": chain.env_ids, "initial_states": initial, "calls": call_list}, "traj_")
        return Trajectory(
            id=tid,
            domain=chain.domain,
            chain_id=chain.id,
            seed=chain.seed,
            env_ids=list(dict.fromkeys(c.env_id for c in done)),
            env_worlds={c.env_id: x.world_of_env[c.env_id] for c in done},
            initial_states={
                w: s for w, s in initial.items() if any(x.world_of_env[c.env_id] == w for c in done)
            },
            turns=turns,
            final_states={
                w: _table_copy(s)
                for w, s in final.items()
                if any(x.world_of_env[c.env_id] == w for c in done)
            },
            persona=persona.text(),
            goal=persona.goal,
            opening=persona.context,
            backend="template",
        )

    def _turns(self, done: list[_Executed], context: str, *, multi_service: bool) -> list[Turn]:
        turns: list[Turn] = []
        by_turn: dict[int, list[_Executed]] = {}
        for call in done:
            by_turn.setdefault(call.turn, []).append(call)
        for position, calls in enumerate(by_turn[t] for t in sorted(by_turn)):
            gold = [
                GoldCall(
                    env_id=c.env_id,
                    tool=c.tool.name,
                    arguments=c.arguments,
                    output=c.output,
                    argument_sources={
                        p: s.model_copy(update={"turn": renumbered(s.turn, by_turn)})
                        if s.kind == "output"
                        else s
                        for p, s in c.sources.items()
                    },
                    masked_arguments=sorted(c.masked),
                    masked_reasons=c.masked,
                    state_diff=c.diff,
                    counter_changes=c.counters,
                )
                for c in calls
            ]
            vendors = [(c.spec.service or None) if multi_service else None for c in calls]
            query = render_turn_query(
                gold,
                [c.tool for c in calls],
                [c.spec for c in calls],
                self.rng,
                turn=position,
                vendors=vendors,
                ref_hints=[c.ref_hint for c in calls],
                context=context if position == 0 else "",
                existing=[row_key_test(c.before) for c in calls],
            )
            targets = [i for i, c in enumerate(calls) if c.target]
            turns.append(Turn(index=position, query=query, calls=gold, targets=targets))
        return turns


def row_key_test(state: Mapping[str, Any]) -> Any:
    """`test(value)`: is `value` the key of a row of `state`?"""
    tables = [t for name, t in state.items() if name != "counters" and isinstance(t, dict)]
    return lambda value: isinstance(value, str) and any(value in t for t in tables)


def renumbered(turn: int | None, by_turn: Mapping[int, list]) -> int | None:
    """A turn's position once turns left empty by pruning are gone."""
    return None if turn is None else sorted(by_turn).index(turn)
