"""Property: every seeded value honours every constraint its field keeps, in every document of the
bundled catalog, ../shared/realworld and ../shared/realworld2.

For each domain: ingest -> proposals -> specs -> seed state per world -> each row of each entity
against the field's JSON Schema (type, enum, minimum/maximum, pattern, maxLength, format with a
format checker), each foreign-key value against the rows of the table it names, and the whole state
against the generated module's Pydantic models (what `load_state` enforces).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from envfactory_dagster.envgen.env_spec import EnvSpec
from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.spec_inference import row_schema
from envfactory_dagster.envgen.stages import env_code_rows, env_spec_rows
from envfactory_dagster.ingest.authentic_resources import ingest_domain, list_domains
from envfactory_dagster.runtime.loader import load_environment_class
from tests.conftest import BUNDLED_CATALOG, REALWORLD

REALWORLD2 = REALWORLD.parent / "realworld2"
CATALOGS = {"bundled": BUNDLED_CATALOG, "realworld": REALWORLD, "realworld2": REALWORLD2}


def _violations(catalog: Path) -> tuple[int, list[str]]:
    """(values checked, one line per violated constraint)."""
    checked, problems = 0, []
    for domain in list_domains(catalog):
        resources = ingest_domain(catalog, domain).resources
        proposals, _, _ = propose_environments(resources)
        spec_rows, _, _ = env_spec_rows(proposals, resources)
        code_rows, _, _ = env_code_rows(spec_rows, base_seed=0)
        specs = {r["id"]: EnvSpec.model_validate_json(r["spec_json"]) for r in spec_rows}
        for code in code_rows:
            spec, state = specs[code["env_spec_id"]], json.loads(code["seed_state_json"])
            where = f"{domain}/{spec.class_name}"
            try:
                load_environment_class(code["source"], code["code_sha256"], code["class_name"])(state)
            except Exception as exc:  # the generated models refuse the seed: report, do not stop
                problems.append(f"{where}: the seed does not load: {type(exc).__name__}: {exc}"[:400])
            collections = {e.name: e.collection for e in spec.entities}
            for entity in spec.entities:
                validator = Draft202012Validator(
                    row_schema(entity), format_checker=Draft202012Validator.FORMAT_CHECKER
                )
                foreign = [f for f in entity.fields if f.ref_entity in collections]
                for key, row in state.get(entity.collection, {}).items():
                    checked += len(row)
                    problems += [
                        f"{where}.{entity.name}[{key}].{'/'.join(map(str, e.path))}: {e.message}"[:300]
                        for e in validator.iter_errors(row)
                    ]
                    for f in foreign:
                        value = row.get(f.name)
                        target = state.get(collections[f.ref_entity], {})
                        if value is not None and value not in target:
                            problems.append(f"{where}.{entity.name}[{key}].{f.name}={value!r}: no such row")
    return checked, problems


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_seeded_value_honours_its_fields_constraints(name: str) -> None:
    catalog = CATALOGS[name]
    if not catalog.is_dir():
        pytest.skip(f"{catalog} is not on this machine")
    checked, problems = _violations(catalog)
    assert checked > 1000, "the property ran over real rows"
    assert not problems, "\n".join(problems[:20])
