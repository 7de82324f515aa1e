# Two commands for a fresh machine with Python 3.11:  make lab  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup lab test test-fast test-browser present html clean

# Jupyter refuses to start for root (a fresh container, a course Docker image) without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
LAB_ARGS ?=
VOILA_ARGS ?=

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

lab: setup        ## set up, then open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) notebooks/

test: setup       ## set up, then run unit tests, every notebook (nbval) and the browser suite
	$(VENV)/bin/python -m pytest -p no:cacheprovider --durations=15

test-fast: setup  ## unit tests only
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests -m "not e2e and not slow"

test-browser: setup  ## every notebook in JupyterLab and Voila (make test drives a subset)
	E2E_ALL=1 $(VENV)/bin/python -m pytest -p no:cacheprovider tests/e2e

NB ?= 01
PORT ?= 8866
PRESENT_NB = $(firstword $(wildcard notebooks/$(NB)_*.ipynb notebooks/$(NB)*.ipynb))

present: setup    ## dashboard of one notebook's widget panels in Voila: make present NB=08
	@test -n "$(PRESENT_NB)" || { echo "no notebook notebooks/$(NB)_*.ipynb"; exit 1; }
	$(VENV)/bin/voila $(PRESENT_NB) --Voila.ip=127.0.0.1 --port=$(PORT) --show_tracebacks=True $(VOILA_ARGS)

html: setup       ## execute every notebook into artifacts/html/ (static pages, images embedded)
	mkdir -p artifacts/html
	$(VENV)/bin/jupyter nbconvert --to html --execute --embed-images \
		--ExecutePreprocessor.timeout=600 --output-dir artifacts/html notebooks/*.ipynb

clean:
	rm -rf $(VENV) data/cache
