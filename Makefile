# `make lab` and `make test` do all the set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | md5sum | cut -c1-10)

# The browser tests run against dyntorch as a user gets it: a wheel built from this tree,
# installed with its notebook extra into a venv of its own (rebuilt only when sources change).
WHL     := .whl
WHL_PY  := $(WHL)/venv/bin/python
WHL_STAMP := $(WHL)/installed.stamp
WHL_DEPS  := $(WHL)/deps-$(shell cat pyproject.toml | md5sum | cut -c1-10)

.PHONY: lab test bench setup extension wheel-venv browser-deps lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

setup: $(STAMP)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	SKIP_JUPYTER_BUILDER=1 $(PY) -m pip install -q -e '.[dev,notebook,viz,onnx]'  # `extension` builds the front end
	rm -f $(VENV)/.installed-*
	touch $@

# Builds the TypeScript front end (widget + JupyterLab plugin) into the Python package.
extension: setup
	@if [ -f extension/package.json ]; then $(MAKE) -C extension build PY=$(abspath $(PY)); fi

# `pip wheel` of this tree through the build hook (the front end is fresh from `extension`),
# then installed into $(WHL)/venv. Timing is printed: it is part of `make test`.
wheel-venv: extension
	@start=$$(date +%s); \
	 if [ ! -f $(WHL_STAMP) ] || [ ! -f $(WHL_DEPS) ] || [ -n "$$(find dyntorch extension/src \
	      extension/build.mjs extension/pybuild.py extension/package.json pyproject.toml \
	      README.md -newer $(WHL_STAMP) -type f -not -name '*.pyc' -print -quit)" ]; then \
	   rm -rf $(WHL)/dist && \
	   $(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(WHL)/dist . && \
	   if [ ! -f $(WHL_DEPS) ]; then rm -rf $(WHL)/venv $(WHL)/deps-* && \
	     $(PYTHON) -m venv $(WHL)/venv && \
	     $(WHL_PY) -m pip install -q "$$(ls $(WHL)/dist/dyntorch-*.whl)[notebook]" && \
	     touch $(WHL_DEPS); fi && \
	   $(WHL_PY) -m pip install -q --force-reinstall --no-deps $(WHL)/dist/dyntorch-*.whl && \
	   touch $(WHL_STAMP) && \
	   echo "wheel-venv: built and installed $$(cd $(WHL)/dist && ls dyntorch-*.whl) in $$(( $$(date +%s) - start )) s"; \
	 else echo "wheel-venv: up to date"; fi

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

test: setup extension wheel-venv browser-deps
	DYNTORCH_TEST_VENV=$(abspath $(WHL)/venv) $(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check dyntorch tests benchmarks

# Three runs of each case where a script takes --runs (a target counts as met when all three
# ratios of medians are at or below it; see benchmarks/README.md).
bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; \
	  case $$f in *bench_core.py|*bench_train.py|*bench_nn.py|*bench_nn_core.py) runs="--runs 3";; \
	    *) runs="";; esac; \
	  $(PY) $$f $$runs || exit 1; done

lab: setup extension
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $$([ "$$(id -u)" = 0 ] && echo --allow-root)

clean:
	rm -rf $(VENV) $(WHL) extension/node_modules extension/lib
