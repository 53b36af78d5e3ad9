"""The Host allow-list: loopback names on a loopback address by default, or the configured names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.api.host_guard import HostGuardMiddleware, HostPolicy, is_loopback

DEFAULT = HostPolicy.parse(None)


@pytest.mark.parametrize(
    ("host", "local", "allowed"),
    [
        ("localhost", "127.0.0.1", True),
        ("localhost:8000", "127.0.0.1", True),
        ("LOCALHOST.", "127.0.0.1", True),
        ("api.localhost", "127.0.0.1", True),
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("127.9.9.9", "127.0.0.1", True),
        ("[::1]:8000", "::1", True),
        ("::1", "::1", True),
        ("evil.example", "127.0.0.1", False),  # DNS rebinding: a page's own name, resolved to 127.0.0.1
        ("evil.example:8000", "::1", False),
        ("localhost.evil.example", "127.0.0.1", False),
        ("10.0.0.5", "127.0.0.1", False),
        ("evil.example", "::ffff:127.0.0.1", False),
        ("evil.example", "10.0.0.5", True),  # not on loopback: the gateway cannot know its public names
        ("api.example.com", "0.0.0.0", True),
        ("anything", "gateway", True),  # an in-process test transport: not a socket address
        ("anything", None, True),
    ],
)
def test_default_policy(host: str, local: str | None, allowed: bool) -> None:
    from app.api.host_guard import _hostname

    assert DEFAULT.allows(_hostname(host), local) is allowed


@pytest.mark.parametrize(
    ("setting", "host", "allowed"),
    [
        ("api.example.com", "api.example.com", True),
        ("api.example.com", "API.Example.com:443", True),
        ("api.example.com", "localhost", False),
        ("api.example.com, localhost", "localhost", True),
        ("*.example.com", "eu.api.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "evilexample.com", False),
        ("*", "whatever.example", True),
        ("", "evil.example", False),  # empty means the default rule (on loopback here)
    ],
)
def test_configured_policy(setting: str, host: str, allowed: bool) -> None:
    from app.api.host_guard import _hostname

    assert HostPolicy.parse(setting).allows(_hostname(host), "127.0.0.1") is allowed


def test_loopback_names() -> None:
    assert is_loopback("localhost") and is_loopback("127.0.0.1") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.com")


async def _run(host: bytes | None, server: tuple[str, int]) -> tuple[int, Any]:
    called: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    headers = [] if host is None else [(b"host", host)]
    scope = {"type": "http", "headers": headers, "server": server, "path": "/", "method": "GET"}
    await HostGuardMiddleware(app, DEFAULT)(scope, receive, send)
    status = sent[0]["status"]
    body = json.loads(sent[1]["body"]) if status != 200 else None
    assert bool(called) == (status == 200)
    return status, body


async def test_a_foreign_host_on_loopback_is_421_json() -> None:
    status, body = await _run(b"evil.example", ("127.0.0.1", 8000))
    assert status == 421
    assert body["error"]["type"] == "misdirected_request" and "evil.example" in body["error"]["message"]


async def test_loopback_names_and_a_missing_host_pass() -> None:
    assert (await _run(b"localhost:8000", ("127.0.0.1", 8000)))[0] == 200
    assert (await _run(None, ("127.0.0.1", 8000)))[0] == 200


@pytest.mark.parametrize(
    ("method", "host", "origin", "fetch_site", "allowed_origins", "cross"),
    [
        ("POST", "127.0.0.1:8000", "https://evil.example", None, None, True),  # a page elsewhere posting text/plain
        ("POST", "127.0.0.1:8000", "null", None, None, True),  # a sandboxed frame or a file:// page
        ("POST", "127.0.0.1:8000", None, "cross-site", None, True),
        ("DELETE", "localhost:8000", "http://localhost:9000", None, None, True),  # another port is another origin
        ("POST", "127.0.0.1:8000", "http://127.0.0.1:8000", "same-origin", None, False),  # the gateway's own page
        ("POST", "LOCALHOST:8000", "http://localhost:8000/", None, None, False),
        ("POST", "127.0.0.1:8000", None, "same-site", None, False),
        ("POST", "127.0.0.1:8000", None, "none", None, False),  # typed in by the user
        ("GET", "127.0.0.1:8000", "https://evil.example", "cross-site", None, False),  # reads need CORS anyway
        ("POST", "gw:8000", "https://app.example.com", "cross-site", "https://app.example.com", False),
        ("POST", "gw:8000", "https://other.example.com", None, "https://app.example.com", True),
        ("POST", "gw:8000", "https://evil.example", "cross-site", "*", False),
    ],
)
def test_cross_site_rule(
    method: str, host: str, origin: str | None, fetch_site: str | None, allowed_origins: str | None, cross: bool
) -> None:
    assert HostPolicy.parse(None, allowed_origins).cross_site(method, host, origin, fetch_site) is cross


async def test_a_cross_site_post_is_403_json_and_never_reaches_the_app() -> None:
    called: list[bool] = []
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", b"https://evil.example"), (b"content-type", b"text/plain")]
    scope = {"type": "http", "headers": headers, "server": ("127.0.0.1", 8000), "path": "/", "method": "POST"}
    await HostGuardMiddleware(app, DEFAULT)(scope, receive, send)
    assert not called and sent[0]["status"] == 403
    assert json.loads(sent[1]["body"])["error"]["type"] == "cross_site_request"


async def test_one_guard_keeps_each_verdict_apart_and_bounded() -> None:
    """The guard remembers its verdict per Host value and local address: an allowed name stays allowed and a
    refused one refused on the same guard, the same name on another address gets its own verdict, and a client
    sending endless names does not grow the memory past its bound."""
    from app.api import host_guard

    statuses: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = HostGuardMiddleware(app, DEFAULT)

    async def status(host: bytes, local: str) -> int:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "headers": [(b"host", host)], "server": (local, 8000), "path": "/", "method": "GET"}
        await guard(scope, None, send)
        statuses.append(sent[0]["status"])
        return sent[0]["status"]

    for _ in range(2):
        assert await status(b"localhost:8000", "127.0.0.1") == 200
        assert await status(b"evil.example", "127.0.0.1") == 421
        assert await status(b"evil.example", "10.0.0.5") == 200
    for n in range(host_guard.MAX_VERDICTS + 10):
        assert await status(f"guess{n}.example".encode(), "127.0.0.1") == 421
    assert len(guard._verdicts) <= host_guard.MAX_VERDICTS
    assert await status(b"localhost", "127.0.0.1") == 200
