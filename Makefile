# `make lab` and `make test` do all the set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-10)

.PHONY: lab test bench setup extension browser-deps lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,notebook,viz,onnx]'
	rm -f $(VENV)/.installed-*
	touch $@

# Builds the TypeScript front end (widget + JupyterLab plugin) into the Python package.
extension: setup
	@if [ -f extension/package.json ]; then $(MAKE) -C extension build PY=$(abspath $(PY)); fi

# Headless Chromium for the browser tests (Debian packages; needs root, as in CI).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get install -y -q chromium chromium-driver graphviz >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium chromium-driver graphviz >/dev/null)) \
	     || echo "warning: could not install chromium; browser tests will skip"; \
	  else echo "note: chromium not installed and not root; browser tests will skip"; fi; \
	fi
	@command -v dot >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get install -y -q graphviz >/dev/null 2>&1 || true; }

test: setup extension browser-deps
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check dyntorch tests benchmarks

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

lab: setup extension
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf $(VENV) extension/node_modules extension/lib
