"""The LLM layer as a Dagster resource: config mirrors `LLMSettings`; `gateway()` builds the core gateway.

Concurrency across runs: every asset that calls an LLM declares `@dg.asset(pool=LLM_POOL)`, and
the pool's limit is set once per Dagster instance, so parallel runs and partitions share one
provider limit:

    dagster instance concurrency set llm 4        # or in dagster.yaml: concurrency: pools: ...

Inside one step, `max_concurrency` bounds the calls in flight. Secrets never enter config:
`api_key_env` names the environment variable that holds the key (litellm also reads the usual
provider variables such as OPENAI_API_KEY itself); `api_base` may be given as
`dg.EnvVar("ENVFACTORY_LLM_API_BASE")`.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from envfactory_dagster.llm.config import ROLES, LLMSettings
from envfactory_dagster.llm.gateway import LLMGateway

LLM_POOL = "llm"


class LLMResource(dg.ConfigurableResource):
    """Which model plays each role, where it is served, and the limits of every LLM call."""

    models: dict[str, str] = Field(
        default={},
        description=(
            f"Role -> litellm model string. Roles: {', '.join(ROLES)}. A missing role uses default_model."
        ),
    )
    default_model: str | None = Field(
        default=None,
        description="Model for roles not in `models`; none = those roles use the template backend.",
    )
    api_base: str | None = Field(
        default=None, description="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM)."
    )
    api_bases: dict[str, str] = Field(default={}, description="Role -> api_base, overriding api_base.")
    api_key_env: str | None = Field(
        default=None, description="Name of the environment variable holding the API key (not the key)."
    )
    temperature: float = Field(default=0.0)
    seed: int | None = Field(default=0, description="Sampling seed sent to providers that support it.")
    max_tokens: int = Field(default=2048, description="Answer limit of a role without its own.")
    max_tokens_by_role: dict[str, int] = Field(
        default={}, description="Role -> answer limit (coder and reviser default to 4096)."
    )
    context_window_tokens: int = Field(
        default=32768, description="The model's window: prompts are cut to fit it with the answer."
    )
    structured_output: str = Field(
        default="auto",
        description="json_schema (provider-side response_format), prompted (schema in the prompt + "
        "repair) or auto (json_schema where litellm says the model supports it).",
    )
    structured_output_by_role: dict[str, str] = Field(default={}, description="Role -> structured_output.")
    max_concurrency: int = Field(default=8, description="Calls in flight at once within one step.")
    max_retries: int = Field(default=4, description="Retries on 429, 5xx, timeouts.")
    timeout_s: float = Field(default=120.0)
    repair_retries: int = Field(default=1, description="Repair calls for an invalid answer.")
    budget_usd: float | None = Field(default=None, description="Stop starting calls once this is spent.")
    budget_tokens: int | None = Field(default=None, description="Stop starting calls past this many.")

    def settings(self, cache_dir: Path) -> LLMSettings:
        return LLMSettings(
            models=self.models,
            default_model=self.default_model,
            api_base=self.api_base,
            api_bases=self.api_bases,
            api_key_env=self.api_key_env,
            temperature=self.temperature,
            seed=self.seed,
            max_tokens=self.max_tokens,
            max_tokens_by_role=self.max_tokens_by_role,
            context_window_tokens=self.context_window_tokens,
            structured_output=self.structured_output,
            structured_output_by_role=self.structured_output_by_role,
            max_concurrency=self.max_concurrency,
            max_retries=self.max_retries,
            timeout_s=self.timeout_s,
            repair_retries=self.repair_retries,
            budget_usd=self.budget_usd,
            budget_tokens=self.budget_tokens,
            cache_dir=cache_dir,
        )

    def gateway(self, cache_dir: Path) -> LLMGateway:
        """A fresh gateway (its own usage totals and budget) over the shared response cache."""
        return LLMGateway(self.settings(Path(cache_dir)))
