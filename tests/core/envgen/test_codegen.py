"""Generated modules import, every tool runs on seeded state, and state round-trips exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from test_proposals import resource_row, shop_spec
from test_spec_inference import REALWORLD

from envfactory_dagster.envgen.codegen import generate_module
from envfactory_dagster.envgen.env_spec import EnvSpec, ToolSpec
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.seed_data import generate_state
from envfactory_dagster.envgen.spec_inference import build_env_spec
from envfactory_dagster.envgen.test_generation import schema_value
from envfactory_dagster.ingest.authentic_resources import default_resources_dir, ingest_domain, list_domains
from envfactory_dagster.ingest.normalized_spec import NormalizedSpec
from envfactory_dagster.lineage import sha256_hex
from envfactory_dagster.runtime.contract import Environment, ToolError
from envfactory_dagster.runtime.loader import load_environment_class

FORMATS = jsonschema.Draft7Validator.FORMAT_CHECKER


def load(spec: EnvSpec) -> type[Environment]:
    source = generate_module(spec)
    return load_environment_class(source, sha256_hex(source), spec.class_name)


def env_specs_of(resources_dir: Path) -> list[EnvSpec]:
    envs = []
    for domain in list_domains(resources_dir):
        result = ingest_domain(resources_dir, domain)
        specs = {r["id"]: NormalizedSpec.model_validate_json(r["spec_json"]) for r in result.resources}
        proposals, _, _ = propose_environments(result.resources)
        envs += [build_env_spec(p, specs) for p in proposals]
    return envs


def shop_envs() -> list[EnvSpec]:
    spec = shop_spec()
    proposals, _, _ = propose_environments([resource_row("res_shop", "commerce", spec)])
    return [build_env_spec(p, {"res_shop": spec}) for p in proposals]


def valid_arguments(spec: EnvSpec, tool: ToolSpec, state: dict[str, Any]) -> dict[str, Any]:
    """Required arguments plus bound optional ones; keys and foreign keys point at seeded rows,
    and a transition picks a row in an allowed status."""
    entities = {e.name: e for e in spec.entities}
    entity = entities[tool.entity] if tool.entity else None
    args: dict[str, Any] = {}
    required = set(tool.input_schema.get("required", []))
    for name, schema in tool.input_schema["properties"].items():
        field = tool.param_fields.get(name)
        if name not in required and field is None:
            continue
        target = None
        if entity is not None and field == entity.key_field and tool.action != "create":
            target = entity
        elif entity is not None and field is not None:
            ref = next((f.ref_entity for f in entity.fields if f.name == field), None)
            target = entities.get(ref or "")
        if target is not None and state[target.collection]:
            rows = state[target.collection]
            keys = sorted(rows)
            if tool.transition is not None and target is entity and tool.transition.from_values:
                keys = [
                    k for k in keys if rows[k][tool.transition.field] in tool.transition.from_values
                ] or keys
            args[name] = keys[0]
        elif field == "$query":
            args[name] = "a"
        else:
            args[name] = schema_value(schema, spec.clock)
    return args


def exercise(spec: EnvSpec, seed: int = 3) -> int:
    """Call every tool once on a fresh instance; returns how many calls a ToolError refused."""
    env_class = load(spec)
    state = generate_state(spec, seed)
    refused = 0
    for tool in spec.tools:
        env = env_class(state)
        before = env.dump_state()
        try:
            out = env.call(tool.name, valid_arguments(spec, tool, state))
        except ToolError:
            refused += 1
            assert env.dump_state() == before, f"{tool.name}: a refused call changed the state"
            continue
        jsonschema.Draft7Validator(tool.output_schema, format_checker=FORMATS).validate(out)
        after = env.dump_state()
        assert env_class(after).dump_state() == after, (
            f"{tool.name}: state does not round-trip after the call"
        )
        if tool.kind == "read":
            assert after == before, f"{tool.name}: a read tool changed the state"
    return refused


def test_generated_module_imports_and_runs_every_tool() -> None:
    for spec in shop_envs():
        assert exercise(spec) == 0, spec.class_name


def test_generated_code_enforces_preconditions() -> None:
    spec = next(s for s in shop_envs() if s.class_name == "AcmeOrders")
    env = load(spec)(generate_state(spec, 5))
    with pytest.raises(ToolError) as missing:
        env.call("get_order", {"order_id": "ord_9999"})
    assert missing.value.code == "not_found"
    with pytest.raises(ToolError) as bad_fk:
        env.call("create_order", {"customer_id": "cus_9999", "total": 3})
    assert bad_fk.value.code == "not_found"
    customer = sorted(env.dump_state()["customers"])[0]
    created = env.call("create_order", {"customer_id": customer, "total": 3})["order"]
    assert created["id"] == "ord_0013" and created["status"] == "pending" and created["total"] == 3.0
    assert env.call("cancel_order", {"order_id": created["id"]})["order"]["status"] == "cancelled"
    with pytest.raises(ToolError) as twice:
        env.call("cancel_order", {"order_id": created["id"]})
    assert twice.value.code == "invalid_state"
    with pytest.raises(ToolError) as bad_args:
        env.call("get_order", {"order_id": "x", "extra": 1})
    assert bad_args.value.code == "invalid_arguments"
    assert env.call("delete_order", {"order_id": created["id"]}) == {"deleted": True, "id": created["id"]}


def test_same_spec_gives_byte_identical_source() -> None:
    first = [generate_module(s) for s in shop_envs()]
    second = [generate_module(s) for s in shop_envs()]
    assert first == second
    assert first[0].rstrip().endswith("ENVIRONMENT_CLASS = AcmeOrders")
    assert "import os" not in first[0] and "datetime" not in first[0] and "random" not in first[0]


@pytest.mark.skipif(not REALWORLD.is_dir(), reason=f"no real-world resources at {REALWORLD}")
def test_every_realworld_environment_runs() -> None:
    specs = env_specs_of(REALWORLD)
    assert len(specs) >= 10
    for spec in specs:
        exercise(spec)


def test_every_catalog_environment_runs() -> None:
    specs = env_specs_of(default_resources_dir())
    for spec in specs:
        exercise(spec)
        assert any(t.kind == "write" for t in spec.tools), f"{spec.class_name} has no write tool"
