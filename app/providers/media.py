"""Images the gateway fetches itself, for vendors that only take inline data (Gemini), behind an SSRF guard.

A client's ``image_url`` of ``https://...`` must never make the gateway reach an internal address, so every
fetch goes through this guard:

- https only (http only with ``MediaLimits.allow_http``, for tests), port 443 only by default, no
  credentials in the URL;
- the host is resolved by ``GuardedResolver`` (``app.providers.public_address``), the aiohttp resolver of
  the fetch session: *every* address the name resolves to must be public (``is_public_address``: not
  private, loopback, link-local, multicast, reserved, unspecified, site-local, shared 100.64/10, cloud
  metadata 169.254.169.254, nor an IPv4-mapped, 6to4 or NAT64 IPv6 form of those), and aiohttp connects to
  exactly the addresses it returns, so there is no second lookup an attacker's DNS could answer differently
  (DNS rebinding); an IP literal host, which aiohttp never resolves, is checked before the request (by the
  same ``is_public_address``); TLS still verifies the URL's host name;
- redirects are followed by hand, at most ``max_redirects``, each hop checked the same way;
- the body is read in chunks and refused past ``max_bytes``; the whole fetch (all hops) is bounded by
  ``timeout_s``; the answer must say it is a png, jpeg, gif or webp image, and its first bytes must be one.

Every refusal is an ``InvalidRequestError`` (400) that names the reason; it never says which address a
name resolved to ("not a public address" is all it tells). ``data:`` URLs are decoded and checked the same
way (image type, size) without any fetch.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
from dataclasses import replace

import aiohttp
from yarl import URL

from app.domain import ChatRequest, ImagePart, Message
from app.errors import InvalidRequestError
from app.providers import public_address
from app.providers.public_address import GuardedResolver, NotPublicError
from app.records import record

IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_TYPE_ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
_REDIRECTS = (301, 302, 303, 307, 308)
_READ_SIZE = 64 * 1024


@record(slots=True)
class MediaLimits:
    """What one fetch may do. ``allow_http`` and ``allow_private`` exist for tests on 127.0.0.1 only;
    ``allowed_ports`` None means any port. ``max_images`` and ``max_total_bytes`` bound one request."""

    max_bytes: int = 10 * 1024 * 1024
    timeout_s: float = 10.0
    allow_http: bool = False
    allowed_ports: frozenset[int] | None = frozenset({443})
    allow_private: bool = False
    max_redirects: int = 3
    max_images: int = 16
    max_total_bytes: int = 20 * 1024 * 1024  # Gemini's limit for a whole request with inline data
    concurrency: int = 4


def guarded_session(limits: MediaLimits = MediaLimits()) -> aiohttp.ClientSession:
    """A session for ``fetch_media``: the guarded resolver, no proxy from the environment, no cookies."""
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(limits.allow_private), limit=64, ttl_dns_cache=10)
    return aiohttp.ClientSession(
        connector=connector,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": "switchyard-media-fetch", "Accept": ", ".join(IMAGE_TYPES)},
        auto_decompress=False,
    )


# --- fetching ----------------------------------------------------------------------------------------


def _refused(reason: str, param: str | None) -> InvalidRequestError:
    return InvalidRequestError(f"image URL refused: {reason}", param=param)


def _check_url(url: URL, limits: MediaLimits, param: str | None) -> None:
    if url.scheme == "http" and not limits.allow_http:
        raise _refused("http is refused, use an https URL", param)
    if url.scheme not in ("https", "http"):
        raise _refused("only https URLs can be fetched", param)
    if not url.host:
        raise _refused("not a valid URL", param)
    if url.user is not None or url.password is not None:
        raise _refused("credentials in the URL are not accepted", param)
    if limits.allowed_ports is not None and url.port not in limits.allowed_ports:
        raise _refused("port not allowed", param)
    try:
        literal = ipaddress.ip_address(url.host)
    except ValueError:
        return  # a name: the session's GuardedResolver checks what it resolves to
    if not limits.allow_private and not public_address.is_public_address(str(literal)):
        raise _refused("not a public address", param)


def _guard_of(session: aiohttp.ClientSession, limits: MediaLimits) -> None:
    """Fail closed: the session must resolve through a ``GuardedResolver`` at least as strict as ``limits``."""
    resolver = getattr(session.connector, "_resolver", None)
    if not isinstance(resolver, GuardedResolver) or session.trust_env:
        raise TypeError("fetch_media needs a session made by guarded_session()")
    if resolver.allow_private and not limits.allow_private:
        raise TypeError("this session allows private addresses, the limits do not")


def sniff_image(data: bytes) -> str | None:
    """The image type the bytes start with (png, jpeg, gif, webp), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _declared_type(value: str) -> str:
    media_type = value.split(";", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(media_type, media_type)


async def _read(response: aiohttp.ClientResponse, limits: MediaLimits, param: str | None) -> bytes:
    if response.content_length is not None and response.content_length > limits.max_bytes:
        raise _refused(f"the image is too large (limit {limits.max_bytes} bytes)", param)
    body = bytearray()
    async for chunk in response.content.iter_chunked(_READ_SIZE):
        body += chunk
        if len(body) > limits.max_bytes:
            raise _refused(f"the image is too large (limit {limits.max_bytes} bytes)", param)
    return bytes(body)


async def _follow(
    url: URL, session: aiohttp.ClientSession, limits: MediaLimits, param: str | None
) -> tuple[bytes, str]:
    for _hop in range(limits.max_redirects + 1):
        _check_url(url, limits, param)
        async with session.get(url, allow_redirects=False, headers={"Accept-Encoding": "identity"}) as response:
            if response.status in _REDIRECTS and "Location" in response.headers:
                url = url.join(URL(response.headers["Location"]))
                continue
            if response.status != 200:
                raise _refused(f"the image URL answered HTTP {response.status}", param)
            declared = _declared_type(response.headers.get("Content-Type", ""))
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise _refused("the image was sent compressed", param)
            if declared not in IMAGE_TYPES:
                raise _refused("not an image (png, jpeg, gif or webp)", param)
            data = await _read(response, limits, param)
            sniffed = sniff_image(data)
            if sniffed is None:
                raise _refused("not an image (png, jpeg, gif or webp)", param)
            return data, sniffed
    raise _refused(f"more than {limits.max_redirects} redirects", param)


async def fetch_media(
    url: str, session: aiohttp.ClientSession, limits: MediaLimits = MediaLimits(), *, param: str | None = None
) -> tuple[bytes, str]:
    """Fetch the image at ``url`` through the guard: its bytes and media type (from the bytes themselves).

    ``session`` must come from ``guarded_session`` (anything else is refused with ``TypeError``, a bug).
    Raises ``InvalidRequestError`` (400) naming the reason when the URL may not or cannot be fetched."""
    _guard_of(session, limits)
    try:
        target = URL(url)
    except (ValueError, TypeError):
        raise _refused("not a valid URL", param) from None
    try:
        async with asyncio.timeout(limits.timeout_s):
            return await _follow(target, session, limits, param)
    except InvalidRequestError:
        raise
    except NotPublicError:
        raise _refused("not a public address", param) from None
    except TimeoutError:
        raise _refused(f"timed out after {limits.timeout_s:g}s", param) from None
    except aiohttp.InvalidURL:
        raise _refused("not a valid URL", param) from None
    except (aiohttp.ClientError, OSError) as exc:
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            raise _refused("the host name could not be resolved", param) from None
        raise _refused("the image could not be fetched", param) from None


# --- data: URLs and whole requests -------------------------------------------------------------------


def decode_data_url(url: str, limits: MediaLimits = MediaLimits(), *, param: str | None = None) -> tuple[str, str]:
    """A ``data:image/...;base64,...`` URL as (clean base64, media type sniffed from the bytes)."""
    head, comma, payload = url.partition(",")
    if not head.lower().startswith("data:") or not comma:
        raise _refused("not a valid data URL", param)
    meta = [item.strip() for item in head[5:].split(";")]
    if "base64" not in (item.lower() for item in meta[1:]):
        raise _refused("a data URL must be base64", param)
    if _declared_type(meta[0]) not in IMAGE_TYPES:
        raise _refused("not an image (png, jpeg, gif or webp)", param)
    if len(payload) > (limits.max_bytes * 4) // 3 + 4:
        raise _refused(f"the image is too large (limit {limits.max_bytes} bytes)", param)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _refused("the data URL is not valid base64", param) from None
    sniffed = sniff_image(data)
    if sniffed is None:
        raise _refused("not an image (png, jpeg, gif or webp)", param)
    return base64.b64encode(data).decode("ascii"), sniffed


def _param(message: int, part: int) -> str:
    return f"messages[{message}].content[{part}].image_url"


async def inline_remote_images(
    request: ChatRequest, session: aiohttp.ClientSession, limits: MediaLimits = MediaLimits()
) -> ChatRequest:
    """A copy of ``request`` whose URL images are inline: ``data:`` URLs decoded, ``https:`` URLs fetched
    through the guard (each distinct URL once, a few at a time). The request itself when it has none."""
    spots = [
        (i, j, part)
        for i, message in enumerate(request.messages)
        for j, part in enumerate(message.parts)
        if isinstance(part, ImagePart) and part.url is not None
    ]
    if not spots:
        return request
    inlined: dict[tuple[int, int], ImagePart] = {}
    remote: dict[str, str] = {}  # each distinct URL once, with the first place it appears in
    total = 0
    for i, j, part in spots:  # data: URLs first: no fetch starts for a request that is refused anyway
        assert part.url is not None
        if part.url[:5].lower() == "data:":
            text, media_type = decode_data_url(part.url, limits, param=_param(i, j))
            total += len(text) * 3 // 4
            inlined[i, j] = replace(part, url=None, data=text, media_type=media_type)
        else:
            remote.setdefault(part.url, _param(i, j))
    if len(remote) > limits.max_images:
        raise InvalidRequestError(f"at most {limits.max_images} image URLs per request", param="messages")
    fetched = await _fetch_all(remote, session, limits, total)
    for i, j, part in spots:
        if part.url in fetched:
            data, media_type = fetched[part.url]
            inlined[i, j] = replace(part, url=None, data=base64.b64encode(data).decode("ascii"), media_type=media_type)
    messages: list[Message] = []
    for i, message in enumerate(request.messages):
        if any(key[0] == i for key in inlined):
            parts = tuple(inlined.get((i, j), part) for j, part in enumerate(message.parts))
            message = replace(message, parts=parts)
        messages.append(message)
    return replace(request, messages=tuple(messages))


async def _fetch_all(
    urls: dict[str, str], session: aiohttp.ClientSession, limits: MediaLimits, total: int
) -> dict[str, tuple[bytes, str]]:
    """Fetch ``urls`` (url -> param), a few at a time, stopping once the request's images (``total`` bytes
    so far) pass ``max_total_bytes``."""
    gate, spent = asyncio.Semaphore(limits.concurrency), total

    def too_much() -> InvalidRequestError:
        limit = limits.max_total_bytes
        return InvalidRequestError(f"the images are too large in total (limit {limit} bytes)", param="messages")

    async def one(url: str, param: str) -> tuple[bytes, str]:
        nonlocal spent
        async with gate:
            data, media_type = await fetch_media(url, session, limits, param=param)
        spent += len(data)
        if spent > limits.max_total_bytes:
            raise too_much()
        return data, media_type

    if total > limits.max_total_bytes:
        raise too_much()
    if not urls:
        return {}
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {url: group.create_task(one(url, param)) for url, param in urls.items()}
    except BaseExceptionGroup as failures:
        raise _first(failures) from None
    return {url: task.result() for url, task in tasks.items()}


def _first(group: BaseExceptionGroup) -> BaseException:
    """The first client error of a failed group (the others were cancelled or failed the same way)."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            exc = _first(exc)
        if isinstance(exc, InvalidRequestError):
            return exc
    return group.exceptions[0]


class MediaFetcher:
    """The guard with its own session, for providers: created lazily in the running loop, closed at
    shutdown (``close``)."""

    def __init__(self, limits: MediaLimits = MediaLimits()) -> None:
        self.limits = limits
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = guarded_session(self.limits)
        return self._session

    async def fetch(self, url: str) -> tuple[bytes, str]:
        return await fetch_media(url, self._client(), self.limits)

    async def inline_remote_images(self, request: ChatRequest) -> ChatRequest:
        return await inline_remote_images(request, self._client(), self.limits)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
