# The two commands a newcomer needs (see README): `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install lint bench clean

$(BIN)/incident-desk: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/incident-desk

install: $(BIN)/incident-desk

# Runs the bot: against Slack when SLACK_BOT_TOKEN is set, otherwise the offline demo (no workspace needed).
run: install
	@if [ -n "$$SLACK_BOT_TOKEN" ]; then $(BIN)/incident-desk run; else $(BIN)/incident-desk run --offline; fi

test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.ack_latency
	$(BIN)/python -m bench.open_ready
	$(BIN)/python -m bench.deadlines

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
