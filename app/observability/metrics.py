"""Every Prometheus metric of Switchyard, defined once, with bounded labels only.

Labels are drawn from the catalogue and fixed vocabularies (model, provider, route strategy, status class,
error type, outcome); never a user value or a prompt. Call sites use the ``record_*`` helpers below.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from app.observability.multiproc import multiprocess_dir

disable_created_metrics()  # the *_created series double the scrape size and no dashboard uses them

# LLM latencies range from tens of milliseconds (cache hits, tiny models) to minutes (long generations).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
# The first token comes sooner: finer resolution between 100 ms and 3 s, where interactive use lives.
TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "switchyard_requests_total",
    "Gateway requests by route strategy and outcome.",
    ["route", "status_class", "outcome"],
)
REQUEST_LATENCY = Histogram(
    "switchyard_request_duration_seconds", "End-to-end request latency.", ["route"], buckets=LATENCY_BUCKETS
)
UPSTREAM_LATENCY = Histogram(
    "switchyard_upstream_duration_seconds",
    "Latency of one upstream call.",
    ["model", "provider"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "switchyard_time_to_first_token_seconds",
    "Time to first streamed token.",
    ["model", "provider"],
    buckets=TTFT_BUCKETS,
)
TOKENS = Counter("switchyard_tokens_total", "Tokens by model and direction.", ["model", "provider", "direction"])
COST = Counter("switchyard_cost_usd_total", "Cost in USD by model.", ["model", "provider"])
UPSTREAM_ERRORS = Counter(
    "switchyard_upstream_errors_total",
    "Failed upstream calls by error type.",
    ["model", "provider", "error_type"],
)
RETRIES = Counter("switchyard_retries_total", "Retries of an upstream call.", ["model", "provider"])
FALLBACKS = Counter("switchyard_fallbacks_total", "Moves from a failed model to the next.", ["from_model", "to_model"])
BREAKER_STATE = Gauge(
    "switchyard_circuit_breaker_state",
    "Circuit state per model: 0 closed, 1 half-open, 2 open.",
    ["model"],
    multiprocess_mode="max",
)
IN_FLIGHT = Gauge("switchyard_requests_in_flight", "Requests being served.", multiprocess_mode="livesum")
# Virtual keys (app/governance): labelled by key *name*, capped per process (``SWITCHYARD_METRICS_MAX_KEY_NAMES``,
# the rest as "other"); never by secret.
KEY_REQUESTS = Counter("switchyard_key_requests_total", "Requests admitted per virtual key.", ["key"])
KEY_REJECTIONS = Counter(
    "switchyard_key_rejections_total", "Requests refused per virtual key and reason.", ["key", "reason"]
)
KEY_SPEND = Counter("switchyard_key_spend_usd_total", "Exact cost of calls per key and model.", ["key", "model"])
KEY_TOKENS = Counter("switchyard_key_tokens_total", "Tokens per key and direction.", ["key", "direction"])
AUTH_FAILURES = Counter("switchyard_auth_failures_total", "Refused authentications by reason.", ["reason"])

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


_children: dict[tuple[Any, tuple[str, ...]], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once per label set: ``labels()`` takes a lock and rebuilds the
    label key on every call, and a successful upstream call touches four series. Labels are catalogue
    names, key names (``KeyLabels`` bounds them) and fixed vocabularies, so the cache is as bounded as the
    series; a child is created on first use, exactly when ``labels()`` would have created it."""
    key = (metric, labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def record_upstream_call(
    model: str, provider: str, seconds: float, input_tokens: int, output_tokens: int, cost: float | None
) -> None:
    """A successful upstream call: latency, tokens and cost."""
    _child(UPSTREAM_LATENCY, model, provider).observe(seconds)
    _child(TOKENS, model, provider, "input").inc(input_tokens)
    _child(TOKENS, model, provider, "output").inc(output_tokens)
    if cost is not None:  # unknown price: no cost series rather than a misleading 0
        _child(COST, model, provider).inc(cost)


def record_upstream_error(model: str, provider: str, error_type: str) -> None:
    UPSTREAM_ERRORS.labels(model, provider, error_type).inc()


def record_ttft(model: str, provider: str, seconds: float) -> None:
    _child(TTFT, model, provider).observe(seconds)


def record_retry(model: str, provider: str) -> None:
    RETRIES.labels(model, provider).inc()


def record_fallback(from_model: str, to_model: str) -> None:
    FALLBACKS.labels(from_model, to_model).inc()


def set_breaker_state(model: str, state: str) -> None:
    """``state`` is one of closed, half_open, open."""
    BREAKER_STATE.labels(model).set(BREAKER_VALUES[state])


def record_key_request(key: str) -> None:
    _child(KEY_REQUESTS, key).inc()


def record_key_rejection(key: str, reason: str) -> None:
    KEY_REJECTIONS.labels(key, reason).inc()


def record_key_spend(key: str, model: str, cost: float, input_tokens: int, output_tokens: int) -> None:
    if cost > 0:
        _child(KEY_SPEND, key, model).inc(cost)
    if input_tokens:
        _child(KEY_TOKENS, key, "input").inc(input_tokens)
    if output_tokens:
        _child(KEY_TOKENS, key, "output").inc(output_tokens)


def record_auth_failure(reason: str) -> None:
    """``reason``: missing, invalid, revoked, expired, locked_out."""
    AUTH_FAILURES.labels(reason).inc()


def render() -> tuple[bytes, str]:
    """The Prometheus text exposition of every metric (summed over workers in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int | None = None) -> None:
    """On worker exit in multiprocess mode: drop the worker's live gauges (requests in flight)."""
    if multiprocess_dir():
        _multiprocess.mark_process_dead(pid or os.getpid())
