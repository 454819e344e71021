# Every target sets up .venv first, so one command works on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_STAMP := $(VENV)/.demo-stamp
# its own root, so that the README's tour numbers its runs from 1
DEMO_ROOT := demo-runs

.PHONY: demo test test-slurm lint format bench clean

# compat editable mode keeps hydra_plugins/ a real path on sys.path, so
# Hydra's plugin scan finds the search-path plugin (PEP 660's import hook hides it).
# The demo needs the package and the joblib launcher only; the tests need
# every launcher and sweeper they run (Ray's alone is hundreds of MB).
INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --config-settings editable_mode=compat
$(DEMO_STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(INSTALL) -e '.[demo]'
	touch $(DEMO_STAMP)

$(STAMP): $(DEMO_STAMP)
	$(INSTALL) -e '.[test]'
	touch $(STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py --root $(DEMO_ROOT)

# pytest-xdist: one worker per core; worksteal, as test times range from 10 ms
# to 12 s. Tests are independent (tmp_path); a run that several tests read is
# made once per session (tests/helpers.py: shared_once).
# tests/slurm runs on a real SLURM cluster (tests/slurm/start.sh), when one
# answers (else it is skipped, saying why): its tests mostly wait on SLURM,
# each on its own jobs, so they run side by side, a worker each.
SLURM_TESTS := tests/slurm
SLURM_WORKERS := 14
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider -n auto --dist worksteal --ignore=$(SLURM_TESTS)
	$(PY) -m pytest -q -p no:cacheprovider $(SLURM_TESTS) \
	    -n $$(tests/slurm/start.sh status && echo $(SLURM_WORKERS) || echo 0)

# Start the cluster (as root: it installs SLURM when missing), run tests/slurm
# on it, and stop it again.
test-slurm: $(STAMP)
	tests/slurm/start.sh
	METICULOUS_SLURM=required $(PY) -m pytest -q -p no:cacheprovider -n $(SLURM_WORKERS) \
	    $(SLURM_TESTS); status=$$?; tests/slurm/start.sh stop; exit $$status

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy meticulous_hydra

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/follow.py

clean:
	rm -rf $(VENV) build *.egg-info
