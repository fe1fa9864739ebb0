# Everything runs inside .venv/ in the checkout; `make install` builds it (idempotent: a stamp file records success).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
# fairseq-fixed's runtime dependencies, minus torchaudio (imported lazily, only by speech tasks).
FAIRSEQ_DEPS := cffi "hydra-core==1.3.2" "omegaconf==2.3.0" regex tqdm bitarray scikit-learn packaging "sacrebleu>=2.0"

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): setup.py Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" setuptools wheel
	$(PIP) install -q torch==2.13.0 cython "numpy>=1.21.3"
	$(PIP) install -q --no-build-isolation --no-deps fairseq-fixed==0.12.3.1
	$(PIP) install -q $(FAIRSEQ_DEPS)
	$(PIP) install -q --no-build-isolation -e ".[test,multi30k]"
	$(PY) -c "import torch, fairseq, fairseq_attn_gru; print('installed: torch', torch.__version__, '| fairseq', fairseq.__version__)"
	touch $(STAMP)

# The main job: trains none/dot/general/concat on the toy task, writes demo_out/ (about 15 min on 2 cores).
demo: $(STAMP)
	$(PY) scripts/demo.py --out-dir demo_out

# Speed: fairseq's lstm vs gru_attn side by side, interleaved and repeated (7 min measured on 2 cores).
bench: $(STAMP)
	$(PY) benchmarks/bench.py --out-dir bench_out

test: $(STAMP)
	$(PY) -m pytest -q tests

clean:
	rm -rf demo_out bench_out .pytest_cache

# Multi30k German->English (scripts/multi30k/): DATA=/path/to/multi30k holds the raw .de/.en files of train, val,
# test_2016_flickr and test_2017_flickr; trains 58 min + 6 × 5 min comparisons on CPU (about 100 min in all),
# writes results/multi30k.json + multi30k_attention.png.
.PHONY: multi30k multi30k-eval
PREP ?= multi30k_work/prep

# The measured configuration (README): 58 min main run (fairseq-train's start-up and last validation fit in 60),
# 5 min per comparison variant; bfloat16 matmuls (--cpu-bf16) where run.py measures them faster than fp32
# (--precision auto, its default). Override: make multi30k MULTI30K_FLAGS=...
MULTI30K_FLAGS ?= --minutes 58 --compare-minutes 5

multi30k: $(STAMP)
	@test -n "$(DATA)" || { echo "error: DATA is not set: make multi30k DATA=/path/to/multi30k" >&2; exit 2; }
	$(PY) scripts/multi30k/run.py --data $(DATA) --work multi30k_work $(MULTI30K_FLAGS)

# Score any checkpoint on raw text: make multi30k-eval CKPT=multi30k_work/main/checkpoint_best.pt SRC=x.de REF=x.en
multi30k-eval: $(STAMP)
	@test -n "$(CKPT)" -a -n "$(SRC)" -a -n "$(REF)" || \
		{ echo "error: set CKPT, SRC and REF: make multi30k-eval CKPT=... SRC=x.de REF=x.en [PREP=...]" >&2; exit 2; }
	$(PY) scripts/multi30k/evaluate.py --prep $(PREP) --checkpoint $(CKPT) --src $(SRC) --ref $(REF)
