"""The one door to LLMs: prompt rendering, cache, concurrency limit, retries, repair, budget and cost.

Every stage calls `LLMGateway`; nothing else imports litellm for completions. A call is:
render the versioned prompt -> look the request up in the content-addressed cache -> (miss) wait
for a concurrency slot, check the budget, call the provider with bounded retries on 429/5xx/
timeouts -> price it with litellm's cost map -> cache it -> validate the answer against the stage's
Pydantic model, sending the validation error back for a bounded number of repair calls.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from envfactory_dagster.llm.budget import UsageLedger, UsageSummary
from envfactory_dagster.llm.cache import CacheEntry, ResponseCache, cache_key, now_utc_iso
from envfactory_dagster.llm.config import ROLES, LLMSettings
from envfactory_dagster.llm.errors import (
    BudgetExceeded,
    LLMCallError,
    LLMNotConfigured,
    LLMOutputError,
    LLMProviderError,
)
from envfactory_dagster.llm.prompts import PromptTemplate, extract_code_block, get_prompt

__all__ = [
    "ROLES",
    "BudgetExceeded",
    "LLMCallError",
    "LLMGateway",
    "LLMNotConfigured",
    "LLMOutputError",
    "LLMProviderError",
    "LLMSettings",
    "StructuredRequest",
    "StructuredResult",
    "TextRequest",
    "TextResult",
    "UsageSummary",
    "import_litellm",
]

CompletionFn = Callable[..., Awaitable[Any]]
T = TypeVar("T")

EMBEDDING_CHUNK = 64  # texts per embedding request
CHARS_PER_TOKEN = 3  # conservative for code and JSON (English prose is ~4): a prompt cut by it fits
_MAX_PROBLEM_CHARS = 2000  # validation errors sent back for repair are cut to this length
_TRANSIENT_STATUS = {408, 409, 425, 429}


def import_litellm() -> Any:
    """Import litellm offline-safe: the local cost map (no HTTP fetch at import), no banner noise."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


def is_transient(exc: BaseException) -> bool:
    """429, 5xx, timeouts and dropped connections are worth retrying; anything else is not."""
    if isinstance(exc, TimeoutError):
        return True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status in _TRANSIENT_STATUS or status >= 500):
        return True
    return type(exc).__name__ in {
        "APIConnectionError",
        "Timeout",
        "APITimeoutError",
        "ServiceUnavailableError",
    }


class _LLMResult(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    model: str
    prompt_name: str
    prompt_version: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cached: bool  # every provider answer behind this result came from the cache
    latency_s: float  # provider time summed over the calls (0 for a cache hit)
    calls: int  # provider answers used: 1 + repair calls

    @property
    def prompt_ref(self) -> str:
        return f"{self.prompt_name}@{self.prompt_version}"

    def lineage(self) -> dict[str, str]:
        """Columns to put on every row this answer influenced."""
        return {
            "llm_model": self.model,
            "prompt_name": self.prompt_name,
            "prompt_version": self.prompt_version,
        }


class StructuredResult(_LLMResult):
    value: Any  # an instance of the request's output model


class TextResult(_LLMResult):
    text: str
    finish_reason: str = "stop"  # of the last answer; "length" = cut at the role's max_tokens

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"

    @property
    def code(self) -> str:
        """The body of the answer's fenced code block (or the whole answer), newline-terminated."""
        return extract_code_block(self.text)


class TextRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    role: str
    prompt: str
    variables: dict[str, Any]


class StructuredRequest(TextRequest):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    output_model: type[BaseModel]


class _Answer(BaseModel):
    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int
    cost_usd: float
    latency_s: float
    cached: bool


@functools.lru_cache(maxsize=256)
def schema_instruction(output_model: type[BaseModel]) -> str:
    schema = json.dumps(output_model.model_json_schema(), indent=2, sort_keys=True)
    return (
        "Answer with exactly one JSON object and nothing else (no prose, no code fence). "
        f"It must validate against this JSON Schema:\n{schema}"
    )


def response_format_for(output_model: type[BaseModel]) -> dict[str, Any]:
    """litellm's `response_format` asking the provider for JSON valid against the model's schema.
    Not `strict`: strict mode refuses schemas with open objects or defaults, which ours have."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": output_model.__name__,
            "schema": output_model.model_json_schema(),
            "strict": False,
        },
    }


def refuses_response_format(cause: BaseException | None) -> bool:
    """A 400 that names the response format: the provider does not do schema-constrained output."""
    text = str(cause).lower()
    return getattr(cause, "status_code", None) == 400 and ("response_format" in text or "json_schema" in text)


def repair_instruction(problem: str) -> str:
    return (
        f"Your answer was not valid: {problem}\n"
        "Reply again with only the corrected JSON object, valid against the JSON Schema given above."
    )


def parse_structured(text: str, output_model: type[T]) -> T:
    """Validate a model answer as `output_model`; tolerates a code fence or prose around one object.

    Raises ValueError (json.JSONDecodeError or pydantic.ValidationError) describing the problem.
    """
    body = extract_code_block(text).strip()
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        raise ValueError("no JSON object found in the answer")
    return output_model.model_validate_json(body[start : end + 1])  # type: ignore[attr-defined]


def _describe_problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        problem = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
    else:
        problem = str(exc)
    return problem[:_MAX_PROBLEM_CHARS]


class _LoopThread:
    """One event loop in a daemon thread: the sync API runs there, so litellm's per-loop HTTP
    clients stay valid across calls (a fresh `asyncio.run` per call would orphan them)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="llm-gateway-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result()

    def close(self) -> None:
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self._cancel_pending(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()

    @staticmethod
    async def _cancel_pending() -> None:
        # litellm leaves a logging worker task on every loop it ran on; end it before the loop.
        # Cancelling one of its tasks can make it start another, hence a few rounds.
        current = asyncio.current_task()
        for _ in range(5):
            pending = [task for task in asyncio.all_tasks() if task is not current]
            if not pending:
                return
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


class LLMGateway:
    """The LLM layer for one run or asset step: its cache, concurrency limit, usage and budget.

    `completion_fn` / `embedding_fn` replace `litellm.acompletion` / `litellm.aembedding` (tests use
    `envfactory_dagster.llm.testing.ScriptedLLM`); they must return litellm response objects.
    """

    def __init__(
        self,
        settings: LLMSettings,
        *,
        completion_fn: CompletionFn | None = None,
        embedding_fn: CompletionFn | None = None,
    ) -> None:
        self.settings = settings
        self.cache = ResponseCache(settings.cache_dir)
        self._completion_fn = completion_fn
        self._embedding_fn = embedding_fn
        self._ledger = UsageLedger(budget_usd=settings.budget_usd, budget_tokens=settings.budget_tokens)
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )
        self._loop_thread: _LoopThread | None = None
        self._loop_lock = threading.Lock()
        self._prompted_roles: set[str] = set()  # roles whose provider refused `response_format`

    # -- configuration -----------------------------------------------------------------
    def is_configured(self, role: str) -> bool:
        """True when a model answers for `role` (its own or the default model)."""
        self._check_role(role)
        return bool(self.settings.models.get(role) or self.settings.default_model)

    def model_for(self, role: str) -> str:
        """The litellm model string of `role`; LLMNotConfigured (naming the role) when there is none."""
        self._check_role(role)
        model = self.settings.models.get(role) or self.settings.default_model
        if not model:
            raise LLMNotConfigured(role)
        return model

    @staticmethod
    def _check_role(role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown LLM role {role!r}; known roles: {list(ROLES)}")

    def usage(self) -> UsageSummary:
        """Calls, cache hits, tokens, cost (total, by role, by stage) and the budget state so far."""
        return self._ledger.summary()

    # -- structured output -------------------------------------------------------------
    async def acomplete_structured(
        self, *, stage: str, role: str, prompt: str, variables: dict[str, Any], output_model: type[BaseModel]
    ) -> StructuredResult:
        """Render `prompt`, call the role's model and validate the answer as `output_model`.

        Where the role's structured-output mode is `json_schema`, the schema also goes to the
        provider as `response_format`; a provider that refuses it (HTTP 400) is asked again with
        the schema in the prompt only, and the role stays prompted for this gateway.
        Raises LLMNotConfigured, BudgetExceeded, LLMProviderError, or LLMOutputError (after
        `repair_retries` repair calls that sent the validation problem back).
        """
        model = self.model_for(role)
        template = self._template(prompt, role)
        messages = template.render(variables)
        messages[0]["content"] += "\n\n" + schema_instruction(output_model)
        answers: list[_Answer] = []
        problem = ""
        for _ in range(self.settings.repair_retries + 1):
            answer = await self._complete_structured_once(
                stage=stage,
                role=role,
                model=model,
                template=template,
                messages=messages,
                output_model=output_model,
            )
            answers.append(answer)
            try:
                value = parse_structured(answer.text, output_model)
            except ValueError as exc:
                problem = _describe_problem(exc)
                messages = [
                    *messages,
                    {"role": "assistant", "content": answer.text},
                    {"role": "user", "content": repair_instruction(problem)},
                ]
                continue
            return StructuredResult(value=value, **self._result_fields(model, template, answers))
        raise LLMOutputError(stage=stage, model=model, prompt_name=template.name, problem=problem)

    async def _complete_structured_once(
        self,
        *,
        stage: str,
        role: str,
        model: str,
        template: PromptTemplate,
        messages: list[dict[str, str]],
        output_model: type[BaseModel],
    ) -> _Answer:
        if self.structured_output_mode(role) != "json_schema":
            return await self._complete(
                stage=stage, role=role, model=model, template=template, messages=messages
            )
        try:
            return await self._complete(
                stage=stage,
                role=role,
                model=model,
                template=template,
                messages=messages,
                response_format=response_format_for(output_model),
            )
        except LLMProviderError as exc:
            if not refuses_response_format(exc.__cause__):
                raise
            self._prompted_roles.add(role)
            return await self._complete(
                stage=stage, role=role, model=model, template=template, messages=messages
            )

    def structured_output_mode(self, role: str) -> str:
        """`json_schema` or `prompted` for `role` (see `LLMSettings.structured_output`)."""
        if role in self._prompted_roles:
            return "prompted"
        mode = self.settings.structured_output_by_role.get(role) or self.settings.structured_output
        if mode != "auto":
            return mode
        supported = import_litellm().supports_response_schema(model=self.model_for(role))
        return "json_schema" if supported else "prompted"

    def complete_structured(
        self, *, stage: str, role: str, prompt: str, variables: dict[str, Any], output_model: type[BaseModel]
    ) -> StructuredResult:
        """Blocking form of `acomplete_structured`."""
        return self._run(
            self.acomplete_structured(
                stage=stage, role=role, prompt=prompt, variables=variables, output_model=output_model
            )
        )

    # -- free text (code) --------------------------------------------------------------
    async def acomplete_text(
        self,
        *,
        stage: str,
        role: str,
        prompt: str,
        variables: dict[str, Any],
        followup: list[dict[str, str]] | None = None,
    ) -> TextResult:
        """Render `prompt` and return the model's free-form answer (e.g. Python source: `.code`).

        `followup` messages are appended after the rendered prompt: an earlier answer and a note on
        what was wrong with it, so a caller can ask for a repair in the same conversation.
        """
        model = self.model_for(role)
        template = self._template(prompt, role)
        messages = [*template.render(variables), *(followup or [])]
        answer = await self._complete(
            stage=stage, role=role, model=model, template=template, messages=messages
        )
        return TextResult(
            text=answer.text,
            finish_reason=answer.finish_reason,
            **self._result_fields(model, template, [answer]),
        )

    def complete_text(
        self,
        *,
        stage: str,
        role: str,
        prompt: str,
        variables: dict[str, Any],
        followup: list[dict[str, str]] | None = None,
    ) -> TextResult:
        """Blocking form of `acomplete_text`."""
        return self._run(
            self.acomplete_text(stage=stage, role=role, prompt=prompt, variables=variables, followup=followup)
        )

    def prompt_budget_chars(self, role: str, prompt: str) -> int:
        """Characters the variables of `prompt` may fill for `role`: the context window minus the
        answer's limit and the template's own text, at a conservative 3 characters per token."""
        template = self._template(prompt, role)
        fixed = len(template.system) + len(template.user)
        return max(self.settings.prompt_budget_tokens(role) * CHARS_PER_TOKEN - fixed, 1000)

    # -- batches -----------------------------------------------------------------------
    async def abatch_structured(
        self, requests: list[StructuredRequest]
    ) -> list[StructuredResult | LLMCallError]:
        return await self._abatch(requests, lambda r: self.acomplete_structured(**dict(r)))

    def batch_structured(self, requests: list[StructuredRequest]) -> list[StructuredResult | LLMCallError]:
        """All requests concurrently (at most `max_concurrency` in flight), results in request order.

        A request that fails becomes an `LLMCallError` with its reason; once the budget is spent,
        no new provider call starts and every remaining cache miss is an error of kind
        `budget_exceeded` (answers already bought, and cache hits, are kept).
        """
        return self._run(self.abatch_structured(requests))

    async def abatch_text(self, requests: list[TextRequest]) -> list[TextResult | LLMCallError]:
        return await self._abatch(requests, lambda r: self.acomplete_text(**dict(r)))

    def batch_text(self, requests: list[TextRequest]) -> list[TextResult | LLMCallError]:
        """`batch_structured` for free-form answers."""
        return self._run(self.abatch_text(requests))

    async def _abatch(
        self, requests: list[Any], call: Callable[[Any], Awaitable[T]]
    ) -> list[T | LLMCallError]:
        async def one(index: int, request: TextRequest) -> T | LLMCallError:
            def error(kind: str, exc: BaseException) -> LLMCallError:
                return LLMCallError(
                    stage=request.stage,
                    role=request.role,
                    prompt_name=request.prompt,
                    reason=str(exc),
                    kind=kind,
                    index=index,
                )

            try:
                return await call(request)
            except BudgetExceeded as exc:
                return error("budget_exceeded", exc)
            except LLMOutputError as exc:
                return error("invalid_output", exc)
            except LLMProviderError as exc:
                return error("provider_error", exc)
            except LLMNotConfigured as exc:
                return error("not_configured", exc)
            except (KeyError, ValueError) as exc:  # unknown prompt or role, missing template variable
                return error("bad_request", exc)

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))

    # -- embeddings --------------------------------------------------------------------
    async def aembed(self, texts: list[str], *, stage: str) -> list[list[float]]:
        """One vector per text (role `embedder`), each cached on its own; misses are sent in chunks."""
        model = self.model_for("embedder")
        keys = [cache_key({"kind": "embedding", "model": model, "text": text}) for text in texts]
        vectors: dict[str, list[float]] = {}
        missing: dict[str, str] = {}  # key -> text, first occurrence only
        for key, text in zip(keys, texts, strict=True):
            if key in vectors or key in missing:
                continue
            entry = self.cache.get(key)
            if entry is not None and entry.embedding is not None:
                self._ledger.record_cache_hit(role="embedder", stage=stage, cost_usd=entry.cost_usd)
                vectors[key] = entry.embedding
            else:
                missing[key] = text
        pending = list(missing.items())
        chunks = [pending[i : i + EMBEDDING_CHUNK] for i in range(0, len(pending), EMBEDDING_CHUNK)]
        for chunk_vectors in await asyncio.gather(*(self._embed_chunk(model, stage, c) for c in chunks)):
            vectors.update(chunk_vectors)
        return [vectors[key] for key in keys]

    def embed(self, texts: list[str], *, stage: str) -> list[list[float]]:
        """Blocking form of `aembed`."""
        return self._run(self.aembed(texts, stage=stage))

    async def _embed_chunk(
        self, model: str, stage: str, chunk: list[tuple[str, str]]
    ) -> dict[str, list[float]]:
        litellm = import_litellm()
        embedding_fn = self._embedding_fn or litellm.aembedding
        inputs = [text for _, text in chunk]
        response, latency = await self._provider_call(
            stage=stage,
            role="embedder",
            model=model,
            call=lambda: embedding_fn(**self._embedding_kwargs(model, stage, inputs)),
        )
        data = sorted(response.data, key=lambda item: _field(item, "index"))
        if len(data) != len(inputs):
            raise LLMProviderError(
                stage=stage,
                model=model,
                attempts=1,
                cause=ValueError(f"{len(data)} embeddings returned for {len(inputs)} texts"),
            )
        tokens_in = int(getattr(response.usage, "prompt_tokens", 0) or 0)
        cost, cost_known = _price(litellm, response)
        self._ledger.record_call(
            role="embedder",
            stage=stage,
            tokens_in=tokens_in,
            tokens_out=0,
            cost_usd=cost,
            model=model,
            cost_known=cost_known,
        )
        result: dict[str, list[float]] = {}
        share = len(inputs)
        for (key, text), item in zip(chunk, data, strict=True):
            vector = [float(x) for x in _field(item, "embedding")]
            result[key] = vector
            self.cache.put(
                CacheEntry(
                    key=key,
                    kind="embedding",
                    model=model,
                    prompt_name="embedding",
                    prompt_version="-",
                    role="embedder",
                    stage=stage,
                    request={"kind": "embedding", "model": model, "text": text},
                    embedding=vector,
                    tokens_in=tokens_in // share,
                    tokens_out=0,
                    cost_usd=cost / share,
                    cost_known=cost_known,
                    latency_s=latency / share,
                    created_at=now_utc_iso(),
                )
            )
        return result

    # -- the provider call -------------------------------------------------------------
    async def _complete(
        self,
        *,
        stage: str,
        role: str,
        model: str,
        template: PromptTemplate,
        messages: list[dict[str, str]],
        response_format: dict[str, Any] | None = None,
    ) -> _Answer:
        params = self._sampling_params(role)
        if response_format is not None:
            params["response_format"] = response_format
        request = {
            "kind": "completion",
            "model": model,
            "messages": messages,
            "params": params,
            "prompt_name": template.name,
            "prompt_version": template.version,
        }
        key = cache_key(request)
        entry = self.cache.get(key)
        if entry is not None and entry.text is not None:
            self._ledger.record_cache_hit(role=role, stage=stage, cost_usd=entry.cost_usd)
            return _Answer(
                text=entry.text,
                finish_reason=entry.finish_reason or "stop",
                tokens_in=entry.tokens_in,
                tokens_out=entry.tokens_out,
                cost_usd=entry.cost_usd,
                latency_s=0.0,
                cached=True,
            )
        litellm = import_litellm()
        completion_fn = self._completion_fn or litellm.acompletion
        kwargs = {**self._endpoint_kwargs(role, stage), "model": model, "messages": messages, **params}
        response, latency = await self._provider_call(
            stage=stage, role=role, model=model, call=lambda: completion_fn(**kwargs)
        )
        text = response.choices[0].message.content or ""
        finish_reason = str(response.choices[0].finish_reason or "stop")
        usage = response.usage
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost, cost_known = _price(litellm, response)
        self._ledger.record_call(
            role=role,
            stage=stage,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            model=model,
            cost_known=cost_known,
        )
        # File I/O off the event loop: other calls keep running while the answer is written.
        await asyncio.to_thread(
            self.cache.put,
            CacheEntry(
                key=key,
                kind="completion",
                model=model,
                prompt_name=template.name,
                prompt_version=template.version,
                role=role,
                stage=stage,
                request=request,
                text=text,
                finish_reason=finish_reason,
                tokens_in=tokens_in,
                tokens_out=tokens_out,
                cost_usd=cost,
                cost_known=cost_known,
                latency_s=latency,
                created_at=now_utc_iso(),
            ),
        )
        return _Answer(
            text=text,
            finish_reason=finish_reason,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            latency_s=latency,
            cached=False,
        )

    async def _provider_call(
        self, *, stage: str, role: str, model: str, call: Callable[[], Awaitable[Any]]
    ) -> tuple[Any, float]:
        """One provider request inside a concurrency slot, after a budget check, with bounded
        retries (exponential backoff, full jitter) on transient errors. Returns (response, seconds)."""
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

        settings = self.settings
        async with self._semaphore():
            reason = self._ledger.exhausted_reason()
            if reason is not None:
                self._ledger.record_skip()
                raise BudgetExceeded(f"stage {stage!r}, role {role!r}: {reason}")
            attempts = 0
            started = time.perf_counter()
            try:
                # Jitter only spreads retry times; it never changes an answer, so it needs no seed.
                async for attempt in AsyncRetrying(
                    stop=stop_after_attempt(settings.max_retries + 1),
                    wait=wait_random_exponential(multiplier=settings.retry_base_s, max=settings.retry_max_s),
                    retry=retry_if_exception(is_transient),
                    reraise=True,
                ):
                    with attempt:
                        attempts += 1
                        response = await asyncio.wait_for(call(), timeout=settings.timeout_s)
            except Exception as exc:  # every provider failure becomes one clear, typed error
                self._ledger.record_failure()
                raise LLMProviderError(stage=stage, model=model, attempts=attempts, cause=exc) from exc
            return response, time.perf_counter() - started

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.settings.max_concurrency)
            self._semaphores[loop] = semaphore
        return semaphore

    def _sampling_params(self, role: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens_for(role),
        }
        if self.settings.seed is not None:
            params["seed"] = self.settings.seed
        return params

    def _endpoint_kwargs(self, role: str, stage: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "num_retries": 0,
            "drop_params": True,
        }  # retries are ours; unsupported params dropped
        api_base = self.settings.api_bases.get(role) or self.settings.api_base
        if api_base:
            kwargs["api_base"] = api_base
        if self.settings.api_key_env:
            key = os.environ.get(self.settings.api_key_env)
            if not key:
                raise LLMProviderError(
                    stage=stage,
                    model=self.model_for(role),
                    attempts=0,
                    cause=KeyError(
                        f"environment variable {self.settings.api_key_env!r} (api_key_env) is not set"
                    ),
                )
            kwargs["api_key"] = key
        return kwargs

    def _embedding_kwargs(self, model: str, stage: str, inputs: list[str]) -> dict[str, Any]:
        kwargs = self._endpoint_kwargs("embedder", stage)
        kwargs.pop("drop_params")
        return {**kwargs, "model": model, "input": inputs, "timeout": self.settings.timeout_s}

    def _template(self, prompt: str, role: str) -> PromptTemplate:
        template = get_prompt(prompt)
        if role not in template.roles:
            raise ValueError(f"prompt {prompt!r} is for roles {list(template.roles)}, not {role!r}")
        return template

    @staticmethod
    def _result_fields(model: str, template: PromptTemplate, answers: list[_Answer]) -> dict[str, Any]:
        return {
            "model": model,
            "prompt_name": template.name,
            "prompt_version": template.version,
            "tokens_in": sum(a.tokens_in for a in answers),
            "tokens_out": sum(a.tokens_out for a in answers),
            "cost_usd": sum(a.cost_usd for a in answers),
            "cached": all(a.cached for a in answers),
            "latency_s": sum(a.latency_s for a in answers),
            "calls": len(answers),
        }

    # -- sync bridge -------------------------------------------------------------------
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._loop_lock:
            if self._loop_thread is None:
                self._loop_thread = _LoopThread()
                # A gateway nobody closed still stops its loop when it is garbage-collected.
                weakref.finalize(self, self._loop_thread.close)
            loop_thread = self._loop_thread
        return loop_thread.run(coro)

    def close(self) -> None:
        """Stop the gateway's background event loop (started by the first blocking call)."""
        with self._loop_lock:
            if self._loop_thread is not None:
                self._loop_thread.close()
                self._loop_thread = None

    def __enter__(self) -> LLMGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _field(item: Any, name: str) -> Any:
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _price(litellm: Any, response: Any) -> tuple[float, bool]:
    """(cost in USD, known) from litellm's cost map; a model the map does not know costs 0, flagged."""
    # litellm already priced its own responses (same cost map); pricing again costs ~1 ms a call.
    hidden_cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    if hidden_cost is not None:
        return float(hidden_cost), True
    try:
        return float(litellm.completion_cost(completion_response=response)), True
    except (litellm.exceptions.ModelNotMappedError, litellm.exceptions.NotFoundError, ValueError):
        return 0.0, False
