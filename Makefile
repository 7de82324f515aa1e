# Two commands for a fresh machine with Python 3.11:  make lab  |  make test
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup lab test test-fast present html clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

lab: setup        ## set up, then open the notebooks in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

test: setup       ## set up, then run unit tests, every notebook (nbval) and the browser suite
	$(VENV)/bin/python -m pytest -p no:cacheprovider

test-fast: setup  ## unit tests only
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests -m "not e2e and not slow"

clean:
	rm -rf $(VENV) data/cache
