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
from collections.abc import Callable
from typing import Any

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


class ScriptedOpenAIServer:
    """A local OpenAI-compatible HTTP endpoint (`/v1/chat/completions`, `/v1/embeddings`) with
    scripted answers, for tests of the real provider path (litellm over HTTP) without a remote LLM.

    `answer_for(messages) -> str` writes each chat answer; embeddings are `ScriptedLLM.vector`s.
    Use as a context manager; `api_base` is `http://127.0.0.1:<port>/v1` and `requests` records
    every request body. Serves loopback only.
    """

    def __init__(self, answer_for: Callable[[list[dict[str, Any]]], str], *, embedding_dim: int = 8) -> None:
        self.answer_for = answer_for
        self.embedding_dim = embedding_dim
        self.requests: list[dict[str, Any]] = []
        self._server: Any = None
        self._thread: Any = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAIServer:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                server.requests.append(body)
                if self.path.endswith("/embeddings"):
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    vectors = ScriptedLLM([], embedding_dim=server.embedding_dim)
                    payload = {
                        "object": "list",
                        "model": body.get("model", "scripted"),
                        "data": [
                            {"object": "embedding", "index": i, "embedding": vectors.vector(t)}
                            for i, t in enumerate(texts)
                        ],
                        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
                    }
                elif self.path.endswith("/chat/completions"):
                    payload = {
                        "id": f"chatcmpl-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "scripted"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {
                                    "role": "assistant",
                                    "content": server.answer_for(body["messages"]),
                                },
                            }
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                    }
                else:
                    self.send_error(404, f"no scripted route {self.path}")
                    return
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:  # quiet
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
