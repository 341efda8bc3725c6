"""A scripted LLM provider for tests of every stage: recorded answers through litellm's own mock path.

`ScriptedLLM` is passed to `LLMGateway(..., completion_fn=fake, embedding_fn=fake.aembedding)`.
Each call takes the next scripted answer and hands it to `litellm.acompletion(mock_response=...)`,
so litellm builds its real response object, usage and cost (use a model string litellm prices,
e.g. "gpt-4o-mini", to see non-zero cost), and the gateway's parse / repair / retry logic runs
unchanged. An answer may be text, an exception instance (raised as the provider error; set
`status_code` for an HTTP status) or one of litellm's mock error strings
("litellm.RateLimitError", "litellm.InternalServerError"). The fake records every call and the
highest number of calls in flight at once. `ScriptedOpenAIServer` is the same idea one layer
further out: a local OpenAI-compatible HTTP endpoint that litellm reaches over the network stack.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envfactory_dagster.llm.config import LLMSettings
from envfactory_dagster.llm.gateway import import_litellm

ScriptedAnswer = str | BaseException
RATE_LIMITED = "litellm.RateLimitError"  # litellm raises its RateLimitError (HTTP 429) for this mock answer
SERVER_ERROR = "litellm.InternalServerError"  # ... and its InternalServerError (HTTP 500) for this one


class ScriptedLLM:
    """A fake provider: answers from a list (in call order) or from `answer_for(messages)`."""

    def __init__(
        self,
        answers: list[ScriptedAnswer] | Callable[[list[dict[str, Any]]], ScriptedAnswer],
        *,
        latency_s: float = 0.0,
        embedding_dim: int = 8,
        through_litellm: bool = True,
    ) -> None:
        """`through_litellm=False` builds the litellm `ModelResponse` directly instead of running
        litellm's mock completion (~3 ms of CPU a call): for benchmarks of the layer itself."""
        self._answers = list(answers) if isinstance(answers, list) else None
        self._answer_for = answers if callable(answers) else None
        self.latency_s = latency_s
        self.embedding_dim = embedding_dim
        self.through_litellm = through_litellm
        self.calls: list[dict[str, Any]] = []  # kwargs of every completion call, in call order
        self.embedding_calls: list[list[str]] = []
        self.in_flight = 0
        self.max_in_flight = 0

    def _next_answer(self, messages: list[dict[str, Any]]) -> ScriptedAnswer:
        if self._answer_for is not None:
            return self._answer_for(messages)
        assert self._answers is not None
        if not self._answers:
            raise AssertionError(f"ScriptedLLM: no scripted answer left for call {len(self.calls)}")
        return self._answers.pop(0)

    async def __call__(self, **kwargs: Any) -> Any:
        """Drop-in for `litellm.acompletion`."""
        litellm = import_litellm()
        self.calls.append(kwargs)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s:
                await asyncio.sleep(self.latency_s)
            answer = self._next_answer(kwargs["messages"])
            if self.through_litellm:
                return await litellm.acompletion(**kwargs, mock_response=answer)
            if isinstance(answer, BaseException):
                raise answer
            return litellm.ModelResponse(
                model=kwargs["model"],
                choices=[
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": answer}}
                ],
                usage=litellm.Usage(prompt_tokens=10, completion_tokens=20, total_tokens=30),
            )
        finally:
            self.in_flight -= 1

    async def aembedding(self, **kwargs: Any) -> Any:
        """Drop-in for `litellm.aembedding`: a deterministic unit vector per text (from its sha256)."""
        litellm = import_litellm()
        texts: list[str] = list(kwargs["input"])
        self.embedding_calls.append(texts)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        data = [
            {"object": "embedding", "index": i, "embedding": self.vector(text)}
            for i, text in enumerate(texts)
        ]
        tokens = sum(len(text.split()) for text in texts)
        return litellm.EmbeddingResponse(
            model=kwargs["model"], data=data, usage=litellm.Usage(prompt_tokens=tokens, total_tokens=tokens)
        )

    def vector(self, text: str) -> list[float]:
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        raw = [digest[i % len(digest)] - 127.5 for i in range(self.embedding_dim)]
        norm = sum(x * x for x in raw) ** 0.5
        return [x / norm for x in raw]


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer of `ScriptedOpenAIServer`, misbehaving on purpose when asked to.

    `status` other than 200 answers with an OpenAI-style error body (429 = rate limited, 500, 400);
    `delay_s` sleeps before answering (a slow provider: the gateway's timeout fires);
    `finish_reason="length"` marks a cut answer (the server also cuts any answer longer than the
    request's `max_tokens`, as a provider does).
    """

    content: str = ""
    status: int = 200
    delay_s: float = 0.0
    finish_reason: str = "stop"
    error: str = "scripted error"


def replies_in_order(
    replies: list[str | ScriptedReply],
) -> Callable[[list[dict[str, Any]]], str | ScriptedReply]:
    """An `answer_for` that hands out `replies` one per chat request, in order."""
    pending = list(replies)

    def answer_for(messages: list[dict[str, Any]]) -> str | ScriptedReply:
        if not pending:
            raise AssertionError("ScriptedOpenAIServer: no scripted reply left")
        return pending.pop(0)

    return answer_for


class ScriptedOpenAIServer:
    """A local OpenAI-compatible HTTP endpoint (`/v1/chat/completions`, `/v1/embeddings`) with
    scripted answers, for tests of the real provider path (litellm over HTTP) without a remote LLM.

    `answer_for(messages)` writes each chat answer: text, or a `ScriptedReply` (errors, delays,
    cut answers). Usage is counted like a provider would (about `chars_per_token` characters a
    token), so litellm prices the calls of a priced model name; an answer longer than the request's
    `max_tokens` is cut there with `finish_reason="length"`. `refuse_response_format=True` answers
    400 to any request with a `response_format` (a server without schema-constrained decoding).
    Use as a context manager; `api_base` is `http://127.0.0.1:<port>/v1`; `requests` records every
    request body. Serves loopback only.
    """

    def __init__(
        self,
        answer_for: Callable[[list[dict[str, Any]]], str | ScriptedReply],
        *,
        embedding_dim: int = 8,
        refuse_response_format: bool = False,
        chars_per_token: int = 4,
    ) -> None:
        self.answer_for = answer_for
        self.embedding_dim = embedding_dim
        self.refuse_response_format = refuse_response_format
        self.chars_per_token = chars_per_token
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: Any = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def llm_settings(
        self, cache_dir: Path, *, key_env: str = "SCRIPTED_LLM_KEY", **overrides: Any
    ) -> LLMSettings:
        """Gateway settings that send every role to this server (`key_env` must be set in the
        environment: litellm's OpenAI client requires a key); `overrides` are further settings."""
        return LLMSettings(
            **{
                "default_model": "openai/gpt-4o-mini",
                "api_base": self.api_base,
                "api_key_env": key_env,
                "cache_dir": cache_dir,
                **overrides,
            }
        )

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]

    def tokens(self, text: str) -> int:
        return max(1, len(text) // self.chars_per_token)

    def _chat(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """(HTTP status, JSON payload, delay) for one chat request."""
        if self.refuse_response_format and body.get("response_format"):
            return 400, _error_payload("response_format json_schema is not supported by this server"), 0.0
        with self._lock:  # answer_for may keep state (a list of replies)
            reply = self.answer_for(body["messages"])
        if isinstance(reply, str):
            reply = ScriptedReply(content=reply)
        if reply.status != 200:
            return reply.status, _error_payload(reply.error), reply.delay_s
        content, finish_reason = reply.content, reply.finish_reason
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if limit and self.tokens(content) > limit:
            content, finish_reason = content[: limit * self.chars_per_token], "length"
        prompt_tokens = sum(self.tokens(str(m.get("content") or "")) for m in body["messages"])
        completion_tokens = self.tokens(content)
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", "scripted"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": finish_reason,
                    "message": {"role": "assistant", "content": content},
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, payload, reply.delay_s

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vectors = ScriptedLLM([], embedding_dim=self.embedding_dim)
        return {
            "object": "list",
            "model": body.get("model", "scripted"),
            "data": [
                {"object": "embedding", "index": i, "embedding": vectors.vector(t)}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }

    def __enter__(self) -> ScriptedOpenAIServer:
        import json
        import time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                with server._lock:
                    server.requests.append(body)
                status, delay = 200, 0.0
                if self.path.endswith("/embeddings"):
                    payload = server._embeddings(body)
                elif self.path.endswith("/chat/completions"):
                    status, payload, delay = server._chat(body)
                else:
                    self.send_error(404, f"no scripted route {self.path}")
                    return
                if delay:
                    time.sleep(delay)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up on a slow answer (its timeout)

            def log_message(self, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _error_payload(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "scripted_error", "param": None, "code": None}}
