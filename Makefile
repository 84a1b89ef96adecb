# The two commands of the README. Both work on a fresh machine with Python 3.11+.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test install lint browser clean

$(BIN)/siyu: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/siyu

install: $(BIN)/siyu

## make demo: install, migrate, generate the demo dataset if absent, serve on 127.0.0.1:8000
demo: install
	$(BIN)/siyu migrate --verbosity 0
	$(BIN)/siyu demo --if-empty
	$(BIN)/siyu serve 127.0.0.1:8000 --no-migrate --with-worker

## Debian's Chromium and CJK fonts for the browser tests (Playwright drives /usr/bin/chromium)
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "noto.*cjk" || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null)

lint: install
	$(BIN)/ruff check src tests $(wildcard bench)

## make test: install with dev extras, lint, run the whole suite on $$SIYU_DATABASE_URL (default SQLite)
test: install browser lint
	$(BIN)/pytest -n 2 -q

clean:
	rm -rf $(VENV) var .pytest_cache
