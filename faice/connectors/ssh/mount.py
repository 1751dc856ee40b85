"""``mount: true`` for ssh directories: sshfs (FUSE) on this machine, bind-mounted into the container.

faice has already connected with its own SSH client and checked the host key (trust on first
use) and the credentials; sshfs is then pinned to that very key and address, so it cannot meet
another host. No secret is written to disk or given in argv or the environment: a password goes
to sshfs on its stdin (``password_stdin``), a private key (decrypted by faice) to a private
``ssh-agent`` that lives only while sshfs logs in, holds the key no longer than the login may take,
and is stopped as soon as the mount stands. sshfs offers that key only, not the keys in ~/.ssh of
whoever runs faice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from faice.connectors.base import process_environment
from faice.connectors.fuse import fusermount
from faice.connectors.ssh.access import MOUNT_USERNAME, SshAccess, mountable_username
from faice.connectors.ssh.session import Connection, SshError

FUSE_CONF = Path("/etc/fuse.conf")
ALIAS = "faice-pinned-host"
NO_MOUNT = "or run faice with --no-mount to copy the directory instead"


def unavailable() -> str | None:
    """Why sshfs mounts cannot work here (None: they can)."""
    if shutil.which("sshfs") is None:
        return f"mount: true needs sshfs, which is not installed here (Debian: apt-get install sshfs), {NO_MOUNT}"
    if not os.path.exists("/dev/fuse"):
        return f"mount: true needs FUSE, and /dev/fuse does not exist here, {NO_MOUNT}"
    if os.getuid() != 0:
        if fusermount() is None:
            return f"mount: true needs fusermount3 (Debian: apt-get install fuse3), {NO_MOUNT}"
        try:
            allowed = any(line.strip() == "user_allow_other" for line in FUSE_CONF.read_text().splitlines())
        except OSError:
            allowed = False
        if not allowed:
            return (f"mount: true needs 'user_allow_other' in {FUSE_CONF} when faice does not run as root "
                    f"(the Docker daemon must be allowed to see your mount), {NO_MOUNT}")
    return None


def mount(access: SshAccess, connection: Connection, mountpoint: Path, owner: str | None) -> None:
    """Mount ``access.path`` at ``mountpoint``, read-only unless ``writable``."""
    if not mountable_username(access.username):
        raise SshError(f"{access.where()}: {MOUNT_USERNAME}")
    with tempfile.TemporaryDirectory(prefix="faice-sshfs-") as private, _agent(access, Path(private)) as agent:
        known_hosts = Path(private) / "known_hosts"  # the one key faice checked, under a name of its own
        algorithm, data = connection.host_key.export_public_key("openssh").decode().split()[:2]
        known_hosts.write_text(f"{ALIAS} {algorithm} {data}\n[{ALIAS}]:{access.port} {algorithm} {data}\n")
        options = [
            "ro" if not access.writable else "rw",
            "allow_other" if os.getuid() == 0 else "allow_root",
            f"HostKeyAlias={ALIAS}",
            f"UserKnownHostsFile={known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "CheckHostIP=no",
            f"IdentityAgent={agent or 'none'}",
            "IdentitiesOnly=yes",  # the RED file's key only, never ~/.ssh/id_* of whoever runs faice
            f"PubkeyAuthentication={'yes' if agent else 'no'}",
            "PreferredAuthentications=publickey,password,keyboard-interactive",
            f"PasswordAuthentication={'yes' if access.password else 'no'}",
            f"KbdInteractiveAuthentication={'yes' if access.password else 'no'}",
            "NumberOfPasswordPrompts=1",
            f"ConnectTimeout={max(1, round(access.connect_timeout))}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
        ]
        if agent:
            options.append(f"IdentityFile={agent.with_name('key.pub')}")  # public half: the agent signs
        if access.password:
            options.append("password_stdin")  # sshfs answers the prompt that ends in "assword:"
        if owner:
            uid, _, gid = owner.partition(":")
            options += [f"uid={uid}", f"gid={gid or uid}"]
        host = f"[{connection.peer}]" if ":" in connection.peer else connection.peer
        argv = ["sshfs", f"{access.username}@{host}:{access.path}", str(mountpoint), "-p", str(access.port), "-F", "/dev/null", "-o", ",".join(_escaped(o) for o in options)]
        timeout = access.connect_timeout + access.handshake_timeout + 10
        try:
            done = subprocess.run(argv, input=f"{access.password}\n" if access.password else "", env=_environment(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{access.where()}: sshfs did not mount it within {timeout:g} s") from None
        except OSError as exc:
            raise SshError(f"{access.where()}: cannot run sshfs: {exc.strerror or exc}") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise SshError(f"{access.where()}: sshfs could not mount it: {lines[-1] if lines else f'exit code {done.returncode}'}")


def _escaped(option: str) -> str:
    """FUSE splits ``-o`` at commas: a comma (or backslash) within one option is escaped."""
    return option.replace("\\", "\\\\").replace(",", "\\,")


def _environment() -> dict[str, str]:
    environment = process_environment()
    for name in ("SSH_AUTH_SOCK", "SSH_ASKPASS", "SSH_ASKPASS_REQUIRE", "DISPLAY"):
        environment.pop(name, None)
    return environment


@contextmanager
def _agent(access: SshAccess, private: Path) -> Iterator[Path | None]:
    """A private ssh-agent holding the RED file's key (decrypted) while sshfs logs in; None without a key."""
    if access.private_key is None:
        yield None
        return
    import asyncssh

    private_key = asyncssh.import_private_key(access.private_key, access.passphrase)  # faice read it already
    (private / "key.pub").write_bytes(private_key.export_public_key("openssh"))
    key = private_key.export_private_key("openssh")
    socket = private / "agent"
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        raise SshError(f"{access.where()}: mounting with a private key needs ssh-agent and ssh-add (Debian: openssh-client)")
    # The agent lives as long as faice holds the pipe: stopped by faice, or by the pipe's end if
    # faice itself is killed mid-login, never left behind with the key.
    agent = subprocess.Popen(["sh", "-c", 'ssh-agent -D -a "$1" </dev/null >/dev/null 2>&1 & agent=$!; read -r _; kill "$agent"; wait "$agent"', "sh", str(socket)],
                             stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_environment())
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if agent.poll() is not None or time.monotonic() > deadline:
                raise SshError(f"{access.where()}: ssh-agent did not start")
            time.sleep(0.01)
        lifetime = str(round(access.connect_timeout + access.handshake_timeout + 30))  # the login at most: the key leaves the agent then
        added = subprocess.run(["ssh-add", "-q", "-t", lifetime, "-"], input=key, capture_output=True, env={**_environment(), "SSH_AUTH_SOCK": str(socket)}, timeout=30)
        if added.returncode != 0:
            raise SshError(f"{access.where()}: ssh-add could not hand the key to ssh-agent: {added.stderr.decode(errors='replace').strip()}")
        yield socket
    finally:
        assert agent.stdin is not None
        agent.stdin.close()
        try:
            agent.wait(10)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
