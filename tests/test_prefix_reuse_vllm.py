"""vLLM prefix caching on questions grouped by image (issue 20): vLLM's own counters see every question after an
image's first find the image's KV blocks cached, and the token ids equal those of an engine without prefix caching.

Two engine starts (CPU: ~15-40 s each); skipped where vLLM is not installed."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from evalkit.adapters import get_adapter
from evalkit.backends.base import BackendConfig
from evalkit.core.types import GenerationSettings, Prompt, Sample
from evalkit.runner.models import ModelSpec

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm is not installed")

IMAGE_TOKENS = 256  # 224 px / 14 px patches; the prefix (4 + 256 tokens) fills 256 tokens' worth of whole blocks
SETTINGS = GenerationSettings(max_new_tokens=8)


@pytest.fixture(scope="module")
def model_224(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.testing.tiny_llava import _TEST_CORPUS, build_tiny_llava, save_checkpoint, train_tokenizer

    folder = tmp_path_factory.mktemp("llava-224")
    model, processor = build_tiny_llava(train_tokenizer(_TEST_CORPUS, vocab_size=300), image_size=224, patch_size=14,
                                        hidden=128, layers=(1, 1), seed=0, max_positions=1024)
    save_checkpoint(model, processor, folder)
    return folder


def run(folder: Path, reuse: bool) -> tuple[list[list[int]], tuple[int, int] | None, int]:
    import numpy as np
    from PIL import Image
    from transformers import AutoProcessor

    from evalkit.backends.vllm import VllmBackend

    processor = AutoProcessor.from_pretrained(folder)
    adapter = get_adapter("llava")
    prompts: list[Prompt] = []
    rng = np.random.default_rng(0)
    for i in range(3):
        image = Image.fromarray(rng.integers(0, 256, (72 + 8 * i, 96, 3), dtype=np.uint8))
        for q in ("What color is the circle?", "How many shapes are there?", "Is there a blue square?"):
            prompts.append(adapter.build_prompt(Sample(id=f"{i}{q}", question=q), [image], processor, kind="vqa"))
    spec = ModelSpec(name=str(folder), family="llava", checkpoint=str(folder), local_path=str(folder),
                     model_type="llava")
    backend = VllmBackend(spec, adapter, BackendConfig(device="cpu", dtype="float32", prefix_reuse=reuse))
    backend.load()
    try:
        assert backend.engine_args["enable_prefix_caching"] is reuse
        gens = backend.generate(prompts, SETTINGS)
    finally:
        backend.close()
    assert all(g.error is None for g in gens)
    return [list(g.token_ids) for g in gens], backend.prefix_cache_counts(), sum(g.n_prompt_tokens for g in gens)


def test_prefix_cache_hits_and_identical_tokens(model_224: Path) -> None:
    on_ids, counts, n_prompt = run(model_224, True)
    off_ids, off_counts, _ = run(model_224, False)
    assert on_ids == off_ids
    assert off_counts is None
    assert counts is not None and counts[0] == n_prompt
    assert counts[1] == 6 * IMAGE_TOKENS  # 2nd and 3rd question of each of 3 images: the image prefix's full blocks


def test_cpu_block_size_follows_prefix_reuse() -> None:
    from types import SimpleNamespace

    from evalkit.backends.vllm import CPU_PREFIX_BLOCK_SIZE, cpu_engine_defaults

    text = SimpleNamespace(num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2, head_dim=64,
                           hidden_size=128, max_position_embeddings=1024)
    config = SimpleNamespace(text_config=text)
    assert cpu_engine_defaults(config, "float32", 2**34, {}, prefix_reuse=True)["block_size"] == CPU_PREFIX_BLOCK_SIZE
    assert "block_size" not in cpu_engine_defaults(config, "float32", 2**34, {}, prefix_reuse=False)
    assert "block_size" not in cpu_engine_defaults(config, "float32", 2**34, {"block_size": 64}, prefix_reuse=True)
