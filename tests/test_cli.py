"""The faice program as a user runs it: help, exit codes, JSON shapes, variables, secrets."""

from __future__ import annotations

import json
import os
import pty
import select
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import EXAMPLES, faice_command
from tests.redfiles import batches, grepwrap, http_file, local_file, write

SUBCOMMANDS = [
    [],
    ["validate"],
    ["exec"],
    ["resume"],
    ["schema"],
    ["schema", "list"],
    ["schema", "show"],
    ["schema", "validate"],
    ["convert"],
    ["convert", "batches"],
    ["convert", "cwl"],
    ["convert", "format"],
    ["convert", "red"],
    ["list"],
    ["show"],
    ["logs"],
    ["cancel"],
    ["users"],
    ["users", "add"],
    ["users", "list"],
    ["users", "remove"],
    ["users", "passwd"],
    ["serve"],
    ["submit"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "faice")
def test_every_help_teaches_with_an_example(words, faice):
    result = faice(*words, "--help")
    assert result.returncode == 0
    assert "Usage: faice" in result.stdout
    assert "Example" in result.stdout


def test_version_from_the_installed_program_and_python_m_faice():
    """The entry point and ``python -m faice`` (real processes: the other tests run faice in-process)."""
    import subprocess

    from faice import __version__

    for command in (faice_command(), [sys.executable, "-m", "faice"]):
        result = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=30)
        assert (result.returncode, result.stdout.strip()) == (0, f"faice {__version__}"), command


def test_the_in_process_runner_leaves_this_process_as_it_was(tmp_path: Path, faice):
    """Environment, working directory, streams and signal handlers are put back after each run."""
    import signal

    before = (dict(os.environ), os.getcwd(), sys.stdin, sys.stdout, sys.stderr, signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    result = faice("--db", str(tmp_path / "x.db"), "exec", "-", "--dry-run", input="{", env={"FAICE_VAR_x": "1", "COLUMNS": "20"}, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith("<stdin>:1:2: not valid JSON")
    assert (dict(os.environ), os.getcwd(), sys.stdin, sys.stdout, sys.stderr, signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_no_arguments_prints_help(faice):
    result = faice()
    assert "Usage: faice" in result.stdout + result.stderr


def test_usage_errors_exit_2_without_traceback(faice):
    for args in (["validate"], ["nonsense"], ["exec", "--bogus", "x"], ["convert", "format", "x.yml", "--format", "toml"]):
        result = faice(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_validate_json_report_shape(tmp_path: Path, faice):
    data = grepwrap()
    data["inputs"]["before_context"] = "x"
    path = write(tmp_path / "red.yml", data)
    result = faice("validate", str(path), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert report["errors"] == [{"path": "inputs.before_context", "line": report["errors"][0]["line"], "column": 3, "message": 'must be an int, not the string "x"'}]
    assert path.read_text().splitlines()[report["errors"][0]["line"] - 1].strip().startswith("before_context:")


def test_validate_lines_for_several_files(tmp_path: Path, faice):
    good = write(tmp_path / "good.yml", grepwrap())
    bad_data = grepwrap()
    bad_data["container"]["settings"]["ram"] = 5
    bad = write(tmp_path / "bad.yml", bad_data)
    result = faice("validate", str(good), str(bad))
    assert result.returncode == 2
    assert f"{good}: valid RED 9 (1 batch)" in result.stdout
    assert f"{bad}:" in result.stderr and "container.settings.ram: must be at least 256, not 5" in result.stderr
    result = faice("validate", str(good), str(bad), "--json")
    report = json.loads(result.stdout)
    assert report["valid"] is False and [f["valid"] for f in report["files"]] == [True, False]


def test_validate_json_on_unparseable_file(tmp_path: Path, faice):
    path = tmp_path / "broken.yml"
    path.write_text("a: [1\n")
    result = faice("validate", str(path), "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False and report["errors"][0]["line"] == 2


def test_warnings_do_not_fail_validation(tmp_path: Path, faice):
    data = grepwrap()
    data["inputs"]["text_file"]["connector"]["command"] = "red-connector-xnat"
    path = write(tmp_path / "red.yml", data)
    result = faice("validate", str(path))
    assert result.returncode == 0
    assert 'warning: connector "red-connector-xnat" is not installed here' in result.stderr


# --- exec --dry-run -------------------------------------------------------------------------


def agency_red(password_placeholder: str = "{{pw}}") -> dict:
    data = grepwrap()
    data["inputs"]["text_file"] = http_file("http://{{host}}/in.txt", auth={"username": "{{user}}", "password": password_placeholder})
    return data


def test_dry_run_json_is_the_only_stdout(tmp_path: Path, faice):
    path = write(tmp_path / "red.yml", batches([{"query_term": "a b", "text_file": local_file("data/in.txt")}, {"query_term": "c", "text_file": http_file("http://127.0.0.1/x/y.csv"), "after_context": 2}]))
    result = faice("exec", str(path), "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "batches": [
            {"index": 0, "image": "faice-test-busybox:latest", "argv": ["grepwrap", "a b", "/cc/inputs/text_file/in.txt"]},
            {"index": 1, "image": "faice-test-busybox:latest", "argv": ["grepwrap", "-A", "2", "c", "/cc/inputs/text_file/y.csv"]},
        ]
    }


def test_dry_run_human_output(faice):
    result = faice("exec", str(EXAMPLES / "grepwrap" / "red.yml"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "batch 0: image faice-example-grepwrap:latest" in result.stdout
    assert "argv: grepwrap -B 1 QU /cc/inputs/text_file/in.txt" in result.stdout


def test_variables_from_option_environment_and_file(tmp_path: Path, faice):
    path = write(tmp_path / "red.yml", agency_red())
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("user: alice\n")
    result = faice("exec", str(path), "--dry-run", "--json", "--var", "host=127.0.0.1", "--vars-file", str(vars_file), env={"FAICE_VAR_pw": "s3cret-pass"})
    assert result.returncode == 0, result.stderr
    assert "s3cret-pass" not in result.stdout + result.stderr


def test_missing_variables_are_listed_without_prompting(tmp_path: Path, faice):
    path = write(tmp_path / "red.yml", agency_red())
    result = faice("exec", str(path), "--dry-run", "--non-interactive", "--var", "host=h")
    assert result.returncode == 2
    assert "variables without a value: pw, user" in result.stderr


def test_secret_values_are_masked_in_dry_run_output(tmp_path: Path, faice):
    data = agency_red()
    data["inputs"]["query_term"] = "hunter2hunter2"
    path = write(tmp_path / "red.yml", data)
    for extra in ([], ["--json"]):
        result = faice("exec", str(path), "--dry-run", *extra, "--var", "host=h", "--var", "user=u", env={"FAICE_VAR_pw": "hunter2hunter2"})
        assert result.returncode == 0, result.stderr
        assert "hunter2hunter2" not in result.stdout + result.stderr
        assert "********" in result.stdout


def test_filled_credentials_are_checked_but_never_shown(tmp_path: Path, faice):
    data = grepwrap()
    data["inputs"]["text_file"] = http_file("{{url}}")
    path = write(tmp_path / "red.yml", data)
    result = faice("exec", str(path), "--dry-run", env={"FAICE_VAR_url": "ftp://secret-host.example/in.txt"})
    assert result.returncode == 2
    assert 'access "url" must be an http:// or https:// URL' in result.stderr
    assert "secret-host" not in result.stderr


def _run_in_pty(args: list[str], answers: list[str], timeout: float = 30) -> tuple[int, str]:
    """Run faice with a real terminal, typing each answer after each prompt; return (code, screen)."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAICE_VAR_")}
        os.execvpe(faice_command()[0], faice_command() + args, env)
    screen = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
            if pending and screen.rstrip().endswith(b":"):
                time.sleep(0.5)  # a person reads the prompt first; getpass flushes earlier typing
                os.write(fd, pending.pop(0).encode() + b"\r")
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


@pytest.mark.skipif(sys.platform != "linux", reason="pty behaviour")
def test_prompt_hides_protected_values(tmp_path: Path):
    data = grepwrap()
    data["inputs"]["text_file"] = http_file("http://{{host}}/in.txt", auth={"username": "u", "password": "{{pw}}"})
    path = write(tmp_path / "red.yml", data)
    code, screen = _run_in_pty(["exec", str(path), "--dry-run", "--json"], ["visible-host", "typed-secret"])
    assert code == 0, screen
    assert "host:" in screen and "pw (protected):" in screen
    assert "visible-host" in screen
    assert "typed-secret" not in screen


# --- schema ---------------------------------------------------------------------------------


def test_schema_list_and_show(faice):
    listed = json.loads(faice("schema", "list", "--format", "json").stdout)
    assert listed == {"schemas": ["red", "red-engine-container-docker", "red-engine-execution-ccfaice", "red-engine-execution-ccagency"]}
    for name in listed["schemas"]:
        result = faice("schema", "show", name, "--format", "json")
        assert result.returncode == 0
        jsonschema.Draft7Validator.check_schema(json.loads(result.stdout))
    assert faice("schema", "show", "red").stdout.startswith("$schema:")


def test_schema_show_unknown_name(faice):
    result = faice("schema", "show", "nope")
    assert result.returncode == 2
    assert 'unknown schema "nope"' in result.stderr and "Traceback" not in result.stderr


def test_schema_validate(tmp_path: Path, faice):
    good = write(tmp_path / "settings.yml", {"image": {"url": "x"}, "ram": 512})
    bad = write(tmp_path / "bad.yml", {"image": {"url": "x"}, "ram": "lots"})
    assert faice("schema", "validate", "red-engine-container-docker", str(good)).returncode == 0
    result = faice("schema", "validate", "red-engine-container-docker", str(bad))
    assert result.returncode == 2
    assert f"{bad}:3:1: ram: must be an integer, not the string \"lots\"" in result.stderr
    result = faice("schema", "validate", "red", str(bad), "--json")
    assert json.loads(result.stdout)["valid"] is False


# --- convert --------------------------------------------------------------------------------


def test_convert_batches_writes_one_valid_file_per_batch(tmp_path: Path, faice):
    path = write(tmp_path / "red.yml", batches([{"query_term": t, "text_file": local_file()} for t in ("a", "b", "c")]))
    out = tmp_path / "out"
    result = faice("convert", "batches", str(path), "--prefix", "run_", "--format", "json", "--outdir", str(out))
    assert result.returncode == 0, result.stderr
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["run_batch_0.json", "run_batch_1.json", "run_batch_2.json"]
    for term, file in zip(("a", "b", "c"), files, strict=True):
        doc = json.loads(file.read_text())
        assert "batches" not in doc and doc["inputs"]["query_term"] == term
        assert faice("validate", str(file)).returncode == 0


def test_convert_batches_of_a_single_job_file(tmp_path: Path, faice):
    path = write(tmp_path / "red.yml", grepwrap())
    result = faice("convert", "batches", str(path), "--outdir", str(tmp_path / "o"))
    assert result.returncode == 0
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["faice_batch_0.yml"]


def test_convert_refuses_invalid_files_cleanly(tmp_path: Path, faice):
    data = grepwrap()
    del data["cli"]
    path = write(tmp_path / "red.yml", data)
    for args in (["convert", "batches", str(path)], ["convert", "cwl", str(path)]):
        result = faice(*args, cwd=tmp_path)
        assert result.returncode == 2
        assert '"cli" is required here' in result.stderr and "Traceback" not in result.stderr


def test_convert_format_round_trip(tmp_path: Path, faice):
    data = grepwrap()
    path = write(tmp_path / "red.yml", data)
    as_json = faice("convert", "format", str(path), "--format", "json")
    assert json.loads(as_json.stdout) == data
    back = faice("convert", "format", "-", "--format", "yaml", input=as_json.stdout)
    assert back.returncode == 0
    assert list(json.loads(faice("convert", "format", "-", "--format", "json", input=back.stdout).stdout)) == list(data)


def test_convert_cwl_and_job(tmp_path: Path, faice):
    (tmp_path / "in.txt").write_text("QUery\n")
    data = grepwrap()
    data["cli"]["inputs"]["extra"] = {"type": "File?", "inputBinding": {"prefix": "-e"}}
    data["inputs"]["extra"] = http_file()
    path = write(tmp_path / "red.yml", data)
    result = faice("convert", "cwl", str(path), "-o", str(tmp_path / "tool.cwl"), "--job", str(tmp_path / "job.yml"), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert "left out of the job (they need a connector): extra" in result.stderr
    tool = json.loads((tmp_path / "tool.cwl").read_text())
    assert tool["class"] == "CommandLineTool" and tool["requirements"] == {"DockerRequirement": {"dockerPull": "faice-test-busybox:latest"}}
    job = json.loads((tmp_path / "job.yml").read_text())
    assert job == {"query_term": "QU", "text_file": {"class": "File", "path": str(tmp_path / "in.txt")}, "before_context": 1}


def test_exec_refuses_connectors_that_are_not_installed(tmp_path: Path, faice):
    data = grepwrap()
    data["inputs"]["text_file"]["connector"]["command"] = "red-connector-xnat"
    path = write(tmp_path / "red.yml", data)
    result = faice("exec", str(path), "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert 'inputs.text_file.connector.command: connector "red-connector-xnat" is not installed here' in result.stderr
    assert "did you mean" not in result.stderr  # an upstream connector of its own, not a misspelt one of faice's
    dry = faice("exec", str(path), "--dry-run")  # shows what would run all the same
    assert dry.returncode == 0 and 'warning: connector "red-connector-xnat" is not installed here' in dry.stderr
    assert "argv: grepwrap -B 1 QU /cc/inputs/text_file/text_file" in dry.stdout


JUNK = {
    "empty.yml": b"",
    "binary.bin": bytes(range(256)) * 4,
    "list.yml": b"- 1\n- 2\n",
    "broken.yml": b"a: [\n",
    "tabs.yml": b"a:\n\t- b\n",
    "deep.json": b"[" * 50 + b"]" * 50,
    "scalar.json": b"42",
}


@pytest.mark.parametrize("name", sorted(JUNK))
def test_no_command_crashes_on_junk(tmp_path: Path, name: str, faice):
    path = tmp_path / name
    path.write_bytes(JUNK[name])
    commands = [
        ["validate", str(path)],
        ["validate", str(path), "--json"],
        ["exec", str(path), "--dry-run"],
        ["schema", "validate", "red", str(path)],
        ["convert", "batches", str(path), "--outdir", str(tmp_path / "o")],
        ["convert", "cwl", str(path)],
        ["convert", "format", str(path), "--format", "json"],
    ]
    for args in commands:
        result = faice(*args)
        assert "Traceback" not in result.stderr, (args, result.stderr)
        assert "internal error" not in result.stderr, (args, result.stderr)
        if args[:2] != ["convert", "format"] or name not in ("list.yml", "deep.json", "scalar.json"):
            assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) <= 3, (args, result.stderr)


def test_exec_needs_no_agency_login_but_submit_does(tmp_path: Path, faice):
    """A local run never uses execution.settings.access: its variables are not asked for."""
    data = grepwrap(execution={"engine": "ccagency", "settings": {"access": {
        "url": "{{agency_url}}", "auth": {"username": "{{agency_user}}", "password": "{{agency_password}}"}}}})
    data["inputs"]["text_file"]["connector"]["access"]["path"] = "{{data}}"
    path = write(tmp_path / "red.yml", data)
    dry = faice("exec", str(path), "--dry-run", "--non-interactive", "--var", "data=in.txt")
    assert dry.returncode == 0, dry.stderr
    assert "argv: grepwrap -B 1 QU /cc/inputs/text_file/" in dry.stdout
    missing = faice("exec", str(path), "--dry-run", "--non-interactive")
    assert missing.returncode == 2 and "variables without a value: data;" in missing.stderr  # what the run needs is still needed
    submit = faice("submit", str(path), "--non-interactive", "--var", "data=in.txt")
    assert submit.returncode == 2 and "variables without a value: agency_password, agency_url, agency_user" in submit.stderr


def test_an_empty_agency_login_in_a_template_blocks_only_submit(tmp_path: Path, faice):
    """Generated templates leave execution.settings.access empty; upstream accepts them."""
    data = grepwrap(execution={"engine": "ccagency", "settings": {"access": {"url": "", "auth": {"username": "", "password": ""}}}})
    path = write(tmp_path / "red.yml", data)
    warning = "execution.settings.access.url: warning: must not be an empty string (only faice submit uses it)"
    for args in (["validate", str(path)], ["exec", str(path), "--dry-run", "--non-interactive"]):
        result = faice(*args)
        assert result.returncode == 0, result.stderr
        assert warning in result.stderr
    submitted = faice("submit", str(path), "--non-interactive")
    assert submitted.returncode == 2 and "execution.settings.access.url: must not be an empty string" in submitted.stderr


def test_shell_completion_is_offered_and_completes_commands_and_options(faice):
    import subprocess

    # the shell named, not guessed from the processes above this one (make's sh, a CI runner's)
    shown = faice("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0 and "_faice_completion" in shown.stdout
    env = {**os.environ, "_FAICE_COMPLETE": "complete_bash", "COMP_WORDS": "faice exec --no", "COMP_CWORD": "2"}
    completed = subprocess.run(faice_command(), capture_output=True, text=True, env=env, timeout=30)
    assert completed.stdout.split() == ["--no-mount", "--no-cache", "--non-interactive"]


def test_the_command_table_names_each_command_and_the_module_that_registers_it():
    """faice.cli.COMMANDS decides which module a command line needs: it must match what the
    modules register, or a command would be missing (a new one) or another's module loaded."""
    import importlib

    from faice.cli import COMMAND_MODULES, COMMANDS
    from faice.cli.app import app

    for module in COMMAND_MODULES:
        importlib.import_module(f"faice.cli.{module}")
    registered = {info.name or info.callback.__name__: info.callback.__module__ for info in app.registered_commands}
    registered |= {info.name: info.typer_instance.registered_commands[0].callback.__module__ for info in app.registered_groups}
    assert registered == {name: f"faice.cli.{module}" for name, module in COMMANDS.items()}


@pytest.mark.parametrize(("args", "loaded"), [
    (["--db", "exec", "validate", "x.yml"], {"run"}),
    (["--debug", "exec", "--help"], {"run"}),
    (["users", "list"], {"users"}),
    (["--help"], {"run", "recorded", "watch", "cache", "export", "report", "serve", "schema", "convert", "users"}),
    (["--help", "exec"], {"run", "recorded", "watch", "cache", "export", "report", "serve", "schema", "convert", "users"}),
    (["--db", "x.db", "-h", "users"], {"run", "recorded", "watch", "cache", "export", "report", "serve", "schema", "convert", "users"}),
    (["exec", "--help"], {"run"}),
    (["exce", "x.yml"], {"run", "recorded", "watch", "cache", "export", "report", "serve", "schema", "convert", "users"}),
])
def test_a_command_line_loads_only_the_module_of_its_command(args, loaded):
    """A fresh interpreter: which faice.cli modules building the click command for ``args`` imports."""
    import subprocess

    code = ("import sys; from faice.cli import command; command(sys.argv[1:]); "
            "print(' '.join(sorted(m.split('.')[-1] for m in sys.modules if m.count('.') == 2 and m.startswith('faice.cli.') and m not in ('faice.cli.app', 'faice.cli.exits'))))")
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, check=True)
    assert set(result.stdout.split()) == loaded


def test_exit_codes_follow_the_category_of_the_error_class():
    """One table at the CLI edge: the nearest category in an error's classes decides."""
    from faice.cli.exits import error_code, outcome_code
    from faice.connectors.base import ConnectorError
    from faice.errors import EnvironmentUnusable, FaiceError, InvalidInput, LoadError
    from faice.red.prepare import ValidationFailed
    from faice.runner.dockerapi import DockerError, NotFound
    from faice.state.store import UnknownId
    from faice.state.users import UserError

    codes = {cls.__name__: error_code(error) for cls, error in [
        (FaiceError, FaiceError("x")), (ConnectorError, ConnectorError("x")), (InvalidInput, InvalidInput("x")), (LoadError, LoadError("f", "x")),
        (ValidationFailed, ValidationFailed([])), (UnknownId, UnknownId("x")), (UserError, UserError("x")),
        (EnvironmentUnusable, EnvironmentUnusable("x")), (DockerError, DockerError(500, "x")), (NotFound, NotFound(404, "x")),
    ]}
    assert codes == {"FaiceError": 1, "ConnectorError": 1, "InvalidInput": 2, "LoadError": 2, "ValidationFailed": 2, "UnknownId": 2, "UserError": 2,
                     "EnvironmentUnusable": 3, "DockerError": 3, "NotFound": 3}
    assert [outcome_code(o) for o in ("succeeded", "submitted", "failed", "cancelled", "interrupted")] == [0, 0, 1, 130, 130]

