"""The HTTP client under the vendor SDKs: their aiohttp transport when they ship it.

The ``openai`` and ``anthropic`` SDKs accept ``http_client=DefaultAioHttpClient(...)`` (their ``[aiohttp]``
extra, vendored in recent releases): the same SDK API over an aiohttp connection pool instead of httpx's.
Measured with ``bench/`` it costs about a fifth less CPU per upstream call (bench/results/PROFILE.md).
``SWITCHYARD_HTTP_CLIENT=httpx`` keeps the SDK's default client (for A/B runs, or if a deployment
needs httpx-specific behaviour such as its proxy environment handling).
"""

from __future__ import annotations

import asyncio
import os
from functools import cache
from types import ModuleType
from typing import Any

HTTP_CLIENT_ENV = "SWITCHYARD_HTTP_CLIENT"


def sdk_http_client(sdk: ModuleType, timeout_s: float) -> Any | None:
    """``sdk.DefaultAioHttpClient(timeout=...)``, or None for the SDK's default (httpx) client.

    The aiohttp session inside is created lazily on the first request, so this is safe outside a loop.
    """
    if os.environ.get(HTTP_CLIENT_ENV, "aiohttp").strip().lower() == "httpx":
        return None
    base = getattr(sdk, "DefaultAioHttpClient", None)
    if base is None:
        return None
    try:
        return _eager_close(base)(timeout=timeout_s)
    except RuntimeError:  # the SDK was installed without its aiohttp extra
        return None


@cache
def _eager_close(base: type) -> type:
    """``base`` whose cancelled sends let aiohttp's deferred socket close run before the cancellation goes on.

    aiohttp closes a cancelled request's connection with ``transport.close()``, which shuts the socket on
    the next loop iteration; one ``sleep(0)`` makes the upstream see the disconnect (and stop generating)
    before the caller moves on, as with httpx.
    """

    class EagerCloseClient(base):  # type: ignore[misc, valid-type]
        async def send(self, *args: Any, **kwargs: Any) -> Any:
            try:
                return await super().send(*args, **kwargs)
            except asyncio.CancelledError:
                await asyncio.sleep(0)
                raise

    EagerCloseClient.__name__ = f"EagerClose{base.__name__}"
    return EagerCloseClient
