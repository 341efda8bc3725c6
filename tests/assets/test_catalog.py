"""The catalog every asset shows: kinds, owners, tags, documented columns, per-stage code versions
derived from the code that computes the stage."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from assets.catalog import KINDS, compute_function
from envfactory_dagster.catalog.code_versions import reached_modules
from envfactory_dagster.definitions import build_definitions
from tests.conftest import BUNDLED_CATALOG


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dg.Definitions:
    return build_definitions(BUNDLED_CATALOG, str(tmp_path_factory.mktemp("home")))


def materializable(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    return [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.is_materializable]


def stage_versions(defs: dg.Definitions) -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): graph.get(key).code_version
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable
    }


def test_every_asset_has_kinds_owners_tags_and_documented_columns(built: dg.Definitions) -> None:
    graph = built.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        assert set(node.kinds) >= KINDS, key
        assert node.owners and all(o.startswith("team:") for o in node.owners), key
        assert node.tags.get("envfactory/stage") == node.group_name, key
        schema = node.metadata["dagster/column_schema"]
        assert schema.columns and all(c.description and c.type for c in schema.columns), key


def test_one_code_version_per_stage_function(built: dg.Definitions) -> None:
    versions = stage_versions(built)
    by_stage = {a.op.name: {versions[k.to_user_string()] for k in a.keys} for a in materializable(built)}
    assert all(len(v) == 1 for v in by_stage.values())  # a multi-asset's outputs share their stage's
    assert len({next(iter(v)) for v in by_stage.values()}) == len(by_stage)  # distinct per stage


def test_a_module_change_reaches_exactly_the_stages_that_use_it(
    built: dg.Definitions, tmp_path: Path
) -> None:
    reach = {a.op.name: reached_modules(compute_function(a)) for a in materializable(built)}
    users: dict[str, set[str]] = {}
    for stage, modules in reach.items():
        for module in modules:
            users.setdefault(module, set()).add(stage)
    private = sorted(m for m, stages in users.items() if len(stages) == 1)
    shared = max(users, key=lambda m: (len(users[m]) < len(reach), len(users[m]), m))
    assert private and len(users[shared]) > 1
    before = stage_versions(built)
    for module in (private[0], shared):
        changed = build_definitions(
            BUNDLED_CATALOG, str(tmp_path), code_version_overrides={module: "# edited\n"}
        )
        after = stage_versions(changed)
        changed_stages = {
            a.op.name
            for a in materializable(changed)
            for k in a.keys
            if after[k.to_user_string()] != before[k.to_user_string()]
        }
        assert changed_stages == users[module], module
