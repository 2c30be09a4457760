# The two commands a newcomer needs (see README): `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test install browser alertmanager lint bench bench-kpi bench-intake clean

$(BIN)/incident-desk: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/incident-desk

install: $(BIN)/incident-desk

# Runs the bot: against Slack when SLACK_BOT_TOKEN is set, otherwise the offline demo (no workspace needed),
# in the playbook's language (zh-CN as shipped); `make run DEMO_LANG=en` plays the demo in English.
DEMO_LANG ?=
run: install
	@if [ -n "$$SLACK_BOT_TOKEN" ]; then $(BIN)/incident-desk run; \
	else $(BIN)/incident-desk run --offline $(if $(DEMO_LANG),--lang $(DEMO_LANG)); fi

# The status-page test drives Debian's chromium (with a CJK font); installed here when apt-get can.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@if dpkg -s $(BROWSER_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; }; \
	else echo "note: install $(BROWSER_PACKAGES) for the status-page browser test (it is skipped without them)"; fi

# The Alertmanager intake test uses Debian's prometheus-alertmanager as the webhook's real client; installed here
# when apt-get can (without it, that one test is skipped and says why).
ALERTMANAGER_PACKAGES := prometheus-alertmanager
alertmanager:
	@if dpkg -s $(ALERTMANAGER_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq --no-install-recommends $(ALERTMANAGER_PACKAGES) >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $(ALERTMANAGER_PACKAGES) >/dev/null; } || \
		echo "note: could not install $(ALERTMANAGER_PACKAGES); the real-Alertmanager test is skipped"; \
	else echo "note: install $(ALERTMANAGER_PACKAGES) for the real-Alertmanager test (it is skipped without it)"; fi

# Time must not depend on the host's zone: the deadline, working-hours and review tests run again in
# Shanghai (UTC+8), where a naive datetime read as local time would move a deadline by hours.
TZ_TESTS := tests/test_deadlines.py tests/test_business_hours.py tests/test_aftercare.py tests/test_timer.py \
	tests/test_late_work.py

test: install browser alertmanager
	$(BIN)/ruff check .
	$(BIN)/mypy
	TZ=UTC $(BIN)/pytest
	TZ=Asia/Shanghai $(BIN)/pytest -q -p no:cacheprovider $(TZ_TESTS)

bench: install
	$(BIN)/python -m bench.ack_latency
	$(BIN)/python -m bench.open_ready
	$(BIN)/python -m bench.deadlines

# Minutes, not seconds: a million generated incidents on SQLite and on PostgreSQL.
bench-kpi: install
	$(BIN)/python -m bench.kpi

# Minutes: complaint intake at 200/s for 60 s and a burst of 10,000, on SQLite and on PostgreSQL, with Slack's
# limits enforced by the test server; then 60 incidents opened at once, their channels queued behind the budget.
bench-intake: install
	$(BIN)/python -m bench.intake
	$(BIN)/python -m bench.queued_ready

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
