# Everything runs inside .venv/ in the checkout; `make install` builds it (idempotent: a stamp file records success).
#
#   make install                 torch's CPU-only build (the default)
#   make install TORCH=cuda      torch's CUDA build from PyPI (TORCH_CUDA_INDEX=https://download.pytorch.org/whl/cu12X
#                                picks another CUDA version)
#   make install TORCH=skip      keep the torch already in .venv/ (any build you installed there yourself)
#
# The choice is remembered in .venv/.torch: later `make install`/`make test` runs keep it unless TORCH is given.
# Prerequisites are checked first (scripts/check_prerequisites.sh); docs/install.md has sizes and details.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.installed
TORCH_FILE := $(VENV)/.torch
TORCH_VERSION := 2.13.0
TORCH_RECORDED := $(shell cat $(TORCH_FILE) 2>/dev/null)
TORCH ?= $(or $(TORCH_RECORDED),cpu)
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_CUDA_INDEX ?=
# On Linux and Windows the CPU-only build is labelled +cpu (on PyTorch's CPU index, and on a local mirror of it);
# PyPI's torch==2.13.0 is the CUDA build there. macOS wheels are CPU builds without the label.
TORCH_CPU_SPEC := torch==$(TORCH_VERSION)$(if $(filter Darwin,$(shell uname -s)),,+cpu)
# free disk space make install wants before it starts (MiB; NEED_MB=0 skips the check): .venv/ measured 1.4 GiB
# with the CPU build, plus pip's downloads and build; the CUDA build's nvidia-* wheels add several GiB
NEED_MB ?= $(if $(filter cuda,$(TORCH)),8000,2000)
EXTRAS := test,demo,pipeline,tensorboard
# fairseq-fixed: upstream fairseq==0.12.2 does not install on Python 3.11. Built against the torch in .venv/
# (--no-build-isolation) without its requirements (--no-deps: they name torchaudio, which would bring another
# torch); pyproject.toml lists the rest of its runtime requirements, so the editable install brings them.
# CUDA_HOME is unset for the build so that it never compiles fairseq's optional CUDA kernels (the plugin does not
# use them; they need nvcc and take long).
FAIRSEQ := fairseq-fixed==0.12.3.1
TORCH_QUERY := import torch; print(torch.__version__.split('+')[0], 'cuda' if torch.version.cuda else 'cpu')
step = @echo "==> [$(1)/6] $(2)"

.PHONY: install demo test bench clean FORCE

install: $(STAMP)

# A TORCH other than the one the last successful install recorded (in .venv/.torch) remakes the stamp.
$(STAMP): pyproject.toml Makefile $(if $(filter-out $(TORCH_RECORDED),$(TORCH)),FORCE)
	@case "$(TORCH)" in cpu|cuda|skip) ;; \
	  *) echo "error: TORCH=$(TORCH) is not allowed: cpu (CPU-only build, the default), cuda or skip" >&2; exit 2;; esac
	$(call step,1,checking prerequisites)
	@PYTHON="$(PYTHON)" VENV="$(VENV)" NEED_MB="$(NEED_MB)" bash scripts/check_prerequisites.sh
	$(call step,2,$(VENV)/ with pip$(,) setuptools$(,) wheel)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24" "setuptools>=77" wheel
	$(call step,3,torch $(TORCH_VERSION)$(,) TORCH=$(TORCH): $(TORCH_NOTE_$(TORCH)))
	@have=$$($(PY) -c "$(TORCH_QUERY)" 2>/dev/null); \
	if [ "$(TORCH)" = skip ]; then \
	  [ -n "$$have" ] || { echo "error: TORCH=skip but $(VENV)/ has no torch: install a build there first ($(PIP) install torch==$(TORCH_VERSION) ...) or use TORCH=cpu or TORCH=cuda" >&2; exit 2; }; \
	  echo "keeping the torch in $(VENV)/: $$have"; exit 0; fi; \
	if [ "$$have" = "$(TORCH_VERSION) $(TORCH)" ]; then echo "torch $$have build already installed"; exit 0; fi; \
	if [ "$(TORCH)" = cpu ]; then \
	  if $(PY) -c "import urllib.request as u; u.urlopen(u.Request('$(TORCH_CPU_INDEX)/torch/', method='HEAD'), timeout=10)" 2>/dev/null; \
	  then index="--extra-index-url $(TORCH_CPU_INDEX)"; \
	  else index=""; echo "note: $(TORCH_CPU_INDEX) is not reachable; looking for $(TORCH_CPU_SPEC) where pip is configured to look"; fi; \
	  $(PIP) install "$(TORCH_CPU_SPEC)" $$index || { echo "error: pip found no $(TORCH_CPU_SPEC) (the CPU-only build): check that $(TORCH_CPU_INDEX) is reachable, or install a build into $(VENV)/ yourself and run make install TORCH=skip" >&2; exit 1; }; \
	else \
	  if [ "$${have#* }" = cpu ]; then $(PIP) uninstall -y torch; fi; \
	  $(PIP) install "torch==$(TORCH_VERSION)" $(if $(TORCH_CUDA_INDEX),--extra-index-url $(TORCH_CUDA_INDEX)); fi; \
	got=$$($(PY) -c "$(TORCH_QUERY)"); \
	[ "$$got" = "$(TORCH_VERSION) $(TORCH)" ] || { echo "error: TORCH=$(TORCH) asked for torch $(TORCH_VERSION)'s $(TORCH) build but pip installed the $${got#* } build of $${got% *} (pip's configuration prefers it): install the build you want into $(VENV)/ yourself and run make install TORCH=skip (docs/install.md)" >&2; exit 1; }
	$(call step,4,build tools for fairseq: cython$(,) numpy)
	$(PIP) install cython "numpy>=1.21.3"
	$(call step,5,$(FAIRSEQ): compiles fairseq's C++/Cython extensions$(,) the long step: minutes)
	env -u CUDA_HOME $(PIP) install --no-build-isolation --no-deps $(FAIRSEQ)
	$(call step,6,this package (editable) with extras $(EXTRAS) and fairseq's other requirements)
	@echo "    (pip's note that fairseq-fixed requires torchaudio is expected: only fairseq's speech tasks import it)"
	$(PIP) install --no-build-isolation -e ".[$(EXTRAS)]"
	$(PY) -c "import torch, fairseq, fairseq_attn_gru; print('installed: torch', torch.__version__, \
	  '(CUDA ' + torch.version.cuda + ')' if torch.version.cuda else '(CPU-only build)', '| fairseq', fairseq.__version__, \
	  '| plugin directory (--user-dir):', fairseq_attn_gru.__path__[0])"
	echo "$(TORCH)" > $(TORCH_FILE)
	touch $(STAMP)

, := ,
TORCH_NOTE_cpu := CPU-only build$(,) about 190 MB to download
TORCH_NOTE_cuda := CUDA build with nvidia-* libraries$(,) several GB to download
TORCH_NOTE_skip := keep the torch already in $(VENV)/

FORCE:

# The main job: trains none/dot/general/concat on the toy task, writes demo_out/ and results/demo.json (11-20 min
# on 2 cores, depending on the CPU; results/demo.json records the last run's machine and time), from which the docs' demo tables are made.
demo: $(STAMP)
	$(PY) scripts/demo.py --out-dir demo_out --results results/demo.json

# Speed: fairseq's lstm vs gru_attn side by side, interleaved and repeated (about 12 min on 2 cores): bench_out/ and
# results/bench.json (with the CPU and the matmul peak), from which the docs' speed tables are made.
bench: $(STAMP)
	$(PY) benchmarks/bench.py --out-dir bench_out --results results/bench.json

# Two pytest-xdist workers, one test file each at a time (module fixtures built once): most of the suite's time is
# fairseq's console tools starting up, one core each, so two at once take about half the time on 2 cores.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

clean:
	rm -rf demo_out bench_out .pytest_cache

# Multi30k in any direction through the pipeline (`fairseq-attn-gru run`, docs/pipeline.md): DATA=/path/to/multi30k
# holds the raw files (train.de, val.de, test_2016_flickr.de, ... for each language); SRC and TGT pick the direction
# (default de -> en). Trains 58 minutes (fairseq-train's start-up and last validation fit in the hour), picks a
# checkpoint on val, scores every test set, writes results/multi30k_$(SRC)-$(TGT).json + its attention map.
# Override: make multi30k MULTI30K_FLAGS=... (any `fairseq-attn-gru run` or fairseq-train flag).
.PHONY: multi30k
SRC ?= de
TGT ?= en
MULTI30K_FLAGS ?= --minutes 58

multi30k: $(STAMP)
	@test -n "$(DATA)" || { echo "error: DATA is not set: make multi30k DATA=/path/to/multi30k [SRC=de TGT=en]" >&2; exit 2; }
	$(VENV)/bin/fairseq-attn-gru run --source-lang $(SRC) --target-lang $(TGT) --data $(DATA) \
		--work multi30k_work/$(SRC)-$(TGT) --results results/multi30k_$(SRC)-$(TGT).json $(MULTI30K_FLAGS)

# Side by side with Joey NMT and OpenNMT-py (benchmarks/peers/compare.py, docs/peers.md): DATA=/path/to/multi30k
# holds Multi30k's raw files. Installs each peer, pinned, into its own venv beside ours (.venv-joeynmt/,
# .venv-opennmt_py/: kept between runs; the first install downloads a few GB), then trains and translates with each
# toolkit's own tools on the same prepared data; writes results/peers.json and results/peers.png (about 2 hours on
# 2 cores with the default 20-minute budget; PEERS_MINUTES sets it). SMOKE=1: 300 lines a split, seconds of training,
# the whole path in minutes, into peers_work_smoke/ (results/ untouched). PEERS_FLAGS: any other compare.py flag.
.PHONY: peers
PEERS_MINUTES ?= 20
PEERS_FLAGS ?=

peers: $(STAMP)
	@test -n "$(DATA)" || { echo "error: DATA is not set: make peers DATA=/path/to/multi30k [SMOKE=1] [PEERS_MINUTES=20]" >&2; exit 2; }
	$(PY) benchmarks/peers/compare.py --data "$(DATA)" $(if $(SMOKE),--smoke,--minutes $(PEERS_MINUTES)) $(PEERS_FLAGS)

# What bounds each toolkit's speed in that comparison (benchmarks/peers/speed_profile.py): torch.profiler over each
# one's matched-size training and beam-5 translation, read from a finished `make peers` run's peers_work/ and
# results/peers.json; writes results/peers_profile.json (a few minutes).
.PHONY: peers-profile
peers-profile: $(STAMP)
	$(PY) benchmarks/peers/speed_profile.py
