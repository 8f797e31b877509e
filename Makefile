# One command to set up and run each job on a fresh machine (only python3 and pip needed).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup test test-fast demo bench bench-quick lint sample-data clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole suite, slow tests included, in two worker processes (pytest-xdist; a test file stays in
# one worker, so its fixtures are built once; the longest files first: tests/conftest.py
# LONGEST_FIRST). TEST_WORKERS=0 runs it in this process.
# pytest's exit 5 ("no tests collected") counts as a failure.
TEST_WORKERS ?= 2
test: $(STAMP)
	@$(PY) -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash scripts/demo.sh

bench: $(STAMP)
	$(PY) benchmarks/run.py

bench-quick: $(STAMP)
	$(PY) benchmarks/run.py --quick

lint: $(STAMP)
	$(VENV)/bin/ruff check durability_cli tests benchmarks scripts

sample-data: $(STAMP)
	$(PY) scripts/make_sample_data.py

clean:
	rm -rf out .pytest_cache .ruff_cache
