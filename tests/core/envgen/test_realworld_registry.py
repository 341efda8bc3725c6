"""Every third-party file in ../shared/realworld yields at least one verified environment."""

from __future__ import annotations

import pytest

from envfactory_dagster.envgen.proposals import propose_environments
from envfactory_dagster.envgen.stages import (
    env_code_rows,
    env_spec_rows,
    env_verification_rows,
    verified_env_rows,
)
from envfactory_dagster.ingest.authentic_resources import ingest_domain, list_domains
from tests.conftest import REALWORLD

pytestmark = pytest.mark.skipif(not REALWORLD.is_dir(), reason="needs ../shared/realworld")


def test_every_realworld_file_yields_a_verified_environment() -> None:
    covered: dict[str, int] = {}
    for domain in list_domains(REALWORLD):
        ingested = ingest_domain(REALWORLD, domain)
        assert not ingested.errors, ingested.errors
        proposals, _, _ = propose_environments(ingested.resources)
        specs, _, _ = env_spec_rows(proposals, ingested.resources)
        codes, _, _ = env_code_rows(specs, base_seed=0)
        verifications, _ = env_verification_rows(codes, specs)
        failed = {v["class_name"]: v["failures_json"] for v in verifications if not v["passed"]}
        assert not failed, failed  # e.g. an update test must keep a path-scope reference its own
        registry, _ = verified_env_rows(verifications, codes, specs)
        for resource in ingested.resources:
            covered[resource["source_path"]] = sum(resource["id"] in env["resource_ids"] for env in registry)
    files = sorted(p.relative_to(REALWORLD).as_posix() for p in REALWORLD.glob("*/*") if p.is_file())
    assert sorted(covered) == files
    assert all(count >= 1 for count in covered.values()), covered
