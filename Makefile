# Two commands a new user needs: `make demo` and `make test`. Both create .venv with pip when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.edgekit-installed

.PHONY: demo test test-fast clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# one pip command: installing the stack step by step leaves a cattrs/typing-extensions conflict
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(VENV)/bin/edgekit build --target tflite --sram 256kB -o out/demo

# two workers (pytest-xdist), one test file each at a time: the machine's two cores
XDIST := -n 2 --dist loadfile

test: $(STAMP)
	$(PY) -m pytest -q -rs $(XDIST) $(PYTEST_ARGS)

test-fast: $(STAMP)  # converts nothing (tests/conftest.py enforces it): the analysis, planners, readers, CLI
	EDGEKIT_FORBID_EXPORT=1 $(PY) -m pytest -q -m "not slow and not export" $(XDIST) $(PYTEST_ARGS)

clean:
	rm -rf out .pytest_cache
