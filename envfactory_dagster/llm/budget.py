"""Usage accounting per call, summed by role and stage, and the run budget that stops new calls."""

from __future__ import annotations

import threading
from collections import defaultdict

from pydantic import BaseModel, ConfigDict, Field

from envfactory_dagster.llm.errors import BudgetExceeded


class UsageTotals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: int = 0  # provider calls that returned (paid for)
    cache_hits: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    cached_cost_usd: float = 0.0  # what the cache hits cost when first bought (saved this time)


class UsageSummary(UsageTotals):
    """What a gateway spent; flat numbers for asset metadata plus breakdowns by role and stage."""

    failed_calls: int = 0  # provider calls that raised after their retries
    unknown_cost_models: list[str] = Field(default_factory=list)  # priced at 0: not in litellm's map
    budget_usd: float | None = None
    budget_tokens: int | None = None
    budget_exceeded: bool = False
    skipped_for_budget: int = 0  # requests not started because the budget was spent
    by_role: dict[str, UsageTotals] = Field(default_factory=dict)
    by_stage: dict[str, UsageTotals] = Field(default_factory=dict)

    def as_metadata(self) -> dict[str, float | int | bool | str]:
        """Flat `llm/...` keys for Dagster asset metadata."""
        return {
            "llm/calls": self.calls,
            "llm/cache_hits": self.cache_hits,
            "llm/tokens_in": self.tokens_in,
            "llm/tokens_out": self.tokens_out,
            "llm/cost_usd": round(self.cost_usd, 6),
            "llm/cached_cost_usd": round(self.cached_cost_usd, 6),
            "llm/failed_calls": self.failed_calls,
            "llm/budget_exceeded": self.budget_exceeded,
            "llm/skipped_for_budget": self.skipped_for_budget,
            "llm/unknown_cost_models": ", ".join(self.unknown_cost_models),
        }


class UsageLedger:
    """Thread-safe running totals of one gateway, and its budget check.

    The check runs before each provider call, so calls already in flight when the budget runs
    out still finish and are kept: the overshoot is at most `max_concurrency` calls.
    """

    def __init__(self, *, budget_usd: float | None, budget_tokens: int | None) -> None:
        self.budget_usd = budget_usd
        self.budget_tokens = budget_tokens
        self._lock = threading.Lock()
        self._total = UsageTotals()
        self._by_role: dict[str, UsageTotals] = defaultdict(UsageTotals)
        self._by_stage: dict[str, UsageTotals] = defaultdict(UsageTotals)
        self._failed_calls = 0
        self._skipped = 0
        self._exceeded = False
        self._unknown_cost_models: set[str] = set()

    def _totals(self, role: str, stage: str) -> tuple[UsageTotals, ...]:
        return (self._total, self._by_role[role], self._by_stage[stage])

    def record_call(
        self,
        *,
        role: str,
        stage: str,
        tokens_in: int,
        tokens_out: int,
        cost_usd: float,
        model: str,
        cost_known: bool,
    ) -> None:
        with self._lock:
            for totals in self._totals(role, stage):
                totals.calls += 1
                totals.tokens_in += tokens_in
                totals.tokens_out += tokens_out
                totals.cost_usd += cost_usd
            if not cost_known:
                self._unknown_cost_models.add(model)

    def record_cache_hit(self, *, role: str, stage: str, cost_usd: float) -> None:
        with self._lock:
            for totals in self._totals(role, stage):
                totals.cache_hits += 1
                totals.cached_cost_usd += cost_usd

    def record_failure(self) -> None:
        with self._lock:
            self._failed_calls += 1

    def record_skip(self) -> None:
        with self._lock:
            self._skipped += 1

    def exhausted_reason(self) -> str | None:
        """Why the budget is spent, or None while calls may still start."""
        with self._lock:
            total = self._total
            if self.budget_tokens is not None and total.tokens_in + total.tokens_out >= self.budget_tokens:
                reason = (
                    f"token budget spent: {total.tokens_in + total.tokens_out} tokens used "
                    f"of {self.budget_tokens}"
                )
            elif self.budget_usd is not None and total.cost_usd >= self.budget_usd:
                reason = f"USD budget spent: ${total.cost_usd:.6f} used of ${self.budget_usd:.6f}"
            else:
                return None
            self._exceeded = True
            return reason

    def check(self) -> None:
        """Raise BudgetExceeded when no new provider call may start."""
        reason = self.exhausted_reason()
        if reason is not None:
            raise BudgetExceeded(reason)

    def summary(self) -> UsageSummary:
        with self._lock:
            return UsageSummary(
                **self._total.model_dump(),
                failed_calls=self._failed_calls,
                unknown_cost_models=sorted(self._unknown_cost_models),
                budget_usd=self.budget_usd,
                budget_tokens=self.budget_tokens,
                budget_exceeded=self._exceeded,
                skipped_for_budget=self._skipped,
                by_role={k: v.model_copy() for k, v in sorted(self._by_role.items())},
                by_stage={k: v.model_copy() for k, v in sorted(self._by_stage.items())},
            )
