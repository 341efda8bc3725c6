"""The pipeline settings as Dagster resource config: the UI and the CLI configure the same thing."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field


class EnvFactorySettings(dg.ConfigurableResource):
    """Where data lives, which resource catalog to read, which synthesis backend to use."""

    home: str = Field(description="Data directory ($ENVFACTORY_HOME): local path or fsspec URL.")
    resources_dir: str = Field(description="Resource catalog: one sub-folder per domain partition.")
    backend: Literal["template", "llm"] = Field(
        default="template",
        description="`template` runs offline and deterministic; `llm` uses the LLM resource.",
    )
    seed: int = Field(default=0, description="Base seed of every seeded stage.")
    max_resource_bytes: int = Field(
        default=5 * 1024 * 1024,
        description="Larger resource files become `too_large` error rows (raise it for very large specs).",
    )
    gold_flows: list[str] = Field(
        default=[],
        description="Gold call-sequence files (a JSON list of {input, output: [{name, arguments, label}]} "
        "with `$label.field$` references): `tool_graph` reports recall and precision against those "
        "whose operations its domain covers.",
    )
