#!/usr/bin/env bash
# Side-by-side benchmark of faice's ssh connector against OpenSSH's own sftp and scp.
#
#   benchmarks/connectors.sh
#
# Starts a throwaway sshd on 127.0.0.1 (key logins for the current user only) and measures, in one
# run (see connectors_bench.py for the details):
#   1. one 1 GiB file: faice's stage-in (as faice exec does it) vs `sftp`, and vs upstream
#      red-connector-ssh 1.3 (paramiko) when it can be installed; faice's peak memory;
#   2. 100 batches each with a 1 MiB file: faice's stage-in of all of them vs 100 sequential `scp`.
# Targets: faice's throughput >= 0.8x sftp's; peak RSS <= 100 MiB; 100 batches <= 0.5x the scp loop.
#
# Settings:
#   SSHD=...             sshd (default: sshd on PATH, else /usr/sbin/sshd)
#   UPSTREAM_SSH_VENV    where upstream red-connector-ssh 1.3 is (installed there from PyPI when
#                        missing; without PyPI the upstream column is left out)
#   BENCH_JOBS           faice's --jobs for the 100 batches (default: nproc)
#   BENCH_RUNS_SMALL / BENCH_RUNS_BIG   runs per case (default 5 / 3)
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed or the set-up is
# broken. Needs about 3 GiB in ${TMPDIR:-/tmp}; the scratch directory is removed on exit.
set -euo pipefail

bench_name=connectors.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

bench_faice_and_python
sshd=${SSHD:-$(command -v sshd || echo /usr/sbin/sshd)}
[[ -x $sshd ]] || die "sshd not found (Debian: apt-get install openssh-server; or set SSHD=...)"
for tool in sftp scp ssh ssh-keygen; do
	command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install openssh-client)"
done

upstream_venv=${UPSTREAM_SSH_VENV:-${TMPDIR:-/tmp}/faice-bench-upstream-ssh}
upstream=$upstream_venv/bin/red-connector-ssh
if [[ ! -x $upstream ]]; then
	echo "connectors.sh: setting up upstream red-connector-ssh 1.3 in $upstream_venv" >&2
	if ! { "${PYTHON:-python3}" -m venv "$upstream_venv" &&
		"$upstream_venv/bin/python" -m pip install -q --disable-pip-version-check red-connector-ssh==1.3; }; then
		echo "connectors.sh: warning: cannot install red-connector-ssh 1.3; the upstream column is left out" >&2
	fi
fi
[[ -x $upstream ]] || upstream=

bench_workdir faice-connectors-bench.XXXXXX

bench_run "$here/connectors_bench.py" \
	--python "$py" \
	--sshd "$sshd" \
	${upstream:+--upstream "$upstream"} \
	--jobs "${BENCH_JOBS:-$(nproc)}" \
	--work "$work"
