# Two commands on a fresh machine: `make run` (the main job) and `make test` (the test suite).
# Each creates .venv and installs CPU torch with an explicit pin first, then jointkl.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DOCS_STAMP := $(VENV)/.docs-installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

.PHONY: install run reproduce-all test bench docs
install: $(STAMP)

run: $(STAMP)            ## the main job: every paper table at the quick scale; report in runs/reproduce
	$(VENV)/bin/jointkl reproduce --quick --out runs/reproduce

reproduce-all: $(STAMP)  ## every registered table at its default (CPU-scale) protocol and seeds: hours
	$(VENV)/bin/jointkl reproduce --out runs/reproduce-all

test: $(STAMP)           ## the test suite
	$(VENV)/bin/pytest -q

bench: $(STAMP)          ## benchmarks (timings; not part of the tests)
	$(PY) benchmarks/bench_vae_mnist5k.py
	$(PY) benchmarks/bench_gan_grid25.py

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	rm -f $(VENV)/.docs-installed-* && touch $@

docs: $(DOCS_STAMP)      ## the docs site (MkDocs + mkdocstrings) into site/; warnings are errors
	$(VENV)/bin/mkdocs build --strict --site-dir site
