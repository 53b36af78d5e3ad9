"""A real ``switchyard serve`` on 127.0.0.1 at its boundaries: error answers keep the connection, each failure
is one log line with its request id, the HTTP limits (header count and size, head deadline, silent and idle
connections, connections per worker), the Host allow-list, and clients that hang up.

The server runs with small limits (see ``ENV``) so that the tests stay short; every wait is bounded and
generous (several times the limit it checks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.raw_http import Connection, Served, request, serve, sse_data
from tests.fakes.scripts import Reply
from tests.fakes.server import FakeUpstream
from tests.support import TEST_KEYS, write_config

ENV = {
    "SWITCHYARD_MAX_HEADER_COUNT": "30",
    "SWITCHYARD_MAX_HEADER_BYTES": "8192",
    "SWITCHYARD_HEADER_TIMEOUT_S": "1",
    "SWITCHYARD_KEEPALIVE_S": "1.5",
    "SWITCHYARD_MAX_CONNECTIONS": "40",
    "SWITCHYARD_MAX_IDLE_CONNECTIONS": "3",
    "SWITCHYARD_BODY_TIMEOUT_S": "1",
}


def catalogue(base_url: str) -> dict[str, Any]:
    return {
        "models": {
            "ok": {"provider": "openai", "model": "ok-model", "api_base": f"{base_url}/v1", "timeout_s": 30},
            "slow": {
                "provider": "anthropic",
                "model": "slow-model",
                "api_base": base_url,
                "timeout_s": 30,
                "cost_per_1k_input": 1.0,
                "cost_per_1k_output": 2.0,
            },
        },
        "orchestration": {"max_retries": 0, "breaker": {"enabled": False}},
    }


@pytest.fixture(scope="module")
def gateway(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    path = write_config(tmp, catalogue(fake_upstream.base_url))
    with serve(path, tmp / "gateway.log", {**TEST_KEYS, **ENV}) as served:
        yield served


@pytest.fixture
def conn(gateway: Served) -> Iterator[Connection]:
    connection = Connection.open(gateway.port)
    yield connection
    connection.close()


def complete(model: str = "ok", **extra: Any) -> dict[str, Any]:
    return {"prompt": "hello there", "routing": "specific", "model": model, **extra}


# --- error answers keep the connection; one log line each ------------------------------------------------


def test_the_keep_alive_connection_survives_4xx_and_5xx_answers(
    conn: Connection, gateway: Served, upstream: FakeUpstream
) -> None:
    upstream.script("ok-model", Reply(status=500), Reply(raw_body=b"<html>oops</html>", content_type="text/html"))
    upstream.script("ok-model", Reply(status=429, raw_body=b'{"error": {"message": "slow down"}}'))
    upstream.script("ok-model", Reply(socket_fault="reset"))
    chat = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    exchanges = [
        (request("POST", "/v1/chat/completions", body=chat), 404),
        (request("POST", "/v1/complete", body=b"{not json"), 400),
        (request("POST", "/v1/complete", body=b'{"prompt": "hi", "max_cost": Infinity}'), 400),
        (request("POST", "/v1/complete", body=b'{"prompt": "\\ud800"}'), 400),
        (request("GET", "/v1/nothing-here"), 404),
        (request("POST", "/v1/complete", body=complete()), 502),  # upstream 500
        (request("POST", "/v1/complete", body=complete()), 502),  # upstream HTML
        (request("POST", "/v1/complete", body=complete(stream=True)), 429),  # no Retry-After upstream
        (request("POST", "/v1/complete", body=complete()), 502),  # upstream reset
        (request("POST", "/v1/complete", body=complete()), 200),
    ]
    for data, status in exchanges:
        answer = conn.exchange(data)
        assert answer.status == status, answer.body
        assert "close" not in answer.headers.get("connection", ""), answer.headers
        if status >= 400:
            assert answer.headers["content-type"].startswith("application/json")
            assert answer.json()["error"]["type"]
        if status == 429:
            assert int(answer.headers["retry-after"]) >= 1
    assert not conn.closed and conn.is_open()


def test_each_failure_is_logged_once_with_its_request_id(
    conn: Connection, gateway: Served, upstream: FakeUpstream
) -> None:
    upstream.script("ok-model", Reply(raw_body=b"[1, 2, 3]"))
    answer = conn.exchange(request("POST", "/v1/complete", body=complete(), headers={"x-request-id": "fault-once-1"}))
    assert answer.status == 502 and answer.headers["x-request-id"] == "fault-once-1"
    line = gateway.wait_for_line(lambda line: line.get("request_id") == "fault-once-1" and line.get("msg") == "request")
    assert line["status"] == 502 and line["outcome"] == "upstream_server_error"
    time.sleep(0.2)
    assert len(gateway.lines_of("fault-once-1")) == 1, gateway.lines_of("fault-once-1")
    assert not [x for x in gateway.log_lines() if x.get("level") == "error" and "fault-once" in str(x)]


# --- the HTTP limits ---------------------------------------------------------------------------------------


def _rejected(connection: Connection, status: int, error_type: str) -> None:
    answer = connection.read()
    assert answer.status == status, answer
    assert answer.headers["connection"] == "close"
    assert answer.json()["error"]["type"] == error_type
    assert connection.wait_closed(5)


def test_too_many_headers_is_431(conn: Connection) -> None:
    headers = {f"x-extra-{i}": "1" for i in range(40)}
    conn.send(request("GET", "/health", headers=headers))
    _rejected(conn, 431, "request_header_fields_too_large")


def test_a_head_too_large_is_431(conn: Connection) -> None:
    conn.send(request("GET", "/health", headers={"x-big": "a" * 9000}))
    _rejected(conn, 431, "request_header_fields_too_large")


def test_a_huge_header_is_refused_before_it_is_all_sent(conn: Connection) -> None:
    conn.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-huge: ")
    sent = 0
    try:
        for _ in range(2000):  # up to 16 MB, the server must stop us long before
            conn.send(b"a" * 8192)
            sent += 8192
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert sent < 4 * 1024 * 1024
    assert conn.wait_closed(5)


def test_a_head_sent_a_byte_at_a_time_gets_408(conn: Connection) -> None:
    conn.send(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    began = time.monotonic()
    answer = None
    try:
        for _ in range(100):  # one header byte every 0.1 s: would take 10 s; the head deadline is 1 s
            conn.send(b"x")
            time.sleep(0.1)
            conn.sock.settimeout(0.001)
            try:
                if conn._fill():
                    break
            except TimeoutError:
                continue
    except (BrokenPipeError, ConnectionResetError):
        pass
    conn.sock.settimeout(5)
    answer = conn.read()
    assert answer.status == 408 and answer.json()["error"]["type"] == "request_timeout"
    assert time.monotonic() - began < 5


@pytest.mark.parametrize(
    ("path", "error_type"), [("/v1/complete", "payload_too_large"), ("/v1/messages", "request_too_large")]
)
def test_a_body_too_large_is_413_and_the_rest_is_not_read(conn: Connection, path: str, error_type: str) -> None:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    conn.send(f"{head}Content-Length: {64 * 1024 * 1024}\r\n\r\n".encode())  # the body never follows
    _rejected(conn, 413, error_type)  # in the caller's protocol: Anthropic's shape on /v1/messages


def test_a_body_sent_a_byte_at_a_time_gets_408(conn: Connection) -> None:
    head = "POST /v1/complete HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    conn.send(f"{head}Content-Length: 1000\r\n\r\n{{".encode())
    began = time.monotonic()
    try:
        for _ in range(50):  # a byte every 0.1 s would take 100 s; the body deadline is 1 s
            time.sleep(0.1)
            conn.send(b" ")
            if not conn.is_open() or conn.buffer:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    conn.sock.settimeout(5)
    _rejected(conn, 408, "request_timeout")
    assert time.monotonic() - began < 5


def test_a_connection_that_never_sends_is_closed(conn: Connection) -> None:
    began = time.monotonic()
    assert conn.wait_closed(15)  # keep-alive timeout 1.5 s
    assert time.monotonic() - began < 15


def test_idle_keep_alive_connections_are_capped(gateway: Served) -> None:
    connections = [Connection.open(gateway.port) for _ in range(7)]
    try:
        for connection in connections:
            assert connection.exchange(request("GET", "/health")).status == 200
        time.sleep(0.3)  # well within the keep-alive timeout (1.5 s)
        still_open = [c for c in connections if c.is_open()]
        assert len(still_open) <= 3, len(still_open)  # SWITCHYARD_MAX_IDLE_CONNECTIONS
        assert len(still_open) >= 1
    finally:
        for connection in connections:
            connection.close()


def test_connections_beyond_the_cap_get_503(gateway: Served) -> None:
    connections: list[Connection] = []
    try:
        for _ in range(50):  # SWITCHYARD_MAX_CONNECTIONS is 40
            connections.append(Connection.open(gateway.port))
        refused = 0
        for connection in connections[40:]:
            connection.sock.settimeout(5)
            answer = connection.read()
            assert answer.status == 503 and answer.json()["error"]["type"] == "too_many_connections"
            refused += 1
        assert refused == 10
    finally:
        for connection in connections:
            connection.close()
    deadline = time.monotonic() + 10
    while True:  # once they are gone, new connections are served again
        fresh = Connection.open(gateway.port)
        try:
            if fresh.exchange(request("GET", "/health")).status == 200:
                break
        except EOFError:
            pass
        finally:
            fresh.close()
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("host", "status"),
    [("evil.example", 421), ("evil.example:8000", 421), ("localhost", 200), ("127.0.0.1:1234", 200), ("[::1]", 200)],
)
def test_the_host_allow_list_on_loopback(conn: Connection, host: str, status: int) -> None:
    answer = conn.exchange(request("GET", "/health", host=host))
    assert answer.status == status
    if status == 421:
        assert answer.json()["error"]["type"] == "misdirected_request"


# --- clients that hang up ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "stream"), [("complete", False), ("complete", True), ("chat", False), ("chat", True)]
)
def test_a_client_that_hangs_up_cancels_the_upstream_call_and_is_logged_499(
    endpoint: str, stream: bool, gateway: Served, upstream: FakeUpstream
) -> None:
    # non-streamed: the upstream is still thinking; streamed: it sent two words and stalls
    reply = Reply(text="one two three four", chunk_delay_s=30) if stream else Reply(text="late", delay_s=30)
    upstream.script("slow-model", reply)
    request_id = f"hang-up-{endpoint}-{stream}"
    connection = Connection.open(gateway.port)
    if endpoint == "chat":
        path, body = "/v1/chat/completions", {"model": "slow", "messages": [{"role": "user", "content": "hello"}]}
        body["stream"] = stream
    else:
        path, body = "/v1/complete", complete("slow", stream=stream)
    connection.send(request("POST", path, body=body, headers={"x-request-id": request_id}))
    upstream.wait_for_requests(1, timeout=10)
    if stream:
        connection.sock.settimeout(10)
        while b"delta" not in connection.buffer:
            assert connection._fill()
    connection.close()
    upstream.wait_for_disconnects(1, timeout=10)  # the gateway closed its upstream call at once
    line = gateway.wait_for_line(lambda line: line.get("request_id") == request_id and line.get("msg") == "request")
    assert line["status"] == 499 and line["outcome"] == "client_disconnected"
    assert line["input_tokens"] > 0 and line["estimated"] is True
    assert line["cost"] is not None and line["cost"] > 0
    if stream:
        assert line["output_tokens"] >= 1


def test_a_stream_is_answered_with_sse(conn: Connection, upstream: FakeUpstream) -> None:
    upstream.script("ok-model", Reply(text="a b c"))
    answer = conn.exchange(request("POST", "/v1/complete", body=complete(stream=True)))
    assert answer.status == 200
    assert [d for d in sse_data(answer.body) if '"done"' in d]
