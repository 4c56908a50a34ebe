# pecmail: `make run` serves everything, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The first Python >= 3.12 that actually runs (pyenv shims may exist without a version behind them).
PYTHON ?= $(shell for p in python3.13 python3.12 python3 $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3) $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3); do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$p; break; }; done)
PYTEST_ARGS ?=

.PHONY: run test venv messages frontend lint format clean help

help:
	@echo "make run   - set up everything and serve web, worker, beat and SMTP on 127.0.0.1"
	@echo "make test  - run the whole test suite (SQLite; PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint  - ruff"

venv: $(BIN)/.installed

$(BIN)/.installed: requirements.txt
	@if [ -z "$(PYTHON)" ]; then \
		echo "pecmail needs Python 3.12 or newer and found none."; \
		echo "Install python3.13 (Debian/Ubuntu: apt-get install python3.13 python3.13-venv) and run make again."; \
		exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

messages: venv
	@$(BIN)/python -m pecmail.lib.compilemessages

frontend:
	@if [ -f package.json ]; then \
		if command -v npm >/dev/null 2>&1; then \
			[ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; \
			$(BIN)/python -m pecmail.lib.vendor; \
		else echo "npm not found: the rich-text editor is disabled (install Node.js for it)."; fi; fi

run: venv messages frontend
	@$(BIN)/python manage.py migrate --noinput
	@$(BIN)/python manage.py demo setup
	@$(BIN)/python -m pecmail.lib.devserver

test: venv messages frontend
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: venv
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

format: venv
	@$(BIN)/ruff format .
	@$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var node_modules static/vendor
