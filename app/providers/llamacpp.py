"""The in-process local model: a GGUF file run by ``llama-cpp-python`` (the optional extra ``.[local]``).

A ``llama_cpp.Llama`` object is not thread-safe, so each provider owns one worker thread that loads the
model at startup and then runs one generation at a time from a bounded queue; the event loop never blocks.
A request that finds ``1 + max_queue`` requests already in flight is refused with ``CapacityError`` (503 and
Retry-After). Every generation streams: the worker forwards each token to the caller's event loop with
``loop.call_soon_threadsafe`` and checks a cancel flag between tokens, so a client that goes away stops the
generation at the next token. ``complete`` is the same stream, collected.

Usage comes from the model's own token counts: the prompt length is the number of tokens llama.cpp has
evaluated when the first token comes out, and the completion length the tokens it generated after that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

import llama_cpp  # noqa: F401  (ImportError here marks the model unavailable: the extra is not installed)

from app.domain import ChatRequest, Completion, StreamChunk, Usage
from app.errors import UpstreamBadRequestError, UpstreamTimeoutError
from app.providers.base import Capabilities, ModelTarget
from app.providers.llamacpp_worker import KIND, Event, Job, Worker, WorkerStats, default_threads
from app.providers.local_model import resolve_model_path
from app.settings.catalogue import ModelConfig

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 2048
DEFAULT_MAX_TOKENS = 256
# When the request names no temperature: greedy. SmolLM2-135M at llama.cpp's own default (0.2) often
# drifts ("What is the capital of France?" -> "L'Alma, la France, ..."); greedy answers "Paris".
DEFAULT_TEMPERATURE = 0.0

__all__ = ["DEFAULT_MAX_TOKENS", "LlamaCppProvider", "default_threads", "to_llama_request"]


def to_llama_messages(request: ChatRequest, system_prompt: str | None = None) -> list[dict[str, str]]:
    """Our messages as chat-template messages; ``system_prompt`` is used when the request has none."""
    messages = [{"role": m.role, "content": m.content} for m in request.messages]
    if system_prompt and not any(m.role == "system" for m in request.messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def to_llama_request(request: ChatRequest, system_prompt: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``Llama.create_chat_completion`` (the model's own chat template applies)."""
    kwargs: dict[str, Any] = {
        "messages": to_llama_messages(request, system_prompt),
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "temperature": DEFAULT_TEMPERATURE if request.temperature is None else request.temperature,
    }
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.stop:
        kwargs["stop"] = list(request.stop)
    for name in ("seed", "presence_penalty", "frequency_penalty", "top_k"):
        value = getattr(request, name)
        if value is not None:
            kwargs[name] = value
    if request.logit_bias:
        kwargs["logit_bias"] = {int(token): bias for token, bias in request.logit_bias.items()}
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        # llama.cpp constrains decoding with a grammar built from the schema (any object for json_object)
        kwargs["response_format"] = {"type": "json_object", **({"schema": fmt.schema} if fmt.schema else {})}
    return kwargs


# What the in-process model can honour: text in, grammar-constrained JSON out, llama.cpp's samplers.
LOCAL_CAPABILITIES = Capabilities(
    images=False,
    image_urls=False,
    files=False,
    json_schema=True,
    json_object=True,
    tools=False,
    strict_tools=False,
    parallel_tool_control=False,
    reasoning=False,
    logprobs=False,
    logit_bias=True,
    seed=True,
    penalties=True,
    top_k=True,
    native_n=False,
)


class LlamaCppProvider:
    """``Provider`` for one GGUF model run in process; one instance (and one worker) per model file."""

    kind = KIND

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    @classmethod
    def create(cls, config: ModelConfig) -> LlamaCppProvider:
        """Locate and check the GGUF file now (``OSError``/``ValueError`` if unusable; ``ImportError`` if
        the default model's package is missing) and start loading it in the worker thread."""
        path = resolve_model_path(config.model_path)
        worker = Worker(
            path,
            n_ctx=config.context_window or DEFAULT_N_CTX,
            n_threads=config.n_threads or default_threads(),
            max_queue=config.max_queue,
        )
        return cls(worker)

    @property
    def model_file(self) -> Path:
        return self._worker.path

    def capabilities(self, target: ModelTarget) -> Capabilities:
        return LOCAL_CAPABILITIES

    def stats(self) -> WorkerStats:
        return self._worker.stats()

    def _submit(self, request: ChatRequest, target: ModelTarget) -> Job:
        if request.tools:
            raise UpstreamBadRequestError(
                f"model {target.name} (local) does not support tools", provider=KIND, model=target.name
            )
        kwargs = to_llama_request(request, target.config.system_prompt)
        job = Job(kwargs, asyncio.get_running_loop(), target.name)
        self._worker.submit(job)
        return job

    async def _events(self, request: ChatRequest, target: ModelTarget) -> AsyncGenerator[Event, None]:
        """The job's events up to its end; the job is cancelled if the consumer stops early."""
        job = self._submit(request, target)
        try:
            while True:
                try:
                    async with asyncio.timeout(target.timeout_s):
                        kind, payload = await job.events.get()
                except TimeoutError:
                    raise UpstreamTimeoutError(
                        f"the local model produced nothing for {target.timeout_s:g} s",
                        provider=KIND,
                        model=target.name,
                    ) from None
                if kind == "error":
                    raise payload
                yield kind, payload
                if kind == "end":
                    return
        finally:
            self._worker.cancel(job)

    async def complete(self, request: ChatRequest, target: ModelTarget) -> Completion:
        started = time.perf_counter()
        parts: list[str] = []
        finish, usage = "stop", Usage()
        events = self._events(request, target)
        try:
            async with asyncio.timeout(target.timeout_s):
                async for kind, payload in events:
                    if kind == "delta":
                        parts.append(payload)
                    else:
                        finish, usage = payload
        except TimeoutError:
            raise UpstreamTimeoutError(
                f"the local model did not finish within {target.timeout_s:g} s", provider=KIND, model=target.name
            ) from None
        finally:
            await events.aclose()
        return Completion(
            content="".join(parts),
            model=target.name,
            provider=target.provider,
            usage=usage,
            latency_ms=(time.perf_counter() - started) * 1000.0,
            cost=target.price.usage_cost(usage),
            finish_reason=finish,
            upstream_model=target.config.model or self.model_file.stem,
        )

    async def stream(self, request: ChatRequest, target: ModelTarget) -> AsyncIterator[StreamChunk]:
        events = self._events(request, target)
        try:
            async for kind, payload in events:
                if kind == "delta":
                    yield StreamChunk(delta=payload)
                else:
                    finish, usage = payload
                    yield StreamChunk(finish_reason=finish, usage=usage)
        finally:
            await events.aclose()

    async def aclose(self) -> None:
        """Stop the worker and free the model, without blocking the event loop."""
        await asyncio.to_thread(self._worker.close)
