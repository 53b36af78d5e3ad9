"""The SDK HTTP client choice: the SDK's aiohttp client by default, httpx when asked."""

from __future__ import annotations

import anthropic
import openai
import pytest

from app.providers.http import HTTP_CLIENT_ENV, sdk_http_client


@pytest.mark.parametrize("sdk", [openai, anthropic])
def test_aiohttp_client_by_default(sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HTTP_CLIENT_ENV, raising=False)
    client = sdk_http_client(sdk, 7.0)
    assert isinstance(client, sdk.DefaultAioHttpClient)
    assert client.timeout.read == 7.0


@pytest.mark.parametrize("sdk", [openai, anthropic])
def test_httpx_when_asked(sdk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HTTP_CLIENT_ENV, "httpx")
    assert sdk_http_client(sdk, 7.0) is None


def test_provider_uses_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.providers.openai import OpenAIProvider

    monkeypatch.delenv(HTTP_CLIENT_ENV, raising=False)
    provider = OpenAIProvider.create(api_key=None, api_base="http://127.0.0.1:9/v1", timeout_s=3.0)
    assert isinstance(provider._client._client, openai.DefaultAioHttpClient)
