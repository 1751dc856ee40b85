"""``red-connector-ftp`` and ``red-connector-ftp-archive``: FTP, and FTPS with explicit TLS.

Access (upstream's fields): ``url`` (``ftp://host[:port]/path``, or ``ftps://`` for explicit
TLS with the data channel encrypted too), ``port`` (default 21, or the URL's), and an optional
``auth`` with ``username`` and ``password`` (anonymous otherwise). Always passive mode, with data
connections to the address of the control connection, whatever the server's PASV reply says.
Files stream to and from disk; an upload goes to a temporary name and is renamed into place.
The archive variant receives a Directory by fetching one archive (``archiveFormat``: zip, tar,
gztar, bztar, xztar) and unpacking it, refusing members that would escape the directory.
"""

from __future__ import annotations

import ftplib
import os
import posixpath
import secrets
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from faice.connectors.archive import ArchiveConnector
from faice.connectors.base import Connector, ConnectorError, Context, Direction, Kind, check_fields, port_of, port_problems
from faice.connectors.network import REFUSED, PeerRefused, connect

DEFAULT_PORT = 21
BLOCK = 1 << 20


def _problems(access: Any, extra: dict[str, Any] | None = None) -> list[str]:
    problems = check_fields(access, {"url": str, **(extra or {})}, {"port": (int, str), "auth": dict})
    if problems:
        return problems
    problems += port_problems(access)
    url = access["url"]
    if "{{" in url:
        return problems
    parts = urlsplit(url)
    if parts.scheme not in ("ftp", "ftps"):
        problems.append('access "url" must start with ftp:// (or ftps:// for FTP over TLS)')
    elif not parts.hostname:
        problems.append('access "url" has no host')
    elif "@" in parts.netloc:
        problems.append('access "url" must not carry a user or password: give them in "auth", where they are protected')
    elif not unquote(parts.path).strip("/"):
        problems.append('access "url" must name a file or directory after the host')
    elif any(c.isspace() and c != " " or ord(c) < 32 for c in unquote(parts.path)):
        problems.append('access "url" must not contain control characters')
    else:
        try:
            url_port = parts.port
        except ValueError:
            return [*problems, 'access "url" has an invalid port']
        if url_port is not None and "port" in access and not port_problems(access) and int(access["port"]) != url_port:
            problems.append(f'access "port" ({access["port"]}) differs from the port in "url" ({url_port})')
    if "auth" in access:
        problems += check_fields(access["auth"], {}, {"username": str, "password": str}, label="auth:")
    return problems


@dataclass(frozen=True)
class FtpAccess:
    """An FTP connector's access block, checked and with its defaults filled in."""

    host: str
    port: int
    tls: bool
    path: str
    username: str
    password: str

    @classmethod
    def parse(cls, access: dict[str, Any]) -> FtpAccess:
        parts = urlsplit(access["url"])
        auth = access.get("auth") or {}
        port = parts.port or port_of(access, DEFAULT_PORT)
        return cls(parts.hostname or "", port, parts.scheme == "ftps", unquote(parts.path), auth.get("username", "anonymous"), auth.get("password", "anonymous@"))

    def where(self, path: str | None = None) -> str:
        """The location for messages: the URL with the user, never the password."""
        user = "" if self.username == "anonymous" else f"{self.username}@"
        return f"{'ftps' if self.tls else 'ftp'}://{user}{self.host}:{self.port}{self.path if path is None else path}"


class _Vetted:
    """Connects through :func:`faice.connectors.network.connect`: for a user who may reach only the
    public internet, a private address is refused before the server's greeting is read. Data
    connections (passive) go to the same peer: ftplib ignores the address in a PASV reply."""

    public_only = False

    def connect(self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None) -> str:
        ftp: Any = self
        ftp.host, ftp.port = host, port
        if timeout != -999:
            ftp.timeout = timeout
        ftp.sock = connect(host, port, ftp.timeout, self.public_only)
        ftp.af = ftp.sock.family
        ftp.file = ftp.sock.makefile("r", encoding=ftp.encoding)
        ftp.welcome = ftp.getresp()
        return ftp.welcome


class _Ftp(_Vetted, ftplib.FTP):
    pass


class _Ftps(_Vetted, ftplib.FTP_TLS):
    """Data connections resume the control connection's TLS session (vsftpd requires it)."""

    def ntransfercmd(self, cmd: str, rest: Any = None) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)  # type: ignore[union-attr]
        return conn, size


def _reason(exc: BaseException) -> str:
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is an FTP server listening on that port?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({exc.verify_message}); a private CA can be trusted with SSL_CERT_FILE"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, ftplib.error_perm) and str(exc).startswith("530"):
        return f"login refused ({exc})"
    if isinstance(exc, ftplib.Error):
        return f"the server answered {exc}"
    if isinstance(exc, EOFError):
        return "the server closed the connection"
    if isinstance(exc, PeerRefused):
        return REFUSED
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return type(exc).__name__


@contextmanager
def _session(access: FtpAccess, context: Context) -> Iterator[ftplib.FTP]:
    """A logged-in, passive, binary connection; every failure inside becomes one line naming the location."""
    ftp: _Ftp | _Ftps = _Ftps(context=ssl.create_default_context(), timeout=context.timeout) if access.tls else _Ftp(timeout=context.timeout)
    ftp.public_only = context.public_network_only
    where = access.where()
    try:
        ftp.connect(access.host, access.port, timeout=context.timeout)
        ftp.login(access.username, access.password)
        if isinstance(ftp, ftplib.FTP_TLS):
            ftp.prot_p()
        ftp.set_pasv(True)
        ftp.voidcmd("TYPE I")
        yield ftp
    except (OSError, EOFError, ftplib.Error) as exc:
        raise ConnectorError(f"{where}: {_reason(exc)}") from None
    finally:
        try:
            ftp.quit()
        except (OSError, EOFError, ftplib.Error, AttributeError):
            ftp.close()


def _step(access: FtpAccess, path: str, action: Callable[[], Any]) -> Any:
    """One FTP command; its failure names the path it was about."""
    try:
        return action()
    except (OSError, EOFError, ftplib.Error) as exc:
        raise ConnectorError(f"{access.where(path)}: {_reason(exc)}") from None


def _download(ftp: ftplib.FTP, access: FtpAccess, path: str, destination: Path, context: Context) -> None:
    with open(destination, "wb") as out:
        def write(block: bytes) -> None:
            if context.cancelled is not None and context.cancelled.is_set():
                raise ConnectorError("cancelled")
            out.write(block)

        _step(access, path, lambda: ftp.retrbinary(f"RETR {path}", write, blocksize=BLOCK))


def _entries(ftp: ftplib.FTP, access: FtpAccess, path: str) -> list[tuple[str, bool]]:
    """(name, is a directory) of a remote directory: MLSD, or LIST where the server lacks it."""
    try:
        found = [(name, facts.get("type") == "dir") for name, facts in ftp.mlsd(path, facts=["type"]) if facts.get("type") in ("file", "dir")]
    except ftplib.error_perm as exc:
        if not str(exc).startswith(("500", "501", "502", "504")):
            raise ConnectorError(f"{access.where(path)}: {_reason(exc)}") from None
        lines: list[str] = []
        _step(access, path, lambda: ftp.cwd(path))
        _step(access, path, lambda: ftp.retrlines("LIST", lines.append))
        found = []
        for line in lines:
            fields = line.split(None, 8)
            if len(fields) == 9 and fields[0][:1] in ("d", "-"):
                found.append((fields[8], fields[0].startswith("d")))
    found = [(n, d) for n, d in found if n not in (".", "..")]  # ls -a style LIST output names them
    for name, _ in found:
        if not name or "/" in name or "\0" in name:
            raise ConnectorError(f"{access.where(path)}: the server listed an impossible file name {name!r}")
    return found


def _receive_tree(ftp: ftplib.FTP, access: FtpAccess, remote: str, local: Path, listing: list[Any] | None, context: Context) -> None:
    entries = _entries(ftp, access, remote) if listing is None else [(e["basename"], e["class"] == "Directory") for e in listing]
    children = {e["basename"]: e.get("listing") for e in listing or []}
    for name, is_dir in entries:
        path = posixpath.join(remote, name)
        if is_dir:
            (local / name).mkdir()
            _receive_tree(ftp, access, path, local / name, children.get(name), context)
        else:
            _download(ftp, access, path, local / name, context)


def _makedirs(ftp: ftplib.FTP, access: FtpAccess, path: str) -> None:
    current = "/" if path.startswith("/") else ""
    for part in [p for p in path.split("/") if p]:
        current = posixpath.join(current, part)
        _makedir(ftp, access, current)


def _makedir(ftp: ftplib.FTP, access: FtpAccess, path: str) -> None:
    """Make one directory; one already there is fine."""
    try:
        ftp.mkd(path)
    except ftplib.error_perm:
        try:
            ftp.cwd(path)  # there already (as a directory)?
        except ftplib.error_perm:
            raise ConnectorError(f"{access.where(path)}: cannot create the directory") from None


def _upload(ftp: ftplib.FTP, access: FtpAccess, source: Path, target: str) -> None:
    """STOR under a temporary name, then rename into place: a broken transfer never leaves half a
    file where a good one was, nor a temporary one behind."""
    parent, name = posixpath.split(target)
    partial = posixpath.join(parent, f".{name}.faice-{secrets.token_hex(4)}")
    try:
        with open(source, "rb") as data:
            ftp.storbinary(f"STOR {partial}", data, blocksize=BLOCK)
        _replace(ftp, partial, target)
    except (OSError, EOFError, ftplib.Error) as exc:
        _quietly(ftp.delete, partial)
        raise ConnectorError(f"{access.where(target)}: {_reason(exc)}") from None


def _replace(ftp: ftplib.FTP, partial: str, target: str) -> None:
    try:
        ftp.rename(partial, target)
        return
    except ftplib.error_perm:
        if not _is_file(ftp, target):
            raise  # not a file in the way (a directory, or no permission): nothing to move aside
    # a server that does not rename over an existing file: move the old one aside first
    backup = f"{target}.faice-old-{secrets.token_hex(4)}"
    ftp.rename(target, backup)
    try:
        ftp.rename(partial, target)
    except (OSError, EOFError, ftplib.Error) as exc:
        try:
            ftp.rename(backup, target)
        except (OSError, EOFError, ftplib.Error):
            raise ftplib.error_perm(f"{exc} (and the old file could not be put back: it is {backup})") from None
        raise
    _quietly(ftp.delete, backup)


def _is_file(ftp: ftplib.FTP, path: str) -> bool:
    try:
        return ftp.size(path) is not None
    except (OSError, EOFError, ftplib.Error):
        return False


def _quietly(action: Callable[..., Any], *args: str) -> None:
    try:
        action(*args)
    except (OSError, EOFError, ftplib.Error):
        pass


def _send_tree(ftp: ftplib.FTP, access: FtpAccess, local: Path, remote: str, listing: list[Any] | None) -> None:
    names = sorted(os.listdir(local)) if listing is None else [e["basename"] for e in listing]
    children = {e["basename"]: e.get("listing") for e in listing or []}
    for name in names:
        here, path = local / name, posixpath.join(remote, name)
        if here.is_symlink():
            raise ConnectorError(f"{access.where(path)}: {name} is a symbolic link, which FTP cannot send")
        if here.is_dir():
            _makedir(ftp, access, path)  # its parent was made just before
            _send_tree(ftp, access, here, path, children.get(name))
        elif here.is_file():
            _upload(ftp, access, here, path)
        elif listing is not None:
            raise ConnectorError(f"{access.where(path)}: the listing names {name}, which the tool did not make")


class FtpConnector(Connector):
    name = "red-connector-ftp"

    def validate(self, access: dict[str, Any], direction: Direction, kind: Kind, listing: list[Any] | None = None) -> list[str]:
        return _problems(access)

    def default_basename(self, access: dict[str, Any]) -> str | None:
        url = access.get("url")
        if not isinstance(url, str) or "{{" in url:
            return None
        return posixpath.basename(unquote(urlsplit(url).path).rstrip("/")) or None

    def receive_file(self, access: dict[str, Any], destination: Path, context: Context) -> None:
        parsed = FtpAccess.parse(access)
        with _session(parsed, context) as ftp:
            _download(ftp, parsed, parsed.path, destination, context)

    def receive_dir(self, access: dict[str, Any], destination: Path, listing: list[Any] | None, context: Context) -> None:
        parsed = FtpAccess.parse(access)
        with _session(parsed, context) as ftp:
            _receive_tree(ftp, parsed, parsed.path.rstrip("/") or "/", destination, listing, context)

    def send_file(self, access: dict[str, Any], source: Path, context: Context) -> None:
        parsed = FtpAccess.parse(access)
        with _session(parsed, context) as ftp:
            parent = posixpath.dirname(parsed.path)
            if parent.strip("/"):
                _makedirs(ftp, parsed, parent)
            _upload(ftp, parsed, source, parsed.path)

    def send_dir(self, access: dict[str, Any], source: Path, listing: list[Any] | None, context: Context) -> None:
        parsed = FtpAccess.parse(access)
        with _session(parsed, context) as ftp:
            target = parsed.path.rstrip("/")
            _makedirs(ftp, parsed, target)
            _send_tree(ftp, parsed, source, target, listing)


class FtpArchiveConnector(ArchiveConnector):
    name = "red-connector-ftp-archive"

    def access_problems(self, access: Any, extra: dict[str, Any]) -> list[str]:
        return _problems(access, extra)

    def fetch(self, access: dict[str, Any], archive: Path, context: Context) -> str:
        parsed = FtpAccess.parse(access)
        with _session(parsed, context) as ftp:
            _download(ftp, parsed, parsed.path, archive, context)
        return parsed.where()
