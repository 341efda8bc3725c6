"""Executed multi-turn trajectories: run sampled chains on fresh environment instances.

Per chain (all choices from `random.Random` seeded by the run seed and the chain's seed):
- Initial states: one state seed is drawn from a pool of `state_pool_size` seeds of the run, and
  every environment of the chain gets `generate_state(spec, state_seed)` (validated through its
  State model). The same seed for all of them keeps shared entities consistent: keys are
  `<id_prefix><n:04d>`, so environments that share an entity (`Order`, prefix `ord_`) hold the
  same ids; their other columns are generated per environment (not copied across). The pool
  makes states reusable across chains (generation costs ~10 ms); instances share nothing.
- Arguments: an input that a user would not type is bound from an earlier call's output through
  the graph's `feeds` edges (preferring values that exist in the consumer's state and meet its
  transition precondition, then edge score, then the latest call); a user-provided input gets a
  value a user knows: a word, name, status... of an existing row (`state` source) for lookups and
  filters, or a fresh realistic value (`user` source, Faker via `seed_data.field_value`) for what
  is created or changed. Optional inputs are set sometimes (`p_optional_output`, `p_optional_user`).
  An array-of-ids input fed by a list element's id gets a one-element array; a state-scoped input
  (`ToolGraph.from_state`) without an earlier output takes an existing row's key (`state` source).
- A rejected execution is retried with the next attempt's seed (`attempts`).
- Calls run in chain order; state carries over between turns; each call records its output and
  its state diff. A ToolError, a value that cannot be bound or a state that does not load
  rejects the chain with its reason (a rejected row); nothing is kept silently.
- Turn queries come from the template backend (`query_templates`).
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import fastjsonschema
from faker import Faker
from pydantic import ValidationError

from envfactory_dagster.envgen.env_spec import EnvSpec, FieldSpec, ToolSpec
from envfactory_dagster.envgen.naming import words
from envfactory_dagster.envgen.seed_data import field_value, generate_state
from envfactory_dagster.envgen.test_generation import schema_value
from envfactory_dagster.envgen.worlds import world_spec_of
from envfactory_dagster.lineage import canonical_json, content_id
from envfactory_dagster.querygen.query_templates import (
    missing_user_values,
    query_leaks_tool_name,
    render_turn_query,
    write_queries_llm,
)
from envfactory_dagster.querygen.tool_chains import Chain, chain_seed
from envfactory_dagster.querygen.tool_graph import ToolGraph, build_tool_graph, json_type
from envfactory_dagster.querygen.trajectory_model import ArgumentSource, GoldCall, Trajectory, Turn
from envfactory_dagster.querygen.trajectory_quality import drop_exact_duplicates
from envfactory_dagster.runtime.contract import Environment, ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset, world_ids

_TEXT_SKIP_FORMATS = {"date-time", "date", "uri", "url", "email", "uuid"}


class ChainRejected(Exception):
    """A chain could not be executed; `reason` says where and why."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def load_envs(
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
) -> tuple[dict[str, VerifiedEnvironment], list[dict[str, Any]]]:
    """Loaded environments by env_id, and error rows for rows whose code does not load."""
    loaded: dict[str, VerifiedEnvironment] = {}
    errors: list[dict[str, Any]] = []
    for env in envs:
        venv = env if isinstance(env, VerifiedEnvironment) else None
        env_id = str(env.env_id if venv else env.get("env_id"))  # type: ignore[union-attr]
        try:
            venv = venv or VerifiedEnvironment.from_row(env)  # type: ignore[arg-type]
            _ = venv.env_class, venv.spec
        except (KeyError, ValueError, SyntaxError, ImportError, ValidationError) as exc:
            errors.append(
                {
                    "env_id": env_id,
                    "stage": "trajectories",
                    "reason": f"environment {env_id} does not load: {exc}"[:1000],
                }
            )
            continue
        loaded[env_id] = venv
    return loaded, errors


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


def _snapshot(env: Environment) -> dict[str, Any]:
    # rows are never mutated in place (contract), so a one-level copy is a faithful "before"
    return {k: v.copy() if isinstance(v, dict) else v for k, v in env.state.items()}


def _path_values(output: Any, path: str) -> list[tuple[str, Any]]:
    """(concrete path, value) pairs at a flattened output path (`a.b`, `a[].b`, `a`)."""
    if "[]." in path:
        prop, field = path.split("[].", 1)
        items = output.get(prop) if isinstance(output, dict) else None
        return [
            (f"{prop}[{n}].{field}", item.get(field))
            for n, item in enumerate(items or [])
            if isinstance(item, dict)
        ]
    if "." in path:
        prop, field = path.split(".", 1)
        obj = output.get(prop) if isinstance(output, dict) else None
        return [(path, obj.get(field))] if isinstance(obj, dict) else []
    return [(path, output.get(path))] if isinstance(output, dict) else []


class _ChainRunner:
    """Executes one chain; holds the per-chain random generator and the instances."""

    def __init__(self, executor: ChainExecutor, chain: Chain, rng: random.Random) -> None:
        self.x, self.chain, self.rng = executor, chain, rng
        self.instances: dict[str, Environment] = {}
        self.records: list[tuple[int, int, str, dict[str, Any]]] = []  # (turn, call, tool_id, output)

    # -- arguments ------------------------------------------------------------------------
    def _existing_tier(self, value: Any, tool: ToolSpec, spec: EnvSpec, param: str, env: Environment) -> int:
        """2: the row exists (and meets the transition precondition), 1: no check applies, 0: missing.
        An array of ids ranks as its weakest element."""
        if isinstance(value, list):
            return min((self._existing_tier(v, tool, spec, param, env) for v in value), default=0)
        entity = next((e for e in spec.entities if e.name == tool.entity), None)
        binding = tool.param_fields.get(param)
        if entity is None or binding is None or tool.action == "create":
            return 1
        if binding == entity.key_field:
            row = env.state.get(entity.collection, {}).get(value) if isinstance(value, str | int) else None
            if row is None:
                return 0
            if (
                tool.transition
                and tool.transition.from_values
                and row.get(tool.transition.field) not in tool.transition.from_values
            ):
                return 1
            return 2
        bound = next((f for f in entity.fields if f.name == binding), None)
        target = next((e for e in spec.entities if bound is not None and e.name == bound.ref_entity), None)
        if target is not None:
            return 2 if isinstance(value, str | int) and value in env.state.get(target.collection, {}) else 0
        return 1

    def _from_outputs(
        self, input_id: str, tool: ToolSpec, spec: EnvSpec, env: Environment, schema: dict[str, Any]
    ) -> tuple[Any, ArgumentSource] | None:
        candidates: list[tuple[int, float, int, str, Any, int, int]] = []
        param = self.x.graph.node(input_id)["name"]
        validate = self.x.validator(schema)
        as_array = json_type(schema) == "array"
        for output_id, score in self.x.graph.input_feeds.get(input_id, ()):
            producer, path = output_id.split("::out::", 1)
            for order, (turn, call, tool_id, output) in enumerate(self.records):
                if tool_id != producer:
                    continue
                for concrete, value in _path_values(output, path):
                    if as_array and value is not None and not isinstance(value, list):
                        value = [value]  # a list element's id feeding an array of ids
                    if value is None or not validate(value):
                        continue
                    tier = self._existing_tier(value, tool, spec, param, env)
                    candidates.append((tier, score, order, concrete, value, turn, call))
        if not candidates:
            return None
        best = max((c[0], c[1], c[2]) for c in candidates)
        pick = self.rng.choice([c for c in candidates if (c[0], c[1], c[2]) == best])
        _, _, _, concrete, value, turn, call = pick
        return value, ArgumentSource(kind="output", turn=turn, call=call, path=concrete)

    def _row_value(
        self, spec: EnvSpec, tool: ToolSpec, param: str, env: Environment
    ) -> tuple[Any, ArgumentSource] | None:
        """A value of an existing row a user would know (for lookups, filters and searches)."""
        entity = next((e for e in spec.entities if e.name == tool.entity), None)
        if entity is None:
            return None
        table = env.state.get(entity.collection) or {}
        if not table:
            return None
        key = self.rng.choice(sorted(table))
        row = table[key]
        binding = tool.param_fields.get(param, "")
        if binding == "$query":
            texts = [
                f
                for f in entity.fields
                if f.type == "string"
                and f.name != entity.key_field
                and not f.ref_entity
                and (f.format or "") not in _TEXT_SKIP_FORMATS
                and not f.enum
                and not f.pattern
                and isinstance(row.get(f.name), str)
                and any(len(w) >= 4 for w in row[f.name].split())
            ]
            if not texts:
                return None
            f = texts[0] if any(t.name in ("name", "title") for t in texts[:1]) else self.rng.choice(texts)
            word = self.rng.choice(
                [w.strip(".,;:!?\"'()") for w in row[f.name].split() if len(w.strip(".,;:!?\"'()")) >= 4]
                or [row[f.name]]
            )
            return word, ArgumentSource(
                kind="state", collection=entity.collection, key=str(key), field=f.name
            )
        if binding in row and row[binding] is not None:
            return row[binding], ArgumentSource(
                kind="state", collection=entity.collection, key=str(key), field=binding
            )
        return None

    def _state_key(self, collection: str, env: Environment) -> tuple[Any, ArgumentSource] | None:
        """The key of an existing row: the working context (a plan, a workspace) the user names."""
        table = env.state.get(collection) or {}
        if not table:
            return None
        key = self.rng.choice(sorted(table))
        return key, ArgumentSource(kind="state", collection=collection, key=str(key))

    def _fresh_value(
        self, spec: EnvSpec, tool: ToolSpec, param: str, schema: dict[str, Any]
    ) -> tuple[Any, ArgumentSource]:
        """A new value the user states (a title for a new row, a new price...)."""
        entity = next((e for e in spec.entities if e.name == tool.entity), None)
        binding = tool.param_fields.get(param)
        bound = next((f for f in entity.fields if f.name == binding), None) if entity and binding else None
        field = bound or FieldSpec(
            name=param,
            type=json_type(schema)
            if json_type(schema) in ("string", "integer", "number", "boolean", "array", "object")
            else "string",  # type: ignore[arg-type]
            format=schema.get("format"),
            enum=schema.get("enum"),
            minimum=schema.get("minimum"),
            maximum=schema.get("maximum"),
            max_length=schema.get("maxLength"),
            pattern=schema.get("pattern"),
            item_type=(schema.get("items") or {}).get("type")
            if isinstance(schema.get("items"), dict)
            else None,
        )
        value = field_value(field, self.x.faker, self.rng, self.x.clock(spec), self.rng.randint(0, 49))
        if not self.x.validator(schema)(value):
            value = schema_value(schema, spec.clock)
        return value, ArgumentSource(kind="user")

    def bind(
        self, tool_id: str, spec: EnvSpec, tool: ToolSpec, env: Environment
    ) -> tuple[dict[str, Any], dict[str, ArgumentSource]]:
        arguments: dict[str, Any] = {}
        sources: dict[str, ArgumentSource] = {}
        properties = tool.input_schema.get("properties") or {}
        for input_id in self.x.graph.tool_inputs[tool_id]:
            attrs = self.x.graph.node(input_id)
            param, required, user = attrs["name"], attrs["required"], attrs["user_provided"]
            schema = properties.get(param) or {}
            binding = tool.param_fields.get(param, "")
            bound: tuple[Any, ArgumentSource] | None = None
            if not user:
                if required or self.rng.random() < self.x.p_optional_output:
                    bound = self._from_outputs(input_id, tool, spec, env, schema)
                scope = self.x.graph.from_state(input_id)
                if bound is None and required and scope:
                    bound = self._state_key(scope, env)
                if bound is None and required:
                    if binding.startswith("$"):
                        bound = schema_value(schema, spec.clock), ArgumentSource(kind="user")
                    else:
                        raise ChainRejected(
                            "unbound_input", f"{tool_id}: no earlier output supplies required input {param!r}"
                        )
            elif required or (not binding.startswith("$") and self.rng.random() < self.x.p_optional_user):
                if tool.action in ("create", "update") or (
                    binding not in ("$query",) and tool.action in ("custom", "transition")
                ):
                    bound = self._fresh_value(spec, tool, param, schema)
                else:
                    bound = self._row_value(spec, tool, param, env) or (
                        self._fresh_value(spec, tool, param, schema) if required else None
                    )
            if bound is not None:
                value, source = bound
                if not self.x.validator(schema)(value):
                    if not required:
                        continue
                    raise ChainRejected(
                        "unbound_input", f"{tool_id}: no valid value for required input {param!r} ({value!r})"
                    )
                arguments[param], sources[param] = value, source
        return arguments, sources

    def _ref_hint(self, sources: dict[str, ArgumentSource]) -> str:
        """`with name "X"` for a value taken from one element of a list output, so the user can
        say which row they mean; "" when the value came from a single object."""
        for source in sources.values():
            if source.kind != "output" or source.path is None or "[" not in source.path:
                continue
            prop, _, rest = source.path.partition("[")
            element = next(o for t, c, _, o in self.records if (t, c) == (source.turn, source.call))[prop][
                int(rest.split("]", 1)[0])
            ]
            for name in (
                "name",
                "title",
                "display_name",
                "full_name",
                "email",
                "subject",
                "summary",
                "label",
                "code",
            ):
                value = element.get(name)
                if isinstance(value, str) and 0 < len(value) <= 80:
                    return f'with {" ".join(words(name))} "{value}"'
            for name, value in sorted(element.items()):
                if (
                    isinstance(value, str)
                    and 3 <= len(value) <= 60
                    and words(name)[-1:] not in (["id"], ["at"])
                    and "T" not in value[10:11]
                ):
                    return f'with {" ".join(words(name))} "{value}"'
        return ""

    # -- execution -------------------------------------------------------------------------
    def run(self) -> Trajectory:
        chain, x = self.chain, self.x
        state_seed = x.state_seeds[self.rng.randrange(len(x.state_seeds))]
        missing = [e for e in chain.env_ids if e not in x.envs]
        if missing:
            raise ChainRejected("missing_env", f"environment(s) {', '.join(missing)} not loaded")
        envs = [x.envs[e] for e in chain.env_ids]
        initial = {world: x.initial_state(world, state_seed) for world in world_ids(envs)}
        # environments of one world share one state object (Toolset), so writes are seen across them
        self.instances = Toolset.from_snapshots(envs, initial).instances
        turns: list[Turn] = []
        vendor_of = {e: x.envs[e].spec.service or x.envs[e].spec.title.split(" — ")[0] for e in chain.env_ids}
        multi_env = len(initial) > 1
        for turn_index, call_indices in enumerate(chain.turns):
            calls: list[GoldCall] = []
            hints: list[str] = []
            tools: list[ToolSpec] = []
            specs: list[EnvSpec] = []
            for call_index, position in enumerate(call_indices):
                tool_id = chain.tools[position]
                env_id, _, name = tool_id.partition("::")
                spec = x.envs[env_id].spec
                tool = x.tool_spec(env_id, name)
                env = self.instances[env_id]
                arguments, sources = self.bind(tool_id, spec, tool, env)
                before = _snapshot(env)
                try:
                    output = env.call(name, arguments)
                except ToolError as exc:
                    raise ChainRejected(
                        f"tool_error:{exc.code}",
                        f"turn {turn_index} call {call_index} {tool_id}: {exc.code}: {exc.message}",
                    ) from None
                output = json.loads(canonical_json(output))
                masked = [
                    p
                    for p in arguments
                    if tool.param_fields.get(p, "").startswith("$") and tool.param_fields[p] != "$query"
                ]
                calls.append(
                    GoldCall(
                        env_id=env_id,
                        tool=name,
                        arguments=arguments,
                        output=output,
                        argument_sources=sources,
                        masked_arguments=masked,
                        state_diff=state_diff(before, env.state),
                    )
                )
                hints.append(self._ref_hint(sources))
                self.records.append((turn_index, call_index, tool_id, output))
                tools.append(tool)
                specs.append(spec)
            vendors = [vendor_of[c.env_id] if multi_env else None for c in calls]
            query = render_turn_query(
                calls, tools, specs, self.rng, turn=turn_index, vendors=vendors, ref_hints=hints
            )
            turns.append(Turn(index=turn_index, query=query, calls=calls))
        # the instances end here, so a one-level copy of their state is independent enough
        final = {x.envs[e].world_id: _snapshot(inst) for e, inst in self.instances.items()}
        call_list = [[c.env_id, c.tool, c.arguments] for t in turns for c in t.calls]
        tid = content_id({"env_ids": chain.env_ids, "initial_states": initial, "calls": call_list}, "traj_")
        return Trajectory(
            id=tid,
            domain=chain.domain,
            chain_id=chain.id,
            seed=chain.seed,
            env_ids=chain.env_ids,
            env_worlds={e: x.envs[e].world_id for e in chain.env_ids},
            initial_states=initial,
            turns=turns,
            final_states=final,
            backend="template",
        )


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
    ) -> None:
        self.envs, self.graph, self.seed = envs, graph, seed
        self.state_seeds = [chain_seed(seed, 1_000_000 + k) for k in range(max(1, state_pool_size))]
        self.p_optional_output, self.p_optional_user = p_optional_output, p_optional_user
        self.faker = Faker("en_US")
        self._states: dict[tuple[str, int], dict[str, Any]] = {}
        self._validators: dict[str, Any] = {}
        self._tools = {(e, t.name): t for e, v in envs.items() for t in v.spec.tools}
        self.worlds: dict[str, list[VerifiedEnvironment]] = {}
        for env in envs.values():
            self.worlds.setdefault(env.world_id, []).append(env)
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


def trajectory_row(trajectory: Trajectory, chain: Chain | None = None) -> dict[str, Any]:
    """The `trajectories` row: flat lineage and quality columns beside `trajectory_json`."""
    tool_names = {c.tool for t in trajectory.turns for c in t.calls}
    param_names = {p for t in trajectory.turns for c in t.calls for p in c.arguments}
    return {
        "id": trajectory.id,
        "domain": trajectory.domain,
        "chain_id": trajectory.chain_id,
        "seed": trajectory.seed,
        "env_ids": trajectory.env_ids,
        "sampler": chain.sampler if chain else None,
        "backend": trajectory.backend,
        "model": trajectory.model,
        "prompt_version": trajectory.prompt_version,
        "turn_count": len(trajectory.turns),
        "call_count": sum(len(t.calls) for t in trajectory.turns),
        "env_count": len(trajectory.env_ids),
        "query_leaks_tool_name": any(
            query_leaks_tool_name(t.query, tool_names, param_names) for t in trajectory.turns
        ),
        "missing_user_values": sum(len(missing_user_values(t.query, t.calls)) for t in trajectory.turns),
        "calls_signature": exact_duplicate_key(trajectory),
        "trajectory_json": trajectory.model_dump_json(),
    }


def exact_duplicate_key(trajectory: Trajectory) -> str:
    """Hash of the calls with their arguments (environment, tool, arguments, in order)."""
    return content_id([[c.env_id, c.tool, c.arguments] for t in trajectory.turns for c in t.calls], "calls_")


def execute_chains(
    chains: Sequence[Chain | Mapping[str, Any]],
    envs: Sequence[VerifiedEnvironment | Mapping[str, Any]],
    *,
    seed: int,
    graph: ToolGraph | None = None,
    state_pool_size: int = 4,
    attempts: int = 3,
    p_optional_output: float = 0.5,
    p_optional_user: float = 0.15,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Execute chains into trajectory rows; (rows, rejected rows with reasons, metrics).

    `chains`: `Chain` models or `tool_chains` rows; `envs`: `verified_envs` rows or loaded
    environments; `graph`: the `ToolGraph` the chains were sampled from (built from `envs` when
    omitted). A chain whose execution is rejected is retried up to `attempts` times with other
    seeded choices (initial state from the pool, argument values); the first reason is kept.
    Invalid chains, failing calls and exact duplicates (same calls, same arguments)
    become rejected rows, counted by kind in the metrics.
    """
    loaded, errors = load_envs(envs)
    graph = graph or build_tool_graph(list(loaded.values()))
    executor = ChainExecutor(
        loaded,
        graph,
        seed=seed,
        state_pool_size=state_pool_size,
        p_optional_output=p_optional_output,
        p_optional_user=p_optional_user,
    )
    rows: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = list(errors)
    kinds: Counter[str] = Counter()
    for raw in chains:
        chain = (
            raw
            if isinstance(raw, Chain)
            else Chain.model_validate({k: raw[k] for k in Chain.model_fields if k in raw})
        )
        base = {"chain_id": chain.id, "domain": chain.domain, "seed": chain.seed, "stage": "trajectories"}
        if not chain.valid:
            kinds["invalid_chain"] += 1
            rejected.append(
                {
                    **base,
                    "kind": "invalid_chain",
                    "reason": f"chain {chain.id} is not valid: {'; '.join(chain.problems)}",
                }
            )
            continue
        try:
            trajectory = executor.execute(chain, attempts)
        except ChainRejected as exc:
            kinds[exc.kind] += 1
            rejected.append({**base, "kind": exc.kind, "reason": f"chain {chain.id}: {exc.reason}"})
            continue
        row = trajectory_row(trajectory, chain)
        if row[
            "query_leaks_tool_name"
        ]:  # the template hit a name (e.g. a one-word tool name): drop, never keep
            kinds["query_leak"] += 1
            rejected.append(
                {
                    **base,
                    "kind": "query_leak",
                    "reason": f"chain {chain.id}: a query names a tool or parameter",
                }
            )
            continue
        rows.append(row)
    rows, duplicates = drop_exact_duplicates(rows)
    kinds["exact_duplicate"] += len(duplicates)
    rejected += duplicates
    calls = [r["call_count"] for r in rows]
    metrics = {
        "chains": len(chains),
        "trajectories": len(rows),
        "rejected": sum(kinds.values()),
        "rejected_by_kind": dict(sorted(kinds.items())),
        "env_load_errors": len(errors),
        "multi_env_share": round(sum(r["env_count"] > 1 for r in rows) / len(rows), 4) if rows else 0.0,
        "median_calls": statistics.median(calls) if calls else 0,
        "multi_turn_share": round(sum(r["turn_count"] >= 2 for r in rows) / len(rows), 4) if rows else 0.0,
        "calls_distribution": dict(sorted(Counter(calls).items())),
        "turns_distribution": dict(sorted(Counter(r["turn_count"] for r in rows).items())),
        "query_leaks": sum(r["query_leaks_tool_name"] for r in rows),
        "missing_user_values": sum(r["missing_user_values"] for r in rows),
    }
    return rows, rejected, metrics


def rewrite_queries_llm(
    rows: list[dict[str, Any]], envs: Mapping[str, VerifiedEnvironment], gateway: Any
) -> tuple[list[dict[str, Any]], list[str]]:
    """LLM backend of the queries: a persona, then each turn's query, for every trajectory row.

    The calls, states and ids stay those of the executed chain; a turn whose LLM query leaks a
    name or misses a user value keeps its template query, and a provider failure keeps the whole
    trajectory's template queries. Returns the rows (rebuilt) and the problems found.
    """
    from envfactory_dagster.llm.errors import BudgetExceeded, LLMOutputError, LLMProviderError

    specs = {env_id: env.spec for env_id, env in envs.items()}
    out, problems = [], []
    for row in rows:
        trajectory = Trajectory.model_validate_json(row["trajectory_json"])
        try:
            updated, found = write_queries_llm(trajectory, gateway, specs)
        except (LLMOutputError, LLMProviderError, BudgetExceeded) as exc:
            problems.append(f"{trajectory.id}: template queries kept ({type(exc).__name__}: {exc})")
            out.append(row)
            continue
        problems += [f"{trajectory.id} {p}" for p in found]
        out.append({**row, **trajectory_row(updated), "sampler": row.get("sampler")})
    return out, problems
