"""Settings of the LLM layer: which model plays which role, and the limits every call obeys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CACHE_SUBDIR = "llm_cache"
LOCAL_FALLBACK_HOME = "~/.envfactory"

ROLES = (
    "proposer",
    "coder",
    "reviser",
    "query_writer",
    "refiner",
    "solver",
    "judge",
    "user_simulator",
    "embedder",
    "linker",
)

# Answer-length limits where one global limit does not fit: a coder or reviser answer holds several
# tool bodies, a proposer answer up to 20 proposals with their operation ids (a 2048-token cut
# stops either mid-way). `LLMSettings.max_tokens_by_role` overrides.
DEFAULT_MAX_TOKENS_BY_ROLE = {"coder": 4096, "reviser": 4096, "proposer": 4096}

# How a structured answer is asked for: `json_schema` sends litellm's `response_format` (the provider
# constrains decoding); `prompted` only appends the schema to the prompt and repairs a bad answer;
# `auto` uses `json_schema` where litellm's model map says the model supports it.
StructuredOutputMode = Literal["auto", "json_schema", "prompted"]


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
    max_tokens: int = 2048  # answer limit of a role without its own entry in max_tokens_by_role
    max_tokens_by_role: dict[str, int] = Field(default_factory=dict)  # role -> answer limit
    context_window_tokens: int = Field(default=32768, ge=1024)  # prompt + answer must fit in it
    structured_output: StructuredOutputMode = "auto"
    structured_output_by_role: dict[str, StructuredOutputMode] = Field(default_factory=dict)
    max_concurrency: int = Field(default=8, ge=1)
    max_retries: int = Field(default=4, ge=0)  # retries after the first attempt, on 429/5xx/timeouts
    retry_base_s: float = Field(default=1.0, gt=0)  # first backoff; doubles per retry, with full jitter
    retry_max_s: float = Field(default=30.0, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    repair_retries: int = Field(default=1, ge=0)  # extra calls that send the validation error back
    budget_usd: float | None = Field(default=None, ge=0)
    budget_tokens: int | None = Field(default=None, ge=0)
    cache_dir: Path

    @field_validator("models", "api_bases", "max_tokens_by_role", "structured_output_by_role")
    @classmethod
    def _known_roles(cls, per_role: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(per_role) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown LLM roles {unknown}; known roles: {list(ROLES)}")
        return {role: value for role, value in per_role.items() if value}  # "" = not configured

    def max_tokens_for(self, role: str) -> int:
        """The answer limit of `role`: its own setting, else the built-in per-role one, else `max_tokens`."""
        return self.max_tokens_by_role.get(role) or DEFAULT_MAX_TOKENS_BY_ROLE.get(role) or self.max_tokens

    def prompt_budget_tokens(self, role: str) -> int:
        """Tokens a prompt of `role` may take: the context window minus the answer's limit."""
        return max(self.context_window_tokens - self.max_tokens_for(role), 256)


def cache_dir_for_home(home: str) -> Path:
    """The response cache under the data directory; for an object-store home it stays local
    (one small file per answer: a local disk keeps lookups in microseconds)."""
    base = LOCAL_FALLBACK_HOME if "://" in home else home
    return Path(base).expanduser() / CACHE_SUBDIR
