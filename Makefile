# evalkit — the README's commands call these targets. Everything starts from a bare Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch/torchvision pins: these releases install from this project's machines' local disk; override on others.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench lint reference-model clean browser

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $@

demo: install
	$(BIN)/evalkit run --model reference --tasks shapes --batch-size 16 --output results/demo
	$(BIN)/evalkit leaderboard results/

test: install browser
	$(BIN)/python -m pytest

# Debian's Chromium for the leaderboard's headless-browser test (skipped, with its reason, where it cannot install).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: the browser test will be skipped"; }

bench: install
	$(BIN)/python scripts/bench.py

lint: install
	$(BIN)/python -m compileall -q evalkit tasks model_adapters

reference-model: install
	$(BIN)/python scripts/train_reference.py --out evalkit/reference_model --seed 0

clean:
	rm -rf $(VENV) build *.egg-info
