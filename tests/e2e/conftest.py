"""End-to-end tests are marked `slow` (`pytest -m "not slow"` skips them; plain `pytest` runs all).

`full_run`: the README's main command once per session on the bundled catalog (all 7 domain
partitions), into its own data directory and Dagster instance.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from envfactory_dagster.cli import main

E2E = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("full_run") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENVFACTORY_HOME", str(home))
        patch.delenv("ENVFACTORY_LLM_MODEL", raising=False)
        patch.delenv("ENVFACTORY_RESOURCES_DIR", raising=False)
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))  # restored (unset) afterwards
        exit_code = main(["materialize", "--workers", "2"])
    assert exit_code == 0
    return home
