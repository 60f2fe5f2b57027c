# speakerid — `make` with no target lists the targets. Every target installs into .venv first if needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SPK    := $(VENV)/bin/speakerid
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

# Demo corpus (generated, git-ignored) and where the demo's models go.
DATA_DIR  ?= data/synth
MODEL_DIR ?= data/models
REPORT_DIR ?= data/report

.DEFAULT_GOAL := help
.PHONY: help install wheel test test-fast demo pretrained train-ubm enroll verify identify speakers score evaluate lint bench clean distclean

# Defaults of the model targets point at the demo corpus, so they work right after `make demo`.
COMPONENTS ?= 64
SPEAKER    ?= spk001
AUDIO      ?= $(DATA_DIR)/wav/spk001/spk001_04.wav
train-ubm: MANIFEST ?= $(DATA_DIR)/background.csv
enroll:    MANIFEST ?= $(DATA_DIR)/enroll.csv
TRIALS     ?= $(DATA_DIR)/trials.csv
SCORES     ?= $(REPORT_DIR)/scores.csv
REPORT     ?= $(REPORT_DIR)
JOBS       ?= 1

help:  ## list the targets
	@echo "speakerid make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,web,dask]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install speakerid (distribution speakerid-classic) with the dev, web and dask extras

wheel: $(STAMP)  ## build the wheel dist/speakerid_classic-<version>-py3-none-any.whl (pip install it anywhere)
	$(PY) -m pip wheel . --no-deps --quiet -w dist
	@ls dist/speakerid_classic-*.whl

test: $(STAMP)  ## run the whole test suite (slow and real-data tests included; ../shared tests skip if absent)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## run the tests not marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)  ## generate the synthetic corpus and run the pipeline end to end on it
	$(SPK) demo --data-dir '$(DATA_DIR)' --model-dir '$(MODEL_DIR)' --report-dir '$(REPORT_DIR)'

pretrained: $(STAMP)  ## rebuild the shipped model speakerid/pretrained from ../shared (about 25 min; recipes/pretrained)
	PY=$(PY) recipes/pretrained/run.sh $(PRETRAINED_ARGS)

train-ubm: $(STAMP)  ## train the UBM: MANIFEST=background.csv MODEL_DIR=dir [COMPONENTS=64] [FORCE=1: drop enrollments]
	$(SPK) train-ubm --manifest '$(MANIFEST)' --model-dir '$(MODEL_DIR)' --components '$(COMPONENTS)' $(if $(FORCE),--force)

enroll: $(STAMP)  ## enroll every speaker of MANIFEST=enroll.csv into MODEL_DIR (enrolled ones are replaced)
	$(SPK) enroll --manifest '$(MANIFEST)' --model-dir '$(MODEL_DIR)' --replace

verify: $(STAMP)  ## verify a claim: SPEAKER=id AUDIO=file.wav MODEL_DIR=dir
	$(SPK) verify --model-dir '$(MODEL_DIR)' --speaker '$(SPEAKER)' '$(AUDIO)'

identify: $(STAMP)  ## rank the enrolled speakers for AUDIO=file.wav in MODEL_DIR
	$(SPK) identify --model-dir '$(MODEL_DIR)' '$(AUDIO)'

speakers: $(STAMP)  ## list the speakers enrolled in MODEL_DIR
	$(SPK) speakers --model-dir '$(MODEL_DIR)'

score: $(STAMP)  ## batch-score TRIALS=trials.csv into SCORES=scores.csv with MODEL_DIR [JOBS=1]
	$(SPK) score --model-dir '$(MODEL_DIR)' --trials '$(TRIALS)' --out '$(SCORES)' --jobs '$(JOBS)'

evaluate: $(STAMP)  ## EER/minDCF/Cllr, ROC, DET and report.html of SCORES=scores.csv into REPORT=dir
	$(SPK) evaluate --scores '$(SCORES)' --out-dir '$(REPORT)'

# The web page (speakerid serve) and its browser test (headless Debian chromium driven by selenium).
WEB_HOST       ?= 127.0.0.1
WEB_PORT       ?= 8000
SCREENSHOT_DIR ?= docs/img
.PHONY: serve browser-deps screenshots

serve: $(STAMP)  ## serve the web page for MODEL_DIR at http://127.0.0.1:8000/ [WEB_HOST=… WEB_PORT=…]
	$(SPK) serve --model-dir '$(MODEL_DIR)' --host '$(WEB_HOST)' --port '$(WEB_PORT)'

browser-deps:  ## install Debian chromium + chromium-driver for the browser test (apt-get, sudo if not root)
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
	  echo "browser-deps: chromium and chromedriver are already installed, nothing to do"; \
	else \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi; \
	  echo "browser-deps: installing chromium chromium-driver with $${SUDO:+$$SUDO }apt-get"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver && \
	  echo "browser-deps: installed $$(/usr/bin/chromium --version 2>/dev/null)"; \
	fi

screenshots: $(STAMP)  ## browser test with screenshots in SCREENSHOT_DIR=docs/img (identify.png < 200 kB)
	SPEAKERID_SCREENSHOT_DIR='$(SCREENSHOT_DIR)' $(PY) -m pytest -q -rs -p no:cacheprovider tests/test_web_browser.py
	@$(PY) -c "import pathlib, sys; from PIL import Image; \
	shots = sorted(pathlib.Path(sys.argv[1]).glob('*.png')); \
	[Image.open(p).convert('RGB').quantize(colors=96, dither=Image.Dither.NONE).save(p, optimize=True) for p in shots]; \
	[print(f'{p}: {p.stat().st_size // 1000} kB') for p in shots]; \
	p = pathlib.Path(sys.argv[1], 'identify.png'); \
	sys.exit(None if p.is_file() and p.stat().st_size < 200_000 else f'{p}: missing or over 200 kB (run make browser-deps)')" '$(SCREENSHOT_DIR)'

lint: $(STAMP)  ## ruff over the package, tests and benchmarks
	$(VENV)/bin/ruff check speakerid tests bench

bench: $(STAMP)  ## run every benchmark under bench/
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove generated data, caches and build files (keeps .venv)
	rm -rf data/synth data/models data/report data/*.csv .pytest_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## clean, and remove .venv too
	rm -rf $(VENV)
