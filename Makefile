# The two set-up commands (see README.md):
#   make demo   create .venv, install faice, build the example images offline, run the examples
#   make test   install the test dependencies, build the test images, run the whole suite
# Both work on a fresh machine with a running Docker engine and no registry access (podman, the
# second engine, is installed from Debian and needs no daemon).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: demo test venv test-deps system-deps images lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# faice itself, editable so the checkout is what runs ("compat" mode: a plain path entry, no
# import hook on every start-up)
COMPAT := --config-settings editable_mode=compat
$(VENV)/.faice-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e . $(COMPAT)
	touch $@

# The test extras, plus a tiny third-party connector plugin that tests discover by entry point.
$(VENV)/.test-installed: pyproject.toml tests/plugins/faice-connector-memo/pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]' $(COMPAT)
	$(BIN)/python -m pip install -q ./tests/plugins/faice-connector-memo
	touch $@ $(VENV)/.faice-installed

# roc-validator checks the crates of `faice export` in the tests; it pins rich<14 (faice has 15),
# so it lives in a venv of its own, inside faice's, and the tests call its command.
ROC_VALIDATOR := $(VENV)/rocrate-validator/bin/rocrate-validator
$(ROC_VALIDATOR): | $(BIN)/python
	$(PYTHON) -m venv $(VENV)/rocrate-validator
	$(VENV)/rocrate-validator/bin/python -m pip install -q roc-validator==0.13.0

venv: $(VENV)/.faice-installed

test-deps: $(VENV)/.test-installed $(ROC_VALIDATOR)

# The images are FROM scratch around Debian's static busybox: no registry needed. sshfs (with
# fuse3) mounts ssh directories for `mount: true`; the tests and the ssh demo start OpenSSH's sshd.
# podman is faice's second engine (FAICE_ENGINE=podman); rootless, it needs uidmap's newuidmap
# and slirp4netns for its containers' network. chromium and its driver run /ui's tests (tests/test_ui.py).
SYSTEM_PACKAGES := busybox-static sshfs fuse3 openssh-server openssh-client iproute2 procps podman uidmap slirp4netns chromium chromium-driver
# Podman gives its containers higher open-files and process limits than a machine whose own hard
# limits are lower (a sandbox, a CI runner) lets it set, and then starts none: there, a drop-in
# makes its containers inherit the limits instead.
PODMAN_ULIMITS_CONF := /etc/containers/containers.conf.d/faice-ulimits.conf
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian's" $$missing; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@if [ "$$(ulimit -Hn)" != unlimited ] && [ "$$(ulimit -Hn)" -lt 1048576 ] && [ ! -e $(PODMAN_ULIMITS_CONF) ]; then \
		echo "installing $(PODMAN_ULIMITS_CONF): this machine's open-files limit ($$(ulimit -Hn)) is below podman's default"; \
		$(SUDO) mkdir -p $(dir $(PODMAN_ULIMITS_CONF)); \
		printf '# installed by faice (make system-deps): containers inherit the limits\n[containers]\ndefault_ulimits = []\n' | $(SUDO) tee $(PODMAN_ULIMITS_CONF) >/dev/null; \
	fi

images: system-deps venv
	$(BIN)/python scripts/build-images.py

demo: venv images
	@echo "== faice validate: every example"
	$(BIN)/faice validate examples/*/red.yml
	@echo "== faice exec --dry-run: what a batch would run"
	$(BIN)/faice exec examples/grepwrap/red.yml --dry-run
	@echo "== faice exec: grepwrap with a local input file"
	$(BIN)/faice exec examples/grepwrap/red.yml --outdir outputs/grepwrap
	cat outputs/grepwrap/out.txt
	@echo "== faice exec: 12 batches in parallel"
	$(BIN)/faice exec examples/many-batches/red.yml --outdir outputs/many-batches
	@echo "== faice exec: the customer's RED 8 grepwrap, adapted to local data"
	$(BIN)/faice exec examples/seed-grepwrap-red8/red.yml --outdir outputs/seed-grepwrap-red8
	cat outputs/seed-grepwrap-out.txt
	@echo "== faice exec: inputs from and outputs to a loopback HTTP server"
	FAICE=$(BIN)/faice PYTHON=$(BIN)/python examples/http/run-demo.sh
	@echo "== faice exec: an input over SFTP, a directory mounted with sshfs, the output uploaded (loopback sshd)"
	FAICE=$(BIN)/faice examples/ssh/run-demo.sh
	@echo "== faice serve + faice submit: a one-node CC-Agency on loopback"
	FAICE=$(BIN)/faice examples/serve/run-demo.sh
	@echo "== what faice recorded"
	$(BIN)/faice list -n 5

test: test-deps images
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: test-deps
	$(BIN)/ruff check .

bench: test-deps images
	benchmarks/validate.sh
	benchmarks/exec.sh
	benchmarks/serve.sh
	benchmarks/connectors.sh
	benchmarks/cache.sh
	benchmarks/cwl.sh
	benchmarks/live.sh

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache outputs
