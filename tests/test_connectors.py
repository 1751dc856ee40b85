"""Connectors beyond the built-ins: a pip-installed plugin and a RED Connector CLI 1 program."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from tests.test_exec import Run, shell_red

pytestmark = pytest.mark.docker

PROGRAM = r'''#!{python}
"""A RED Connector CLI 1 program that logs how it was called."""
import json, os, shutil, stat, sys

log = os.environ["FAKE_CONNECTOR_LOG"]
args = sys.argv[1:]
with open(log, "a") as handle:
    entry = {{"argv": args}}
    if len(args) > 1 and os.path.exists(args[1]):
        entry["access_mode"] = oct(stat.S_IMODE(os.stat(args[1]).st_mode))
        entry["access"] = json.load(open(args[1]))
    handle.write(json.dumps(entry) + "\n")
command = args[0]
if command == "cli-version":
    print("1")
elif command.endswith("-validate"):
    access = json.load(open(args[1]))
    if access.get("bad"):
        print("access is bad: no source given", file=sys.stderr)
        sys.exit(1)
elif command == "receive-file":
    shutil.copyfile(json.load(open(args[1]))["source"], args[2])
elif command == "send-file":
    shutil.copyfile(args[2], json.load(open(args[1]))["target"])
else:
    print("unsupported: " + command, file=sys.stderr)
    sys.exit(2)
'''


@pytest.fixture
def program(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    path = bin_dir / "red-connector-fake"
    path.write_text(PROGRAM.format(python=sys.executable))
    path.chmod(0o755)
    log = tmp_path / "connector.log"
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CONNECTOR_LOG": str(log)}


def _calls(env: dict[str, str]) -> list[dict]:
    path = Path(env["FAKE_CONNECTOR_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _fake_red(tmp_path: Path, **access: object) -> dict:
    (tmp_path / "source.txt").write_text("from the program\n")
    data = shell_red('cat "$1" > copy.txt', inputs={"f": {"class": "File", "connector": {"command": "red-connector-fake", "access": {"source": str(tmp_path / "source.txt"), "_token": "tok-123-secret", **access}}}},
                     cli_inputs={"f": {"type": "File", "inputBinding": {"position": 0}}}, outputs={"copy": {"type": "File", "outputBinding": {"glob": "copy.txt"}}})
    data["outputs"] = {"copy": {"class": "File", "connector": {"command": "red-connector-fake", "access": {"target": str(tmp_path / "sent.txt")}}}}
    return data


def test_connector_program_protocol(tmp_path: Path, docker_image: str, program: dict[str, str]):
    run = Run(tmp_path)
    result, doc = run(_fake_red(tmp_path), env=program)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "sent.txt").read_text() == "from the program\n"
    calls = _calls(program)
    commands = [c["argv"][0] for c in calls]
    assert commands[0] == "cli-version"
    assert commands.index("receive-file-validate") < commands.index("receive-file")
    assert commands.index("send-file-validate") < commands.index("receive-file")  # every check before anything moves
    for call in calls[1:]:
        assert call["access_mode"] == "0o600"
        assert all("tok-123-secret" not in a for a in call["argv"])  # secrets travel in the file, never in argv
    receive = next(c for c in calls if c["argv"][0] == "receive-file")
    assert receive["access"]["token"] == "tok-123-secret"  # the protected "_" is stripped for the connector
    assert not Path(receive["argv"][1]).exists()  # the access file is gone afterwards


def test_failing_validation_stops_everything_before_a_container_starts(tmp_path: Path, docker_image: str, program: dict[str, str]):
    run = Run(tmp_path)
    result, doc = run(_fake_red(tmp_path, bad=True), env=program)
    assert result.returncode == 2
    assert "connector check failed before anything ran: batch 0 input f: red-connector-fake receive-file-validate exited with 1: access is bad: no source given" in result.stderr
    assert "tok-123-secret" not in result.stderr
    assert not any(c["argv"][0] == "receive-file" for c in _calls(program))
    assert json.loads(run.faice("list", "--json").stdout) == []


def test_unknown_connector_fails_before_anything_runs(tmp_path: Path, docker_image: str):
    run = Run(tmp_path)
    data = _fake_red(tmp_path)
    result, doc = run(data, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert 'connector "red-connector-fake" is not installed here' in result.stderr
    assert json.loads(run.faice("list", "--json").stdout) == []


def test_third_party_plugin_is_found_by_entry_point(tmp_path: Path, docker_image: str, faice):
    run = Run(tmp_path)
    (tmp_path / "journal.txt").write_text("")
    data = shell_red('tr a-z A-Z < "$1" > shout.txt', inputs={"m": {"class": "File", "connector": {"command": "red-connector-memo", "access": {"text": "quiet words"}}}},
                     cli_inputs={"m": {"type": "File", "inputBinding": {"position": 0}}}, outputs={"shout": {"type": "File", "outputBinding": {"glob": "shout.txt"}}})
    data["outputs"] = {"shout": {"class": "File", "connector": {"command": "red-connector-memo", "access": {"journal": "journal.txt"}}}}
    result, doc = run(data)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "journal.txt").read_text() == "QUIET WORDS"
    assert doc["batches"][0]["argv"][-1] == "/cc/inputs/m/memo.txt"
    check = faice("validate", str(tmp_path / "red.yml"))
    assert check.returncode == 0 and "warning" not in check.stderr
    data["inputs"]["m"]["connector"]["access"] = {"txt": "typo"}
    bad = run(data)[0]
    assert bad.returncode == 2 and 'red-connector-memo: access needs "text"' in bad.stderr


def test_access_file_permissions_are_private(tmp_path: Path):
    from faice.connectors.program import _json_file

    with _json_file({"password": "x"}, "faice-test-") as path:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not os.path.exists(path)


def test_public_network_only_checks_the_address_actually_connected_to(http_server, tmp_path: Path):
    """A URL that another parser reads as a public host still cannot reach this machine."""
    from faice.connectors.base import ConnectorError, Context
    from faice.connectors.http import PRIVATE, HttpConnector

    (http_server.root / "secret.txt").write_text("local only\n")
    context = Context(base_dir=tmp_path, timeout=10, public_network_only=True)
    port = http_server.url.rsplit(":", 1)[1]
    for url in (f"{http_server.url}/secret.txt", f"http://127.0.0.1:{port}\\@1.1.1.1/secret.txt", f"http://[::ffff:127.0.0.1]:{port}/secret.txt"):
        with pytest.raises(ConnectorError, match=PRIVATE):
            HttpConnector().receive_file({"url": url}, tmp_path / "got.txt", context)
    assert http_server.received == []
    assert 'must not contain backslashes' in " ".join(HttpConnector().validate({"url": f"http://127.0.0.1:{port}\\@1.1.1.1/"}, "receive", "File"))
    HttpConnector().receive_file({"url": f"{http_server.url}/secret.txt"}, tmp_path / "got.txt", Context(base_dir=tmp_path, timeout=10))
    assert (tmp_path / "got.txt").read_text() == "local only\n"  # faice exec and admins: unchanged


def test_the_connection_guard_refuses_loopback_even_when_the_name_looked_public(http_server):
    """DNS may answer differently the second time: the guard looks at the socket, not the name."""
    import requests

    from faice.connectors import http as http_connector

    session = requests.Session()
    session.trust_env = False
    session.mount("http://", http_connector.public_only_adapter())
    with pytest.raises(requests.exceptions.ConnectionError, match=http_connector.PRIVATE):
        session.get(http_server.url + "/anything", timeout=10)
    assert http_server.received == []


def test_the_local_connector_replaces_a_file_only_with_overwrite(tmp_path: Path):
    from faice.connectors.base import ConnectorError, Context
    from faice.connectors.local import LocalConnector

    local, context = LocalConnector(), Context(base_dir=tmp_path)
    (tmp_path / "new.txt").write_text("new\n")
    (tmp_path / "kept.txt").write_text("mine\n")
    with pytest.raises(ConnectorError, match="exists already"):
        local.send_file({"path": "kept.txt"}, tmp_path / "new.txt", context)
    assert (tmp_path / "kept.txt").read_text() == "mine\n"
    local.send_file({"path": "kept.txt", "overwrite": True}, tmp_path / "new.txt", context)
    assert (tmp_path / "kept.txt").read_text() == "new\n"


def test_a_public_only_request_uses_no_netrc_proxy_or_redirect_of_this_machine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """What the README claims for non-admins' http connectors, seen where requests is called
    (no public host can be reached from the tests: the call is captured, not made)."""
    import requests

    from faice.connectors import http
    from faice.connectors.base import ConnectorError, Context

    seen = {}

    def capture(self, method, url, **kwargs):
        seen.update(trust_env=self.trust_env, allow_redirects=kwargs.get("allow_redirects"), adapter=type(self.get_adapter(url)).__name__)
        raise requests.exceptions.ConnectionError("captured")

    monkeypatch.setattr(requests.Session, "request", capture)
    monkeypatch.setattr(http, "_check_public", lambda url, method: None)
    for public_only in (True, False):
        with pytest.raises(ConnectorError, match="cannot connect"):
            http.HttpConnector().receive_file({"url": "https://example.org/x"}, tmp_path / "x", Context(base_dir=tmp_path, public_network_only=public_only))
        if public_only:
            assert seen == {"trust_env": False, "allow_redirects": False, "adapter": "Adapter"}  # no .netrc, no proxies, no redirects, the checking adapter
        else:
            assert seen["trust_env"] is True and seen["allow_redirects"] is True
