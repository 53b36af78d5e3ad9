"""The hot POST endpoints are dispatched without FastAPI's router (``app.api.direct_routes``), and answer
exactly as the routed endpoints do: errors through the app's exception handlers in the caller's protocol,
other methods still 405, a ``root_path`` prefix honoured, and a handler exception nobody handles a 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.api.direct_routes import DirectRoutes
from app.main import DIRECT_ROUTES


async def test_every_direct_route_is_also_declared_on_the_app(chat_app: Any) -> None:
    paths = chat_app.openapi()["paths"]
    for path in DIRECT_ROUTES:
        assert "post" in paths[path], path


async def test_answers_and_errors_are_those_of_the_routed_endpoint(chat_raw: httpx.AsyncClient) -> None:
    ok = await chat_raw.post(
        "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert ok.status_code == 200 and ok.json()["object"] == "chat.completion"
    assert ok.headers["x-switchyard-provider"] == "openai" and ok.headers["x-request-id"]
    bad = await chat_raw.post("/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    missing = await chat_raw.post("/v1/chat/completions", json={"model": "nope", "messages": []})
    assert missing.status_code in (400, 404) and "error" in missing.json()
    anthropic = await chat_raw.post("/v1/messages", content=b"[]", headers={"anthropic-version": "2023-06-01"})
    assert anthropic.status_code == 400 and anthropic.json()["type"] == "error"


async def test_other_methods_still_reach_fastapi(chat_raw: httpx.AsyncClient) -> None:
    answer = await chat_raw.get("/v1/chat/completions")
    assert answer.status_code == 405 and "error" in answer.json()


async def test_a_root_path_prefix_is_stripped_before_matching(chat_app: Any) -> None:
    transport = httpx.ASGITransport(app=chat_app, root_path="/gw")
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        answer = await client.post(
            "/gw/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert answer.status_code == 200 and answer.json()["object"] == "chat.completion"


async def test_an_exception_no_handler_takes_goes_on_unchanged() -> None:
    class Bug(Exception):
        pass

    async def handler(request: Any, gateway: Any) -> Any:
        raise Bug("boom")

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not reached")

    class State:
        gateway = None

    class App:
        state = State()
        exception_handlers: dict[Any, Any] = {Exception: lambda *_: None}

    direct = DirectRoutes(app, {"/x": handler})
    scope = {"type": "http", "method": "POST", "path": "/x", "root_path": "", "headers": [], "app": App()}
    with pytest.raises(Bug):
        await direct(scope, None, None)  # type: ignore[arg-type]
