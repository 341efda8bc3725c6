"""Shared fixtures: an isolated $ENVFACTORY_HOME and Dagster instance per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REALWORLD = REPO.parent / "shared" / "realworld"
BUNDLED_CATALOG = REPO / "envfactory_dagster" / "resource_catalog"


@pytest.fixture
def envfactory_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ENVFACTORY_HOME", str(home))
    return home
