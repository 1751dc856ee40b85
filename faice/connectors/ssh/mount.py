"""``mount: true`` for ssh directories: sshfs (FUSE) on this machine, bind-mounted into the container.

faice has already connected with its own SSH client and checked the host key (trust on first
use) and the credentials; sshfs is then pinned to that very key and address, so it cannot meet
another host. Passwords and passphrases reach OpenSSH through ``SSH_ASKPASS``, from files in a
private temporary directory that is gone as soon as the mount stands: never in argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from faice.connectors.fuse import fusermount
from faice.connectors.ssh.access import SshAccess
from faice.connectors.ssh.session import Connection, SshError

FUSE_CONF = Path("/etc/fuse.conf")
ALIAS = "faice-pinned-host"
ASKPASS = """#!/bin/sh
case "$1" in
  *assphrase*) exec cat "$FAICE_ASKPASS_DIR/passphrase" ;;
  *) exec cat "$FAICE_ASKPASS_DIR/password" ;;
esac
"""
NO_MOUNT = "or run faice with --no-mount to copy the directory instead"


def unavailable(fuse_conf: Path = FUSE_CONF) -> str | None:
    """Why sshfs mounts cannot work here (None: they can)."""
    if shutil.which("sshfs") is None:
        return f"mount: true needs sshfs, which is not installed here (Debian: apt-get install sshfs), {NO_MOUNT}"
    if not os.path.exists("/dev/fuse"):
        return f"mount: true needs FUSE, and /dev/fuse does not exist here, {NO_MOUNT}"
    if os.getuid() != 0:
        if fusermount() is None:
            return f"mount: true needs fusermount3 (Debian: apt-get install fuse3), {NO_MOUNT}"
        try:
            allowed = any(line.strip() == "user_allow_other" for line in fuse_conf.read_text().splitlines())
        except OSError:
            allowed = False
        if not allowed:
            return (f"mount: true needs 'user_allow_other' in {fuse_conf} when faice does not run as root "
                    f"(the Docker daemon must be allowed to see your mount), {NO_MOUNT}")
    return None


def mount(access: SshAccess, connection: Connection, mountpoint: Path, owner: str | None) -> None:
    """Mount ``access.path`` at ``mountpoint``, read-only unless ``writable``."""
    with tempfile.TemporaryDirectory(prefix="faice-sshfs-") as private:
        folder = Path(private)
        algorithm, data = connection.host_key.export_public_key("openssh").decode().split()[:2]
        (folder / "known_hosts").write_text(f"{ALIAS} {algorithm} {data}\n[{ALIAS}]:{access.port} {algorithm} {data}\n")
        options = [
            "ro" if not access.writable else "rw",
            "allow_other" if os.getuid() == 0 else "allow_root",
            f"HostKeyAlias={ALIAS}",
            f"UserKnownHostsFile={folder / 'known_hosts'}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "UpdateHostKeys=no",
            "CheckHostIP=no",
            "IdentitiesOnly=yes",
            "IdentityAgent=none",
            "BatchMode=no",
            "NumberOfPasswordPrompts=1",
            f"ConnectTimeout={max(1, round(access.connect_timeout))}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
            f"PasswordAuthentication={'yes' if access.password else 'no'}",
            f"KbdInteractiveAuthentication={'yes' if access.password else 'no'}",
        ]
        if owner:
            uid, _, gid = owner.partition(":")
            options += [f"uid={uid}", f"gid={gid or uid}"]
        _private_file(folder / "askpass", ASKPASS, 0o700)
        if access.password:
            _private_file(folder / "password", access.password)
        if access.private_key:
            _private_file(folder / "key", access.private_key)
            options.append(f"IdentityFile={folder / 'key'}")
            if access.passphrase:
                _private_file(folder / "passphrase", access.passphrase)
        else:
            options.append("PubkeyAuthentication=no")
        host = f"[{connection.peer}]" if ":" in connection.peer else connection.peer
        argv = ["sshfs", f"{access.username}@{host}:{access.path}", str(mountpoint), "-p", str(access.port), "-F", "/dev/null", "-o", ",".join(options)]
        environment = {**os.environ, "SSH_ASKPASS": str(folder / "askpass"), "SSH_ASKPASS_REQUIRE": "force", "FAICE_ASKPASS_DIR": private}
        timeout = access.connect_timeout + access.handshake_timeout + 10
        try:
            done = subprocess.run(argv, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SshError(f"{access.where()}: sshfs did not mount it within {timeout:g} s") from None
        except OSError as exc:
            raise SshError(f"{access.where()}: cannot run sshfs: {exc.strerror or exc}") from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise SshError(f"{access.where()}: sshfs could not mount it: {lines[-1] if lines else f'exit code {done.returncode}'}")


def _private_file(path: Path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
