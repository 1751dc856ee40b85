"""red-connector-ssh against a real OpenSSH sshd on loopback: access checks, transfers, host keys, errors."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from faice.connectors.base import ConnectorError, Context
from faice.connectors.network import PRIVATE
from faice.connectors.ssh import SshConnector, hostkeys
from faice.connectors.ssh import session as ssh_session
from faice.connectors.ssh.access import SshAccess
from tests.conftest import eventually
from tests.servers import fingerprint, keygen

ssh = SshConnector()


@pytest.fixture(autouse=True)
def own_known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each test starts with no remembered host keys and no shared connections."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    yield
    ssh_session.run(ssh_session.POOL.close_all)


def context(tmp_path: Path, **extra) -> Context:
    return Context(base_dir=tmp_path, timeout=30, **extra)


def known_line(name: str, public_key: Path) -> str:
    """A known_hosts line: ``name`` and the key type and data of a .pub file."""
    return f"{name} {' '.join(public_key.read_text().split()[:2])}\n"


def users_known_hosts(tmp_path: Path) -> Path:
    """~/.ssh/known_hosts of this test's HOME (see own_known_hosts), its directory made."""
    path = tmp_path / "home" / ".ssh" / "known_hosts"
    path.parent.mkdir(parents=True)
    return path


# --- access checks (no network) ---------------------------------------------------------------


def test_access_fields_of_upstream_are_checked_without_echoing_values():
    good = {"host": "example.org", "port": 22, "auth": {"username": "u", "password": "secret-pw"}, "filePath": "/data/x.csv"}
    assert ssh.validate(good, "receive", "File") == []
    assert ssh.validate({**good, "port": "2222"}, "receive", "File") == []  # a filled {{variable}} is a string
    assert ssh.validate({**good, "timeout": 5, "bannerTimeout": 2.5, "authTimeout": 10}, "send", "File") == []
    problems = ssh.validate({**good, "port": "22x", "auth": {"username": "u", "passphrase": "secret-pw"}, "extra": 1}, "receive", "File")
    assert 'access "port" must be a port number (an integer, or a string of digits)' in problems
    assert 'auth needs "password" or "privateKey"' in problems
    assert any("passphrase" in p for p in problems)  # the secret's field is named, its value never
    assert any('unknown key "extra"' in p for p in problems)
    assert not any("secret-pw" in p for p in problems)
    assert ssh.validate({**good, "port": 70000}, "receive", "File") == ['access "port" must be between 1 and 65535']
    assert ssh.validate({**good, "port": True}, "receive", "File") != []
    assert 'access "filePath" is for a File; a Directory needs "dirPath"' in ssh.validate(good, "receive", "Directory")
    directory = {**good, "dirPath": "/d", "writable": True}
    del directory["filePath"]
    assert ssh.validate(directory, "mount", "Directory") == []
    assert any('unknown key "writable"' in p for p in ssh.validate(directory, "send", "Directory"))
    assert 'auth "passphrase" goes with "privateKey"' in ssh.validate({**good, "auth": {"username": "u", "password": "p", "passphrase": "x"}}, "receive", "File")
    assert 'access "timeout" must be more than 0 seconds' in ssh.validate({**good, "timeout": 0}, "receive", "File")
    assert 'access "host" must be a host name or IP address (no user@, no spaces)' in ssh.validate({**good, "host": "me@example.org"}, "receive", "File")
    mount = {**good, "dirPath": "/d"}
    del mount["filePath"]
    for username in ("x@10.0.0.5:", "-oProxyCommand=x", "a,b", "a b"):  # would change what sshfs connects to
        assert 'auth "username" cannot be mounted with sshfs' in " ".join(ssh.validate({**mount, "auth": {"username": username, "password": "p"}}, "mount", "Directory")), username
        assert ssh.validate({**good, "auth": {"username": username, "password": "p"}}, "receive", "File") == []  # faice's own SFTP keeps them apart
    assert ssh.validate({**good, "auth": {"username": "", "password": "p"}}, "receive", "File") == ['auth "username" must not be empty']


def test_a_key_written_on_one_line_with_escaped_newlines_is_read_as_lines():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\\nabc\\n-----END OPENSSH PRIVATE KEY-----"
    parsed = SshAccess.parse({"host": "h", "auth": {"username": "u", "privateKey": key}, "filePath": "/x"})
    assert parsed.private_key == "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    assert parsed.port == 22 and parsed.where() == "u@h:22:/x"


# --- transfers ---------------------------------------------------------------------------------


def test_receive_a_file_by_password_and_by_key(sshd, tmp_path: Path):
    remote = sshd.put("t1/data.csv", "a,b\n1,2\n")
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "by-password.csv", context(tmp_path))
    ssh.receive_file(sshd.access(str(remote), key=True), tmp_path / "by-key.csv", context(tmp_path))
    assert (tmp_path / "by-password.csv").read_text() == (tmp_path / "by-key.csv").read_text() == "a,b\n1,2\n"


def test_an_encrypted_key_needs_its_passphrase(sshd, tmp_path: Path):
    key = keygen(tmp_path / "locked", passphrase="open sesame")
    with open(sshd.config.parent / "authorized_keys", "a") as handle:
        handle.write((tmp_path / "locked.pub").read_text())
    remote = sshd.put("t2/x.txt", "x\n")
    access = sshd.access(str(remote))
    access["auth"] = {"username": sshd.user, "privateKey": key, "passphrase": "open sesame"}
    ssh.receive_file(access, tmp_path / "x.txt", context(tmp_path))
    assert (tmp_path / "x.txt").read_text() == "x\n"
    access["auth"]["passphrase"] = "wrong"
    with pytest.raises(ConnectorError, match="the passphrase does not decrypt privateKey"):
        ssh.receive_file(access, tmp_path / "y.txt", context(tmp_path))
    del access["auth"]["passphrase"]
    with pytest.raises(ConnectorError, match="privateKey is encrypted: auth needs its passphrase"):
        ssh.receive_file(access, tmp_path / "z.txt", context(tmp_path))


def test_receive_a_directory_whole_and_by_listing(sshd, tmp_path: Path):
    sshd.put("t3/tree/a.txt", "a\n")
    sshd.put("t3/tree/sub/b.txt", "b\n")
    sshd.put("t3/tree/sub/deeper/c.txt", "c\n")
    sshd.put("t3/tree/unlisted.txt", "u\n")
    os.symlink("a.txt", sshd.root / "t3/tree/link-to-a")
    whole = tmp_path / "whole"
    whole.mkdir()
    ssh.receive_dir(sshd.access(str(sshd.root / "t3/tree"), kind="Directory"), whole, None, context(tmp_path))
    assert sorted(str(p.relative_to(whole)) for p in whole.rglob("*")) == ["a.txt", "link-to-a", "sub", "sub/b.txt", "sub/deeper", "sub/deeper/c.txt", "unlisted.txt"]
    assert (whole / "link-to-a").read_text() == "a\n" and not (whole / "link-to-a").is_symlink()  # what the link points to, as a file
    listed = tmp_path / "listed"
    listed.mkdir()
    listing = [{"class": "File", "basename": "a.txt"}, {"class": "Directory", "basename": "sub", "listing": [{"class": "File", "basename": "b.txt"}]}]
    ssh.receive_dir(sshd.access(str(sshd.root / "t3/tree"), kind="Directory"), listed, listing, context(tmp_path))
    assert sorted(str(p.relative_to(listed)) for p in listed.rglob("*")) == ["a.txt", "sub", "sub/b.txt"]
    with pytest.raises(ConnectorError, match=r"t3/tree/missing.txt: no such file or directory \(the listing names it\)"):
        ssh.receive_dir(sshd.access(str(sshd.root / "t3/tree"), kind="Directory"), tmp_path, [{"class": "File", "basename": "missing.txt"}], context(tmp_path))


def test_send_a_file_into_new_directories_and_over_an_old_one(sshd, tmp_path: Path):
    sshd.mkdir("t4")
    source = tmp_path / "result.txt"
    source.write_text("first\n")
    target = sshd.root / "t4/new/dirs/result.txt"
    ssh.send_file(sshd.access(str(target)), source, context(tmp_path))
    assert target.read_text() == "first\n"
    source.write_text("second\n")
    ssh.send_file(sshd.access(str(target), key=True), source, context(tmp_path))
    assert target.read_text() == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.txt"]  # no partial file left behind


def test_send_a_directory_whole_and_by_listing_links_stay_links(sshd, tmp_path: Path):
    sshd.mkdir("t5")
    source = tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "one.txt").write_text("1\n")
    (source / "sub" / "two.txt").write_text("2\n")
    (source / "skip.txt").write_text("skip\n")
    os.symlink("/etc/hostname", source / "host-link")  # sent as a link, never as the host's file
    target = sshd.root / "t5/whole"
    ssh.send_dir(sshd.access(str(target), kind="Directory"), source, None, context(tmp_path))
    assert (target / "one.txt").read_text() == "1\n" and (target / "sub" / "two.txt").read_text() == "2\n"
    assert os.readlink(target / "host-link") == "/etc/hostname"
    listed = sshd.root / "t5/listed"
    ssh.send_dir(sshd.access(str(listed), kind="Directory"), source, [{"class": "File", "basename": "one.txt"}, {"class": "Directory", "basename": "sub"}], context(tmp_path))
    assert sorted(str(p.relative_to(listed)) for p in listed.rglob("*")) == ["one.txt", "sub", "sub/two.txt"]


def test_one_connection_serves_many_transfers_from_many_threads(sshd, tmp_path: Path):
    for i in range(24):
        sshd.put(f"t6/f{i}.txt", f"{i}\n")
    before = sshd.accepted()
    errors: list[Exception] = []

    def fetch(start: int) -> None:
        try:
            for i in range(start, 24, 4):
                ssh.receive_file(sshd.access(str(sshd.root / f"t6/f{i}.txt")), tmp_path / f"f{i}.txt", context(tmp_path))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [(tmp_path / f"f{i}.txt").read_text() for i in range(24)] == [f"{i}\n" for i in range(24)]
    assert sshd.accepted() - before == 1


def test_a_cancelled_run_stops_a_transfer(sshd, tmp_path: Path):
    remote = sshd.put("t7/big.bin", b"")
    os.truncate(remote, 4 << 30)  # 4 GiB (sparse): far more than loopback moves in the time allowed
    cancelled = threading.Event()
    # cancelled once the transfer is under way (before it, a loaded machine may not have begun)
    threading.Thread(target=lambda: (eventually(lambda: (tmp_path / "big.bin").exists(), interval=0.02), cancelled.set()), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="cancelled"):
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "big.bin", context(tmp_path, cancelled=cancelled))
    assert time.monotonic() - started < 15  # far below what 4 GiB would take; generous for a loaded CI machine
    assert (tmp_path / "big.bin").stat().st_size < 4 << 30


# --- failures: one line naming user@host:port:path and the cause, never a secret ----------------


def test_failures_name_the_location_and_the_cause_without_the_password(sshd, tmp_path: Path):
    sshd.put("t8/here.txt", "x\n")
    locked = sshd.mkdir("t8/locked")
    (locked / "secret.txt").write_text("no\n")  # root's file in the user's dir
    locked.chmod(0o700)
    os.chown(locked, 0, 0)
    where = f"{sshd.user}@127.0.0.1:{sshd.port}"
    cases = {
        "missing": (sshd.access(str(sshd.root / "t8/nope.txt")), f"{where}:{sshd.root}/t8/nope.txt: no such file or directory"),
        "denied": (sshd.access(str(locked / "secret.txt")), f"{where}:{locked}/secret.txt: permission denied"),
        "directory": (sshd.access(str(sshd.root / "t8")), f"{where}:{sshd.root}/t8: is a directory, not a file"),
        "password": ({**sshd.access(str(sshd.root / "t8/here.txt")), "auth": {"username": sshd.user, "password": "not-the-password"}},
                     f"{where}:{sshd.root}/t8/here.txt: authentication failed: the server refused the password"),
        "closed port": ({**sshd.access("/x"), "port": 1}, f"{sshd.user}@127.0.0.1:1:/x: connection refused"),
        "no host": ({**sshd.access("/x"), "host": "no-such-host.invalid"}, f"{sshd.user}@no-such-host.invalid:{sshd.port}:/x: cannot resolve the host name"),
    }
    for name, (access, expected) in cases.items():
        with pytest.raises(ConnectorError) as caught:
            ssh.receive_file(access, tmp_path / name, context(tmp_path))
        message = str(caught.value)
        assert message.startswith(expected), (name, message)
        assert "\n" not in message and sshd.password not in message and "not-the-password" not in message


def test_public_network_only_refuses_this_machine_before_connecting(sshd, tmp_path: Path):
    remote = sshd.put("t9/x.txt", "x\n")
    before = sshd.logged("Connection from")
    with pytest.raises(ConnectorError, match=PRIVATE):
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path, public_network_only=True))
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))  # an admin's run opens the shared connection ...
    assert sshd.wait_logged("Connection from", before + 1) == before + 1  # (the only one: the refused try never reached sshd)
    with pytest.raises(ConnectorError, match=PRIVATE):  # ... which a public-only user must not ride on
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "y.txt", context(tmp_path, public_network_only=True))
    assert not (tmp_path / "y.txt").exists()


# --- host keys -----------------------------------------------------------------------------------


def test_first_use_remembers_the_host_key_and_a_changed_key_is_refused_with_both_fingerprints(sshd, tmp_path: Path):
    remote = sshd.put("t10/x.txt", "x\n")
    logins = sshd.accepted()
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))
    remembered = hostkeys.faice_file()
    assert remembered == tmp_path / "data" / "faice" / "known_hosts"
    line = remembered.read_text()
    assert sshd.wait_logged("Accepted ", logins + 1) == logins + 1
    assert line.startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")
    assert line.split()[2] == sshd.host_key.read_text().split()[1]
    ssh_session.run(ssh_session.POOL.close_all)
    impostor = tmp_path / "impostor"
    keygen(impostor)
    remembered.write_text(known_line(f"[127.0.0.1]:{sshd.port}", Path(f"{impostor}.pub")))
    with pytest.raises(ConnectorError) as caught:
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "y.txt", context(tmp_path))
    message = str(caught.value)
    assert "has CHANGED" in message and fingerprint(sshd.host_key) in message and fingerprint(Path(f"{impostor}.pub")) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {remembered}" in message
    assert not (tmp_path / "y.txt").exists()
    remembered.write_text(line)  # the real key again: this login is the only one after the first
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "z.txt", context(tmp_path))
    assert sshd.wait_logged("Accepted ", logins + 2) == logins + 2  # the refused try sent no password


def test_the_users_own_known_hosts_is_honoured_hashed_names_included(sshd, tmp_path: Path):
    remote = sshd.put("t11/x.txt", "x\n")
    own = users_known_hosts(tmp_path)
    impostor = tmp_path / "impostor"
    keygen(impostor)
    own.write_text(known_line(f"[127.0.0.1]:{sshd.port}", Path(f"{impostor}.pub")))
    subprocess.run(["ssh-keygen", "-H", "-f", str(own)], check=True, capture_output=True)  # hashed, as Debian writes them
    assert "127.0.0.1" not in own.read_text()
    with pytest.raises(ConnectorError, match=f"has CHANGED.*{own}"):
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))
    own.write_text(known_line(f"[127.0.0.1]:{sshd.port}", sshd.host_key))  # pre-seeded right
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))
    assert not hostkeys.faice_file().exists()  # known already: nothing new to remember


def test_a_revoked_key_is_refused_even_where_it_was_remembered(sshd, tmp_path: Path):
    remote = sshd.put("t12/x.txt", "x\n")
    ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))  # remembered on first use
    ssh_session.run(ssh_session.POOL.close_all)
    own = users_known_hosts(tmp_path)
    own.write_text("@revoked " + known_line("*", sshd.host_key))
    with pytest.raises(ConnectorError, match="is marked @revoked"):
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "y.txt", context(tmp_path))


def test_host_names_match_known_hosts_in_any_case(sshd, tmp_path: Path):
    remote = sshd.put("t13/x.txt", "x\n")
    own = users_known_hosts(tmp_path)
    impostor = tmp_path / "impostor"
    keygen(impostor)
    for written, asked in (("localhost", "LocalHost"), ("LOCALHOST", "localhost")):  # either side may have capitals
        own.write_text(known_line(f"[{written}]:{sshd.port}", Path(f"{impostor}.pub")))
        with pytest.raises(ConnectorError, match="has CHANGED"):
            ssh.receive_file({**sshd.access(str(remote)), "host": asked}, tmp_path / "x.txt", context(tmp_path))
    assert not hostkeys.faice_file().exists()


def test_a_file_output_that_is_a_link_is_sent_as_its_content_and_never_over_a_directory(sshd, tmp_path: Path):
    sshd.mkdir("t14/adir")
    (tmp_path / "real.txt").write_text("content\n")
    os.symlink("real.txt", tmp_path / "link.txt")
    ssh.send_file(sshd.access(str(sshd.root / "t14/out.txt")), tmp_path / "link.txt", context(tmp_path))
    assert not (sshd.root / "t14/out.txt").is_symlink() and (sshd.root / "t14/out.txt").read_text() == "content\n"
    with pytest.raises(ConnectorError, match="t14/adir: is a directory on the server"):
        ssh.send_file(sshd.access(str(sshd.root / "t14/adir")), tmp_path / "real.txt", context(tmp_path))
    assert os.listdir(sshd.root / "t14/adir") == [] and sorted(os.listdir(sshd.root / "t14")) == ["adir", "out.txt"]


SSHFS_SPY = r"""#!/bin/sh
# Records what sshfs gets while it logs in: its private directory, argv and environment.
for arg in "$@"; do
  case "$arg" in *UserKnownHostsFile=*) dir=$(printf '%s' "$arg" | sed 's|.*UserKnownHostsFile=\([^,]*\)/known_hosts.*|\1|') ;; esac
done
ls -A "$dir" > "$SPY/files"
for f in "$dir"/*; do [ -f "$f" ] && cat "$f"; done > "$SPY/contents"
printf '%s\n' "$@" > "$SPY/argv"
env > "$SPY/environ"
exec /usr/bin/sshfs "$@"
"""


def test_mount_with_an_encrypted_key_leaves_no_secret_on_disk(sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from faice.connectors import fuse

    spy = tmp_path / "spy"
    (spy / "bin").mkdir(parents=True)
    (spy / "bin" / "sshfs").write_text(SSHFS_SPY)
    (spy / "bin" / "sshfs").chmod(0o755)
    monkeypatch.setenv("PATH", f"{spy / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setenv("SPY", str(spy))
    monkeypatch.setenv("FAICE_VAR_secret", "mount sesame")
    private_tmp = tmp_path / "tmp"  # where the mount's private directory goes: other workers mount at the same time
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    key = keygen(tmp_path / "locked", passphrase="mount sesame")
    with open(sshd.config.parent / "authorized_keys", "a") as handle:
        handle.write((tmp_path / "locked.pub").read_text())
    sshd.put("t15/tree/a.txt", "A\n")
    access = sshd.access(str(sshd.root / "t15/tree"), kind="Directory")
    access["auth"] = {"username": sshd.user, "privateKey": key, "passphrase": "mount sesame"}
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    ssh.mount_dir(access, mountpoint, context(tmp_path, owner="0:0"))
    try:
        assert fuse.is_mounted(mountpoint) and (mountpoint / "a.txt").read_text() == "A\n"
        # while sshfs logged in: a socket, the public key and the pinned host key, nothing secret
        assert (spy / "files").read_text().split() == ["agent", "key.pub", "known_hosts"]
        seen = "".join((spy / name).read_text() for name in ("contents", "argv", "environ"))
        assert "PRIVATE KEY" not in seen and key.splitlines()[1] not in seen and "mount sesame" not in seen
        argv = (spy / "argv").read_text()
        assert "IdentitiesOnly=yes" in argv and "/key.pub," in argv  # the agent's key only, named by its public half
        assert list(private_tmp.glob("faice-sshfs-*")) == []  # and gone afterwards
        processes = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout.splitlines()
        assert [p for p in processes if p.startswith("ssh-agent") and f"{private_tmp}/faice-sshfs-" in p] == []  # the key's agent is gone
        with pytest.raises(OSError):
            (mountpoint / "b.txt").write_text("read-only")
    finally:
        ssh.umount_dir(mountpoint)
    assert not fuse.is_mounted(mountpoint)


def test_a_host_that_now_offers_another_kind_of_key_is_refused_with_both_fingerprints(sshd, tmp_path: Path):
    remote = sshd.put("t16/x.txt", "x\n")
    rsa = tmp_path / "rsa"
    keygen(rsa, kind="rsa")
    hostkeys.faice_file().parent.mkdir(parents=True)
    hostkeys.faice_file().write_text(known_line(f"[127.0.0.1]:{sshd.port}", Path(f"{rsa}.pub")))
    with pytest.raises(ConnectorError) as caught:
        ssh.receive_file(sshd.access(str(remote)), tmp_path / "x.txt", context(tmp_path))
    assert f"presents ssh-ed25519 {fingerprint(sshd.host_key)}" in str(caught.value) and f"remembers ssh-rsa {fingerprint(Path(f'{rsa}.pub'))}" in str(caught.value)
