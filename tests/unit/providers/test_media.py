"""The image fetch guard: public addresses only, no rebinding, size/time/type limits, data: URLs.

Network tests only ever talk to a real aiohttp server on 127.0.0.1; every other address is refused before
any connection, or resolved by a fake ``getaddrinfo``.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from app.domain import ChatRequest, ImagePart, Message, TextPart
from app.errors import InvalidRequestError
from app.providers import media, public_address
from app.providers.media import (
    MediaFetcher,
    MediaLimits,
    decode_data_url,
    fetch_media,
    guarded_session,
    inline_remote_images,
    sniff_image,
)
from app.providers.public_address import GuardedResolver, NotPublicError, is_public_address

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 32
GIF = b"GIF89a\x01\x00\x01\x00" + b"\x00" * 16
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 24


# --- which addresses are public ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "127.0.0.1",
        "127.255.255.254",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "169.254.169.254",
        "100.64.0.1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "0.0.0.0",
        "0.1.2.3",
        "::",
        "224.0.0.1",
        "ff02::1",
        "fec0::1",
        "fc00::1",
        "fd00:ec2::254",
        "192.0.0.8",
        "198.18.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2001::1",  # Teredo
        "2001:db8::1",
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "not-an-ip",
        "",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "2a00:1450:4001:80b::200e", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(address)


@dataclass
class FakeDNS:
    """``loop.getaddrinfo`` answering from a table; counts the lookups."""

    table: dict[str, list[str]]
    calls: list[str] = field(default_factory=list)

    async def __call__(self, host: str, port: int, **_: object) -> list[tuple]:
        self.calls.append(host)
        answers = self.table[host]
        if isinstance(answers, Exception):
            raise answers
        infos: list[tuple[object, ...]] = []
        for address in answers:
            if ":" in address:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    dns = FakeDNS({})
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", dns)
    return dns


async def test_resolver_returns_only_checked_public_addresses(fake_dns: FakeDNS) -> None:
    fake_dns.table["images.example"] = ["8.8.8.8", "2606:4700::1111"]
    results = await GuardedResolver().resolve("images.example", 443, family=socket.AF_UNSPEC)
    assert [(r["host"], r["port"], r["hostname"]) for r in results] == [
        ("8.8.8.8", 443, "images.example"),
        ("2606:4700::1111", 443, "images.example"),
    ]
    assert all(r["flags"] & socket.AI_NUMERICHOST for r in results)


@pytest.mark.parametrize(
    "answers",
    [
        ["10.0.0.1"],
        ["127.0.0.1"],
        ["::1"],
        ["169.254.169.254"],
        ["8.8.8.8", "192.168.1.1"],  # one internal address among public ones refuses the name
        ["2606:4700::1111", "::ffff:127.0.0.1"],
    ],
)
async def test_resolver_refuses_a_name_with_any_internal_address(fake_dns: FakeDNS, answers: list[str]) -> None:
    fake_dns.table["evil.example"] = answers
    with pytest.raises(NotPublicError):
        await GuardedResolver().resolve("evil.example", 443)


async def test_resolver_allow_private_for_tests(fake_dns: FakeDNS) -> None:
    fake_dns.table["local.example"] = ["127.0.0.1"]
    results = await GuardedResolver(allow_private=True).resolve("local.example", 80)
    assert [r["host"] for r in results] == ["127.0.0.1"]


# --- a real server on 127.0.0.1 ----------------------------------------------------------------------


@dataclass
class Server:
    base: str
    port: int
    hits: dict[str, int]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    hits: dict[str, int] = {}
    released = asyncio.Event()  # lets the slow handler end at teardown

    async def png(request: web.Request) -> web.Response:
        hits[request.path] = hits.get(request.path, 0) + 1
        return web.Response(body=PNG, content_type="image/png")

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})  # chunked: no content-length
        await response.prepare(request)
        await response.write(PNG)
        for _ in range(64):
            await response.write(b"\x00" * 65536)
        return response

    async def big_declared(request: web.Request) -> web.Response:
        return web.Response(body=PNG + b"\x00" * 5_000_000, content_type="image/png")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    async def mislabelled(request: web.Request) -> web.Response:
        return web.Response(body=b"<html>not a png</html>", content_type="image/png")

    async def jpeg_as_png(request: web.Request) -> web.Response:
        return web.Response(body=JPEG, content_type="image/png")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def chain(request: web.Request) -> web.Response:
        left = int(request.match_info["n"])
        raise web.HTTPFound("/png" if left == 0 else f"/chain/{left - 1}")

    async def slow(request: web.Request) -> web.Response:
        await released.wait()
        return web.Response(body=PNG, content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no")

    app = web.Application()
    app.router.add_get("/png", png)
    app.router.add_get("/png2", png)
    app.router.add_get("/big", big)
    app.router.add_get("/big-declared", big_declared)
    app.router.add_get("/html", html)
    app.router.add_get("/mislabelled", mislabelled)
    app.router.add_get("/jpeg-as-png", jpeg_as_png)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/slow", slow)
    app.router.add_get("/missing", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"http://127.0.0.1:{port}", port, hits)
    finally:
        released.set()
        await runner.cleanup()


def test_limits(server: Server, *, private: bool = True, **changes: object) -> MediaLimits:
    fields: dict[str, object] = {
        "allow_http": True,
        "allow_private": private,
        "allowed_ports": frozenset({server.port}),
        **changes,
    }
    return MediaLimits(**fields)  # type: ignore[arg-type]


test_limits.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


async def fetch(url: str, limits: MediaLimits) -> tuple[bytes, str]:
    async with guarded_session(limits) as session:
        return await fetch_media(url, session, limits)


async def refused(url: str, limits: MediaLimits) -> str:
    with pytest.raises(InvalidRequestError) as caught:
        await fetch(url, limits)
    assert caught.value.status_code == 400
    return caught.value.message


async def test_loopback_is_refused_without_allow_private(server: Server) -> None:
    """The SSRF test: the gateway never fetches from its own host."""
    limits = test_limits(server, private=False)
    for url in (f"{server.base}/png", f"http://localhost:{server.port}/png", f"http://[::1]:{server.port}/png"):
        message = await refused(url, limits)
        assert "not a public address" in message
        assert "127.0.0.1" not in message and "::1" not in message
    assert server.hits == {}


async def test_allowed_fetch_returns_bytes_and_sniffed_type(server: Server) -> None:
    assert await fetch(f"{server.base}/png", test_limits(server)) == (PNG, "image/png")
    # the type comes from the bytes, not from a wrong label
    assert await fetch(f"{server.base}/jpeg-as-png", test_limits(server)) == (JPEG, "image/jpeg")


async def test_too_large_bodies_are_refused(server: Server) -> None:
    limits = test_limits(server, max_bytes=1_000_000)
    assert "too large" in await refused(f"{server.base}/big", limits)  # chunked: stops while reading
    assert "too large" in await refused(f"{server.base}/big-declared", limits)  # content-length


async def test_non_images_are_refused(server: Server) -> None:
    assert "not an image" in await refused(f"{server.base}/html", test_limits(server))
    assert "not an image" in await refused(f"{server.base}/mislabelled", test_limits(server))


async def test_error_statuses_are_refused(server: Server) -> None:
    assert "HTTP 404" in await refused(f"{server.base}/missing", test_limits(server))


async def test_slow_servers_time_out(server: Server) -> None:
    assert "timed out" in await refused(f"{server.base}/slow", test_limits(server, timeout_s=0.3))


async def test_redirects_are_followed_up_to_the_limit(server: Server) -> None:
    assert await fetch(f"{server.base}/chain/2", test_limits(server)) == (PNG, "image/png")
    assert "redirects" in await refused(f"{server.base}/chain/3", test_limits(server))


async def test_redirect_to_loopback_is_refused(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first hop passes the guard (the test server counts as public here), the redirect does not."""
    monkeypatch.setattr(public_address, "is_public_address", lambda address: address == "127.0.0.1")
    limits = test_limits(server, private=False)
    assert await fetch(f"{server.base}/png", limits) == (PNG, "image/png")
    port = server.port
    for target in (f"http://127.0.0.2:{port}/png", f"http://[::1]:{port}/png", f"http://169.254.169.254:{port}/"):
        assert "not a public address" in await refused(f"{server.base}/redirect?to={target}", limits)
    assert "port not allowed" in await refused(f"{server.base}/redirect?to=http://127.0.0.1:1/png", limits)
    assert "http is refused" in await refused(
        f"{server.base}/redirect?to={server.base}/png", test_limits(server, private=False, allow_http=False)
    )


async def test_redirect_to_a_name_of_an_internal_address_is_refused(
    server: Server, fake_dns: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(public_address, "is_public_address", lambda address: address == "127.0.0.1")
    fake_dns.table["metadata.example"] = ["169.254.169.254"]
    target = f"http://metadata.example:{server.port}/latest"
    message = await refused(f"{server.base}/redirect?to={target}", test_limits(server, private=False))
    assert message == "image URL refused: not a public address"


async def test_connection_goes_to_the_checked_address(
    server: Server, fake_dns: FakeDNS, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, by the guard, and the connection uses that answer."""
    monkeypatch.setattr(public_address, "is_public_address", lambda address: address == "127.0.0.1")
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    fake_dns.table = _Rebinding(answers)  # type: ignore[assignment]
    limits = test_limits(server, private=False)
    assert await fetch(f"http://images.example:{server.port}/png", limits) == (PNG, "image/png")
    assert fake_dns.calls == ["images.example"]


class _Rebinding(dict):
    """A DNS table whose answer changes on every lookup."""

    def __init__(self, answers: object) -> None:
        super().__init__()
        self.answers = answers

    def __getitem__(self, host: str) -> list[str]:
        return next(self.answers)  # type: ignore[call-overload]


async def test_name_resolving_to_internal_address_is_refused(server: Server, fake_dns: FakeDNS) -> None:
    fake_dns.table["rebind.example"] = ["8.8.8.8", "127.0.0.1"]
    message = await refused(f"http://rebind.example:{server.port}/png", test_limits(server, private=False))
    assert message == "image URL refused: not a public address"
    assert server.hits == {}


async def test_unresolvable_names_are_refused(server: Server, fake_dns: FakeDNS) -> None:
    fake_dns.table["nowhere.example"] = socket.gaierror(socket.EAI_NONAME, "unknown")  # type: ignore[assignment]
    assert "could not be resolved" in await refused(f"http://nowhere.example:{server.port}/x", test_limits(server))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://images.example/a.png", "http is refused"),
        ("ftp://images.example/a.png", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://images.example:8443/a.png", "port not allowed"),
        ("https://user:pw@images.example/a.png", "credentials"),
        ("https://169.254.169.254/latest/meta-data/", "not a public address"),
        ("https://[::1]/a.png", "not a public address"),
        ("https://[::ffff:127.0.0.1]/a.png", "not a public address"),
        ("https://10.0.0.1/a.png", "not a public address"),
        ("https://0.0.0.0/a.png", "not a public address"),
        ("https://2130706433/a.png", "not a valid URL"),  # 127.0.0.1 in decimal: aiohttp refuses it
        ("https:///a.png", "not a valid URL"),
    ],
)
async def test_urls_refused_before_any_connection(url: str, reason: str) -> None:
    assert reason in await refused(url, MediaLimits())


async def test_a_session_without_the_guard_is_a_bug() -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError):
            await fetch_media("https://images.example/a.png", plain)
    async with guarded_session(MediaLimits(allow_private=True)) as loose:
        with pytest.raises(TypeError):
            await fetch_media("https://images.example/a.png", loose, MediaLimits())


# --- data: URLs and whole requests -------------------------------------------------------------------


@pytest.mark.parametrize("image", [PNG, JPEG, GIF, WEBP])
def test_sniff_image(image: bytes) -> None:
    assert sniff_image(image) in media.IMAGE_TYPES
    assert sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None


def test_valid_data_url_is_decoded() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert decode_data_url(url) == (base64.b64encode(PNG).decode(), "image/png")
    assert decode_data_url("data:image/jpg;base64," + base64.b64encode(JPEG).decode())[1] == "image/jpeg"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("data:image/png;base64,@@not-base64@@", "not valid base64"),
        ("data:image/png;base64,iVBORw0KGgo", "not valid base64"),  # bad padding
        ("data:text/plain;base64," + base64.b64encode(b"hello").decode(), "not an image"),
        ("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode(), "not an image"),
        ("data:image/png;base64," + base64.b64encode(b"<html></html>").decode(), "not an image"),
        ("data:image/png,%89PNG", "must be base64"),
        ("data:image/png;base64", "not a valid data URL"),
        ("data:image/png;base64," + "A" * 2_000_000, "too large"),
    ],
)
def test_bad_data_urls_are_400(url: str, reason: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        decode_data_url(url, MediaLimits(max_bytes=1_000_000), param="messages[0].content[1].image_url")
    assert reason in caught.value.message
    assert caught.value.status_code == 400
    assert caught.value.details["param"] == "messages[0].content[1].image_url"


def _request(*parts: object) -> ChatRequest:
    return ChatRequest(
        messages=(
            Message("system", "be brief"),
            Message("user", "what is this?", parts=tuple(parts)),  # type: ignore[arg-type]
        )
    )


async def test_inline_remote_images_replaces_url_parts(server: Server) -> None:
    data_url = "data:image/gif;base64," + base64.b64encode(GIF).decode()
    request = _request(
        TextPart("what is this?"),
        ImagePart(url=f"{server.base}/png", detail="high"),
        ImagePart(url=data_url),
        ImagePart(url=f"{server.base}/png"),
        ImagePart(data="abc", media_type="image/png"),
    )
    limits = test_limits(server)
    async with guarded_session(limits) as session:
        inlined = await inline_remote_images(request, session, limits)
    parts = inlined.messages[1].parts
    assert parts[0] == TextPart("what is this?")
    assert parts[1] == ImagePart(data=base64.b64encode(PNG).decode(), media_type="image/png", detail="high")
    assert parts[2] == ImagePart(data=base64.b64encode(GIF).decode(), media_type="image/gif")
    assert parts[3] == ImagePart(data=base64.b64encode(PNG).decode(), media_type="image/png")
    assert parts[4] == ImagePart(data="abc", media_type="image/png")
    assert inlined.messages[0] is request.messages[0]
    assert server.hits == {"/png": 1}  # the same URL is fetched once


async def test_request_without_url_images_is_returned_as_is() -> None:
    request = _request(TextPart("hi"), ImagePart(data="abc", media_type="image/png"))
    async with guarded_session() as session:
        assert await inline_remote_images(request, session) is request


async def test_inline_errors_name_the_part(server: Server) -> None:
    request = _request(TextPart("look"), ImagePart(url=f"{server.base}/png"))
    limits = test_limits(server, private=False)
    async with guarded_session(limits) as session:
        with pytest.raises(InvalidRequestError) as caught:
            await inline_remote_images(request, session, limits)
    assert caught.value.details["param"] == "messages[1].content[1].image_url"
    assert "not a public address" in caught.value.message


async def test_inline_limits_the_number_and_total_size(server: Server) -> None:
    many = _request(*(ImagePart(url=f"{server.base}/png?{i}") for i in range(3)))
    async with guarded_session(test_limits(server)) as session:
        with pytest.raises(InvalidRequestError, match="at most 2"):
            await inline_remote_images(many, session, test_limits(server, max_images=2))
        two = _request(ImagePart(url=f"{server.base}/png"), ImagePart(url=f"{server.base}/png2"))
        with pytest.raises(InvalidRequestError, match="too large in total"):
            await inline_remote_images(two, session, test_limits(server, max_total_bytes=len(PNG) + 10))


async def test_media_fetcher_owns_its_session(server: Server) -> None:
    fetcher = MediaFetcher(test_limits(server))
    request = _request(ImagePart(url=f"{server.base}/png"))
    inlined = await fetcher.inline_remote_images(request)
    assert inlined.messages[1].parts[0] == ImagePart(data=base64.b64encode(PNG).decode(), media_type="image/png")
    assert await fetcher.fetch(f"{server.base}/png") == (PNG, "image/png")
    await fetcher.close()
    await fetcher.close()  # idempotent
