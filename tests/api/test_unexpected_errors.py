"""A bug in a handler: one 500 in the gateway's JSON shape, logged once with the request id, and the client's
keep-alive connection stays usable (a real uvicorn server on 127.0.0.1 with the limited protocol)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn

from app.api.http_limits import ConnectionLimits, LimitedHttpToolsProtocol
from app.main import create_app
from app.observability.logging import JsonFormatter
from app.settings.settings import Settings
from tests.api.raw_http import Connection, free_port, request
from tests.support import fake_models, write_config


class Lines(logging.Handler):
    """Formats each record at once (inside the request, where the request id is known)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(self.format(record)))


@pytest.fixture
def server(tmp_path: Path, provider_keys: dict[str, str]) -> Iterator[tuple[int, Lines]]:
    path = write_config(tmp_path, {"models": fake_models("http://127.0.0.1:9")})
    app = create_app(Settings(config=path))

    async def boom() -> None:
        raise RuntimeError("a bug with a secret sk-abcdefghijklmnopqrstuvwxyz in it")

    app.add_api_route("/boom", boom, methods=["GET"])
    port = free_port()
    protocol = LimitedHttpToolsProtocol.with_limits(ConnectionLimits())
    config = uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol, log_config=None, lifespan="on")
    config.install_signal_handlers = False  # type: ignore[attr-defined]
    server = uvicorn.Server(config)
    lines = Lines()
    loggers = [logging.getLogger(name) for name in ("switchyard", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(lines)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.02)
    try:
        yield port, lines
    finally:
        server.should_exit = True
        thread.join(10)
        for logger in loggers:
            logger.removeHandler(lines)


def test_a_bug_is_one_json_500_logged_once_and_the_connection_survives(server: tuple[int, Lines]) -> None:
    port, lines = server
    connection = Connection.open(port)
    try:
        answer = connection.exchange(request("GET", "/boom", headers={"x-request-id": "bug-1"}))
        assert answer.status == 500
        assert answer.json()["error"]["type"] == "internal_error"
        assert b"secret" not in answer.body and b"sk-" not in answer.body
        assert "close" not in answer.headers.get("connection", "")
        assert connection.exchange(request("GET", "/health")).status == 200  # the same connection
    finally:
        connection.close()
    errors = [line for line in lines.lines if line["level"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["request_id"] == "bug-1" and errors[0]["logger"] == "switchyard.errors"
    assert "RuntimeError" in errors[0]["exc"] and "sk-abcdefghijklmnop" not in str(errors[0])
    access = [line for line in lines.lines if line.get("request_id") == "bug-1" and line["msg"] == "request"]
    assert len(access) == 1 and access[0]["status"] == 500 and access[0]["outcome"] == "internal_error"
