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
    conversational: bool = Field(
        default=False,
        description="SFT conversations where the user leaves out a value only they know, the assistant "
        "asks for it and a user simulator answers (offline: from the persona's values; llm: the "
        "user_simulator role); steps only the user can do (user-only tools) are asked for and run "
        "by the simulated user. Off: exports end before a trajectory's first user-only step.",
    )
    max_resource_bytes: int = Field(
        default=5 * 1024 * 1024,
        description="Larger resource files become `too_large` error rows (raise it for very large specs).",
    )
    require_license: bool = Field(
        default=False,
        description="Make the `license_known` check of `authentic_resources` blocking: a document whose "
        "licence neither it nor a SOURCES.json manifest states then stops its partition. Off: such a "
        "document gets license 'unknown', counted in metadata and reported by a warning check.",
    )
    sandbox_allow_network: bool = Field(
        default=False,
        description="Verify generated code even where no empty network namespace (`unshare --net`) "
        "can be made; off: every module then fails verification with that reason.",
    )
    sandbox_allow_root: bool = Field(
        default=False,
        description="Verify generated code as root where the sandbox cannot drop to `nobody`; off: "
        "such a run fails verification with that reason.",
    )
    gold_flows: list[str] = Field(
        default=[],
        description="Gold call-sequence files (a JSON list of {input, output: [{name, arguments, label}]} "
        "with `$label.field$` references): `tool_graph` reports recall and precision against those "
        "whose operations its domain covers.",
    )
