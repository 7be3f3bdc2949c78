#!/usr/bin/env bash
# Prefill each image once, measured on a GPU (issue 20; see docs/performance.md).
#
# Builds a random-weight model with LLaVA-1.5-7B's architecture from its config values (no download; ~14 GB of
# bf16 weights written under --work, default /tmp/evalkit-gpu-check), writes 64 images x 5 questions of
# VQAv2-schema rows, then runs hf batch 1, hf batch 32 and vLLM, each without and with prefix reuse, each in a fresh
# process, and prints samples/s, prompt tokens prefilled, the prefix-cache hit rate and peak GPU memory.
#
#   make install            # vllm (GPU build) is installed where nvidia-smi answers
#   scripts/gpu_check.sh                     # all six runs (hf bs1 is the slow one: a few minutes)
#   scripts/gpu_check.sh --skip "hf bs1"     # leave a run out
#   scripts/gpu_check.sh --images 16 --questions 5
#
# Not run by the project itself: its machines have no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
    echo "gpu_check: no NVIDIA GPU answers (nvidia-smi); this check measures GPU throughput" >&2
    exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec "$PY" -m evalkit.testing.gpu_check "$@"
