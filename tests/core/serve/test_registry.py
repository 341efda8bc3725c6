"""Serving reads environments without pandas, pyarrow, Dagster or (given exported files) DuckDB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from envfactory_dagster.serve.registry import environment_file, load_verified_envs
from tests.core.serve.conftest import ENV_ID

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("pandas", "pyarrow", "dagster", "duckdb")

SERVE_PATH = """
import json, sys
from envfactory_dagster.serve.__main__ import main  # noqa: F401  (the CLI module)
from envfactory_dagster.serve.mcp_server import build_mcp_server
from envfactory_dagster.serve.registry import load_verified_envs
from envfactory_dagster.runtime.toolset import Toolset
envs = load_verified_envs(sys.argv[1], [sys.argv[2]])
build_mcp_server(Toolset(list(envs.values())))
print(json.dumps(sorted(m for m in sys.argv[3:] if m in sys.modules)))
"""


def imported_heavy_modules(home: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", SERVE_PATH, home, ENV_ID, *HEAVY],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(completed.stdout.splitlines()[-1])


def test_first_read_uses_the_registry_then_the_exported_file(registry_home: str) -> None:
    assert not environment_file(registry_home, ENV_ID).exists()
    env = load_verified_envs(registry_home, [ENV_ID])[ENV_ID]
    exported = json.loads(environment_file(registry_home, ENV_ID).read_text())
    assert exported["code_sha256"] == env.code_sha256 and exported["source"] == env.source
    # the serving path: only the MCP SDK and pydantic models; no DuckDB once the file exists
    assert imported_heavy_modules(registry_home) == []


def test_serving_path_without_the_file_imports_duckdb_only(registry_home: str) -> None:
    assert imported_heavy_modules(registry_home) == ["duckdb"]


def test_a_missing_environment_is_named(registry_home: str) -> None:
    with pytest.raises(KeyError, match="env_nope"):
        load_verified_envs(registry_home, [ENV_ID, "env_nope"])
