# miniconv: two commands on a fresh machine (Python 3.11 to 3.13, make, git):
#   make docs   set up, export, build the site into _docs/
#   make test   set up, then every check
# On a fresh clone, `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu` (or `make test TORCH_INDEX=...`)
# takes torch and torchvision from PyTorch's CPU-only wheel index instead of PyPI's default (CUDA) build.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
TORCH_INDEX ?=
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
# The Pythons `make test` runs on, from settings.ini (GitHub CI tests the lowest and the highest).
MIN_PY := $(shell sed -n 's/^min_python *= *//p' settings.ini)
MAX_PY := $(shell sed -n 's/^max_python *= *//p' settings.ini)

.PHONY: install docs readme preview test check sync clean-check readme-check collect-check chromium nbtest pytest lab serve clean

# A TORCH_INDEX given once .venv is set up can't swap the torch it has: say so rather than ignore it.
install: $(STAMP)
	@if [ -n "$(TORCH_INDEX)" ] && [ "$$(cat $(VENV)/.torch-index 2>/dev/null)" != "$(TORCH_INDEX)" ]; then \
	  echo "note: .venv has torch from $$(cat $(VENV)/.torch-index 2>/dev/null | grep . || echo PyPI); for TORCH_INDEX=$(TORCH_INDEX): rm -rf $(VENV) && make install TORCH_INDEX=$(TORCH_INDEX)"; fi

# Re-install whenever the project's own install files change. With TORCH_INDEX, torch and torchvision come from
# that index first, and pip then keeps them for the project's requirements.
$(STAMP): settings.ini setup.py pyproject.toml
	@test -x $(BIN)/python || $(PY) -c 'import sys; lo, hi, v = (3, $(subst 3.,,$(MIN_PY))), (3, $(subst 3.,,$(MAX_PY))), sys.version_info[:2]; \
	  sys.exit(0 if lo <= v <= hi else f"miniconv needs Python $(MIN_PY) to $(MAX_PY); $(PY) is {v[0]}.{v[1]}: run make PY=python$(MAX_PY) (or another in that range)")'
	test -x $(BIN)/python || { $(PY) -m venv $(VENV) && echo "$(TORCH_INDEX)" > $(VENV)/.torch-index; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install -q torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

# The site from the notebooks' saved outputs (nbdev's processing, then smalldocs, or Quarto when it is on PATH),
# and README.md from nbs/index.ipynb: see tools/build_docs.py.
docs: install
	$(BIN)/nbdev_export
	$(BIN)/python tools/build_docs.py

# README.md alone, from nbs/index.ipynb (what nbdev_readme does with Quarto).
readme: install
	$(BIN)/python tools/build_docs.py --readme_only

# Build the site, then serve it (what nbdev_preview does with Quarto, without its live reload).
preview: docs serve

# The checks, in order: library in sync, notebooks clean, README current, test IDs stable, notebooks run, pytest (with the browser).
test: install sync clean-check readme-check collect-check chromium nbtest pytest

# The fast tier, for every edit (under a minute): library in sync, notebooks clean, README current, and the tests not
# marked slow. `make test` runs everything before a change is sent.
check: install sync clean-check readme-check
	MINICONV_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow" tests

sync: install
	$(BIN)/nbdev_export
	@if [ -n "$$(git status --porcelain miniconv/)" ]; then \
	  git status --porcelain miniconv/; \
	  echo "notebooks and library out of sync: run nbdev_export and commit miniconv/"; exit 1; fi

clean-check: install
	@sums() { find nbs -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort | xargs md5sum; }; \
	before=$$(sums); $(BIN)/nbdev_clean; after=$$(sums); \
	if [ "$$before" != "$$after" ]; then diff <(echo "$$before") <(echo "$$after"); \
	  echo "notebooks not clean: run nbdev_clean and commit nbs/"; exit 1; fi

# README.md must be what the build makes from nbs/index.ipynb.
readme-check: install
	@tmp=$$(mktemp --suffix .md); trap 'rm -f "$$tmp"' EXIT; \
	$(BIN)/python tools/build_docs.py --readme_only --readme_out "$$tmp" >/dev/null || exit 1; \
	if ! diff -u README.md "$$tmp"; then echo "README.md is stale: run make docs and commit README.md"; exit 1; fi

# Test IDs stable across two collections (pytest-xdist stops a run when its workers' IDs differ), the second one in
# the unpacked sdist (it ships what its tests need), and a sdist that builds without warnings: tools/check_collection.py.
collect-check: install
	$(BIN)/python tools/check_collection.py

# The browser test needs Debian's chromium.
chromium:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update && $(SUDO) apt-get install -y chromium; }

# Tests never touch the network: the data loader falls back to the embedded subset.
nbtest: install
	MINICONV_OFFLINE=1 MPLBACKEND=Agg $(BIN)/nbdev_test --n_workers 2 --timing

# Two workers (pytest-xdist), one test file per worker so a file's module fixtures (the site, Chromium) are made once:
# most tests run one torch thread, so two files at a time use both cores.
pytest: install
	MINICONV_OFFLINE=1 MPLBACKEND=Agg $(BIN)/python -m pytest -q -n 2 --dist loadfile tests

lab: install
	$(BIN)/jupyter lab --ip 127.0.0.1 --no-browser $(ROOT_FLAG) --notebook-dir nbs

# make serve PORT=8001 to pick the port.
serve:
	@test -f _docs/index.html || { echo "no _docs/index.html: run make docs first"; exit 2; }
	@$(PY) -c 'import socket; socket.socket().bind(("127.0.0.1", $(PORT)))' 2>/dev/null \
	  || { echo "port $(PORT) is busy: pick another, e.g. make serve PORT=$$(( $(PORT) + 1 ))"; exit 2; }
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory _docs

clean:
	rm -rf _docs _proc .quarto .pytest_cache .hypothesis nbs/.ipynb_checkpoints screenshots
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
