"""JSON log lines for Switchyard and uvicorn, with the request id and without secrets.

Every record becomes one JSON object on one line: ``ts``, ``level``, ``logger``, ``msg``, ``request_id``
(from the current request, when there is one) and any ``extra={"fields": {...}}`` merged in. As a safety net
the final line is scrubbed of secret values: environment variables named like keys, tokens or passwords,
values registered with ``register_secret`` (the provider keys the registry loaded), and common key shapes.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from app.observability.context import current_request_id

REDACTED = "[REDACTED]"
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
# OpenAI/Anthropic style (sk-..., sk-ant-...), Google API keys (AIza...), and bearer tokens.
SECRET_SHAPES = re.compile(r"sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{30,}|(?<=Bearer )[A-Za-z0-9._\-]{12,}")
MIN_SECRET_LEN = 8

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Never let ``value`` appear in a log line (short values are ignored: they would redact words)."""
    if value and len(value) >= MIN_SECRET_LEN:
        _secrets.add(value)


def register_env_secrets(env: Mapping[str, str] | None = None) -> None:
    """Register the values of environment variables whose names look like keys, tokens or passwords."""
    for name, value in (os.environ if env is None else env).items():
        if SECRET_NAME.search(name):
            register_secret(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and every key-shaped string replaced."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    if "sk-" in text or "AIza" in text or "Bearer " in text:  # substring tests are far cheaper than the regex
        text = SECRET_SHAPES.sub(REDACTED, text)
    return text


class _Clock:
    """ISO-8601 UTC timestamps with milliseconds; the seconds part is formatted once per second."""

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def stamp(self, created: float) -> str:
        second = int(created)
        if second != self.second:
            self.second = second
            self.prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self.prefix}.{int((created - second) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": self._clock.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id:
            payload["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            payload.update(fields)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact(orjson.dumps(payload, default=str).decode())


class RecordMaker:
    """The records of one logger, level and message (the access log's line per request), made as
    ``logger.makeRecord`` makes them but without ``LogRecord.__init__``'s lookups per record (file name,
    thread name, process name, pid): those are taken once per thread (again after a fork) from a record
    made the ordinary way, and only the times are new. A custom ``logging.setLogRecordFactory`` is honoured:
    then every record is made by it."""

    def __init__(self, logger: logging.Logger, level: int, msg: str) -> None:
        self.logger, self.level, self.msg = logger, level, msg
        self._templates: dict[tuple[int, int], tuple[dict[str, Any], float, float]] = {}

    def make(self, fields: dict[str, Any]) -> logging.LogRecord:
        if logging.getLogRecordFactory() is not logging.LogRecord:
            extra = {"fields": fields}
            return self.logger.makeRecord(self.logger.name, self.level, "", 0, self.msg, (), None, extra=extra)
        key = (threading.get_ident(), os.getpid())
        template = self._templates.get(key)
        if template is None:
            first = logging.LogRecord(self.logger.name, self.level, "", 0, self.msg, (), None)
            template = self._templates[key] = (dict(first.__dict__), first.created, first.relativeCreated)
        values, created0, relative0 = template
        record = logging.LogRecord.__new__(logging.LogRecord)
        state = record.__dict__
        state.update(values)
        created = time.time()
        state["created"] = created
        state["msecs"] = int((created - int(created)) * 1000) + 0.0
        state["relativeCreated"] = relative0 + (created - created0) * 1000.0
        state["fields"] = fields
        return record


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (survives pytest's capture swapping streams)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler.__init__ assigns it
        pass


_MARK = "_switchyard_json"


def configure_logging(level: str | int = "info", handler: logging.Handler | None = None) -> logging.Handler:
    """Send the ``switchyard`` loggers to one JSON handler (stderr by default); idempotent.

    Records still propagate, so test tools that listen on the root logger keep working.
    """
    logger = logging.getLogger("switchyard")
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    logger.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    register_env_secrets()
    for existing in logger.handlers:
        if getattr(existing, _MARK, False) and handler is None:
            return existing
    if handler is None:
        handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    setattr(handler, _MARK, True)
    logger.addHandler(handler)
    return handler


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``uvicorn.run(log_config=...)``: uvicorn's own messages as JSON
    too (its access log is redundant with ours: pass ``access_log=False``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.observability.logging.JsonFormatter"}},
        "handlers": {"stderr": {"class": "app.observability.logging.StderrHandler", "formatter": "json"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
