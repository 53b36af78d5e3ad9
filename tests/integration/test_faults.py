"""Every upstream fault, per provider, through both front-ends, streamed and not, with and without a fallback.

The fake upstream misbehaves the ways real upstreams (and the proxies in front of them) do: malformed or
empty bodies, HTML and text answers, errors inside a 200, answers without choices, usage with strings,
bytes that are not HTTP, closed and reset connections, streams that never end or drip a byte at a time.
Whatever happens: never a 500, never a 200 without content; the fallback is taken where another model can
help; otherwise a 502/503/504 (or a 429 with ``Retry-After``). A stream that already sent content ends with an
error event, never with ``[DONE]`` or ``done``.

Each test runs the 32 combinations of one fault at once (four providers, two endpoints, streamed or not, with
or without a fallback), so the slow faults (bounded by a timeout) cost their timeout once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import app_client, write_config

KINDS = ("openai", "anthropic", "google", "openai_compatible")
FIRST_BYTE_S = 0.5  # timeout_s of the t- models (first byte, and idle gap unless idle_timeout_s says otherwise)
IDLE_S = 0.3  # the idle timeout of the stalling models
DEADLINE_S = 2.0  # orchestration.request_timeout_s: bounds a whole request, streams included
BACKUP_TEXT = "echo: tell me"  # what the healthy fallback model answers (the fake echoes the prompt)
PROMPT = "tell me"
FAULTY_TEXT = "the faulty model speaks"


def _base(kind: str, base_url: str) -> str:
    return f"{base_url}/v1" if kind in ("openai", "openai_compatible") else base_url


def fault_models(base_url: str) -> dict[str, dict[str, Any]]:
    """Per provider kind: ``f-<kind>`` (no fallback), ``f-<kind>-fb`` (falls back to ``backup``), the same as
    ``t-<kind>``/``t-<kind>-fb`` with a short ``timeout_s`` (for the faults only a timeout ends), and
    ``s-<kind>`` (a short idle timeout), all played by upstream model ``fault-<kind>``."""
    models: dict[str, dict[str, Any]] = {
        "backup": {"provider": "openai", "model": "backup-model", "api_base": f"{base_url}/v1", "timeout_s": 5},
    }
    for kind in KINDS:
        common = {
            "provider": kind,
            "model": f"fault-{kind}",
            "api_base": _base(kind, base_url),
            "cost_per_1k_input": 0.001,
            "cost_per_1k_output": 0.002,
        }
        for prefix, timeout in (("f", 5), ("t", FIRST_BYTE_S)):
            models[f"{prefix}-{kind}"] = {**common, "timeout_s": timeout}
            models[f"{prefix}-{kind}-fb"] = {**common, "timeout_s": timeout, "fallbacks": ["backup"]}
        models[f"s-{kind}"] = {**common, "timeout_s": 5, "idle_timeout_s": IDLE_S}
    return models


def fault_config(base_url: str) -> dict[str, Any]:
    return {
        "models": fault_models(base_url),
        "orchestration": {
            "max_retries": 0,  # one scripted reply is one call
            "request_timeout_s": DEADLINE_S,
            "breaker": {"enabled": False},  # the same model fails on purpose, test after test
        },
    }


@pytest.fixture
async def gateway(
    upstream: FakeUpstream, tmp_path: Path, provider_keys: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    path = write_config(tmp_path, fault_config(upstream.base_url))
    async with app_client(path) as client:
        yield client


# --- the faults, in each vendor's shape -------------------------------------------------------------------


def _usage_key(kind: str) -> str:
    return "usageMetadata" if kind == "google" else "usage"


def no_choices(kind: str) -> Callable[[dict[str, Any]], Any]:
    if kind == "anthropic":
        return lambda body: {**body, "content": [], "stop_reason": None}
    if kind == "google":
        return lambda body: {**body, "candidates": []}
    return lambda body: {**body, "choices": []}


def usage_strings(kind: str) -> Callable[[dict[str, Any]], Any]:
    field_name = {"anthropic": "input_tokens", "google": "promptTokenCount"}.get(kind, "prompt_tokens")
    key = _usage_key(kind)
    return lambda body: {**body, key: {**body[key], field_name: "many"}}


def no_usage(kind: str) -> Callable[[dict[str, Any]], Any]:
    key = _usage_key(kind)
    return lambda body: {k: v for k, v in body.items() if k != key}


def rate_limit_body(kind: str) -> bytes:
    from tests.fakes import anthropic_wire, gemini_wire, openai_wire

    wire = {"anthropic": anthropic_wire, "google": gemini_wire}.get(kind, openai_wire)
    return json.dumps(wire.error(429, "Rate limit reached for requests").body).encode()


@dataclass(frozen=True)
class Fault:
    """One fault: how the fake plays it, and what the client must get.

    ``fails``: the statuses allowed without a fallback (with one, the backup answers; streamed requests fail
    the same way, before the stream starts). ``breaks_stream``: a streamed request starts (content reaches
    the client) and then ends with an error event. ``answers``: the faulty model still answers (with content).
    """

    name: str
    reply: Callable[[str], Reply]
    fails: frozenset[int] = frozenset()
    breaks_stream: bool = False
    answers: bool = False
    streamed_answers: bool | None = None  # overrides ``answers`` for streamed requests
    fallback_helps: bool = True
    error_types: frozenset[str] = frozenset()  # allowed error types (empty: any typed upstream error)
    slow: bool = False  # ended by a timeout: played by the t- models (short timeout_s)

    @property
    def prefix(self) -> str:
        return "t" if self.slow else "f"

    def answers_for(self, stream: bool) -> bool:
        if stream and self.streamed_answers is not None:
            return self.streamed_answers
        return self.answers


BAD_GATEWAY = frozenset({502})
TIMEOUT = frozenset({504})
CONNECTION = frozenset({"upstream_connection_error"})
SERVER_ERROR = frozenset({"upstream_server_error"})
UPSTREAM_TIMEOUT = frozenset({"upstream_timeout"})

FAULTS = [
    Fault("empty_body", lambda k: Reply(raw_body=b""), BAD_GATEWAY),
    Fault("truncated_json", lambda k: Reply(text=FAULTY_TEXT, truncate_body=40), BAD_GATEWAY),
    Fault("invalid_utf8", lambda k: Reply(raw_body=b'{"id": "x\xff\xfe\xfa", "choices": "\xc3\x28"}'), BAD_GATEWAY),
    Fault(
        "html_200",
        lambda k: Reply(raw_body=b"<html><body><h1>Welcome to nginx</h1></body></html>", content_type="text/html"),
        BAD_GATEWAY,
    ),
    Fault(
        "html_502_from_proxy",
        lambda k: Reply(
            status=502,
            raw_body=b"<html><head><title>502 Bad Gateway</title></head><body>nginx at 10.1.2.3</body></html>",
            content_type="text/html",
        ),
        BAD_GATEWAY,
    ),
    Fault("text_plain", lambda k: Reply(raw_body=b"upstream connect error", content_type="text/plain"), BAD_GATEWAY),
    Fault("json_array", lambda k: Reply(raw_body=b'[{"choices": []}]'), BAD_GATEWAY),
    Fault("json_string", lambda k: Reply(raw_body=b'"ok"'), BAD_GATEWAY),
    Fault("error_in_200", lambda k: Reply(error_in_200=500), BAD_GATEWAY),
    Fault("overloaded_in_200", lambda k: Reply(error_in_200=529), frozenset({502, 503})),
    Fault("no_choices", lambda k: Reply(text=FAULTY_TEXT, body_transform=no_choices(k)), BAD_GATEWAY),
    Fault("usage_strings", lambda k: Reply(text=FAULTY_TEXT, body_transform=usage_strings(k)), BAD_GATEWAY),
    Fault("no_usage", lambda k: Reply(text=FAULTY_TEXT, body_transform=no_usage(k)), answers=True),
    Fault(
        "sse_garbage", lambda k: Reply(raw_body=b"data: {not json\n\n", content_type="text/event-stream"), BAD_GATEWAY
    ),
    Fault("non_http", lambda k: Reply(socket_fault="non_http"), BAD_GATEWAY, error_types=SERVER_ERROR),
    Fault("close_without_answer", lambda k: Reply(socket_fault="close"), BAD_GATEWAY, error_types=CONNECTION),
    Fault("reset_without_answer", lambda k: Reply(socket_fault="reset"), BAD_GATEWAY, error_types=CONNECTION),
    Fault(
        "reset_mid_body",
        lambda k: Reply(text=FAULTY_TEXT, socket_fault="reset_mid_body"),
        BAD_GATEWAY,
        breaks_stream=True,
        error_types=CONNECTION,
    ),
    Fault(
        "upstream_404",
        lambda k: Reply(status=404),
        BAD_GATEWAY,
        error_types=frozenset({"upstream_model_not_found", "all_models_failed"}),
    ),
    Fault(
        "rate_limited_no_retry_after",
        lambda k: Reply(status=429, raw_body=rate_limit_body(k)),
        frozenset({429}),
        error_types=frozenset({"rate_limited"}),
    ),
    Fault("cut_mid_stream", lambda k: Reply(text=FAULTY_TEXT, cut_after_chunks=2), answers=True, breaks_stream=True),
    Fault(
        "error_event_mid_stream",
        lambda k: Reply(text=FAULTY_TEXT, error_after_chunks=2),
        answers=True,
        breaks_stream=True,
    ),
    Fault(
        "error_event_first",
        lambda k: Reply(text=FAULTY_TEXT, error_after_chunks=0),
        answers=True,
        streamed_answers=False,
        fails=frozenset({502, 503}),
    ),
    Fault(
        "endless",
        lambda k: Reply(text=FAULTY_TEXT, endless=True),
        TIMEOUT,
        breaks_stream=True,
        slow=True,
        error_types=UPSTREAM_TIMEOUT,
    ),
    Fault(
        "drip_from_start",
        lambda k: Reply(text=FAULTY_TEXT, drip_s=0.05),
        TIMEOUT,
        slow=True,
        error_types=UPSTREAM_TIMEOUT,
    ),
    Fault(
        "drip_after_first_chunk",
        lambda k: Reply(text=FAULTY_TEXT, drip_s=0.05, drip_after_chunks=1),
        TIMEOUT,
        breaks_stream=True,
        slow=True,
    ),
]


# --- calling the gateway ------------------------------------------------------------------------------------


@dataclass
class Result:
    status: int
    headers: httpx.Headers
    content: str = ""
    error: dict[str, Any] | None = None  # the JSON error, or the stream's error event
    completed: bool = False  # a stream's [DONE] / done, or a non-streamed 200
    started: bool = False  # a stream's 200
    body: Any = None
    events: list[Any] = field(default_factory=list)

    @property
    def answered_by(self) -> str | None:
        route = self.headers.get("x-switchyard-route", "")
        return route.split("model=", 1)[1] if "model=" in route else None


def _chat_stream(result: Result, text: str) -> None:
    for block in text.split("\n\n"):
        data = "".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        if not data:
            continue
        if data == "[DONE]":
            result.completed = True
            continue
        event = json.loads(data)
        result.events.append(event)
        if "error" in event:
            result.error = event["error"]
            continue
        for choice in event.get("choices") or ():
            result.content += (choice.get("delta") or {}).get("content") or ""


def _complete_stream(result: Result, text: str) -> None:
    for block in text.split("\n\n"):
        data = "".join(line[6:] for line in block.splitlines() if line.startswith("data: "))
        if not data:
            continue
        event = json.loads(data)
        result.events.append(event)
        if event["type"] == "delta":
            result.content += event["content"]
        elif event["type"] == "done":
            result.completed = True
        elif event["type"] == "error":
            result.error = event["error"]


async def call(client: httpx.AsyncClient, endpoint: str, model: str, *, stream: bool) -> Result:
    if endpoint == "chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
        response = await client.post("/v1/chat/completions", json=body)
    else:
        body = {"prompt": PROMPT, "routing": "specific", "model": model, "stream": stream}
        response = await client.post("/v1/complete", json=body)
    result = Result(response.status_code, response.headers)
    is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
    if response.status_code == 200 and is_sse:
        result.started = True
        (_chat_stream if endpoint == "chat" else _complete_stream)(result, response.text)
        return result
    result.body = response.json()
    if response.status_code != 200:
        result.error = result.body.get("error")
        return result
    result.completed = True
    if endpoint == "chat":
        result.content = result.body["choices"][0]["message"]["content"] or ""
    else:
        result.content = result.body["content"]
    return result


# --- the checks -------------------------------------------------------------------------------------------------


def check(fault: Fault, kind: str, endpoint: str, stream: bool, fallback: bool, r: Result) -> None:
    where = f"{fault.name} {kind} {endpoint} stream={stream} fallback={fallback}: {r.status} {r.error} {r.content!r}"
    assert r.status != 500, where
    assert r.status < 500 or r.status in (502, 503, 504), where
    if r.status == 200:
        assert r.content, f"a 200 without content: {where}"
        if r.error is None:
            assert r.completed, where
        else:  # a stream that broke after it started: an error event, never [DONE]/done
            assert stream and r.started and not r.completed, where
    if r.error is not None:
        assert r.error.get("type") and r.error.get("message"), where
    if r.status == 429:
        assert int(r.headers["retry-after"]) >= 1, where

    if stream and fault.breaks_stream:
        assert r.status == 200 and r.error is not None and not r.completed, where
        assert r.answered_by == (f"{fault.prefix}-{kind}-fb" if fallback else f"{fault.prefix}-{kind}"), where
        return
    if fault.answers_for(stream):
        assert r.status == 200 and r.completed and r.error is None, where
        assert r.answered_by == (f"{fault.prefix}-{kind}-fb" if fallback else f"{fault.prefix}-{kind}"), where
        assert r.content == FAULTY_TEXT, where
        return
    if fallback and fault.fallback_helps:
        assert r.status == 200 and r.completed, where
        assert r.content == BACKUP_TEXT and r.answered_by == "backup", where
        return
    assert r.status in fault.fails, where
    assert r.error is not None, where
    if fault.error_types:
        assert r.error["type"] in fault.error_types, where


COMBOS = [(k, e, s, f) for k in KINDS for e in ("chat", "complete") for s in (False, True) for f in (False, True)]


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
async def test_fault(fault: Fault, gateway: httpx.AsyncClient, upstream: FakeUpstream) -> None:
    """One fault, every provider, both endpoints, streamed or not, with or without a fallback: all at once."""
    for kind in KINDS:
        upstream.script(f"fault-{kind}", *[fault.reply(kind) for combo in COMBOS if combo[0] == kind])

    async def one(kind: str, endpoint: str, stream: bool, fallback: bool) -> Result:
        model = f"{fault.prefix}-{kind}-fb" if fallback else f"{fault.prefix}-{kind}"
        return await call(gateway, endpoint, model, stream=stream)

    results = await asyncio.gather(*(one(*combo) for combo in COMBOS))
    for combo, result in zip(COMBOS, results, strict=True):
        check(fault, *combo, result)


# --- faults with a property of their own --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_upstream_404_is_not_retried(
    kind: str, upstream: FakeUpstream, tmp_path: Path, provider_keys: Any
) -> None:
    config = fault_config(upstream.base_url)
    config["orchestration"]["max_retries"] = 2
    path = write_config(tmp_path, config)
    upstream.script(f"fault-{kind}", Reply(status=404), Reply(status=404), Reply(status=404))
    async with app_client(path) as client:
        result = await call(client, "complete", f"f-{kind}", stream=False)
    assert result.status == 502 and result.error is not None
    assert result.error["type"] == "upstream_model_not_found"
    assert f"f-{kind}" in result.error["message"]
    assert len([r for r in upstream.requests if r.model == f"fault-{kind}"]) == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reset_is_retried_and_then_answers(
    kind: str, upstream: FakeUpstream, tmp_path: Path, provider_keys: Any
) -> None:
    config = fault_config(upstream.base_url)
    config["orchestration"] |= {"max_retries": 1, "backoff_base_s": 0.01}
    path = write_config(tmp_path, config)
    upstream.script(f"fault-{kind}", Reply(socket_fault="reset"), Reply(text=FAULTY_TEXT))
    async with app_client(path) as client:
        result = await call(client, "complete", f"f-{kind}", stream=False)
    assert result.status == 200 and result.content == FAULTY_TEXT
    assert result.body["retries"] == 1


@pytest.mark.parametrize("kind", KINDS)
async def test_upstream_messages_lose_urls_hosts_and_addresses(
    kind: str, gateway: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    message = (
        "model overloaded; see https://status.internal.example.com/incidents/42 "
        "(backend llm-7.pool.svc.cluster.local at 10.20.30.40:8443)"
    )
    upstream.script(f"fault-{kind}", Reply(status=503, error_message=message))
    result = await call(gateway, "complete", f"f-{kind}", stream=False)
    assert result.status == 503, result.body
    text = json.dumps(result.body)
    for leak in ("status.internal", "https://", "svc.cluster.local", "10.20.30.40", "llm-7"):
        assert leak not in text, text
    assert "overloaded" in result.error["message"]  # type: ignore[index]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("endpoint", ["chat", "complete"])
async def test_a_stalled_stream_ends_at_the_idle_timeout(
    kind: str, endpoint: str, gateway: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    """``idle_timeout_s`` (0.3 s) ends a stream whose upstream stops sending after its first chunk, long
    before the model's ``timeout_s`` (5 s) or the request's deadline (2 s): an error event, never the end."""
    upstream.script(f"fault-{kind}", Reply(text="one two three", chunk_delay_s=30))
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await call(gateway, endpoint, f"s-{kind}", stream=True)
    elapsed = loop.time() - began
    assert result.status == 200 and result.started and not result.completed
    assert result.content == "one "
    assert result.error is not None and result.error["type"] == "upstream_stream_error"
    assert elapsed < DEADLINE_S - 0.2, elapsed  # the idle timeout, not the deadline, ended it


@pytest.mark.parametrize("kind", KINDS)
async def test_a_slow_healthy_stream_outlives_timeout_s(
    kind: str, gateway: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    """``timeout_s`` is time to first byte and idle gap, never the length of a stream: 6 chunks 0.15 s
    apart (about 0.9 s in all) pass a model whose ``timeout_s`` is 0.5 s."""
    text = "a b c d e f"
    upstream.script(f"fault-{kind}", Reply(text=text, chunk_delay_s=0.15))
    result = await call(gateway, "complete", f"t-{kind}", stream=True)
    assert result.status == 200 and result.completed, result.events
    assert result.content == text


def _access_fields(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.name == "switchyard.access" and hasattr(r, "fields")]


def _sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(
    ("what", "model", "reply"),
    [
        ("idle timeout", "s-anthropic", Reply(text="one two three", chunk_delay_s=30)),
        ("deadline", "f-google", Reply(text=FAULTY_TEXT, endless=True)),
    ],
)
async def test_a_stream_ended_by_a_timeout_is_counted_and_charged(
    what: str, model: str, reply: Reply, gateway: httpx.AsyncClient, upstream: FakeUpstream, caplog: Any
) -> None:
    """The request's log line and the metrics carry what was used: the upstream sent no usage, so the
    prompt and the text streamed so far are estimated, and flagged so."""
    upstream.script(f"fault-{model.split('-', 1)[1]}", reply)
    provider = model.split("-", 1)[1]
    before = _sample("switchyard_tokens_total", model=model, provider=provider, direction="output")
    cost_before = _sample("switchyard_cost_usd_total", model=model, provider=provider)
    caplog.set_level("INFO", logger="switchyard.access")
    result = await call(gateway, "complete", model, stream=True)
    assert result.started and not result.completed and result.error is not None, what
    [line] = [f for f in _access_fields(caplog) if f["model"] == model]
    assert line["outcome"] == "upstream_stream_error" and line["stream"] is True
    assert line["input_tokens"] > 0 and line["output_tokens"] >= 1
    assert line["estimated"] is True and line["cost"] > 0
    assert _sample("switchyard_tokens_total", model=model, provider=provider, direction="output") > before
    assert _sample("switchyard_cost_usd_total", model=model, provider=provider) > cost_before


@pytest.mark.parametrize("kind", KINDS)
async def test_an_answer_without_usage_is_charged_an_estimate(
    kind: str, gateway: httpx.AsyncClient, upstream: FakeUpstream
) -> None:
    upstream.script(f"fault-{kind}", Reply(text=FAULTY_TEXT, body_transform=no_usage(kind)))
    result = await call(gateway, "complete", f"f-{kind}", stream=False)
    assert result.status == 200 and result.content == FAULTY_TEXT
    assert result.body["tokens"]["input"] > 0 and result.body["tokens"]["output"] > 0
    assert result.body["cost"] > 0
