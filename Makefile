# Two commands for a fresh machine with Python >= 3.10:  make lab  |  make test
# PYTHON=python3.12 chooses the interpreter the virtual environment is made with.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup setup-dev lab test test-fast test-browser present html student clean

# Jupyter refuses to start for root (a fresh container, a course Docker image) without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)
LAB_ARGS ?=
VOILA_ARGS ?=

# Three install sets, one stamp each (redone when pyproject.toml changes):
#   lab      what the notebooks need plus JupyterLab        (make lab)
#   present  lab plus Voila                                  (make present)
#   instructor  lab plus nbgrader                            (make student)
#   dev      all of these plus the test tools and browser suite (make test, make html)
setup: $(VENV)/.lab
setup-dev: $(VENV)/.dev

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.lab: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[lab]'
	touch $@

$(VENV)/.present: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[lab,present]'
	touch $@

$(VENV)/.instructor: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[lab,instructor]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	touch $@ $(VENV)/.lab $(VENV)/.present $(VENV)/.instructor

lab: $(VENV)/.lab  ## set up (runtime and JupyterLab only), then open the notebooks
	$(VENV)/bin/jupyter lab $(ROOT_FLAG) $(LAB_ARGS) notebooks/

test: $(VENV)/.dev       ## set up, then run unit tests, every notebook (nbval) and the browser suite
	$(VENV)/bin/python -m pytest -p no:cacheprovider --durations=15

test-fast: $(VENV)/.dev  ## unit tests only
	$(VENV)/bin/python -m pytest -p no:cacheprovider tests -m "not e2e and not slow"

test-browser: $(VENV)/.dev  ## every notebook in JupyterLab and Voila (make test drives a subset)
	E2E_ALL=1 $(VENV)/bin/python -m pytest -p no:cacheprovider tests/e2e

NB ?= 01
PORT ?= 8866
PRESENT_NB = $(firstword $(wildcard notebooks/$(NB)_*.ipynb notebooks/$(NB)*.ipynb))

present: $(VENV)/.present  ## dashboard of one notebook's widget panels in Voila: make present NB=08
	@test -n "$(PRESENT_NB)" || { echo "no notebook notebooks/$(NB)_*.ipynb"; exit 1; }
	$(VENV)/bin/voila $(PRESENT_NB) --Voila.ip=127.0.0.1 --port=$(PORT) --show_tracebacks=True $(VOILA_ARGS)

html: $(VENV)/.dev  ## run every notebook (nbval) into artifacts/html/: offline pages, panels as pictures
	$(VENV)/bin/python -m pytest -p no:cacheprovider notebooks

STUDENT_OUT ?= release/notebooks

student: $(VENV)/.instructor  ## write the student release (solutions and answers removed) to release/notebooks/
	$(PY) scripts/student_release.py --out $(STUDENT_OUT)

clean:
	rm -rf $(VENV) data/cache
