"""SSH connections shared by every batch of a faice process, with several SFTP channels over each.

asyncssh runs in one event loop on a daemon thread. The connector's methods, called from the
batches' worker threads, hand it coroutines and wait for them while watching the run's cancel
event. There is one connection per (host, port, user and credentials); it carries up to
:data:`MAX_CHANNELS` SFTP channels at once (OpenSSH allows 10 sessions per connection), which
are kept for reuse, and it is closed after :data:`IDLE_SECONDS` without use. AES-GCM is offered
first: with the CPU's AES instructions it moves data about twice as fast as ChaCha20 in Python.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from faice.connectors.base import ConnectorError
from faice.connectors.network import REFUSED, is_public, peer_refused
from faice.connectors.ssh import hostkeys
from faice.connectors.ssh.access import SshAccess

MAX_CHANNELS = 8
IDLE_SECONDS = 30.0
ENCRYPTION = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr")

T = TypeVar("T")


class SshError(ConnectorError):
    """A failure of one SSH operation; the message names ``user@host:port:path`` and the cause."""


# --- the event loop thread ----------------------------------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_orphan_error)
            threading.Thread(target=loop.run_forever, name="faice-ssh", daemon=True).start()
            atexit.register(_close_at_exit, loop)
            _loop = loop
        return _loop


def _orphan_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An error no one waits for. A helper task of a cancelled transfer that lost its connection is
    expected and only logged for debugging; anything else is a warning (one line, no traceback)."""
    import asyncssh

    error = context.get("exception")
    expected = isinstance(error, asyncssh.Error | OSError | asyncio.CancelledError)
    logging.getLogger("faice.ssh").log(logging.DEBUG if expected else logging.WARNING, "%s: %r", context.get("message"), error)


def run(make: Callable[[], Coroutine[Any, Any, T]], cancelled: threading.Event | None = None) -> T:
    """Run a coroutine on the SSH loop and wait for it; a set ``cancelled`` stops it early."""
    import concurrent.futures

    if cancelled is not None and cancelled.is_set():
        raise ConnectorError("cancelled")

    future = asyncio.run_coroutine_threadsafe(make(), _event_loop())
    while True:
        try:
            return future.result(timeout=0.2)
        except concurrent.futures.TimeoutError:
            if cancelled is not None and cancelled.is_set():
                future.cancel()
                raise ConnectorError("cancelled") from None
        except concurrent.futures.CancelledError:
            raise ConnectorError("cancelled") from None


def _close_at_exit(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_running():
        try:
            asyncio.run_coroutine_threadsafe(POOL.close_all(), loop).result(timeout=2)
        except Exception:  # noqa: BLE001, S110 - leaving anyway; the server sees the socket close
            pass


# --- connections ---------------------------------------------------------------------------------


@dataclass
class Connection:
    """One SSH connection, shared by the transfers to its server, and the channels it may still open."""

    conn: Any
    host_key: Any
    #: the address actually connected to (a mount connects to the same one)
    peer: str
    #: whether that is a public address of another machine (see faice.connectors.network)
    public: bool
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CHANNELS))
    idle: list[Any] = field(default_factory=list)
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)

    @property
    def closed(self) -> bool:
        return self.conn.is_closed()


class Pool:
    def __init__(self) -> None:
        self.connections: dict[tuple[str, int, str, str], Connection] = {}
        self.locks: dict[tuple[str, int, str, str], asyncio.Lock] = {}

    async def connection(self, access: SshAccess, public_only: bool) -> Connection:
        """The shared connection for ``access``, opened (and its host key checked) when there is none.

        A connection an admin opened to this machine is shared, but never with a user who may
        reach only the public internet: the address it is connected to is checked on every use.
        """
        key = access.connection_key
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            found = self.connections.get(key)
            if found is None or found.closed:
                found = self.connections[key] = await _open(access, public_only)
        if public_only and not found.public:
            raise SshError(f"{access.where()}: {REFUSED}")
        return found

    @asynccontextmanager
    async def sftp(self, access: SshAccess, public_only: bool) -> AsyncIterator[Any]:
        """An SFTP channel of the shared connection, for one transfer; given back afterwards."""
        import asyncssh

        connection = await self.connection(access, public_only)
        connection.users += 1
        try:
            async with connection.slots:
                client = connection.idle.pop() if connection.idle else None
                if client is None:
                    try:
                        client = await connection.conn.start_sftp_client()
                    except (asyncssh.Error, OSError) as exc:
                        raise SshError(f"{access.where()}: cannot open an SFTP channel: {describe(exc)}") from None
                try:
                    yield client
                except BaseException:
                    client.exit()
                    raise
                else:
                    connection.idle.append(client)
        finally:
            connection.users -= 1
            connection.last_used = time.monotonic()
            asyncio.get_running_loop().call_later(IDLE_SECONDS, self._close_if_idle, access.connection_key)

    def _close_if_idle(self, key: tuple[str, int, str, str]) -> None:
        connection = self.connections.get(key)
        if connection is not None and connection.users == 0 and time.monotonic() - connection.last_used >= IDLE_SECONDS - 0.1:
            del self.connections[key]
            connection.conn.close()

    async def close_all(self) -> None:
        connections, self.connections = list(self.connections.values()), {}
        for connection in connections:
            connection.conn.close()
        for connection in connections:
            await connection.conn.wait_closed()


POOL = Pool()


async def _open(access: SshAccess, public_only: bool) -> Connection:
    import asyncssh

    keys = _client_keys(access)
    sock = await _connect_socket(access, public_only)
    peer, public = sock.getpeername()[0], not peer_refused(sock)
    known = hostkeys.lookup(access.host, access.port)
    revoked = [key for key, _ in known.revoked]
    trusted = [key for key, _ in known.keys if key not in revoked]  # a revoked key goes to verify(), which refuses it by name
    refusal: list[ConnectorError] = []

    class Client(asyncssh.SSHClient):
        def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
            try:
                hostkeys.verify(access.host, access.port, key, known)
            except ConnectorError as exc:
                refusal.append(exc)
                return False
            return True

    try:
        conn = await asyncio.wait_for(asyncssh.connect(
            sock=sock,
            server_host_key_algs=_host_key_algorithms(known),
            username=access.username,
            password=access.password,
            client_keys=keys,
            known_hosts=lambda _host, _addr, _port: (trusted, known.ca_keys, []),
            client_factory=Client,
            config=None,
            agent_path=None,
            gss_host=None,
            host_based_auth=False,
            preferred_auth=("publickey", "keyboard-interactive", "password"),
            encryption_algs=ENCRYPTION,
            keepalive_interval=30,
        ), access.handshake_timeout)
    except asyncio.TimeoutError:
        sock.close()
        raise SshError(f"{access.where()}: no SSH handshake within {access.handshake_timeout:g} s (bannerTimeout + authTimeout)") from None
    except asyncssh.HostKeyNotVerifiable as exc:
        raise SshError(f"{access.where()}: {refusal[0] if refusal else describe(exc)}") from None
    except asyncssh.PermissionDenied:
        raise SshError(f"{access.where()}: authentication failed: the server refused {_offered(access)}") from None
    except (asyncssh.Error, OSError) as exc:
        raise SshError(f"{access.where()}: {describe(exc)}") from None
    return Connection(conn, conn.get_server_host_key(), peer, public)


def _host_key_algorithms(known: hostkeys.Known) -> list[str] | str:
    """The kinds of remembered keys first (as OpenSSH orders them), then every other kind: a host
    that now presents only another kind of key is refused with both fingerprints, not with a
    failed negotiation."""
    from asyncssh.public_key import get_default_certificate_algs, get_default_public_key_algs

    if not known.keys:
        return "default"
    remembered = [alg for key, _ in known.keys for alg in key.sig_algorithms]
    return [alg.decode() for alg in dict.fromkeys(remembered + get_default_certificate_algs() + get_default_public_key_algs())]


def _offered(access: SshAccess) -> str:
    return " and ".join(what for what, given in (("the private key", access.private_key), ("the password", access.password)) if given)


def _client_keys(access: SshAccess) -> list[Any] | None:
    """The RED file's private key, decrypted; None (no public-key authentication) without one."""
    import asyncssh

    if access.private_key is None:
        return None
    try:
        return [asyncssh.import_private_key(access.private_key, access.passphrase)]
    except asyncssh.KeyEncryptionError as exc:
        reason = "the passphrase does not decrypt privateKey" if "passphrase" in str(exc).lower() else f"cannot decrypt privateKey: {exc}"
        raise SshError(f"{access.where()}: {reason}") from None
    except asyncssh.KeyImportError as exc:
        if "passphrase" in str(exc).lower():
            raise SshError(f"{access.where()}: privateKey is encrypted: auth needs its passphrase") from None
        raise SshError(f"{access.where()}: privateKey is not a private key faice can read (are all its lines there, BEGIN and END included?)") from None


async def _connect_socket(access: SshAccess, public_only: bool) -> socket.socket:
    """A TCP connection to the host within ``timeout``; for a non-admin of faice serve, only to a public address."""
    loop = asyncio.get_running_loop()
    try:
        addresses = await asyncio.wait_for(loop.getaddrinfo(access.host, access.port, type=socket.SOCK_STREAM), access.connect_timeout)
    except (socket.gaierror, UnicodeError, asyncio.TimeoutError):
        raise SshError(f"{access.where()}: cannot resolve the host name") from None
    reason = "no address to connect to"
    for family, kind, proto, _name, address in addresses:
        if public_only and not is_public(address[0]):
            reason = REFUSED
            continue
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, address), access.connect_timeout)
        except asyncio.TimeoutError:
            sock.close()
            reason = f"cannot connect: no answer within {access.connect_timeout:g} s (timeout)"
            continue
        except OSError as exc:
            sock.close()
            reason = describe(exc)
            continue
        if public_only and peer_refused(sock):
            sock.close()
            reason = REFUSED
            continue
        return sock
    raise SshError(f"{access.where()}: {reason}")


def describe(exc: BaseException) -> str:
    """The cause of an SSH, SFTP or socket failure in a few words (no data from the RED file in it)."""
    import asyncssh

    if isinstance(exc, asyncssh.SFTPNoSuchFile | asyncssh.SFTPNoSuchPath):
        return "no such file or directory"
    if isinstance(exc, asyncssh.SFTPPermissionDenied):
        return "permission denied"
    if isinstance(exc, asyncssh.SFTPNoSpaceOnFilesystem | asyncssh.SFTPQuotaExceeded):
        return "no space left on the remote disk"
    if isinstance(exc, asyncssh.ConnectionLost | asyncssh.SFTPConnectionLost | asyncssh.SFTPNoConnection):
        return f"the connection broke off ({exc.reason})" if getattr(exc, "reason", "") else "the connection broke off"
    if isinstance(exc, asyncssh.Error):
        return exc.reason or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is an SSH server listening on that port?)"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return type(exc).__name__
