"""Which addresses the gateway may connect to when it fetches a client's image itself (the SSRF guard's
address half; ``app.providers.media`` is the fetch).

``is_public_address`` refuses private, loopback, link-local, multicast, reserved, unspecified, site-local,
shared 100.64/10 and cloud-metadata addresses, and the IPv4-mapped, 6to4 and NAT64 IPv6 forms of those.
``GuardedResolver``, the aiohttp resolver of the fetch session, resolves a name once and hands aiohttp only
checked addresses, so there is no second lookup an attacker's DNS could answer differently.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from aiohttp.abc import AbstractResolver, ResolveResult

_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if any(ip in net for net in _BLOCKED if net.version == ip.version):
        return False
    flags = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    return ip.is_global and not any(flags)


def is_public_address(address: str) -> bool:
    """Whether the gateway may connect to ``address`` (an IP in text form; anything else is refused)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.teredo or ip.is_site_local:
            return False
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return _public(embedded)
    return _public(ip)


class NotPublicError(Exception):
    """A host resolved to an address the gateway must not reach (deliberately not an ``OSError``, so
    aiohttp lets it through unwrapped)."""


class GuardedResolver(AbstractResolver):
    """Resolves a host name once, refuses it unless every address is public, and hands aiohttp only the
    checked addresses to connect to."""

    def __init__(self, allow_private: bool = False) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        results: list[ResolveResult] = []
        for info_family, _, proto, _, sockaddr in infos:
            address = str(sockaddr[0])
            if not self.allow_private and not is_public_address(address):
                raise NotPublicError(host)
            if info_family == socket.AF_INET6 and len(sockaddr) >= 4 and sockaddr[3]:
                raise NotPublicError(host)  # a scoped (link-local) address
            flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
            results.append(
                ResolveResult(
                    hostname=host, host=address, port=int(sockaddr[1]), family=info_family, proto=proto, flags=flags
                )
            )
        if not results:
            raise OSError(f"no address for {host}")
        return results

    async def close(self) -> None:
        return None
