"""Which peers a connector may talk to: for non-admin users of ``faice serve`` only the public internet.

Connectors run on the server's machine, so a user's RED file must not reach the server itself or
its private networks through them. The check is made on the address a socket actually connected
to, whatever a URL parser or a second DNS answer made of the host name.
"""

from __future__ import annotations

import ipaddress
import socket

NAT64 = ipaddress.ip_network("64:ff9b::/96")
PRIVATE = "the host is this machine or on a private network"
REFUSED = f"{PRIVATE}; through faice serve only admins may reach those"


def is_public(address: str) -> bool:
    """Whether an IP address (v4 or v6, v4 embedded in v6 included) is on the public internet."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in NAT64 else None)
        if embedded is not None:
            return embedded.is_global
    return ip.is_global


def peer_refused(sock: socket.socket) -> bool:
    """Whether a connected socket leads to this machine or a private network. This machine's own
    public addresses count as this machine: connected to one, the socket's own end has it too."""
    peer = sock.getpeername()[0]
    return not is_public(peer) or peer == sock.getsockname()[0]


class PeerRefused(OSError):
    """The host is this machine or on a private network, which this user may not reach."""

    def __init__(self) -> None:
        super().__init__(PRIVATE)


def check_peer(sock: socket.socket) -> None:
    """Raise PeerRefused when :func:`peer_refused` (the socket is closed)."""
    if peer_refused(sock):
        sock.close()
        raise PeerRefused()


def connect(host: str, port: int, timeout: float, public_only: bool) -> socket.socket:
    """A TCP connection to ``host:port``. With ``public_only`` only public addresses the name
    resolves to are tried, and the connected peer is checked again, before a byte is read."""
    error: OSError = PeerRefused()
    for family, kind, proto, _name, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if public_only and not is_public(address[0]):
            continue
        sock = socket.socket(family, kind, proto)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            error = exc
            continue
        if public_only:
            check_peer(sock)
        return sock
    raise error


def private_host(host: str) -> bool:
    """Whether ``host`` is this machine or resolves to any address off the public internet (a
    name that does not resolve reaches nothing, here or for anyone else on this machine)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return any(not is_public(address[0]) or this_machine(family, address[0]) for family, *_rest, address in found)


def this_machine(family: int, address: str) -> bool:
    """Whether an address is one of this machine's own (only those can be bound to)."""
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address.split("%")[0], 0))
        except OSError:
            return False
    return True
