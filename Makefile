# Hawiya: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast test-drills test-remote-signer test-lowest setup lint typecheck clean translations i18n interop-op bench bench-peer

run: setup ## Set up and serve the IdP (localhost:8000) with demo data, and two demo agencies (127.0.0.1:8101, :8102)
	$(BIN)/hawiya init
	$(BIN)/hawiya demo
	$(BIN)/python clients/python/examples/serve_demos.py -- $(BIN)/hawiya serve

# The suite runs on every core (pytest-xdist); the time budget of each stage is in docs/testing.md.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal

test: test-fast test-drills ## Set up and run the whole suite: lint, types, tests, then the drills

test-fast: setup interop-op bench-peer ## Lint, types and every test but the drills (the quick run during work)
	$(BIN)/ruff check idp tests bench clients/python tools
	$(BIN)/mypy
	$(PYTEST) -m "not drill"
	$(MAKE) test-remote-signer

test-drills: setup interop-op bench-peer ## The second stage: multi-process drills (tests marked drill)
	$(PYTEST) -m drill

test-remote-signer: setup ## The protocol suites again, every signature made out of process (the HSM/KMS seam)
	HAWIYA_TEST_SIGNER=remote $(PYTEST) -q -m "not drill" tests/conformance tests/e2e/test_third_party_clients.py tests/oidc/test_smoke_flow.py

test-lowest: setup ## The direct dependencies at the lowest versions pyproject.toml allows (needs the package index; run when a floor changes)
	$(BIN)/python tools/lowest_deps.py

setup: $(STAMP) translations

INTEROP_OP := tests/rp/oidc_provider

# The second, independent OP of the interop tests (panva's oidc-provider): installed once from the
# committed package-lock.json, only when node is on the machine (the tests skip locally without it)
# and node_modules is missing or older than the lock file.
interop-op:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		if [ ! -d $(INTEROP_OP)/node_modules ] || [ $(INTEROP_OP)/package-lock.json -nt $(INTEROP_OP)/node_modules/.package-lock.json ]; then \
			cd $(INTEROP_OP) && npm ci --no-audit --no-fund; \
		fi; \
	fi

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e 'clients/python[flask,redis]'
	touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel compile -d idp/i18n/translations

i18n: $(STAMP) ## Re-extract strings and merge them into the Arabic catalog (then translate)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext --no-location --sort-output -o idp/i18n/messages.pot .
	$(BIN)/pybabel update -i idp/i18n/messages.pot -d idp/i18n/translations --no-fuzzy-matching

bench: setup bench-peer ## Benchmarks: Hawiya (gunicorn, PostgreSQL + Redis) beside panva's oidc-provider; figures only
	@command -v wrk >/dev/null 2>&1 || (command -v apt-get >/dev/null 2>&1 && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) || \
		{ echo "make bench needs wrk (Debian: apt-get install wrk)"; exit 1; }
	$(BIN)/python bench/run_all.py

BENCH_PEER := bench/peer

# The benchmark's peer, installed from its committed package-lock.json when node is here.
bench-peer:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
		if [ ! -d $(BENCH_PEER)/node_modules ] || [ $(BENCH_PEER)/package-lock.json -nt $(BENCH_PEER)/node_modules/.package-lock.json ]; then \
			cd $(BENCH_PEER) && npm ci --no-audit --no-fund; \
		fi; \
	fi

lint: setup
	$(BIN)/ruff check idp tests bench clients/python tools

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(INTEROP_OP)/node_modules $(BENCH_PEER)/node_modules
