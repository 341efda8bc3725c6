"""Where data lives: the data directory, the DuckDB catalog, the resource catalog.

`$ENVFACTORY_HOME` (default `~/.envfactory`) is read only by entry points (the CLI and the
code location's resource config via `EnvVar`); core functions take paths as parameters.
"""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV_VAR = "ENVFACTORY_HOME"
RESOURCES_DIR_ENV_VAR = "ENVFACTORY_RESOURCES_DIR"
LLM_MODEL_ENV_VAR = "ENVFACTORY_LLM_MODEL"  # set: the LLM backend for every role
LLM_API_BASE_ENV_VAR = "ENVFACTORY_LLM_API_BASE"  # an OpenAI-compatible endpoint (vLLM, Ollama)
GOLD_FLOWS_ENV_VAR = "ENVFACTORY_GOLD_FLOWS"  # gold call-sequence files, separated by os.pathsep
DEFAULT_HOME = "~/.envfactory"
BUNDLED_RESOURCES_DIR = Path(__file__).resolve().parent / "resource_catalog"


def envfactory_home(environ: dict[str, str] | None = None) -> str:
    """The data directory: a local path or an fsspec URL (e.g. `s3://bucket/envfactory`)."""
    value = (environ if environ is not None else os.environ).get(HOME_ENV_VAR) or DEFAULT_HOME
    return value if "://" in value else str(Path(value).expanduser().resolve())


def resources_dir(environ: dict[str, str] | None = None) -> Path:
    """The resource catalog to ingest: `$ENVFACTORY_RESOURCES_DIR` or the bundled one."""
    value = (environ if environ is not None else os.environ).get(RESOURCES_DIR_ENV_VAR)
    return Path(value).expanduser().resolve() if value else BUNDLED_RESOURCES_DIR


def catalog_path(home: str) -> str:
    """The DuckDB catalog file. For an object-store home it is a local file per home URL
    (`~/.envfactory/remote/<scheme>/<bucket>/<prefix>/catalog.duckdb`): DuckDB needs a file, and
    the catalog holds only views over the home's URLs."""
    if "://" in home:
        scheme, rest = home.split("://", 1)
        return str(Path(DEFAULT_HOME).expanduser() / "remote" / scheme / rest.strip("/") / "catalog.duckdb")
    return str(Path(home) / "catalog.duckdb")


def gold_flow_files(environ: dict[str, str] | None = None) -> list[str]:
    """Gold call-sequence files the graph is scored against: `$ENVFACTORY_GOLD_FLOWS` (paths
    separated by `os.pathsep`), none by default."""
    value = (environ if environ is not None else os.environ).get(GOLD_FLOWS_ENV_VAR) or ""
    return [str(Path(p).expanduser().resolve()) for p in value.split(os.pathsep) if p.strip()]
