"""red-connector-ftp and red-connector-ftp-archive against a real FTP(S) server (pyftpdlib) on loopback."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from faice.connectors.base import ConnectorError, Context
from faice.connectors.ftp import FtpArchiveConnector, FtpConnector
from faice.connectors.network import PRIVATE
from tests.redfiles import shell_red, write
from tests.servers import start_ftpd, tls_files

ftp = FtpConnector()
archive = FtpArchiveConnector()


def context(tmp_path: Path, **extra) -> Context:
    return Context(base_dir=tmp_path, timeout=20, **extra)


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_access_fields_are_checked():
    assert ftp.validate({"url": "ftp://example.org/data/x.csv"}, "receive", "File") == []
    assert ftp.validate({"url": "ftps://example.org/d", "port": "2121", "auth": {"username": "u", "password": "p"}}, "send", "Directory") == []
    assert ftp.validate({"url": "http://example.org/x"}, "receive", "File") == ['access "url" must start with ftp:// (or ftps:// for FTP over TLS)']
    assert ftp.validate({"url": "ftp://u:pw@example.org/x"}, "receive", "File") == ['access "url" must not carry a user or password: give them in "auth", where they are protected']
    assert ftp.validate({"url": "ftp://example.org:2121/x", "port": 21}, "receive", "File") == ['access "port" (21) differs from the port in "url" (2121)']
    assert ftp.validate({"url": "ftp://example.org/"}, "receive", "File") == ['access "url" must name a file or directory after the host']
    assert ftp.validate({"url": "ftp://example.org/x", "auth": {"user": "u"}}, "receive", "File") == ['auth: has unknown key "user"; allowed: password, username']
    assert ftp.validate({"url": "ftp://{{host}}/x", "port": "{{port}}"}, "receive", "File") == ['access "port" must be a port number (an integer, or a string of digits)']
    assert archive.validate({"url": "ftp://example.org/a.zip", "archiveFormat": "rar"}, "receive", "Directory") == ['access "archiveFormat" must be one of zip, tar, gztar, bztar, xztar']
    assert archive.validate({"url": "ftp://example.org/a.zip", "archiveFormat": "zip"}, "receive", "File") == ["red-connector-ftp-archive can only receive directories"]
    assert ftp.default_basename({"url": "ftp://example.org/some/data%20set.csv"}) == "data set.csv"


def test_receive_files_and_directories_anonymously_and_with_a_password(ftpd, tmp_path: Path):
    (ftpd.root / "in" / "tree" / "sub").mkdir(parents=True)
    (ftpd.root / "in" / "data.csv").write_text("a,b\n")
    (ftpd.root / "in" / "tree" / "one.txt").write_text("1\n")
    (ftpd.root / "in" / "tree" / "sub" / "two.txt").write_text("2\n")
    ftp.receive_file(ftpd.access("/in/data.csv", anonymous=True), tmp_path / "anon.csv", context(tmp_path))
    ftp.receive_file(ftpd.access("/in/data.csv"), tmp_path / "user.csv", context(tmp_path))
    assert (tmp_path / "anon.csv").read_text() == (tmp_path / "user.csv").read_text() == "a,b\n"
    whole = tmp_path / "whole"
    whole.mkdir()
    ftp.receive_dir(ftpd.access("/in/tree"), whole, None, context(tmp_path))
    assert tree(whole) == ["one.txt", "sub", "sub/two.txt"]
    listed = tmp_path / "listed"
    listed.mkdir()
    ftp.receive_dir(ftpd.access("/in/tree"), listed, [{"class": "Directory", "basename": "sub", "listing": [{"class": "File", "basename": "two.txt"}]}], context(tmp_path))
    assert tree(listed) == ["sub", "sub/two.txt"]


@pytest.mark.parametrize("dots", [False, True], ids=["plain", "with-dot-entries"])
def test_a_server_without_mlsd_is_listed_with_list(tmp_path: Path, dots: bool):
    server = start_ftpd(tmp_path / "ftp", mlsd=False, dots=dots)
    try:
        (server.root / "tree" / "sub dir").mkdir(parents=True)
        (server.root / "tree" / "a file.txt").write_text("A\n")
        (server.root / "tree" / "sub dir" / "b.txt").write_text("B\n")
        got = tmp_path / "got"
        got.mkdir()
        ftp.receive_dir(server.access("/tree"), got, None, context(tmp_path))
        assert tree(got) == ["a file.txt", "sub dir", "sub dir/b.txt"]
    finally:
        server.stop()


def test_send_files_and_directories_with_the_port_as_a_field(ftpd, tmp_path: Path):
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "r.txt").write_text("result\n")
    (out / "sub" / "s.txt").write_text("sub\n")
    access = {"url": "ftp://127.0.0.1/results/deep/r.txt", "port": str(ftpd.port), "auth": {"username": ftpd.user, "password": ftpd.password}}
    ftp.send_file(access, out / "r.txt", context(tmp_path))
    ftp.send_file(access, out / "sub" / "s.txt", context(tmp_path))  # over the first: replaced
    assert (ftpd.root / "results/deep/r.txt").read_text() == "sub\n"
    assert os.listdir(ftpd.root / "results/deep") == ["r.txt"]  # no partial upload left
    ftp.send_dir(ftpd.access("/results/all"), out, None, context(tmp_path))
    assert tree(ftpd.root / "results/all") == ["r.txt", "sub", "sub/s.txt"]
    os.symlink("/etc/hostname", out / "link")
    with pytest.raises(ConnectorError, match="link is a symbolic link, which FTP cannot send"):
        ftp.send_dir(ftpd.access("/results/again"), out, None, context(tmp_path))


def test_a_server_that_does_not_rename_over_a_file_still_gets_the_new_one(tmp_path: Path):
    server = start_ftpd(tmp_path / "ftp", rename_over=False)
    try:
        (server.root / "out").mkdir()
        (server.root / "out" / "r.txt").write_text("old\n")
        (tmp_path / "new.txt").write_text("new\n")
        ftp.send_file(server.access("/out/r.txt"), tmp_path / "new.txt", context(tmp_path))
        assert os.listdir(server.root / "out") == ["r.txt"] and (server.root / "out" / "r.txt").read_text() == "new\n"
    finally:
        server.stop()


def test_failures_name_the_location_never_the_password(ftpd, tmp_path: Path):
    where = f"ftp://{ftpd.user}@127.0.0.1:{ftpd.port}"
    cases = [
        (ftpd.access("/nope.txt"), f"{where}/nope.txt: the server answered 550"),
        ({**ftpd.access("/x.txt"), "auth": {"username": ftpd.user, "password": "wrong-password"}}, f"{where}/x.txt: login refused (530"),
        ({"url": "ftp://127.0.0.1:1/x.txt"}, "ftp://127.0.0.1:1/x.txt: connection refused"),
    ]
    for access, expected in cases:
        with pytest.raises(ConnectorError) as caught:
            ftp.receive_file(access, tmp_path / "x", context(tmp_path))
        assert str(caught.value).startswith(expected), str(caught.value)
        assert ftpd.password not in str(caught.value) and "wrong-password" not in str(caught.value)
    with pytest.raises(ConnectorError, match=PRIVATE):
        ftp.receive_file(ftpd.access("/x.txt", anonymous=True), tmp_path / "y", context(tmp_path, public_network_only=True))


def test_public_network_only_never_connects_to_this_machine(tmp_path: Path):
    """Not even to read a greeting: another service's banner would leak, and open ports show."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(ConnectorError, match=PRIVATE):
            ftp.receive_file({"url": f"ftp://localhost:{listener.getsockname()[1]}/x.txt"}, tmp_path / "x",
                             Context(base_dir=tmp_path, timeout=5, public_network_only=True))
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):  # a connection made (and closed at once) would wait here to be accepted
            listener.accept()
    finally:
        listener.close()


def test_ftps_with_explicit_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    certs = tmp_path / "certs"
    certs.mkdir()
    ca, _cert, _key = tls_files(certs)
    server = start_ftpd(tmp_path / "ftp", tls=certs)
    try:
        (server.root / "in.txt").write_text("over tls\n")
        with pytest.raises(ConnectorError, match="TLS certificate verification failed .*SSL_CERT_FILE"):
            ftp.receive_file(server.access("/in.txt"), tmp_path / "x", context(tmp_path))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca))
        ftp.receive_file(server.access("/in.txt"), tmp_path / "got.txt", context(tmp_path))
        assert (tmp_path / "got.txt").read_text() == "over tls\n"
        ftp.send_file(server.access("/back.txt"), tmp_path / "got.txt", context(tmp_path))
        assert (server.root / "back.txt").read_text() == "over tls\n"
    finally:
        server.stop()


# --- archives ------------------------------------------------------------------------------------


def _members() -> dict[str, bytes]:
    return {"data/a.txt": b"A\n", "data/sub/b.txt": b"B\n"}


def make_archive(path: Path, fmt: str, members: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> Path:
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as handle:
            for name, data in members.items():
                handle.writestr(name, data)
        return path
    mode = {"tar": "w", "gztar": "w:gz", "bztar": "w:bz2", "xztar": "w:xz"}[fmt]
    with tarfile.open(path, mode) as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
        for info in extra or []:
            handle.addfile(info)
    return path


@pytest.mark.parametrize("fmt", ["zip", "tar", "gztar", "bztar", "xztar"])
def test_archive_formats_are_received_as_a_directory(ftpd, tmp_path: Path, fmt: str):
    make_archive(ftpd.root / f"a.{fmt}", fmt, _members())
    got = tmp_path / "got"
    got.mkdir()
    archive.receive_dir({**ftpd.access(f"/a.{fmt}"), "archiveFormat": fmt}, got, None, context(tmp_path))
    assert tree(got) == ["data", "data/a.txt", "data/sub", "data/sub/b.txt"]
    assert (got / "data/sub/b.txt").read_text() == "B\n"


def _link(name: str, target: str, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize("members,extra,expected", [
    ({"/etc/evil": b"x"}, [], "archive member '/etc/evil' has an absolute path"),
    ({"data/../../evil": b"x"}, [], "archive member 'data/../../evil' has a .. component"),
    ({}, [_link("data/link", "/etc/passwd")], "archive member 'data/link' is a link (to '/etc/passwd')"),
    ({}, [_link("data/hard", "/etc/passwd", hard=True)], "archive member 'data/hard' is a link (to '/etc/passwd')"),
], ids=["absolute", "dotdot", "symlink", "hardlink"])
def test_archive_members_that_escape_are_refused_and_nothing_is_unpacked(ftpd, tmp_path: Path, members, extra, expected):
    make_archive(ftpd.root / "bad.tar", "tar", {"data/ok.txt": b"fine\n", **members}, extra)
    got = tmp_path / "got"
    got.mkdir()
    with pytest.raises(ConnectorError) as caught:
        archive.receive_dir({**ftpd.access("/bad.tar"), "archiveFormat": "tar"}, got, None, context(tmp_path))
    assert expected in str(caught.value) and str(caught.value).endswith("nothing was unpacked")
    assert list(got.iterdir()) == []
    assert not (tmp_path / "evil").exists()


def test_a_zip_with_an_escaping_name_or_a_link_is_refused(ftpd, tmp_path: Path):
    make_archive(ftpd.root / "bad.zip", "zip", {"../evil.txt": b"x"})
    with pytest.raises(ConnectorError, match="archive member '../evil.txt' has a .. component"):
        archive.receive_dir({**ftpd.access("/bad.zip"), "archiveFormat": "zip"}, tmp_path, None, context(tmp_path))
    with zipfile.ZipFile(ftpd.root / "link.zip", "w") as handle:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        handle.writestr(info, "/etc/passwd")
    with pytest.raises(ConnectorError, match="archive member 'link' is a symbolic link"):
        archive.receive_dir({**ftpd.access("/link.zip"), "archiveFormat": "zip"}, tmp_path, None, context(tmp_path))
    (ftpd.root / "not.zip").write_text("not an archive")
    with pytest.raises(ConnectorError, match="cannot unpack as zip"):
        archive.receive_dir({**ftpd.access("/not.zip"), "archiveFormat": "zip"}, tmp_path, None, context(tmp_path))


@pytest.mark.docker
def test_exec_with_ftp_in_and_out(ftpd, tmp_path: Path, docker_image: str):
    from tests.test_exec import Run

    (ftpd.root / "in.txt").write_text("hello ftp\n")
    make_archive(ftpd.root / "set.tar.gz", "gztar", _members())
    auth = {"username": ftpd.user, "password": "{{ftp_password}}"}
    data = shell_red(
        'tr a-z A-Z < "$1" > upper.txt; cat "$2/data/sub/b.txt" >> upper.txt',
        inputs={"f": {"class": "File", "connector": {"command": "red-connector-ftp", "access": {"url": f"{ftpd.url}/in.txt", "auth": auth}}},
                "d": {"class": "Directory", "connector": {"command": "red-connector-ftp-archive", "access": {"url": f"{ftpd.url}/set.tar.gz", "archiveFormat": "gztar", "auth": auth}}}},
        cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}, "d": {"type": "Directory", "inputBinding": {"position": 1}}},
        outputs={"upper": {"type": "File", "outputBinding": {"glob": "upper.txt"}}},
    )
    data["outputs"] = {"upper": {"class": "File", "connector": {"command": "red-connector-ftp", "access": {"url": f"{ftpd.url}/out/upper.txt", "auth": auth}}}}
    run = Run(tmp_path)
    result, doc = run(write(tmp_path / "red.yml", data), env={"FAICE_VAR_ftp_password": ftpd.password})
    assert result.returncode == 0, result.stderr
    assert (ftpd.root / "out" / "upper.txt").read_text() == "HELLO FTP\nB\n"
    assert ftpd.password.encode() not in run.db.read_bytes()
    shutil.rmtree(run.outdir)
