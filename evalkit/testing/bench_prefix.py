"""`make bench`, section "prefix": prefill each image once (issue 20), grouped + reused vs plain, hf and vLLM.

The workload has several questions per image and many image tokens, where prefill is most of the compute: a tiny
LLaVA whose CLIP tower sees 336 px in 14 px patches (576 image tokens, as LLaVA-1.5), 64 images x 5 questions,
16 new tokens. Each engine runs the same rows twice in one process, with and without ``--no-prefix-reuse``; the
figures are samples/s over the task (model load excluded), the share of prompt tokens served from a cached image
prefix (vLLM: its own prefix-cache counters) and the prompt tokens actually prefilled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.core.types import GenerationSettings


@dataclass(frozen=True)
class PrefixSizes:
    images: int = 64
    per_image: int = 5
    new_tokens: int = 16
    image_size: int = 336  # (336 / 14) ** 2 = 576 image tokens
    patch_size: int = 14
    hidden: int = 256
    layers: tuple[int, int] = (2, 4)  # (vision, text)
    image_px: int = 480  # JPEG width in the data
    batch_size: int = 16


PREFIX_SMOKE = PrefixSizes(images=4, per_image=3, new_tokens=4, image_size=64, patch_size=16, hidden=128,
                           layers=(1, 1), image_px=96, batch_size=4)


def image_tokens(sizes: PrefixSizes) -> int:
    return (sizes.image_size // sizes.patch_size) ** 2


def build_prefix_model(folder: Path, sizes: PrefixSizes) -> Path:
    from evalkit.testing.tiny_llava import _TEST_CORPUS, build_tiny_llava, save_checkpoint, train_tokenizer

    tok = train_tokenizer(_TEST_CORPUS, vocab_size=300)
    model, processor = build_tiny_llava(tok, image_size=sizes.image_size, patch_size=sizes.patch_size,
                                        hidden=sizes.hidden, layers=sizes.layers, seed=0,
                                        max_positions=image_tokens(sizes) + 512)
    save_checkpoint(model, processor, folder)
    return folder


def _figures(run: dict[str, Any]) -> dict[str, Any]:
    rate = run.get("prefix_cache_hit_rate") or 0.0
    run["prefilled_tokens"] = round(run["n_prompt_tokens"] * (1 - rate))
    return run


def prefix_section(work: Path, sizes: PrefixSizes, with_vllm: bool) -> dict[str, Any]:
    """Grouped + reused vs plain for the hf backend (batch ``sizes.batch_size``) and for vLLM."""
    from evalkit.testing.bench import BENCH_SETTINGS, build_data, evalkit_run

    model = build_prefix_model(work / "prefix-model", sizes)
    n = sizes.images * sizes.per_image
    data = build_data(work / "prefix-data", n, sizes.image_px, per_image=sizes.per_image)
    saved = BENCH_SETTINGS["gen"]
    BENCH_SETTINGS["gen"] = GenerationSettings(max_new_tokens=sizes.new_tokens)
    out: dict[str, Any] = {"images": sizes.images, "questions_per_image": sizes.per_image,
                           "image_tokens": image_tokens(sizes), "new_tokens": sizes.new_tokens}
    try:
        engines = [("hf", {"batch_size": sizes.batch_size})]
        if with_vllm:
            engines.append(("vllm", {"backend": "vllm", "batch_size": sizes.batch_size}))
        for name, opts in engines:
            try:
                plain = _figures(evalkit_run(model, data, work / f"prefix-{name}-plain", n, prefix_reuse=False,
                                             **opts))
                reuse = _figures(evalkit_run(model, data, work / f"prefix-{name}-reuse", n, **opts))
            except Exception as exc:  # vLLM failing to start must not lose the rest of the bench
                out[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
                continue
            out[name] = {"plain": plain, "reuse": reuse,
                         "speedup": round(reuse["samples_per_s"] / plain["samples_per_s"], 3),
                         "prefill_ratio": round(plain["prefilled_tokens"] / max(reuse["prefilled_tokens"], 1), 3)}
    finally:
        BENCH_SETTINGS["gen"] = saved
    return out


def prefix_rows(section: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Rows of the bench table: samples/s reused vs plain, hit rate and prompt tokens prefilled."""
    rows = []
    label = (f"{section['images']} images x {section['questions_per_image']} questions, "
             f"{section['image_tokens']} image tokens")
    for name in ("hf", "vllm"):
        if name not in section:
            continue
        s = section[name]
        if "error" in s:
            rows.append((f"prefix reuse {name}", "-", "-", s["error"][:60], ""))
            continue
        r, p = s["reuse"], s["plain"]
        rows.append((f"prefix reuse {name} (reused / plain samples/s; {label})", f"{r['samples_per_s']:.1f}/s",
                     f"{p['samples_per_s']:.1f}/s", f"{s['speedup']:.2f}x", ">= 2x"))
        rows.append((f"  {name} prefix-cache hit rate; prompt tokens prefilled",
                     f"{(r['prefix_cache_hit_rate'] or 0) * 100:.1f}%",
                     f"{r['prefilled_tokens']:,} vs {p['prefilled_tokens']:,}", f"{s['prefill_ratio']:.2f}x fewer",
                     ""))
    return rows
