"""What a trusted proxy tells about the client: forwarding headers and the PROXY protocol.

Sans-I/O.  :class:`TrustedProxies` holds the ``--forwarded-allow-ips`` list (addresses,
networks, ``unix`` for Unix-socket peers, ``*`` for all).  :func:`resolve_forwarded`
reads RFC 7239 ``Forwarded`` (preferred) or ``X-Forwarded-For`` / ``-Proto`` / ``-Host``
and walks the chain from the right: trusted proxies are skipped, and the right-most hop
that is not trusted is the client.  Headers from an untrusted peer are never consulted --
that is the caller's check, with :meth:`TrustedProxies.trusts`.

:func:`parse_proxy_header` reads a PROXY protocol v1 (text) or v2 (binary) header from
the start of a connection.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

from .errors import ProtocolError

_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_MAX = 107


class TrustedProxies:
    """The peers whose forwarding information is believed."""

    def __init__(self, spec: str | list[str]) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        self.any = False
        self.unix = False
        self.networks: list[Any] = []
        for item in (i.strip() for i in items):
            if not item:
                continue
            if item == "*":
                self.any = True
            elif item == "unix":
                self.unix = True
            else:
                self.networks.append(ipaddress.ip_network(item, strict=False))

    def trusts(self, peer: Any) -> bool:
        """``peer`` is an (address, port, ...) tuple, or anything else for a Unix socket."""
        if self.any:
            return True
        if not isinstance(peer, tuple):
            return self.unix
        return self.trusts_address(peer[0])

    def trusts_address(self, address: str) -> bool:
        if self.any:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def _strip_port(node: str) -> str:
    """``192.0.2.1:80`` -> ``192.0.2.1``; ``[2001:db8::1]:80`` -> ``2001:db8::1``."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1:node.find("]")] if "]" in node else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _forwarded_elements(value: str) -> list[dict[str, str]]:
    elements = []
    for element in value.split(","):
        pairs = {}
        for pair in element.split(";"):
            name, eq, val = pair.partition("=")
            if eq:
                pairs[name.strip().lower()] = val.strip().strip('"')
        elements.append(pairs)
    return elements


def resolve_forwarded(trusted: TrustedProxies, forwarded: str | None, x_for: str | None,
                      x_proto: str | None, x_host: str | None
                      ) -> tuple[str | None, str | None, str | None]:
    """The client address, scheme and host the trusted proxies report (None: not told)."""
    if forwarded:
        elements = _forwarded_elements(forwarded)
        chosen = elements[0] if elements else {}
        for element in reversed(elements):
            chosen = element
            node = element.get("for")
            if node is None or not trusted.trusts_address(_strip_port(node)):
                break
        client = _strip_port(chosen["for"]) if "for" in chosen else None
        proto = chosen.get("proto", "").lower() or None
        return client, proto if proto in ("http", "https") else None, chosen.get("host")
    client = None
    if x_for:
        hops = [_strip_port(hop) for hop in x_for.split(",") if hop.strip()]
        for hop in reversed(hops):
            client = hop
            if not trusted.trusts_address(hop):
                break
    proto = x_proto.split(",")[-1].strip().lower() if x_proto else None
    host = x_host.split(",")[-1].strip() if x_host else None
    return client, proto if proto in ("http", "https") else None, host or None


def parse_proxy_header(data: bytes) -> tuple[int, tuple[str, int] | None] | None:
    """Parse a PROXY header at the start of ``data``.

    Returns None when more bytes are needed, else ``(length, source)``: the header's
    length and the client's (address, port), or None for a ``LOCAL``/``UNKNOWN``
    connection (keep the real peer).  Raises :class:`ProtocolError` (400) when ``data``
    does not start with a valid header.
    """
    if data[:len(_V2_SIGNATURE)] == _V2_SIGNATURE[:len(data)] and len(data) < 16:
        return None
    if data.startswith(_V2_SIGNATURE):
        return _parse_v2(data)
    if not b"PROXY "[:len(data)] == data[:6]:
        raise ProtocolError(400, "expected a PROXY protocol header")
    end = data.find(b"\r\n", 0, _V1_MAX + 1)
    if end < 0:
        if len(data) > _V1_MAX:
            raise ProtocolError(400, "PROXY v1 header too long")
        return None
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return end + 2, None
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProtocolError(400, "malformed PROXY v1 header")
    version = 4 if parts[1] == "TCP4" else 6
    try:
        if ipaddress.ip_address(parts[2]).version != version or \
                ipaddress.ip_address(parts[3]).version != version:
            raise ValueError
        source_port, _ = _v1_port(parts[4]), _v1_port(parts[5])
    except ValueError:
        raise ProtocolError(400, "malformed PROXY v1 header")
    return end + 2, (parts[2], source_port)


def _v1_port(text: str) -> int:
    """A v1 port: decimal, 0-65535, no sign and no leading zero."""
    if not text.isdigit() or not text.isascii() or (len(text) > 1 and text[0] == "0"):
        raise ValueError(text)
    port = int(text)
    if port > 65535:
        raise ValueError(text)
    return port


def _parse_v2(data: bytes) -> tuple[int, tuple[str, int] | None] | None:
    version_command, family, length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProtocolError(400, "unsupported PROXY protocol version")
    total = 16 + length
    if len(data) < total:
        return None
    command = version_command & 0x0F
    address_family, transport = family >> 4, family & 0x0F
    if address_family > 3 or transport > 2:
        raise ProtocolError(400, "unknown PROXY v2 address family or transport")
    if command == 0:  # LOCAL: the proxy's own connection (health checks)
        return total, None
    if command != 1:
        raise ProtocolError(400, "unknown PROXY v2 command")
    if address_family == 1:
        if length < 12:
            raise ProtocolError(400, "PROXY v2 header too short for IPv4 addresses")
        source = str(ipaddress.IPv4Address(data[16:20]))
        return total, (source, struct.unpack_from("!H", data, 24)[0])
    if address_family == 2:
        if length < 36:
            raise ProtocolError(400, "PROXY v2 header too short for IPv6 addresses")
        source = str(ipaddress.IPv6Address(data[16:32]))
        return total, (source, struct.unpack_from("!H", data, 48)[0])
    return total, None  # AF_UNIX or unspecified: keep the real peer
