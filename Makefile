# marketscan: `make demo` runs a scan on embedded services, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Every version `make` installs comes from uv.lock (hashed, one resolution for every
# platform); uv itself comes hashed from deploy/uv-requirements.txt. `--locked` refuses a
# lock that no longer matches pyproject.toml, so the two cannot drift apart.
UV := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(BIN)/uv
UV_SYNC := $(UV) sync --locked --inexact --quiet --python $(BIN)/python

.PHONY: demo test lint lock bench clean

$(STAMP): pyproject.toml uv.lock deploy/uv-requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "marketscan needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r deploy/uv-requirements.txt
	$(UV_SYNC) --extra dev --extra embedded
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marketscan demo

lint: $(STAMP)
	$(UV) lock --check --quiet --python $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m worker.devtools.import_cycles

# Refresh the lock to the newest versions pyproject.toml allows (then run `make test`).
lock: $(STAMP)
	$(UV) lock --upgrade --python $(BIN)/python
	echo "uv" | $(UV) pip compile - --upgrade --generate-hashes --universal --no-header \
		--quiet -o deploy/uv-requirements.txt

# The acceptance files run TEST_WORKERS at a time (pytest-xdist, a file's tests together),
# each xdist worker on its own embedded PostgreSQL and Redis; TEST_WORKERS=0 runs them in
# one process. Both runs happen even if the first fails, and either failing fails `test`.
TEST_WORKERS ?= 2

test: lint
	status=0; \
	$(BIN)/pytest --ignore=tests/acceptance || status=$$?; \
	$(BIN)/pytest tests/acceptance -n $(TEST_WORKERS) --dist loadfile || status=$$?; \
	exit $$status

BENCH_STAMP := $(VENV)/.installed-bench

# The bench's extra (the DBOS Transact peer) on top of the dev install; demo and test never need it.
$(BENCH_STAMP): $(STAMP)
	$(UV_SYNC) --extra dev --extra embedded --extra bench
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .marketscan .pytest_cache .mypy_cache .ruff_cache
