"""`scripts/gpu_check.sh`: prefill-each-image-once measured on a GPU, on a random-weight model with
LLaVA-1.5-7B's architecture (CLIP ViT-L/14 at 336 px + Llama-2-7B text tower, 576 image tokens), built from its
config values here (no download).

Runs, each in a fresh process so peak GPU memory is its own: hf batch 1, hf batch 32 and vLLM, each without and
with prefix reuse, on IMAGES x QUESTIONS VQAv2-schema rows, 16 new tokens; prints samples/s, prompt tokens
prefilled, the prefix-cache hit rate, peak GPU memory and what samples/s would mean for VQAv2 val (214,354
questions). Random weights rarely emit EOS, so every answer runs to 16 tokens: a worst case for decoding.

Written without a GPU at hand (the machines this project is built on have none): not run there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

VQAV2_VAL_QUESTIONS = 214_354
RUNS: list[tuple[str, dict[str, Any]]] = [
    ("hf bs1", {"backend": "hf", "batch_size": 1}),
    ("hf bs32", {"backend": "hf", "batch_size": 32}),
    ("vllm", {"backend": "vllm", "batch_size": 32}),
]


def llava15_7b_config(tok: Any) -> Any:
    """llava-hf/llava-1.5-7b-hf's LlavaConfig values, with ``tok``'s special token ids."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    from evalkit.testing.tiny_llava import IMAGE_TOKEN

    vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                              image_size=336, patch_size=14, projection_dim=768, hidden_act="quick_gelu")
    text = LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                       rms_norm_eps=1e-5, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                       pad_token_id=tok.pad_token_id, tie_word_embeddings=False)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
                         projector_hidden_act="gelu", vision_feature_select_strategy="default",
                         vision_feature_layer=-2, image_seq_length=576, tie_word_embeddings=False)
    config.pad_token_id = tok.pad_token_id
    return config


def build_llava15_7b(folder: Path) -> Path:
    """Random bf16 weights in LLaVA-1.5-7B's shapes (llava-hf/llava-1.5-7b-hf config values), saved in the hub
    layout with a small locally trained tokenizer (ids below the 32,064-row embedding)."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from evalkit.testing.tiny_llava import _TEST_CORPUS, build_tiny_llava, save_checkpoint, train_tokenizer

    if (folder / "model.safetensors").exists():
        return folder
    tok = train_tokenizer(_TEST_CORPUS, vocab_size=300)
    # Only the processor of this tiny model is kept: CLIP preprocessing at 336 px, <image> -> 576 tokens.
    _, processor = build_tiny_llava(tok, image_size=336, patch_size=14, hidden=64, layers=(1, 1))
    config = llava15_7b_config(tok)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):  # random init on the GPU: seconds, not minutes
        model = LlavaForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    for key, value in (("pad_token_id", tok.pad_token_id), ("eos_token_id", tok.eos_token_id),
                       ("bos_token_id", tok.bos_token_id)):
        setattr(model.generation_config, key, value)
    save_checkpoint(model.to("cpu").eval(), processor, folder)
    return folder


def child(model: str, data: str, out: str, n: int, opts: dict[str, Any]) -> dict[str, Any]:
    """One measurement (run in its own process by ``main``)."""
    from evalkit.core.types import GenerationSettings
    from evalkit.testing.bench import BENCH_SETTINGS, evalkit_run

    BENCH_SETTINGS["gen"] = GenerationSettings(max_new_tokens=16)
    run = evalkit_run(Path(model), Path(data), Path(out), n, **opts)
    from evalkit.core.results import read_run

    record = read_run(next(Path(out).glob("*/run.json")))
    run["peak_gpu_memory_mb"] = record.telemetry.peak_gpu_memory_mb
    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--questions", type=int, default=5, help="questions per image (VQAv2 val: 5.3)")
    p.add_argument("--work", type=Path, default=Path("/tmp/evalkit-gpu-check"))
    p.add_argument("--model", type=Path, default=None,
                   help="measure this LLaVA checkpoint folder instead (e.g. a local llava-hf/llava-1.5-7b-hf)")
    p.add_argument("--skip", default="", help="comma list of runs to leave out: 'hf bs1', 'hf bs32', 'vllm'")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print("RESULT " + json.dumps(child(**json.loads(args.child))), flush=True)
        return 0
    from evalkit.testing.bench import build_data

    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = args.model or build_llava15_7b(args.work / "llava-1.5-7b-random")
    print(f"model ready in {time.perf_counter() - t0:.0f} s: {model}", flush=True)
    n = args.images * args.questions
    data = build_data(args.work / f"data-{args.images}x{args.questions}", n, 640, per_image=args.questions)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    rows = []
    for name, opts in RUNS:
        if name in skip:
            continue
        for reuse in (False, True):
            label = f"{name} {'reuse' if reuse else 'plain'}"
            out = args.work / "runs" / label.replace(" ", "-")
            shutil.rmtree(out, ignore_errors=True)  # one run folder per measurement (child reads it back)
            spec = {"model": str(model), "data": str(data), "out": str(out), "n": n,
                    "opts": dict(opts, prefix_reuse=reuse)}
            print(f"running {label} ...", flush=True)
            proc = subprocess.run([sys.executable, "-m", "evalkit.testing.gpu_check", "--child", json.dumps(spec)],
                                  capture_output=True, text=True)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode != 0 or not lines:
                print(f"  failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            rows.append((label, json.loads(lines[-1][len("RESULT "):])))
    _print(rows)
    (args.work / "gpu_check.json").write_text(json.dumps(dict(rows), indent=2))
    return 0


def _print(rows: list[tuple[str, dict[str, Any]]]) -> None:
    print(f"\n{'run':<16}{'samples/s':>10}{'generate s':>12}{'prompt tok':>12}{'prefilled':>12}{'hit rate':>10}"
          f"{'peak GPU MB':>13}{'VQAv2 val min':>15}")
    for label, r in rows:
        rate = r.get("prefix_cache_hit_rate") or 0.0
        prefilled = round(r["n_prompt_tokens"] * (1 - rate))
        gpu = r.get("peak_gpu_memory_mb")
        print(f"{label:<16}{r['samples_per_s']:>10.2f}{r['generate_s']:>12.1f}{r['n_prompt_tokens']:>12,}"
              f"{prefilled:>12,}{rate:>10.1%}{(f'{gpu:,.0f}' if gpu else '-'):>13}"
              f"{VQAV2_VAL_QUESTIONS / r['samples_per_s'] / 60:>15.1f}")
    print("vLLM's peak GPU memory includes the KV cache it reserves up front (gpu_memory_utilization, 0.9 by "
          "default); the last column is 214,354 questions at the measured rate (data, decode and scoring included).")


if __name__ == "__main__":  # vLLM spawns workers: keep engine creation under the main guard
    sys.exit(main())
