# Kairos — the two set-up commands are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYX := $(wildcard kairos/_native/*.pyx kairos/_native/*.pxd)
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data
QUERY_PORT ?= 8081
# The line protocols' ports for `make run`; empty keeps the server's own (4242 and 2003, or
# KAIROSDB_TELNET_PORT / KAIROSDB_GRAPHITE_PORT); 0 disables a listener.
TELNET_PORT ?=
GRAPHITE_PORT ?=
PYTEST_ARGS ?=

.PHONY: help run run-ingest run-query install test check coverage test-deps system-deps node-deps \
	cassandra-deps cassandra cassandra-stop cassandra-status lint fmt bench bench-check \
	perf-small perf-medium perf-large perf-stress clean

help:  ## every target, one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs Kairos (editable) with its compiled extensions; rebuilt when a kernel changes.
# The first time takes about 1.5 minutes (a 340 MB environment), most of it compiling the kernels.
# setuptools' "Editable installation" banner is silenced: it only warns about the source tree.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(PYX)
	@echo "kairos: installing the build tools and the runtime dependencies into $(VENV) ..."
	$(BIN)/pip install -q "setuptools>=70" wheel "cython>=3.1" "numpy>=2.0"
	@echo "kairos: compiling the Cython kernels and installing Kairos (about a minute) ..."
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q --no-build-isolation -e .
	@echo "kairos: installed ($$(du -sm $(VENV) | cut -f1) MB in $(VENV))"
	@touch $@

install: $(VENV)/.installed  ## build the kernels and install Kairos into .venv

# Interactive: Ctrl-C stops at once (no load-balancer detection delay; services keep theirs).
run: install  ## serve everything on HOST:PORT (default 127.0.0.1:8080), data in DATA_DIR
	$(BIN)/kairos serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --health-lb-delay-seconds 0 \
	  $(if $(TELNET_PORT),--telnet-port $(TELNET_PORT)) $(if $(GRAPHITE_PORT),--graphite-port $(GRAPHITE_PORT))

run-ingest: install  ## the ingest service alone (ingest, deletes, line protocols, the writer) on PORT
	$(BIN)/kairos ingest --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

run-query: install  ## the query service alone on QUERY_PORT (default 8081), same DATA_DIR
	$(BIN)/kairos query --host $(HOST) --port $(QUERY_PORT) --data-dir $(DATA_DIR)

# The test and bench targets also install the `perf` extra (rich, matplotlib) for `kairos perf`;
# `make install`/`make run` install only the server's runtime dependencies.
$(VENV)/.test-deps: $(VENV)/.installed
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q --no-build-isolation -e ".[test,perf]"
	touch $@

# Debian packages the integration tests drive (collectd and Prometheus post to Kairos for real;
# libjemalloc2 backs `kairos serve --allocator jemalloc`).
system-deps:
	@command -v collectd >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 \
	  && ls /usr/lib/*/libjemalloc.so.2 >/dev/null 2>&1 || { \
	  echo "installing collectd-core, prometheus and libjemalloc2 from Debian"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    collectd-core libcurl3-gnutls libyajl2 prometheus libjemalloc2 >/dev/null; }

# npm's kairosdb@0.0.3 and the dev packages its live mocha suite needs
# (tests/integration/test_npm_client.py reads NPM_PACKAGES from here); cached in .cache/.
NPM_DIR := .cache/npm-kairosdb
NPM_PACKAGES := kairosdb@0.0.3 mocha@11.7.5 should@13.2.3 chai@4.5.0 sinon@21.0.0 sinon-chai@3.7.0 underscore@1.13.8

$(NPM_DIR)/.installed: Makefile
	@command -v npm >/dev/null 2>&1 || { \
	  echo "node-deps: npm not found; install Node.js >= 20 and npm (e.g. apt-get install nodejs npm)"; exit 1; }
	mkdir -p $(NPM_DIR)
	test -f $(NPM_DIR)/package.json || echo '{"name": "kairos-npm-kairosdb", "private": true}' > $(NPM_DIR)/package.json
	npm_config_update_notifier=false npm install --prefix $(NPM_DIR) --no-audit --no-fund --save-exact $(NPM_PACKAGES)
	echo "$(NPM_PACKAGES)" > $@

node-deps: $(NPM_DIR)/.installed

# Apache Cassandra 5.0 (cassandra-all and its runtime jars, pinned in scripts/cassandra/pom.xml),
# fetched by Maven once into .cache/cassandra/lib. `make cassandra` starts a single local node
# (data and log in CASSANDRA_DIR, CQL on CASSANDRA_PORT; 0 picks a free port) and waits until
# CQL answers; a no-op when one already runs there. The `cassandra` tests start their own on free
# ports unless KAIROSDB_CASSANDRA_CONTACT_POINTS=host:port[,host:port] names a cluster to use.
CASSANDRA_LIB := .cache/cassandra/lib
CASSANDRA_DIR ?= .cache/cassandra/run
CASSANDRA_PORT ?= 9042

$(CASSANDRA_LIB)/.stamp: scripts/cassandra/pom.xml
	$(PY) scripts/cassandra.py deps --lib $(CASSANDRA_LIB)

cassandra-deps: $(CASSANDRA_LIB)/.stamp

cassandra: cassandra-deps  ## a local Cassandra 5.0 node on CASSANDRA_PORT (default 9042)
	$(PY) scripts/cassandra.py start --dir $(CASSANDRA_DIR) --port $(CASSANDRA_PORT)

cassandra-stop:  ## stop that node
	$(PY) scripts/cassandra.py stop --dir $(CASSANDRA_DIR)

cassandra-status:  ## pid, ports and version of that node
	$(PY) scripts/cassandra.py status --dir $(CASSANDRA_DIR)

test-deps: $(VENV)/.test-deps system-deps node-deps cassandra-deps

test: test-deps  ## install what the tests need, start their services, run the whole suite
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

check: lint test  ## what CI runs and more: format check, lint, types, stubs, the whole suite

coverage: test-deps  ## the suite with coverage: a terminal report and coverage-html/index.html
	$(BIN)/python -m pytest -q --cov=kairos --cov-report=term --cov-report=html:coverage-html $(PYTEST_ARGS)

lint: $(VENV)/.test-deps  ## ruff (format check and lint), cython-lint, mypy, stubtest
	$(BIN)/ruff check kairos tests benchmarks scripts setup.py
	$(BIN)/ruff format --check kairos tests benchmarks scripts setup.py
	PATH=$(BIN):$$PATH $(BIN)/cython-lint kairos/_native/*.pyx
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest --mypy-config-file pyproject.toml --allowlist kairos/_native/stubtest-allowlist.txt \
	  $(patsubst %.pyx,%,$(subst /,.,$(wildcard kairos/_native/*.pyx)))

fmt: $(VENV)/.test-deps  ## format and fix what ruff can
	$(BIN)/ruff format kairos tests benchmarks scripts setup.py
	$(BIN)/ruff check --fix kairos tests benchmarks scripts setup.py

bench: $(VENV)/.test-deps  ## the asv benchmark suite
	cd benchmarks && ../$(BIN)/asv run --python=same --show-stderr

bench-check: $(VENV)/.test-deps  ## every asv benchmark runs once (no timing)
	cd benchmarks && ../$(BIN)/asv run --quick --dry-run --python=same --show-stderr

# `kairos perf` scenarios against a server the target starts (free port, temporary data
# directory) and stops; reports in perf-reports/.
perf-small: $(VENV)/.test-deps  ## kairos perf small_scale (30 s) against a fresh local server
	$(BIN)/python scripts/perf_server.py small_scale
perf-medium: $(VENV)/.test-deps  ## kairos perf medium_scale (2 min) against a fresh local server
	$(BIN)/python scripts/perf_server.py medium_scale
perf-large: $(VENV)/.test-deps  ## kairos perf large_scale (5 min) against a fresh local server
	$(BIN)/python scripts/perf_server.py large_scale
perf-stress: $(VENV)/.test-deps  ## kairos perf stress_test (10 min, ramping) against a fresh local server
	$(BIN)/python scripts/perf_server.py stress_test

clean:  ## remove the build, the compiled kernels and .venv
	rm -rf build *.egg-info kairos/_native/*.c kairos/_native/*.so $(VENV)
