"""One world per service: environments cut from one API share entities, seed state and live state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.stages import env_code_rows, env_spec_rows
from envfactory_dagster.envgen.test_generation import schema_value
from envfactory_dagster.ingest.authentic_resources import ingest_domain
from envfactory_dagster.runtime.contract import ToolError
from envfactory_dagster.runtime.loader import VerifiedEnvironment
from envfactory_dagster.runtime.toolset import Toolset

CATALOG = Path(__file__).resolve().parents[3] / "envfactory_dagster" / "resource_catalog"


@pytest.fixture(scope="module")
def commerce() -> tuple[list[dict], list[dict]]:
    resources = ingest_domain(CATALOG, "commerce").resources
    proposals, _, _ = propose_environments(resources)
    specs, rejects, _ = env_spec_rows(proposals, resources)
    assert not rejects
    codes, rejects, _ = env_code_rows(specs, base_seed=0)
    assert not rejects
    return specs, codes


def _environments(codes: list[dict], specs: list[dict]) -> list[VerifiedEnvironment]:
    spec_json = {s["id"]: s["spec_json"] for s in specs}
    return [
        VerifiedEnvironment(
            env_id=f"env_{c['code_sha256'][:16]}",
            class_name=c["class_name"],
            source=c["source"],
            code_sha256=c["code_sha256"],
            spec_json=spec_json[c["env_spec_id"]],
            seed_state_json=c["seed_state_json"],
        )
        for c in codes
    ]


def test_environments_of_a_service_share_entities_and_seed_state(commerce) -> None:
    specs, codes = commerce
    by_world: dict[str, list[tuple[EnvSpec, dict]]] = {}
    for spec_row, code in zip(specs, codes, strict=True):
        spec = EnvSpec.model_validate_json(spec_row["spec_json"])
        by_world.setdefault(spec.world_id, []).append((spec, code))
    assert len(by_world) == 4, "four documents, four services"
    for members in by_world.values():
        assert len(members) > 1, "each document is cut into several environments"
        entities = {json.dumps([e.model_dump() for e in s.entities], sort_keys=True) for s, _ in members}
        assert len(entities) == 1, "one set of entities per world"
        assert len({c["seed_state_json"] for _, c in members}) == 1, "one seed state per world"
        tools = [t.name for s, _ in members for t in s.tools]
        assert len(tools) == len(set(tools)), "each operation belongs to one environment"


def test_ids_name_one_record_per_service_and_never_collide_across_services(commerce) -> None:
    specs, codes = commerce
    keys_by_world: dict[str, set[str]] = {}
    for spec_row, code in zip(specs, codes, strict=True):
        state = json.loads(code["seed_state_json"])
        keys = {
            k
            for name, table in state.items()
            if name != "counters" and isinstance(table, dict)
            for k in table
        }
        keys_by_world.setdefault(spec_row["world_id"], set()).update(keys)
    worlds = list(keys_by_world)
    for i, first in enumerate(worlds):
        for second in worlds[i + 1 :]:
            assert not keys_by_world[first] & keys_by_world[second], "services share no id string"
    services = {s["service"] for s in specs}
    assert services == {"Shopify", "eBay", "Etsy", "Shippo"}


def _valid_arguments(tool, clock: str, **given) -> dict:
    schema = tool.input_schema
    required = schema.get("required", [])
    return {p: given.get(p, schema_value(schema["properties"][p], clock)) for p in required}


def test_a_row_created_in_one_environment_is_usable_in_another_of_its_world(commerce) -> None:
    specs, codes = commerce
    envs = _environments(codes, specs)
    # a create in one environment; a tool of a sibling environment whose required foreign key
    # points at the created entity (a listing created, then its images listed elsewhere)
    maker, create, user, consumer, param = next(
        (a, ta, b, tb, p)
        for a in envs
        for b in envs
        if a is not b and a.world_id == b.world_id
        for ta in a.spec.tools
        if ta.action == "create"
        for tb in b.spec.tools
        if tb.kind == "read"
        for p, bound in tb.param_fields.items()
        if p in tb.input_schema.get("required", [])
        and any(
            f.name == bound and f.ref_entity == ta.entity
            for e in b.spec.entities
            if e.name == tb.entity
            for f in e.fields
        )
    )
    clock = maker.spec.clock
    toolset = Toolset([maker, user])
    assert len(toolset.worlds) == 1
    created = toolset.call(create.name, _valid_arguments(create, clock))
    new_id = next(iter(created.values()))["id"]
    assert new_id.startswith(f"{maker.spec.service.lower()}_")
    toolset.call(consumer.name, _valid_arguments(consumer, clock, **{param: new_id}))
    # with separate states (two toolsets) the sibling environment would not know the new row
    alone = Toolset([user])
    with pytest.raises(ToolError, match="not_found"):
        alone.call(consumer.name, _valid_arguments(consumer, clock, **{param: new_id}))
