#!/usr/bin/env bash
# Side-by-side benchmark of `faice validate` against upstream cc-faice 9.3.0 and cwltool.
#
#   benchmarks/validate.sh            (or: make bench)
#
# In one run, each command as a fresh process, wall time and peak RSS, medians of 5 runs
# (after one warm-up) for the small cases and 3 runs for the large one:
#   1. faice --version                       vs  upstream faice --version
#   2. the customer's grepwrap RED (examples/seed-grepwrap-red8/red.yml):
#      faice validate (the RED 8 file as shipped, and the same file as RED 9)
#                                            vs  upstream faice schema validate red (the RED 9 file)
#                                            vs  cwltool --validate (the tool of faice convert cwl)
#      (upstream cannot read RED 8: the RED 9 copy has redVersion "9" and no retryIfFailed)
#   3. a generated RED with 100,000 batches (~4 MB YAML, an echo tool, one string per batch):
#      faice validate                        vs  upstream faice schema validate red
# then a table, the ratios with PASS/FAIL against the targets, and a summary block for README.md.
#
# Targets: 100,000 batches faice/upstream time <= 0.3 and peak RSS <= 0.5;
#          grepwrap faice/upstream time < 1 and faice/cwltool --validate time <= 0.3.
#
# Peers, set up when missing:
#   FAICE=...          faice under test            (default: .venv/bin/faice of this checkout)
#   UPSTREAM_VENV=...  venv with cc-faice 9.3.0    (default: /tmp/upstream when it has bin/faice,
#                      else ${TMPDIR:-/tmp}/faice-bench-upstream; created with
#                      `pip install cc-faice==9.3.0` when it has no bin/faice; kept for reuse)
#   CWLTOOL=...        cwltool                     (default: .venv/bin/cwltool, else cwltool on PATH)
#   PYTHON=...         interpreter for a new upstream venv (default: python3)
#   BENCH_RUNS_SMALL / BENCH_RUNS_BIG   runs per case (default 5 / 3)
#
# Exit status: 0 every target met, 1 a target missed, 2 a measured command failed (the benchmark
# aborts at once, printing the command and its output: no ratio is made from a failed run) or the
# set-up is broken. Scratch files live in a mktemp directory that is removed on exit.
set -euo pipefail

bench_name=validate.sh
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$here/common.sh"

bench_faice_and_python

# --- upstream cc-faice 9.3.0, in a throwaway venv
if [[ -n ${UPSTREAM_VENV:-} ]]; then
	upstream_venv=$UPSTREAM_VENV
elif [[ -x /tmp/upstream/bin/faice ]]; then
	upstream_venv=/tmp/upstream
else
	upstream_venv=${TMPDIR:-/tmp}/faice-bench-upstream
fi
upstream=$upstream_venv/bin/faice
if [[ ! -x $upstream ]]; then
	echo "validate.sh: setting up upstream cc-faice 9.3.0 in $upstream_venv" >&2
	"${PYTHON:-python3}" -m venv "$upstream_venv" || die "cannot create a venv in $upstream_venv"
	"$upstream_venv/bin/python" -m pip install -q --disable-pip-version-check cc-faice==9.3.0 ||
		die "pip install cc-faice==9.3.0 into $upstream_venv failed"
	[[ -x $upstream ]] || die "cc-faice installed, but $upstream is missing"
fi
upstream_version=$("$upstream" --version 2>&1) || die "$upstream --version failed: $upstream_version"
[[ $upstream_version == 9.3.0 ]] ||
	die "$upstream is cc-faice '$upstream_version', not 9.3.0 (remove $upstream_venv or set UPSTREAM_VENV)"

bench_cwltool

bench_workdir faice-bench.XXXXXX

bench_run "$here/validate_bench.py" \
	--faice "$faice" \
	--upstream "$upstream" \
	--cwltool "$cwltool" \
	--red8 "$root/examples/seed-grepwrap-red8/red.yml" \
	--work "$work"
