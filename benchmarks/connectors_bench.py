"""Side-by-side benchmark of faice's ssh stage-in against OpenSSH's own sftp and scp (and upstream's connector).

Started by benchmarks/connectors.sh, which sets up the loopback sshd's programs and the optional
upstream connector. In one run:

1. one 1 GiB file over SFTP from a loopback sshd: faice's stage-in (benchmarks/stage_in.py, a
   one-batch RED file with a red-connector-ssh File input) vs `sftp user@host:FILE DEST`, and
   vs upstream red-connector-ssh 1.3 (`receive-file`) when it is installed; the peak memory of
   faice's process while staging it;
2. 100 batches, each with its own 1 MiB file from the same host: faice's stage-in of all of them
   (batches concurrently within --jobs, over one shared connection) vs 100 sequential `scp`.

Targets: faice's throughput >= 0.8x sftp's (time ratio <= 1.25); faice's peak RSS <= 100 MiB;
100 batches faice / sequential scp <= 0.5. Every measured command must exit 0 and deliver files
of the right size (faice checks the sizes the RED file gives; the peers' files are checked here).
Standard library only (besides faice itself, which stage_in.py imports).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchlib import BenchError, Command, Ratio, capture, commands_table, machine, measure, program, ratios_table, report_targets

BIG = 1 << 30
SMALL = 1 << 20
MEMORY_LIMIT_MIB = 100


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 1 << 24))
            out.write(block)
            left -= len(block)


def start_sshd(sshd: str, work: Path) -> tuple[subprocess.Popen[bytes], int, str, Path]:
    """sshd on 127.0.0.1 for the current user, key logins only; returns (process, port, user, key)."""
    import getpass
    import socket

    conf = work / "sshd"
    conf.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(conf / "host_key")], check=True)
    # RSA in PEM: the one kind of private key upstream's connector (paramiko RSAKey) reads
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-m", "PEM", "-N", "", "-f", str(conf / "user_key")], check=True)
    shutil.copy(conf / "user_key.pub", conf / "authorized_keys")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    user = getpass.getuser()
    if os.getuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    (conf / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {conf / 'host_key'}\nAuthorizedKeysFile {conf / 'authorized_keys'}\nStrictModes no\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n"
        "Subsystem sftp internal-sftp\nPidFile none\nMaxStartups 200\nMaxSessions 20\n"
    )
    process = subprocess.Popen([sshd, "-D", "-E", str(conf / "sshd.log"), "-f", str(conf / "sshd_config")])
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"sshd did not start (see {conf / 'sshd.log'})") from None
            time.sleep(0.05)
    return process, port, user, conf / "user_key"


def red_file(path: Path, inputs: list[tuple[Path, int]], port: int, user: str, key: Path) -> None:
    """A RED file (JSON is YAML) whose batches each receive one file over ssh and run `true`."""
    access = {"host": "127.0.0.1", "port": port, "auth": {"username": user, "privateKey": key.read_text()}}
    batches = [{"inputs": {"f": {"class": "File", "size": size, "connector": {"command": "red-connector-ssh", "access": {**access, "filePath": str(remote)}}}},
                "outputs": {}} for remote, size in inputs]
    path.write_text(json.dumps({
        "redVersion": "9",
        "cli": {"cwlVersion": "v1.0", "class": "CommandLineTool", "baseCommand": "true", "inputs": {"f": {"type": "File", "inputBinding": {"position": 0}}}, "outputs": {}},
        "batches": batches,
        "container": {"engine": "docker", "settings": {"image": {"url": "faice-test-busybox:latest"}, "ram": 256}},
    }))


def size_is(path: Path, size: int) -> None:
    if not path.is_file() or path.stat().st_size != size:
        raise BenchError(f"{path} is not a file of {size} bytes")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", required=True, help="the interpreter with faice installed")
    ap.add_argument("--sshd", required=True)
    ap.add_argument("--upstream", default=None, help="upstream red-connector-ssh 1.3 (optional)")
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--runs-small", type=int, default=5)
    ap.add_argument("--runs-big", type=int, default=3)
    args = ap.parse_args()
    work: Path = args.work.resolve()
    stage_in = Path(__file__).resolve().with_name("stage_in.py")
    sshd_process = None
    try:
        py, sftp, scp = program(args.python), program("sftp"), program("scp")
        upstream = program(args.upstream) if args.upstream else None
        sshd_process, port, user, key = start_sshd(program(args.sshd), work)
        os.environ["XDG_DATA_HOME"] = str(work / "data")  # faice's remembered host keys: the scratch's own
        remote = work / "remote"
        remote.mkdir()
        big = remote / "big.bin"
        write_random(big, BIG)
        smalls = [remote / f"small-{i}.bin" for i in range(args.batches)]
        for path in smalls:
            write_random(path, SMALL)
        red_file(work / "big.json", [(big, BIG)], port, user, key)
        red_file(work / "many.json", [(p, SMALL) for p in smalls], port, user, key)
        ssh_options = ["-q", "-P", str(port), "-i", str(key), "-o", f"UserKnownHostsFile={work / 'known_hosts'}", "-o", "StrictHostKeyChecking=accept-new", "-o", "BatchMode=yes"]
        got = work / "got"
        got.mkdir()

        def clear(_run: int) -> None:
            shutil.rmtree(got)
            got.mkdir()

        versions = {"faice": capture([py, "-c", "import faice; print(faice.__version__)"], work), "openssh": capture(["ssh", "-V"], work)}
        print("== connector benchmark (ssh)")
        print(f"faice     {py} -m faice ({versions['faice']}): stage-in as faice exec does it (benchmarks/stage_in.py)")
        print(f"peers     {versions['openssh']} sftp and scp{'; upstream red-connector-ssh 1.3: ' + upstream if upstream else ''}")
        print(f"machine   {machine()}; --jobs {args.jobs}; sshd on 127.0.0.1:{port}")
        print(f"runs      {args.runs_big} for 1 GiB, {args.runs_small} for {args.batches} x 1 MiB; medians; one warm-up round each", flush=True)

        big_f = Command("faice-1g", "faice stage-in (1 GiB File)", [py, str(stage_in), str(work / "big.json"), "--work", str(got)], expect="staged 1 inputs", before=clear)
        big_s = Command("sftp-1g", "sftp user@host:big.bin got/", [sftp, *ssh_options, f"{user}@127.0.0.1:{big}", str(got / "big.bin")], before=clear,
                        check=lambda out, run: size_is(got / "big.bin", BIG))
        big_cases = [big_f, big_s]
        if upstream:
            access = work / "upstream-access.json"
            access.write_text(json.dumps({"host": "127.0.0.1", "port": port, "auth": {"username": user, "privateKey": key.read_text()}, "filePath": str(big)}))
            big_cases.append(Command("upstream-1g", "upstream red-connector-ssh 1.3 receive-file", [upstream, "receive-file", str(access), str(got / "big.bin")],
                                     before=clear, check=lambda out, run: size_is(got / "big.bin", BIG)))
        measure("1g", big_cases, args.runs_big, 1, work)

        many_f = Command("faice-many", f"faice stage-in ({args.batches} batches, --jobs {args.jobs})",
                         [py, str(stage_in), str(work / "many.json"), "--jobs", str(args.jobs), "--work", str(got)], expect=f"staged {args.batches} inputs", before=clear)
        script = f'for f in "$@"; do {scp} {" ".join(ssh_options)} "{user}@127.0.0.1:$f" "{got}/" || exit 1; done'
        many_s = Command("scp-many", f"{args.batches} sequential scp", ["sh", "-c", script, "sh", *map(str, smalls)], before=clear,
                         check=lambda out, run: [size_is(got / p.name, SMALL) for p in smalls] and None)
        measure("many", [many_f, many_s], args.runs_small, 1, work)
    except BenchError as exc:
        print(f"\nconnectors_bench: BENCHMARK ABORTED: {exc}", file=sys.stderr)
        return 2
    finally:
        if sshd_process is not None:
            sshd_process.terminate()
            sshd_process.wait(10)

    print()
    print(commands_table([("1 GiB over sftp", big_cases), (f"{args.batches} x 1 MiB", [many_f, many_s])]))
    ratios = [Ratio("1 GiB: faice / sftp, time (throughput >= 0.8x)", big_f, big_s, limit=1.25)]
    if upstream:
        ratios.append(Ratio("1 GiB: faice / upstream red-connector-ssh, time", big_f, big_cases[2]))
    ratios.append(Ratio(f"{args.batches} x 1 MiB: faice / sequential scp, time", many_f, many_s, limit=0.5))
    print()
    print(ratios_table(ratios))
    mib_s = lambda c: BIG / (1 << 20) / c.wall  # noqa: E731
    memory_ok = big_f.rss_mib <= MEMORY_LIMIT_MIB
    print()
    print("== summary (for README.md)")
    print()
    print(f"Measured by `benchmarks/connectors.sh` on {platform.system()} {platform.machine()} ({os.cpu_count()} CPUs, Python {platform.python_version()}, {versions['openssh']}),")
    print(f"loopback sshd; median of {args.runs_big} runs (1 GiB) and {args.runs_small} runs ({args.batches} x 1 MiB), wall time and peak RSS of the whole process.")
    print()
    print("| case | faice | OpenSSH | faice / OpenSSH |" + (" upstream red-connector-ssh 1.3 |" if upstream else ""))
    print("|---|---|---|---|" + ("---|" if upstream else ""))
    row = f"| 1 GiB file (sftp) | {big_f.wall:.2f} s, {mib_s(big_f):.0f} MiB/s, {big_f.rss_mib:.0f} MiB RSS | {big_s.wall:.2f} s, {mib_s(big_s):.0f} MiB/s | {ratios[0].value:.2f} |"
    if upstream:
        row += f" {big_cases[2].wall:.2f} s, {mib_s(big_cases[2]):.0f} MiB/s, {big_cases[2].rss_mib:.0f} MiB RSS |"
    print(row)
    print(f"| {args.batches} batches x 1 MiB | {many_f.wall:.2f} s | {many_s.wall:.2f} s ({args.batches} x scp) | {ratios[-1].value:.2f} |" + (" |" if upstream else ""))
    print()
    print(f"Memory target:\n- faice's peak RSS staging 1 GiB <= {MEMORY_LIMIT_MIB} MiB: {big_f.rss_mib:.0f} MiB {'PASS' if memory_ok else 'FAIL'}")
    status = report_targets(ratios, "connectors_bench")
    if not memory_ok:
        print(f"connectors_bench: memory target missed: {big_f.rss_mib:.0f} MiB", file=sys.stderr)
    return status or (0 if memory_ok else 1)


if __name__ == "__main__":
    sys.exit(main())
