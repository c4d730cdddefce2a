# Hawiya: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-remote-signer setup lint typecheck clean translations i18n

run: setup ## Set up and serve the IdP with demo data on the embedded default (SQLite)
	$(BIN)/hawiya init
	$(BIN)/hawiya demo
	$(BIN)/hawiya serve

test: setup ## Set up and run the whole suite (lint, types, tests)
	$(BIN)/ruff check idp tests bench
	$(BIN)/mypy
	$(BIN)/pytest
	$(MAKE) test-remote-signer

test-remote-signer: setup ## The protocol suites again, every signature made out of process (the HSM/KMS seam)
	HAWIYA_TEST_SIGNER=remote $(BIN)/pytest -q tests/conformance tests/e2e/test_third_party_clients.py tests/oidc/test_smoke_flow.py

setup: $(STAMP) translations

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

translations: $(STAMP)
	$(BIN)/pybabel compile -d idp/i18n/translations

i18n: $(STAMP) ## Re-extract strings and merge them into the Arabic catalog (then translate)
	$(BIN)/pybabel extract -F babel.cfg -k _ -k gettext -k lazy_gettext --no-location --sort-output -o idp/i18n/messages.pot .
	$(BIN)/pybabel update -i idp/i18n/messages.pot -d idp/i18n/translations --no-fuzzy-matching

lint: setup
	$(BIN)/ruff check idp tests bench

typecheck: setup
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
