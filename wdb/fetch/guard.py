"""Which addresses a fetch may connect to: public ones only, unless a network is explicitly allowed.

A URL named in an archive, or a redirect, must not make wdb talk to the machine it runs on, its
LAN or a cloud metadata service (SSRF). Host names are resolved first and only the addresses that
pass are connected to (so a second resolution cannot answer differently), at every redirect hop."""
from __future__ import annotations

import ipaddress
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# getaddrinfo has no timeout of its own: lookups run here so that the caller waits at most its
# remaining time (a stuck lookup keeps one of these threads, never the fetch worker)
_RESOLVERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="wdb-dns")


class DnsTimeout(socket.gaierror):
    """The lookup did not answer within the time left for the URL."""


def lookup(host: str, port: int, timeout: float | None = None) -> list:
    """socket.getaddrinfo bounded by timeout seconds (None: unbounded); DnsTimeout past it."""
    if timeout is None:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    future = _RESOLVERS.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        return future.result(timeout=max(0.001, timeout))
    except FutureTimeout:
        future.cancel()
        raise DnsTimeout(f"lookup of {host[:100]} did not answer within {timeout:.3g}s") from None


class RefusedAddress(Exception):
    """Every address of a host is loopback, private, link-local, metadata or otherwise not public."""


def _kind(ip: Address) -> str | None:
    """Why `ip` is not a public address (None: it is)."""
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified (this host)"
    if ip.is_link_local:
        return "link-local (cloud metadata lives here)" if str(ip) == "169.254.169.254" else "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded(ip: Address) -> list[Address]:
    """The address and any IPv4 address carried inside an IPv6 one (mapped, 6to4, Teredo, NAT64)."""
    out: list[Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            out.append(ip.ipv4_mapped)
        if ip.sixtofour:
            out.append(ip.sixtofour)
        if ip.teredo:
            out.extend(ip.teredo)
        if ip in ipaddress.IPv6Network("64:ff9b::/96"):
            out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def parse_networks(items) -> tuple[Network, ...]:
    """Networks from 'CIDR' or single-address strings; raises ValueError naming the bad one."""
    nets = []
    for item in items or ():
        try:
            nets.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError as e:
            raise ValueError(f"--allow-private {item!r} is not an address or network (e.g. 127.0.0.1, "
                             "10.0.0.0/8)") from e
    return tuple(nets)


class AddressPolicy:
    """Public addresses pass; others only inside an explicitly allowed network."""

    def __init__(self, allow=()):
        self.allow = parse_networks(allow)

    def refusal(self, ip: Address | str) -> str | None:
        """Why connecting to `ip` is refused (None: allowed)."""
        ip = ipaddress.ip_address(ip.split("%", 1)[0] if isinstance(ip, str) else ip)
        if any(ip in net for net in self.allow if net.version == ip.version):
            return None
        for inner in _embedded(ip)[1:]:
            kind = _kind(inner)
            if kind is not None:
                return f"{ip} carries {inner}, which is {kind}"
        kind = _kind(ip)
        return None if kind is None else f"{ip} is {kind}"

    def resolve(self, host: str, port: int, timeout: float | None = None) -> list[tuple[int, tuple]]:
        """(family, sockaddr) of the allowed addresses of host, looked up within timeout seconds;
        raises socket.gaierror (DnsTimeout past the timeout) or RefusedAddress."""
        infos = lookup(host.strip("[]"), port, timeout)
        allowed, refused = [], []
        for family, _, _, _, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            why = self.refusal(sockaddr[0])
            if why is None:
                if (family, sockaddr) not in allowed:
                    allowed.append((family, sockaddr))
            else:
                refused.append(why)
        if not allowed:
            detail = refused[0] if refused else "no IPv4 or IPv6 address"
            raise RefusedAddress(f"{host}: {detail}; refused (wdb fetch --allow-private NET allows a network)")
        return allowed
