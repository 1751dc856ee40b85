# shellcheck shell=bash
# What the benchmark wrappers (validate.sh, exec.sh, serve.sh, live.sh, ...) share; sourced by them, not run.
#
# The wrapper sets bench_name (its name in messages) and here (its directory) before sourcing this
# file, and runs under `set -euo pipefail`. This file sets root (the checkout) and defines:
#   die MESSAGE...           print "$bench_name: error: MESSAGE" and exit 2
#   bench_faice_and_python   sets faice (FAICE, default .venv/bin/faice) and py (the interpreter
#                            for the helper: .venv/bin/python, else python3); unsets
#                            PYTHONDONTWRITEBYTECODE and compiles faice's package, so that faice
#                            starts from bytecode as users' installs do
#   bench_cwltool            sets cwltool (CWLTOOL, else .venv/bin/cwltool, else cwltool on PATH)
#   bench_docker_image IMAGE sets docker (DOCKER, else docker on PATH), checks the engine answers and
#                            builds IMAGE offline with scripts/build-images.py when it is missing
#   bench_jobs               sets jobs to BENCH_JOBS (default: nproc), a positive integer
#   bench_workdir TEMPLATE   sets work to a new mktemp directory ${TMPDIR:-/tmp}/TEMPLATE, removed
#                            on exit; INT and TERM exit 130 and 143
#   bench_run HELPER ARG...  runs "$py" HELPER ARG... --runs-small ${BENCH_RUNS_SMALL:-5}
#                            --runs-big ${BENCH_RUNS_BIG:-3}, says why when it fails, and exits
#                            with its status (0 every target met, 1 a target missed, 2 broken)

: "${bench_name:?set bench_name before sourcing common.sh}" "${here:?set here before sourcing common.sh}"
root=$(dirname -- "$here")

die() {
	printf '%s: error: %s\n' "$bench_name" "$*" >&2
	exit 2
}

# --- faice under test, and the interpreter for the helper (standard library only)
bench_faice_and_python() {
	faice=${FAICE:-$root/.venv/bin/faice}
	[[ -x $faice ]] || die "faice not found at $faice (run 'make venv' first, or set FAICE=/path/to/faice)"
	if [[ -x $root/.venv/bin/python ]]; then
		py=$root/.venv/bin/python
	else
		py=$(command -v python3) || die "python3 not found"
	fi
	# Installs have faice's modules compiled (.pyc); with PYTHONDONTWRITEBYTECODE set (some shells
	# and sandboxes set it) every measured run would compile them from source, some 50 ms each.
	unset PYTHONDONTWRITEBYTECODE
	local faice_py package
	faice_py=$(sed -n '1s/^#! *//p' "$faice")
	[[ -x $faice_py ]] || faice_py=$py
	package=$("$faice_py" -c 'import faice, os; print(os.path.dirname(faice.__file__))') || die "$faice_py cannot import faice"
	"$faice_py" -m compileall -q "$package" >/dev/null || die "compiling faice's modules in $package failed"
}

# --- cwltool
bench_cwltool() {
	if [[ -n ${CWLTOOL:-} ]]; then
		cwltool=$CWLTOOL
	elif [[ -x $root/.venv/bin/cwltool ]]; then
		cwltool=$root/.venv/bin/cwltool
	else
		cwltool=$(command -v cwltool) || die "cwltool not found (make test-deps installs it into .venv, or set CWLTOOL=...)"
	fi
	[[ -x $cwltool ]] || die "cwltool at $cwltool is not executable"
}

# --- Docker, and an offline test image (built, never pulled)
bench_docker_image() {
	local image=$1
	docker=${DOCKER:-$(command -v docker)} || die "docker CLI not found (set DOCKER=...)"
	"$docker" info >/dev/null 2>&1 || die "the Docker engine is not reachable ('$docker info' failed)"
	if ! "$docker" image inspect "$image" >/dev/null 2>&1; then
		echo "$bench_name: $image is missing; building it offline with scripts/build-images.py" >&2
		"$py" "$root/scripts/build-images.py" "${image%%:*}" >&2 || die "building $image failed"
		"$docker" image inspect "$image" >/dev/null 2>&1 || die "$image still missing after building it"
	fi
}

# --- parallelism of the measured commands
bench_jobs() {
	jobs=${BENCH_JOBS:-$(nproc)}
	[[ $jobs =~ ^[1-9][0-9]*$ ]] || die "BENCH_JOBS must be a positive integer, not '$jobs'"
}

# --- scratch directory, removed however the script ends
bench_workdir() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/$1")
	trap 'rm -rf -- "$work"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# --- the helper, and what its exit status means
bench_run() {
	local status=0
	"$py" "$@" \
		--runs-small "${BENCH_RUNS_SMALL:-5}" \
		--runs-big "${BENCH_RUNS_BIG:-3}" || status=$?

	case $status in
	0) ;;
	1) echo "$bench_name: FAIL: a target was missed (see the ratios above)" >&2 ;;
	*) echo "$bench_name: FAIL: the benchmark did not complete (exit status $status)" >&2 ;;
	esac
	exit "$status"
}
