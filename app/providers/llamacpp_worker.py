"""The worker thread behind the ``llamacpp`` provider: one thread owns one ``llama_cpp.Llama`` (which is not
thread-safe), loads it at startup and runs queued generations one at a time, forwarding each token to the
caller's event loop with ``loop.call_soon_threadsafe`` and checking a cancel flag between tokens.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp

from app.domain import Usage
from app.errors import (
    CapacityError,
    ContextWindowExceededError,
    GatewayError,
    UpstreamBadRequestError,
    UpstreamServerError,
    UpstreamUnavailableError,
)
from app.providers.base import normalize_finish_reason
from app.records import record

log = logging.getLogger("app.providers.llamacpp")


def default_threads() -> int:
    """Half the logical cores (llama-cpp-python's own default). llama.cpp's threads wait for each other
    at every layer, so one thread per core collapses when anything else runs: on a busy 2-core machine,
    SmolLM2-135M made 30-77 tokens/s with 1 thread and 3-6 tokens/s with 2."""
    return max(1, (os.cpu_count() or 2) // 2)


KIND = "llamacpp"


class _NoRedirect:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``, which (with ``verbose=False``) points
    file descriptors 1 and 2 and ``sys.stdout``/``sys.stderr`` of the *whole process* at /dev/null while a
    model loads. In a server that silences every other thread's logs for that time, and two overlapping
    loads restore each other's saved streams in the wrong order, leaving the process mute. llama.cpp's own
    messages are routed to our logger instead (``_route_llama_logs``)."""

    def __init__(self, disable: bool = True) -> None:
        self.disable = disable

    def __enter__(self) -> _NoRedirect:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


# ggml_log_level: 0 none, 1 debug, 2 info, 3 warn, 4 error, 5 continuation
_LLAMA_LEVELS = {3: logging.WARNING, 4: logging.ERROR}


@llama_cpp.llama_log_callback
def _llama_log(level: int, text: bytes, user_data: Any) -> None:
    """llama.cpp's log callback: warnings and errors go to our (JSON) logger, chatter is dropped."""
    python_level = _LLAMA_LEVELS.get(level)
    if python_level is not None and log.isEnabledFor(python_level):
        log.log(python_level, "llama.cpp: %s", text.decode("utf-8", "replace").strip())


def _route_llama_logs() -> None:
    """Install ``_NoRedirect`` and ``_llama_log`` (idempotent; module-level so the callback is never freed)."""
    for module_name in ("llama_cpp.llama", "llama_cpp._internals", "llama_cpp.llama_chat_format"):
        module = __import__(module_name, fromlist=["suppress_stdout_stderr"])
        if hasattr(module, "suppress_stdout_stderr"):
            module.suppress_stdout_stderr = _NoRedirect  # type: ignore[attr-defined]
    llama_cpp.llama_log_set(_llama_log, None)


# Events sent from the worker thread to the caller's event loop.
Event = tuple[str, Any]  # ("delta", str) | ("end", (finish_reason, Usage)) | ("error", GatewayError)


def from_llama_chunk(chunk: dict[str, Any]) -> tuple[str, str | None]:
    """The text and finish reason of one ``create_chat_completion(stream=True)`` chunk."""
    choices = chunk.get("choices") or ()
    if not choices:
        return "", None
    choice = choices[0]
    text = (choice.get("delta") or {}).get("content") or ""
    return text, normalize_finish_reason(choice.get("finish_reason"))


def completion_tokens(evaluated_after: int, prompt_tokens: int, finish_reason: str | None) -> int:
    """Tokens generated: every generated token is evaluated except the last sampled one, which is
    part of the answer when the length limit stopped it and is the end-of-turn token otherwise (when a
    stop sequence ends the answer, its last token is not counted; llama.cpp's own count includes it)."""
    return max(0, evaluated_after - prompt_tokens + (1 if finish_reason == "length" else 0))


@dataclass(eq=False)
class Job:
    """One generation: its arguments, where its events go, and its cancel flag."""

    kwargs: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    model: str
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)
    tokens: int = 0


@record(slots=True)
class WorkerStats:
    """A snapshot of the worker: for tests, health checks and logs."""

    loaded: bool
    queued: int
    running: bool
    completed: int
    cancelled: int
    failed: int
    tokens_generated: int  # text chunks sent, one per generated token


class Worker:
    """One thread that owns one ``Llama`` and runs the queued generations one at a time."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, max_queue: int) -> None:
        self.path, self.n_ctx, self.n_threads, self.max_queue = path, n_ctx, n_threads, max_queue
        self._cond = threading.Condition()
        self._queue: deque[Job] = deque()
        self._running: Job | None = None
        self._closed = False
        self._llama: llama_cpp.Llama | None = None
        self._load_error: str | None = None
        self._avg_job_s = 1.0
        self._counts = {"completed": 0, "cancelled": 0, "failed": 0, "tokens": 0}
        self._thread = threading.Thread(target=self._run, name=f"llamacpp-{path.stem}", daemon=True)
        self._thread.start()

    # -- called from the event loop ------------------------------------------------------------------
    def submit(self, job: Job) -> None:
        """Queue ``job``, or raise ``CapacityError`` when ``1 + max_queue`` jobs are in flight."""
        with self._cond:
            if self._closed:
                raise UpstreamUnavailableError("the local model is shutting down", provider=KIND, model=job.model)
            in_flight = len(self._queue) + (self._running is not None)
            if in_flight >= 1 + self.max_queue:
                retry_after = min(60.0, max(1.0, self._avg_job_s * in_flight))
                raise CapacityError(
                    f"the local model is busy: {in_flight} requests in flight, queue limit {self.max_queue}",
                    retry_after=retry_after,
                    model=job.model,
                )
            self._queue.append(job)
            self._cond.notify()

    def cancel(self, job: Job) -> None:
        """Stop ``job``: drop it from the queue, or stop its generation at the next token."""
        with self._cond:
            job.cancel.set()
            if job in self._queue:
                self._queue.remove(job)
                self._counts["cancelled"] += 1

    def stats(self) -> WorkerStats:
        with self._cond:
            return WorkerStats(
                loaded=self._llama is not None,
                queued=len(self._queue),
                running=self._running is not None,
                completed=self._counts["completed"],
                cancelled=self._counts["cancelled"],
                failed=self._counts["failed"],
                tokens_generated=self._counts["tokens"],
            )

    def close(self) -> None:
        """Refuse new jobs, fail the queued ones, stop the running one, free the model (blocking)."""
        with self._cond:
            self._closed = True
            if self._running is not None:
                self._running.cancel.set()
            self._cond.notify_all()
        self._thread.join()

    # -- the worker thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        self._load()
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    for job in self._queue:
                        self._emit(job, ("error", self._unavailable(job, "the local model is shutting down")))
                    self._queue.clear()
                    break
                job = self._running = self._queue.popleft()
            started = time.perf_counter()
            outcome, last = self._execute(job)
            with self._cond:  # free the slot before the caller hears the end, so it may submit again
                self._running = None
                self._counts[outcome] += 1
                self._counts["tokens"] += job.tokens
                if outcome == "completed":
                    self._avg_job_s = 0.7 * self._avg_job_s + 0.3 * (time.perf_counter() - started)
            if last is not None:
                self._emit(job, last)
        self._release()

    def _load(self) -> None:
        started = time.perf_counter()
        _route_llama_logs()
        try:
            llama = llama_cpp.Llama(
                model_path=str(self.path),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
                verbose=False,
            )
        except Exception as exc:  # a corrupt or unsupported file: every request will say so
            self._load_error = f"{type(exc).__name__}: {exc}"
            log.error("local model %s failed to load: %s", self.path.name, self._load_error)
            return
        with self._cond:
            self._llama = llama
        log.info("local model %s loaded in %.2f s", self.path.name, time.perf_counter() - started)

    def _release(self) -> None:
        with self._cond:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()

    def _unavailable(self, job: Job, reason: str) -> GatewayError:
        return UpstreamUnavailableError(reason, provider=KIND, model=job.model)

    def _emit(self, job: Job, event: Event) -> None:
        try:
            job.loop.call_soon_threadsafe(job.events.put_nowait, event)
        except RuntimeError:  # the caller's event loop is closed: nobody is listening any more
            job.cancel.set()

    def _execute(self, job: Job) -> tuple[str, Event | None]:
        """Run one generation, streaming its text; answers the outcome (a counter name) and the final
        event (``end`` or ``error``; None when cancelled), which the caller sends once the slot is free."""
        llama = self._llama
        if llama is None:
            reason = f"the local model failed to load ({self._load_error})"
            return "failed", ("error", self._unavailable(job, reason))
        if job.cancel.is_set():
            return "cancelled", None
        prompt_tokens: int | None = None
        finish: str | None = None
        try:
            # Evaluate every prompt in full: reusing the previous request's cached prefix changes the
            # batch split, and with it the logits, so temperature 0 would not repeat its answer.
            llama.reset()
            chunks = llama.create_chat_completion(**job.kwargs, stream=True)
            try:
                for chunk in chunks:
                    if prompt_tokens is None:
                        prompt_tokens = llama.n_tokens  # the prompt is evaluated, the first token sampled
                    if job.cancel.is_set():
                        return "cancelled", None
                    text, chunk_finish = from_llama_chunk(chunk)  # type: ignore[arg-type]
                    if text:
                        job.tokens += 1
                        self._emit(job, ("delta", text))
                    finish = chunk_finish or finish
            finally:
                chunks.close()  # type: ignore[union-attr]
        except Exception as exc:  # llama.cpp raises plain exceptions; translate them for the caller
            return "failed", ("error", self._error(llama, job, exc, started=prompt_tokens is not None))
        prompt = prompt_tokens or 0
        usage = Usage(prompt, completion_tokens(llama.n_tokens, prompt, finish))
        return "completed", ("end", (finish or "stop", usage))

    def _error(self, llama: llama_cpp.Llama, job: Job, exc: Exception, *, started: bool) -> GatewayError:
        if isinstance(exc, ValueError) and not started:
            text = "\n".join(m["content"] for m in job.kwargs["messages"])
            n_prompt = len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))
            if n_prompt + 4 * len(job.kwargs["messages"]) >= self.n_ctx:
                return ContextWindowExceededError(
                    f"the prompt (about {n_prompt} tokens) does not fit the local model's "
                    f"context window of {self.n_ctx} tokens",
                    provider=KIND,
                    model=job.model,
                )
            return UpstreamBadRequestError(
                f"the local model refused the request: {exc}", provider=KIND, model=job.model
            )
        return UpstreamServerError(
            f"the local model failed: {type(exc).__name__}: {exc}", provider=KIND, model=job.model
        )
