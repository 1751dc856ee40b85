"""faice submit: what is sent to an agency and how, then the real thing against a real faice serve."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faice.errors import InvalidInput
from faice.red.prepare import prepare
from faice.submit import agency_url, credentials, problem_lines, query_params, request_body
from tests import serve_fixture
from tests.conftest import TEST_IMAGE, faice_command, run_faice, run_inprocess
from tests.redfiles import write
from tests.serve_fixture import Server, wait_final

PASSWORD = "alice-secret-password"


def red(script: str = 'echo "$1"', values: list[str] | None = None, execution: dict[str, Any] | None = None, version: str = "9") -> dict[str, Any]:
    """A RED file whose batches run ``sh -c SCRIPT sh VALUE`` in the offline test image, one per value."""
    data: dict[str, Any] = {
        "redVersion": version,
        "cli": {
            "cwlVersion": "v1.0",
            "class": "CommandLineTool",
            "baseCommand": ["sh", "-c", script, "sh"],
            "inputs": {"value": {"type": "string", "inputBinding": {"position": 0}}},
            "outputs": {},
        },
        "batches": [{"inputs": {"value": v}, "outputs": {}} for v in (values or ["a"])],
        "container": {"engine": "docker", "settings": {"image": {"url": TEST_IMAGE}, "ram": 256}},
    }
    if execution is not None:
        data["execution"] = execution
    return data


def agency_execution(url: str = "{{agency_url}}", auth: dict[str, str] | None = None, **settings: Any) -> dict[str, Any]:
    access: dict[str, Any] = {"url": url}
    if auth is not None:
        access["auth"] = auth
    return {"engine": "ccagency", "settings": {"access": access, **settings}}


VARIABLE_AUTH = {"username": "{{agency_user}}", "password": "{{agency_password}}"}


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- what is sent (no network) --------------------------------------------------------------


def test_body_is_the_filled_red_without_access(tmp_path: Path):
    data = red(values=["a", "b"], execution=agency_execution(auth=VARIABLE_AUTH, batchConcurrencyLimit=2))
    path = write(tmp_path / "red.yml", data)
    prepared = prepare(str(path), variables={"agency_url": "http://agency.example:8080/cc/", "agency_user": "alice", "agency_password": PASSWORD})
    body = request_body(prepared.experiment.raw)
    assert body["execution"] == {"engine": "ccagency", "settings": {"batchConcurrencyLimit": 2}}
    assert {k: v for k, v in body.items() if k != "execution"} == {k: v for k, v in data.items() if k != "execution"}
    assert PASSWORD not in json.dumps(body) and "agency.example" not in json.dumps(body)
    assert prepared.experiment.raw["execution"]["settings"]["access"]["auth"]["password"] == PASSWORD  # the prepared data is left alone
    assert agency_url(prepared.experiment.raw, None) == "http://agency.example:8080/cc/"
    assert credentials(prepared.experiment.raw, {}, None).password == PASSWORD


def test_red8_retry_if_failed_becomes_the_disable_retry_parameter(tmp_path: Path):
    for retry, disable_flag, expected in [(False, False, "1"), (True, False, "0"), (True, True, "1")]:
        data = red(version="8", execution=agency_execution("http://agency.example", retryIfFailed=retry))
        prepared = prepare(str(write(tmp_path / "red.yml", data)))
        body = request_body(prepared.experiment.raw)
        assert body["redVersion"] == "9" and body["execution"]["settings"] == {}
        params = query_params(retries=prepared.doc.retries, disable_retry=disable_flag, disable_connector_validation=False)
        assert params == {"disableRetry": expected, "disableConnectorValidation": "0"}, (retry, disable_flag)
    assert query_params(retries=None, disable_retry=False, disable_connector_validation=True) == {"disableRetry": "0", "disableConnectorValidation": "1"}


def test_a_ccfaice_file_is_sent_for_ccagency():
    body = request_body(red(execution={"engine": "ccfaice", "settings": {}}))
    assert body["execution"] == {"engine": "ccagency", "settings": {}}
    assert "execution" not in request_body(red())


def test_url_option_wins_and_a_missing_url_is_explained():
    data = red(execution=agency_execution("http://from-file.example"))
    assert agency_url(data, "https://option.example/") == "https://option.example/"
    assert agency_url(data, None) == "http://from-file.example"
    with pytest.raises(InvalidInput, match="no agency URL: give --url URL, or set execution.settings.access.url"):
        agency_url(red(), None)
    with pytest.raises(InvalidInput, match="must start with http:// or https://"):
        agency_url(data, "agency.example")


def test_credentials_file_then_environment_then_prompt():
    with_auth = red(execution=agency_execution("http://a.example", auth={"_username": "carol", "_password": "carol-pw"}))
    env = {"FAICE_AGENCY_USER": "dave", "FAICE_AGENCY_PASSWORD": "dave-pw"}
    assert credentials(with_auth, env, None) == credentials(with_auth, {}, None)
    assert (credentials(with_auth, {}, None).username, credentials(with_auth, {}, None).password) == ("carol", "carol-pw")
    plain = red(execution=agency_execution("http://a.example"))
    assert credentials(plain, env, None).username == "dave"
    asked: list[tuple[str, bool]] = []

    def ask(name: str, hidden: bool) -> str:
        asked.append((name, hidden))
        return "typed"

    assert credentials(plain, {"FAICE_AGENCY_USER": "erin"}, ask).username == "erin"
    assert asked == [("agency password", True)]
    with pytest.raises(InvalidInput, match="FAICE_AGENCY_USER and FAICE_AGENCY_PASSWORD"):
        credentials(plain, {}, None)


def test_agency_problems_are_located_in_the_users_file(tmp_path: Path):
    path = write(tmp_path / "red.yml", red(values=["a", "b"]))
    source = prepare(str(path)).doc.source
    answer = {"message": "invalid RED data", "problems": [{"path": "batches[1].inputs.value", "line": 1, "column": 300, "message": "not allowed"}]}
    lines = problem_lines(answer, source)
    assert lines[0] == "invalid RED data"
    line_of_b = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "value: b" in text)
    assert re.fullmatch(rf"{re.escape(str(path))}:{line_of_b}:\d+: batches\[1\]\.inputs\.value: not allowed", lines[1]), lines
    assert problem_lines("400 Bad Request: Given RED data is invalid.\nsecond line") == ["400 Bad Request: Given RED data is invalid.", "second line"]


# --- the command, without an agency ---------------------------------------------------------


def test_the_live_table_while_waiting_shows_the_batches_not_yet_succeeded():
    """faice submit --wait and faice exec draw one kind of live table (faice.view.LiveTable)."""
    from rich.console import Console

    from faice.submit import Display, RemoteBatch

    display = Display("e1", 3, live=False)
    display.update([RemoteBatch(0, "b0", "succeeded"), RemoteBatch(1, "b1", "processing"), RemoteBatch(2, "b2", "failed")])
    console = Console(width=120, file=io.StringIO())
    console.print(display._table._table())
    screen = console.file.getvalue()  # type: ignore[attr-defined]
    assert "experiment e1: 1/3 succeeded, 1 failed, 1 running, 0 waiting" in " ".join(screen.split())  # the title wraps to the table's width
    assert "b1" in screen and "processing" in screen and "b2" in screen and "b0" not in screen


def test_help_teaches_with_examples_and_exit_codes():
    result = run_inprocess("submit", "--help")
    assert result.returncode == 0
    assert "Examples:" in result.stdout and "Exit codes:" in result.stdout and "--password" not in result.stdout


def test_unreachable_agency_exits_3_naming_it_without_secrets(tmp_path: Path):
    port = closed_port()
    path = write(tmp_path / "red.yml", red(execution=agency_execution(auth=VARIABLE_AUTH)))
    (tmp_path / "vars.yml").write_text(f"agency_url: http://127.0.0.1:{port}\nagency_user: alice\nagency_password: {PASSWORD}\n")
    result = run_inprocess("submit", str(path), "--vars-file", str(tmp_path / "vars.yml"))
    assert result.returncode == 3, result.stderr
    assert "cannot reach the agency at ********: Connection refused" in result.stderr  # the URL came from a variable
    direct = run_inprocess("submit", str(path), "--vars-file", str(tmp_path / "vars.yml"), "--url", f"http://localhost:{port}/")
    assert direct.returncode == 3
    assert direct.stderr.strip().splitlines()[-1] == f"faice: cannot reach the agency at http://localhost:{port}: Connection refused"
    for output in (result.stdout + result.stderr, direct.stdout + direct.stderr):
        assert PASSWORD not in output and "Traceback" not in output


def test_missing_url_or_credentials_exit_2(tmp_path: Path):
    no_url = run_inprocess("submit", str(write(tmp_path / "a.yml", red())), env={"FAICE_AGENCY_USER": "a", "FAICE_AGENCY_PASSWORD": "b"})
    assert no_url.returncode == 2
    assert no_url.stderr.strip() == "faice: no agency URL: give --url URL, or set execution.settings.access.url in the RED file"
    no_auth = run_inprocess("submit", str(write(tmp_path / "b.yml", red(execution=agency_execution(f"http://127.0.0.1:{closed_port()}")))))
    assert no_auth.returncode == 2
    assert "no credentials for the agency" in no_auth.stderr and "FAICE_AGENCY_PASSWORD" in no_auth.stderr


@pytest.mark.skipif(sys.platform != "linux", reason="pty behaviour")
def test_credentials_are_asked_on_a_terminal_without_echoing_the_password(tmp_path: Path):
    from tests.test_cli import _run_in_pty

    path = write(tmp_path / "red.yml", red(execution=agency_execution(f"http://127.0.0.1:{closed_port()}")))
    code, screen = _run_in_pty(["submit", str(path)], ["typed-user", "typed-password-123"])
    assert code == 3, screen
    assert "agency username:" in screen and "typed-user" in screen
    assert "agency password (protected):" in screen and "typed-password-123" not in screen


# --- against a real faice serve -------------------------------------------------------------


agency = serve_fixture.server  # one faice serve for this module: users admin, alice and bob


def submit(tmp_path: Path, data: dict[str, Any], *args: str, env: dict[str, str] | None = None, runner: Any = run_inprocess) -> subprocess.CompletedProcess[str]:
    """faice submit in this process; ``runner=run_faice`` for a real one."""
    return runner("submit", str(write(tmp_path / "red.yml", data)), *args, env=env, timeout=60)


def vars_file(tmp_path: Path, agency: Server, user: str = "alice", password: str | None = None) -> str:
    password = password or agency.passwords[user]
    path = tmp_path / "vars.yml"
    path.write_text(json.dumps({"agency_url": agency.url, "agency_user": user, "agency_password": password}))
    return str(path)


@pytest.mark.docker
def test_three_batches_succeed_with_credentials_from_variables(tmp_path: Path, agency: Server):
    data = red(values=["one", "two", "three"], execution=agency_execution(auth=VARIABLE_AUTH))
    result = submit(tmp_path, data, "--vars-file", vars_file(tmp_path, agency), "--wait", "--poll", "0.2", runner=run_faice)  # end to end: a real process
    assert result.returncode == 0, result.stderr
    experiment_id = re.match(r"experimentId: ([0-9a-f]{24})\n", result.stdout).group(1)
    assert f"experiment {experiment_id}: succeeded" in result.stdout
    assert result.stdout.count("succeeded") == 4  # the title and three batches
    listed = agency.get("/batches", "alice", params={"experimentId": experiment_id}).json()
    assert sorted((b["batchesListIndex"], b["state"]) for b in listed) == [(0, "succeeded"), (1, "succeeded"), (2, "succeeded")]
    assert agency.passwords["alice"] not in result.stdout + result.stderr and agency.url not in result.stdout + result.stderr


@pytest.mark.docker
def test_a_failed_batch_exits_1_and_red8_retry_is_sent_as_a_parameter(tmp_path: Path, agency: Server):
    data = red('test "$1" != bad', values=["good", "bad", "good"], version="8", execution=agency_execution(agency.url, retryIfFailed=False))
    result = submit(tmp_path, data, "--wait", "--json", "--poll", "0.2", env={"FAICE_AGENCY_USER": "alice", "FAICE_AGENCY_PASSWORD": agency.passwords["alice"]})
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["state"] == "failed"
    assert [(b["index"], b["state"]) for b in document["batches"]] == [(0, "succeeded"), (1, "failed"), (2, "succeeded")]
    assert all(re.fullmatch(r"[0-9a-f]{24}", b["batchId"]) for b in document["batches"])
    assert "batch 1: failed" in result.stderr
    failed = next(b for b in wait_final(agency, document["experimentId"], "alice") if b["batchesListIndex"] == 1)
    assert [h["state"] for h in failed["history"]].count("processing") == 1  # retryIfFailed: false reached the agency as disableRetry=1


@pytest.mark.docker
def test_wrong_password_exits_2_without_showing_it(tmp_path: Path, agency: Server):
    result = submit(tmp_path, red(), "--url", agency.url, env={"FAICE_AGENCY_USER": "bob", "FAICE_AGENCY_PASSWORD": "not-bobs-password"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("faice: the agency refused the credentials for bob")
    assert "not-bobs-password" not in result.stdout + result.stderr


@pytest.mark.docker
def test_submit_without_wait_prints_only_the_id(tmp_path: Path, agency: Server):
    data = red(values=["x", "y"], execution=agency_execution(agency.url + "/"))
    result = submit(tmp_path, data, "--json", "--disable-connector-validation", env={"FAICE_AGENCY_USER": "bob", "FAICE_AGENCY_PASSWORD": agency.passwords["bob"]})
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert list(document) == ["experimentId"]
    listed = wait_final(agency, document["experimentId"], "bob")
    assert sorted((b["batchesListIndex"], b["state"]) for b in listed) == [(0, "succeeded"), (1, "succeeded")]


@pytest.mark.docker
def test_ctrl_c_stops_waiting_but_not_the_batches(tmp_path: Path, agency: Server):
    path = write(tmp_path / "red.yml", red("sleep 2", execution=agency_execution(agency.url)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAICE_VAR_")}
    env.update({"FAICE_AGENCY_USER": "alice", "FAICE_AGENCY_PASSWORD": agency.passwords["alice"]})
    proc = subprocess.Popen(faice_command() + ["submit", str(path), "--wait", "--poll", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = proc.stdout.readline()
    experiment_id = re.match(r"experimentId: ([0-9a-f]{24})$", first.strip()).group(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert f"experiment {experiment_id} keeps running on the agency" in err, (out, err)
    assert f"DELETE {agency.url}/batches/" in err and f"faice cancel {experiment_id}" in err
    assert [b["state"] for b in wait_final(agency, experiment_id, "alice")] == ["succeeded"]


@pytest.mark.docker
def test_a_rejected_file_exits_2_with_each_problem_located_in_it(tmp_path: Path, agency: Server):
    data = red(values=["a", "b"], execution=agency_execution(agency.url))
    del data["batches"][1]["outputs"]  # fine for faice exec, required by an agency
    result = submit(tmp_path, data, env={"FAICE_AGENCY_USER": "alice", "FAICE_AGENCY_PASSWORD": agency.passwords["alice"]})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("faice: the agency rejected the request: Given RED data is invalid.")
    line_of_b = next(i for i, text in enumerate((tmp_path / "red.yml").read_text().splitlines(), 1) if "value: b" in text)
    assert any(re.fullmatch(rf"  {re.escape(str(tmp_path / 'red.yml'))}:{line_of_b - 1}:\d+: batches\[1\]: .*outputs.*", line) for line in lines[1:]), lines


@pytest.mark.docker
def test_wait_says_why_a_batch_failed_in_the_agencys_words(tmp_path: Path, agency: Server):
    data = red('echo "no such sample: $1" >&2; exit 4', values=["x"], execution=agency_execution(auth=VARIABLE_AUTH))
    result = submit(tmp_path, data, "--vars-file", vars_file(tmp_path, agency), "--wait", "--poll", "0.2", "--disable-retry")
    assert result.returncode == 1, result.stderr
    batch_id = re.search(r"0\s+([0-9a-f]{24})\s+failed", result.stdout).group(1)
    assert "batch 0 failed: exit code 4; stderr: no such sample: x (more: GET " in result.stderr, result.stderr
    assert f"/batches/{batch_id} (and .../stderr)" in result.stderr


def test_submit_keeps_its_device_cookie_and_is_never_locked_out(tmp_path: Path):
    """Guesses at alice's password from any number of addresses hold back clients that never
    signed in; faice submit signed in before and goes on."""
    import requests

    from tests.serve_fixture import serving
    from tests.test_serve_api import from_address

    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    with serving(tmp_path / "serve") as agency:
        env |= {"FAICE_AGENCY_USER": "alice", "FAICE_AGENCY_PASSWORD": agency.passwords["alice"]}
        first = submit(tmp_path, red(execution=agency_execution(agency.url)), env=env)
        assert first.returncode == 0, first.stderr
        kept = tmp_path / "data" / "faice" / "agency-devices.json"
        assert kept.exists() and oct(kept.stat().st_mode & 0o777) == "0o600" and agency.passwords["alice"] not in kept.read_text()
        for i in range(25):
            with from_address(f"127.2.0.{i + 1}") as attacker:
                attacker.get(agency.url + "/version", auth=("alice", f"guess-{i}"), timeout=30)
        assert requests.get(agency.url + "/version", auth=agency.auth("alice"), timeout=30).status_code == 401  # a client that never signed in
        again = submit(tmp_path, red(execution=agency_execution(agency.url)), env=env)
        assert again.returncode == 0, again.stderr
