"""The address guard every outbound connector uses: which IP addresses the service may connect to.

By default only public unicast addresses: no loopback, link-local (cloud metadata lives there), private,
shared (CGNAT), multicast, reserved or unspecified ranges, so a URL or a name a tenant gives cannot make the
service probe its own network. An operator may allow more with CIDRs (e.g. ``127.0.0.0/8`` in tests).
Names are resolved once and every address is checked; the caller connects to the checked address, never
re-resolving the name (no DNS rebinding between the check and the connection).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(Exception):
    """The target resolves to an address the operator does not allow (message names the address, never a
    credential)."""


def parse_networks(text: str | Iterable[str] | None) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, ::1/128"`` (or an iterable of CIDRs) -> networks; raises ValueError naming the bad one."""
    if text is None:
        return ()
    items = text.split(",") if isinstance(text, str) else list(text)
    networks = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR network: {item!r}") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public unicast addresses, plus the operator's extra networks."""

    allowed: tuple[IPNetwork, ...] = ()

    def permits(self, address: str | IPAddress) -> bool:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allowed if net.version == ip.version):
            return True
        return ip.is_global and not ip.is_multicast

    def check(self, address: str | IPAddress) -> IPAddress:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if not self.permits(ip):
            raise AddressRefused(f"address {ip} is not an allowed target (loopback, private, link-local or reserved)")
        return ip

    async def resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        """Every address ``host`` resolves to, each checked; refused if any one is not allowed."""
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            return [self.check(literal)]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise AddressRefused(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(sockaddr[0])
            if ip not in addresses:
                addresses.append(self.check(ip))
        if not addresses:
            raise AddressRefused(f"{host!r} resolves to no address")
        return addresses
