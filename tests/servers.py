"""Real servers on loopback for the connector tests: OpenSSH's sshd and a pyftpdlib FTP(S) server.

sshd runs as ``sshd -D -f CONFIG -p PORT`` with a throwaway host key and serves a throwaway user
(created once, given a fresh random password per session) by password and by key. The user's
files live in a directory of their own under /tmp that the tests fill and read.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually

#: one throwaway user per pytest-xdist worker: each worker's sshd gives it a password of its own
#: and locks it when that worker is done
SSH_USER = "faice-ssh-test" + (f"-{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else "")


@contextlib.contextmanager
def system_users_lock() -> Iterator[None]:
    """Held while a test adds or changes a system user: useradd, usermod and chpasswd refuse to
    run while another (another xdist worker's) holds /etc/passwd's lock."""
    with open("/tmp/faice-tests-users.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen[Any] | None = None, seconds: float = 15) -> None:
    def listening() -> bool:
        if process is not None and process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    eventually(listening, seconds, what=f"something listening on port {port}")


def keygen(path: Path, passphrase: str = "", kind: str = "ed25519") -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "faice-test", "-f", str(path)], check=True)
    return path.read_text()


def fingerprint(public_key: Path) -> str:
    return subprocess.run(["ssh-keygen", "-lf", str(public_key)], capture_output=True, text=True, check=True).stdout.split()[1]


@dataclass
class SshServer:
    port: int
    user: str
    password: str
    key: str  # private key text (no passphrase)
    host_key: Path  # the server's public host key
    root: Path  # the user's data directory
    log: Path
    process: subprocess.Popen[Any]
    config: Path

    host = "127.0.0.1"

    def access(self, path: str, *, key: bool = False, kind: str = "File", **extra: Any) -> dict[str, Any]:
        auth = {"username": self.user, "privateKey": self.key} if key else {"username": self.user, "password": self.password}
        return {"host": self.host, "port": self.port, "auth": auth, ("dirPath" if kind == "Directory" else "filePath"): path, **extra}

    def put(self, relative: str, content: str | bytes) -> Path:
        """A file on the server, readable by the user (parent directories made and given to them)."""
        path = self.root / relative
        self.mkdir(str(Path(relative).parent))
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        shutil.chown(path, self.user, self.user)
        return path

    def mkdir(self, relative: str) -> Path:
        path = self.root
        for part in Path(relative).parts:
            path = path / part
            if not path.exists():
                path.mkdir()
                shutil.chown(path, self.user, self.user)
        return path

    def accepted(self) -> int:
        """How many logins sshd has accepted so far (one per SSH connection)."""
        return self.logged("Accepted ")

    def logged(self, text: str) -> int:
        """How many times ``text`` is in sshd's log so far."""
        return self.log.read_text(errors="replace").count(text)

    def wait_logged(self, text: str, count: int, timeout: float = 10) -> int:
        """The times ``text`` is in the log, once it is there ``count`` times (or the timeout
        passed): sshd's per-connection processes write their lines a moment after the client is done."""
        found = 0

        def enough() -> bool:
            nonlocal found
            found = self.logged(text)
            return found >= count

        with contextlib.suppress(pytest.fail.Exception):  # the caller's assertion says what was logged instead
            eventually(enough, timeout, 0.02)
        return found


def _ensure_user(name: str, password: str) -> None:
    with system_users_lock():
        try:
            pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)


def start_sshd(*, port: int | None = None, host_key: Path | None = None, user: str = SSH_USER, password: str | None = None,
               authorized: str | None = None, root: Path | None = None) -> SshServer:
    """sshd for ``user``; its configuration in a directory of its own that the user may read
    (sshd reads authorized_keys as the user)."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd):
        pytest.fail("OpenSSH's sshd is missing: run `make test` (it installs openssh-server)")
    if os.getuid() != 0:
        pytest.fail("the ssh tests start sshd with password logins for a throwaway user, which needs root")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    password = password or secrets.token_urlsafe(12)
    _ensure_user(user, password)
    workdir = Path(tempfile.mkdtemp(prefix="faice-sshd-"))
    workdir.chmod(0o755)
    if host_key is None:
        host_key = workdir / "host_key"
        keygen(host_key)
    if authorized is None:
        key = keygen(workdir / "user_key")
        authorized = (workdir / "user_key.pub").read_text()
    else:
        key = ""
    (workdir / "authorized_keys").write_text(authorized)
    (workdir / "authorized_keys").chmod(0o644)
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="faice-ssh-data-"))
        shutil.chown(root, user, user)
    port = port or free_port()
    config = workdir / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {workdir / 'authorized_keys'}\nStrictModes no\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin no\nSubsystem sftp internal-sftp\n"
        f"AllowUsers {user}\nPidFile none\nLogLevel VERBOSE\nMaxStartups 100\n"
    )
    log = workdir / "sshd.log"
    process = subprocess.Popen([sshd, "-D", "-E", str(log), "-f", str(config), "-p", str(port)], stdin=subprocess.DEVNULL)
    wait_for_port(port, process)
    # tests count connections in the log: let the probe's be written first
    eventually(lambda: "Connection closed by" in log.read_text(errors="replace"), 10, 0.02, what="sshd logging the probe connection")
    return SshServer(port, user, password, key, Path(f"{host_key}.pub"), root, log, process, config)


def stop_sshd(server: SshServer, remove_data: bool = True) -> None:
    with system_users_lock():
        subprocess.run(["usermod", "--lock", server.user], check=False, capture_output=True)  # no password login left behind for the host's own sshd
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    shutil.rmtree(server.config.parent, ignore_errors=True)
    if remove_data:
        shutil.rmtree(server.root, ignore_errors=True)


# --- FTP -------------------------------------------------------------------------------------------


@dataclass
class FtpServer:
    port: int
    root: Path
    user: str
    password: str
    server: Any
    thread: threading.Thread
    tls: bool = False

    @property
    def url(self) -> str:
        return f"{'ftps' if self.tls else 'ftp'}://127.0.0.1:{self.port}"

    def access(self, path: str, *, anonymous: bool = False, **extra: Any) -> dict[str, Any]:
        access: dict[str, Any] = {"url": f"{self.url}{path}", **extra}
        if not anonymous:
            access["auth"] = {"username": self.user, "password": self.password}
        return access

    def stop(self) -> None:
        self.server.close_all()
        self.thread.join(10)


def tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "faice test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False).sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


def start_ftpd(root: Path, *, tls: Path | None = None, mlsd: bool = True, rename_over: bool = True, dots: bool = False) -> FtpServer:
    """pyftpdlib on 127.0.0.1 (a thread of the test process): a user with a password, and anonymous read access.

    ``rename_over=False``: RNTO onto an existing file is refused, as some servers do.
    ``dots``: directory listings include ``.`` and ``..``, as ``ls -a`` style LIST output does."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import ThreadedFTPServer

    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    authorizer = DummyAuthorizer()
    authorizer.add_user("ftpuser", password, str(root), perm="elradfmwMT")
    authorizer.add_anonymous(str(root))
    base = TLS_FTPHandler if tls else FTPHandler
    attributes: dict[str, Any] = {"authorizer": authorizer, "banner": "faice test ftpd", "auth_failed_timeout": 0.05}
    if tls:
        attributes.update(certfile=str(tls / "cert.pem"), keyfile=str(tls / "key.pem"), tls_control_required=True, tls_data_required=True)
    if not mlsd:
        attributes["proto_cmds"] = {k: v for k, v in base.proto_cmds.items() if k not in ("MLSD", "MLST")}
    if not rename_over:
        def refuse_existing(handler: Any, path: str) -> Any:
            if os.path.exists(path):
                handler._rnfr = None
                handler.respond("550 File exists.")
                return None
            return base.ftp_RNTO(handler, path)

        attributes["ftp_RNTO"] = refuse_existing
    if dots:
        class DotsFS(AbstractedFS):
            def listdir(self, path: str) -> list[str]:
                return [".", "..", *super().listdir(path)]

        attributes["abstracted_fs"] = DotsFS
    handler = type("Handler", (base,), attributes)
    server = ThreadedFTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())  # its own loop: pyftpdlib's default one is shared by all servers
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.2, "handle_exit": False}, daemon=True)
    thread.start()
    return FtpServer(server.address[1], root, "ftpuser", password, server, thread, tls=tls is not None)


class SocketProxy:
    """A unix socket that forwards to Docker's: what the tests cut to make Docker "disappear"."""

    def __init__(self, path: Path, target: str = "/var/run/docker.sock") -> None:
        self.path, self.target = path, target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(64)
        self.open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self._lock:
                self.open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """Docker is gone: the socket file, the listener and every connection through it."""
        self.listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            for sock in self.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
