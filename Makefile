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
.PHONY: help install test test-fast demo train-ubm enroll verify identify speakers score evaluate lint bench clean distclean

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

install: $(STAMP)  ## create .venv and install speakerid with the dev, web and dask extras

test: $(STAMP)  ## run the whole test suite (slow and real-data tests included; ../shared tests skip if absent)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)  ## run the tests not marked slow
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

demo: $(STAMP)  ## generate the synthetic corpus and run the pipeline end to end on it
	$(SPK) demo --data-dir $(DATA_DIR) --model-dir $(MODEL_DIR) --report-dir $(REPORT_DIR)

train-ubm: $(STAMP)  ## train the UBM: MANIFEST=background.csv MODEL_DIR=dir [COMPONENTS=64]
	$(SPK) train-ubm --manifest $(MANIFEST) --model-dir $(MODEL_DIR) --components $(COMPONENTS)

enroll: $(STAMP)  ## enroll every speaker of MANIFEST=enroll.csv into MODEL_DIR
	$(SPK) enroll --manifest $(MANIFEST) --model-dir $(MODEL_DIR)

verify: $(STAMP)  ## verify a claim: SPEAKER=id AUDIO=file.wav MODEL_DIR=dir
	$(SPK) verify --model-dir $(MODEL_DIR) --speaker $(SPEAKER) $(AUDIO)

identify: $(STAMP)  ## rank the enrolled speakers for AUDIO=file.wav in MODEL_DIR
	$(SPK) identify --model-dir $(MODEL_DIR) $(AUDIO)

speakers: $(STAMP)  ## list the speakers enrolled in MODEL_DIR
	$(SPK) speakers --model-dir $(MODEL_DIR)

score: $(STAMP)  ## batch-score TRIALS=trials.csv into SCORES=scores.csv with MODEL_DIR [JOBS=1]
	$(SPK) score --model-dir $(MODEL_DIR) --trials $(TRIALS) --out $(SCORES) --jobs $(JOBS)

evaluate: $(STAMP)  ## EER/minDCF/Cllr, ROC, DET and report.html of SCORES=scores.csv into REPORT=dir
	$(SPK) evaluate --scores $(SCORES) --out-dir $(REPORT)

lint: $(STAMP)  ## ruff over the package, tests and benchmarks
	$(VENV)/bin/ruff check speakerid tests bench

bench: $(STAMP)  ## run every benchmark under bench/
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove generated data, caches and build files (keeps .venv)
	rm -rf data/synth data/models data/report data/*.csv .pytest_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean  ## clean, and remove .venv too
	rm -rf $(VENV)
