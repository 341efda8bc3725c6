"""Settings of the LLM layer: which model plays which role, and the limits every call obeys."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

CACHE_SUBDIR = "llm_cache"
LOCAL_FALLBACK_HOME = "~/.envfactory"

ROLES = (
    "proposer",
    "coder",
    "tester",
    "reviser",
    "query_writer",
    "refiner",
    "solver",
    "judge",
    "user_simulator",
    "embedder",
    "linker",
)


class LLMSettings(BaseModel):
    """Everything the gateway needs; the Dagster resource builds one from its config.

    A role missing from `models` falls back to `default_model`; with neither, the role is not
    configured and stages use their deterministic `template` backend (the layer never fakes).
    """

    model_config = ConfigDict(extra="forbid")

    models: dict[str, str] = Field(default_factory=dict)  # role -> litellm model string
    default_model: str | None = None
    api_base: str | None = None  # e.g. http://localhost:8000/v1 for vLLM, http://localhost:11434 for Ollama
    api_bases: dict[str, str] = Field(default_factory=dict)  # role -> api_base, overrides api_base
    api_key_env: str | None = None  # name of the environment variable holding the key, never the key
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 2048
    max_concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0)  # retries after the first attempt, on 429/5xx/timeouts
    retry_base_s: float = Field(default=1.0, gt=0)  # first backoff; doubles per retry, with full jitter
    retry_max_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    repair_retries: int = Field(default=1, ge=0)  # extra calls that send the validation error back
    budget_usd: float | None = Field(default=None, ge=0)
    budget_tokens: int | None = Field(default=None, ge=0)
    cache_dir: Path

    @field_validator("models", "api_bases")
    @classmethod
    def _known_roles(cls, per_role: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(per_role) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown LLM roles {unknown}; known roles: {list(ROLES)}")
        return {role: value for role, value in per_role.items() if value}  # "" = not configured


def cache_dir_for_home(home: str) -> Path:
    """The response cache under the data directory; for an object-store home it stays local
    (one small file per answer: a local disk keeps lookups in microseconds)."""
    base = LOCAL_FALLBACK_HOME if "://" in home else home
    return Path(base).expanduser() / CACHE_SUBDIR
