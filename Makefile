# Kairos — the two set-up commands are `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYX := $(wildcard kairos/_native/*.pyx kairos/_native/*.pxd)
HOST ?= 127.0.0.1
PORT ?= 8080
DATA_DIR ?= ./data
# The line protocols' ports for `make run`; empty keeps the server's own (4242 and 2003, or
# KAIROSDB_TELNET_PORT / KAIROSDB_GRAPHITE_PORT); 0 disables a listener.
TELNET_PORT ?=
GRAPHITE_PORT ?=
PYTEST_ARGS ?=

.PHONY: run install test test-deps system-deps node-deps cassandra-deps cassandra cassandra-stop \
	cassandra-status lint fmt bench bench-check clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Installs Kairos (editable) with its compiled extensions; rebuilt when a kernel changes.
$(VENV)/.installed: $(BIN)/python pyproject.toml setup.py $(PYX)
	$(BIN)/pip install -q "setuptools>=70" wheel "cython>=3.1" "numpy>=2.0"
	$(BIN)/pip install -q --no-build-isolation -e .
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/kairos serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) \
	  $(if $(TELNET_PORT),--telnet-port $(TELNET_PORT)) $(if $(GRAPHITE_PORT),--graphite-port $(GRAPHITE_PORT))

# The test and bench targets also install the `perf` extra (rich, matplotlib) for `kairos perf`;
# `make install`/`make run` install only the server's runtime dependencies.
$(VENV)/.test-deps: $(VENV)/.installed
	$(BIN)/pip install -q --no-build-isolation -e ".[test,perf]"
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

cassandra: cassandra-deps
	$(PY) scripts/cassandra.py start --dir $(CASSANDRA_DIR) --port $(CASSANDRA_PORT)

cassandra-stop:
	$(PY) scripts/cassandra.py stop --dir $(CASSANDRA_DIR)

cassandra-status:
	$(PY) scripts/cassandra.py status --dir $(CASSANDRA_DIR)

test-deps: $(VENV)/.test-deps system-deps node-deps cassandra-deps

test: test-deps
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(BIN)/ruff check kairos tests benchmarks scripts setup.py
	$(BIN)/ruff format --check kairos tests benchmarks scripts setup.py
	PATH=$(BIN):$$PATH $(BIN)/cython-lint kairos/_native/*.pyx
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest --allowlist kairos/_native/stubtest-allowlist.txt \
	  $(patsubst %.pyx,%,$(subst /,.,$(wildcard kairos/_native/*.pyx)))

fmt: $(VENV)/.test-deps
	$(BIN)/ruff format kairos tests benchmarks scripts setup.py
	$(BIN)/ruff check --fix kairos tests benchmarks scripts setup.py

bench: $(VENV)/.test-deps
	cd benchmarks && ../$(BIN)/asv run --python=same --show-stderr

bench-check: $(VENV)/.test-deps
	cd benchmarks && ../$(BIN)/asv run --quick --dry-run --python=same --show-stderr

clean:
	rm -rf build *.egg-info kairos/_native/*.c kairos/_native/*.so $(VENV)
