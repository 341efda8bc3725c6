"""The error vocabulary of the LLM layer: exceptions for one call, a record for a failed batch item."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class LLMNotConfigured(Exception):
    """No model is configured for a role; the stage should use its `template` backend."""

    def __init__(self, role: str) -> None:
        super().__init__(
            f"no LLM configured for role {role!r}: set models[{role!r}] or default_model "
            "(or run the stage with its template backend)"
        )
        self.role = role


class LLMOutputError(Exception):
    """The model's answer did not validate, even after the repair retries."""

    def __init__(self, *, stage: str, model: str, prompt_name: str, problem: str) -> None:
        super().__init__(
            f"stage {stage!r}, model {model!r}, prompt {prompt_name!r}: invalid output: {problem}"
        )
        self.stage = stage
        self.model = model
        self.prompt_name = prompt_name
        self.problem = problem


class LLMProviderError(Exception):
    """The provider kept failing (429/5xx/timeouts past the retry limit) or refused the request."""

    def __init__(self, *, stage: str, model: str, attempts: int, cause: BaseException) -> None:
        super().__init__(
            f"stage {stage!r}, model {model!r}: provider call failed after {attempts} attempt(s): "
            f"{type(cause).__name__}: {cause}"
        )
        self.stage = stage
        self.model = model
        self.attempts = attempts


class BudgetExceeded(Exception):
    """The run budget (tokens and/or USD) is spent: no new provider calls start."""


class LLMCallError(BaseModel):
    """One batch item that produced no result, with the reason; a row for the error side table."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    role: str
    prompt_name: str
    reason: str
    kind: str  # "budget_exceeded", "invalid_output", "provider_error", "not_configured", "bad_request"
    index: int  # position of the request in the batch
