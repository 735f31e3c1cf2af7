# marketscan: `make demo` runs a scan on embedded services, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "marketscan needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/marketscan demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

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
	$(BIN)/python -m pip install --quiet -e '.[dev,embedded,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .marketscan .pytest_cache .mypy_cache .ruff_cache
