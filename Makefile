# The two commands of the README: `make test` and `make demo`.
# Everything is installed from requirements-lock.txt (hashes checked); `make lock` adds what
# pyproject.toml newly needs, `make lock UPGRADE=1` re-resolves everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements-lock.txt
STAMP := $(VENV)/.installed
LOCK_VENV := .venv-lock

.PHONY: test lint typecheck unit engine demo pulumi redis-server schemas docs bench lock clean

$(STAMP): $(LOCK) pyproject.toml
	@echo "==> $(VENV): installing exactly $(LOCK) (the first run downloads a few hundred MB)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --disable-pip-version-check --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The Pulumi CLI, built from Pulumi's Go modules into a cache outside the work tree (by version,
# shared by every clone on this machine) and linked into the venv. A cold build takes minutes.
# Without Go: a cached build still works; else a Pulumi CLI on PATH is used as it is; else the
# engine tests skip (and fail under CI) and the demo says how to get one.
pulumi: $(STAMP)
	@if bin=$$(PULUMI_CLI_CHECK_ONLY=1 tools/pulumi-cli/build.sh 2>/dev/null) \
	    || { command -v go >/dev/null && bin=$$(tools/pulumi-cli/build.sh); }; then \
	  ln -sf "$$bin/pulumi" $(BIN)/pulumi && echo "==> $(BIN)/pulumi -> $$bin/pulumi"; \
	elif command -v go >/dev/null; then \
	  echo "==> the Pulumi CLI build failed (see above)"; exit 1; \
	elif command -v pulumi >/dev/null; then \
	  echo "==> no Go: using the Pulumi CLI on PATH ($$(command -v pulumi))"; \
	else \
	  echo "==> no Go and no Pulumi CLI: engine tests will skip and make demo cannot deploy" \
	       "(install Go >= 1.26, or the Pulumi CLI >= 3.181)"; \
	fi

# The Redis server the shared-store tests start on a free loopback port (docs/shared-store.md):
# Debian's package when none is on PATH (valkey-server, wire-compatible, is taken too). Without
# root or apt-get it says how to get one; those tests then skip (and fail under CI).
redis-server:
	@if command -v redis-server >/dev/null || command -v valkey-server >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing Debian's redis-server (apt-get; the tests start their own on loopback)"; \
	  install="apt-get install -y -qq --no-install-recommends redis-server"; \
	  { DEBIAN_FRONTEND=noninteractive $$install >/dev/null 2>&1 \
	    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$install >/dev/null; }; } && \
	  echo "==> $$(redis-server --version | cut -d' ' -f1-3)"; \
	else \
	  echo "==> no redis-server and no root apt-get: install redis-server or valkey-server;" \
	       "the shared-store tests skip without one (and fail under CI)"; \
	fi

test: $(STAMP) pulumi redis-server lint typecheck unit

# ruff, then deptry: every module the code imports is a declared dependency, every declared one
# is used (pyproject.toml [tool.deptry]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/deptry .

# A cold .mypy_cache (a fresh clone) takes several minutes on 2 cores; heartbeat.py says so
# every minute.
typecheck: $(STAMP)
	@echo "==> mypy --strict on snapshot_resources, tests and benchmarks (cache: .mypy_cache)"
	$(BIN)/python tools/heartbeat.py "mypy --strict" $(BIN)/mypy
	MYPYPATH=tests $(BIN)/python tools/heartbeat.py "mypy --strict benchmarks" $(BIN)/mypy benchmarks  # soak.py reuses the suite's driver from tests/

# Three pytest-xdist workers on 2 cores: most engine and emulator tests wait on loopback servers
# and the Pulumi CLI rather than compute (measured 2026-12-08: 3,019 tests in 16 min 3 s with -n 3
# on an otherwise idle machine).
# While a test runs longer than a minute the suite names it (tests/conftest.py), and the ten
# slowest are listed at the end.
unit: $(STAMP) redis-server
	@echo "==> pytest on 3 workers: the whole suite, the real-engine tests included (about 16 min warm on 2 cores)"
	$(BIN)/pytest -q -n 3 --durations=10

# Only the tests that run the real Pulumi engine (tests/engine/).
engine: $(STAMP) pulumi redis-server
	$(BIN)/pytest -q -m engine

schemas: $(STAMP)
	$(BIN)/snapshot-resources schema --write

# docs/sources.md, generated from rules.SOURCES (a test fails when it is stale).
docs: $(STAMP)
	$(BIN)/python -c "from snapshot_resources.explain import sources_markdown as m; open('docs/sources.md', 'w').write(m())"

demo: $(STAMP) pulumi
	$(BIN)/python -m snapshot_resources.demo

bench: $(STAMP) pulumi redis-server
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

# Re-resolve every dependency with hashes: all extras, the dev dependency group and the build
# backend. pip-compile reads no dependency groups yet (pip-tools issue 2062): the group (by PyPA's
# dependency-groups) and build-system.requires reach it on standard input. Without UPGRADE=1 the
# pins in $(LOCK) are kept and only what is new is added.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install --quiet pip-tools dependency-groups; }
	{ $(LOCK_VENV)/bin/python -m dependency_groups dev; \
	  $(LOCK_VENV)/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['build-system']['requires']))"; } \
	| $(LOCK_VENV)/bin/pip-compile $(if $(UPGRADE),--upgrade) --all-extras --generate-hashes --strip-extras \
	  --no-emit-find-links --unsafe-package snapshot-resources --output-file $(LOCK) pyproject.toml -

clean:
	rm -rf $(VENV) $(LOCK_VENV) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info build dist
