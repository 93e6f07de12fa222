# The two set-up commands: `make up` (the campsite platform, from nothing) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: up test lint system down clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[campsite,test]'
	$(PY) -m compileall -q src  # bytecode for the editable install: every command starts faster
	touch $(STAMP)

system:
	@bash scripts/ensure-system.sh

up: $(STAMP) system
	$(VENV)/bin/symphony up examples/campsite

down: $(STAMP)
	$(VENV)/bin/symphony down examples/campsite

test: $(STAMP) system
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) tests/k8s/cluster.py
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV)
