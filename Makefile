# The two commands: `make run` (install + start on 127.0.0.1:5000) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-dev lint format db-upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

install: $(VENV)/.runtime-installed
install-dev: $(VENV)/.dev-installed

db-upgrade: install
	$(BIN)/flask --app wsgi db-upgrade

run: db-upgrade
	@echo ""
	@echo "Deployments API on http://$(HOST):$(PORT)  (docs: http://$(HOST):$(PORT)/docs)"
	@echo "Create a user token:   $(BIN)/flask --app wsgi create-user you@example.com"
	@echo "Create an agent token: $(BIN)/flask --app wsgi create-agent agent-1"
	@echo ""
	$(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 2 --worker-class gthread --threads 8 \
		--access-logfile - wsgi:app

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: lint
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/run-tests
