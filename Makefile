# The two commands a newcomer needs: `make run` and `make test`. Both build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 5000

.PHONY: install run test lint typecheck pytest bench proof proof-quick clean

# Quiet on purpose: `make run` must end with the URL and the logins, not pip's progress.
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check

$(STAMP): pyproject.toml
	@echo "installing coachbot into $(VENV) (first run only)..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## make run: migrate the SQLite database, seed the demo clinic (once, some seconds), serve on
## http://127.0.0.1:$(PORT); the last lines printed are the URL and the three demo logins.
## The migration's log is shown only if it fails.
run: install
	@$(BIN)/coachbot db upgrade >$(VENV)/db-upgrade.log 2>&1 || { cat $(VENV)/db-upgrade.log; exit 1; }
	@$(BIN)/coachbot demo-seed
	@PORT=$(PORT) $(BIN)/coachbot serve --port $(PORT)

## make test: ruff, mypy (coachbot, bench, proof, tests), then the whole pytest suite
test: lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy coachbot bench proof tests

pytest: install
	$(BIN)/pytest

## make proof: the reliability suite (crash, provider faults, load, consent, database faults,
## fuzz) on SQLite and PostgreSQL, loopback only; prints what held and writes
## docs/reliability.md (about 15 minutes)
proof: install
	$(BIN)/python -m proof --db both

## make proof-quick: the short version CI runs (about 90 seconds)
proof-quick: install
	$(BIN)/python -m proof --quick --db both --no-doc

## make bench: every benchmark under bench/, figures written to docs/performance.md
## (QUICK=1 for short runs; needs PostgreSQL on 127.0.0.1:5432, node, wrk for the webhook run
## and Redis on 127.0.0.1:6379 for the Celery baseline of the compare run)
BENCH_FLAGS := $(if $(QUICK),--quick,)
BENCH_STAMP := $(VENV)/.bench-stamp
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PIP) install -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP)
	$(BIN)/python -m bench.dispatch $(BENCH_FLAGS)
	$(BIN)/python -m bench.webhook $(BENCH_FLAGS)
	$(BIN)/python -m bench.dashboard $(BENCH_FLAGS)
	$(BIN)/python -m bench.compare $(BENCH_FLAGS)
	$(BIN)/python -m bench.safety $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache
