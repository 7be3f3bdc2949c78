"""`make bench`: evalkit's speed measured side by side, as ratios within one run.

Sections (each a ratio of two measurements taken in the same process, minutes apart):
  overhead   evalkit end to end vs a minimal hand-written transformers loop (same prompts, images, batch)
  batching   evalkit batch 16 vs batch 1
  backends   evalkit hf (batched) vs vllm, when vLLM is installed
  overlap    image decoding in a prefetch thread vs inline
  scoring    vqa_accuracy over 214,354 pairs; caption metrics over 5,000 images
  memory     peak RSS of a 50,000-sample run vs a 1,000-sample run (streaming)
  startup    `evalkit --help` wall time and whether it imports torch
  prefix     questions grouped by image, image prefix prefilled once vs plain, hf and vLLM (bench_prefix.py)
  peer       lmms-eval llava_hf bs1 vs evalkit hf bs16 / vLLM vs a plain script: process wall, generation
             samples/s, where start-up goes (bench_peer.py; not in --smoke)

Absolute times on a shared machine are noise; the ratios are the result. Writes results/bench.json.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.core.types import GenerationSettings

MODEL_TEXT_HIDDEN, MODEL_TEXT_LAYERS = 512, 8  # ~28M parameters, as in shared/notes/vllm-on-cpu.md


@dataclass(frozen=True)
class Sizes:
    samples: int = 64  # per throughput measurement
    new_tokens: int = 32
    vqa_pairs: int = 214_354
    caption_images: int = 5_000
    memory_small: int = 1_000
    memory_large: int = 50_000
    image_px: int = 480  # fixture images (JPEG) for the overlap section


SMOKE = Sizes(samples=8, new_tokens=4, vqa_pairs=2_000, caption_images=20, memory_small=20, memory_large=60,
              image_px=96)

BENCH_SETTINGS = {"gen": GenerationSettings(max_new_tokens=32)}


def bench_task() -> Any:
    """A VQAv2 task whose generation length the bench sets (registered as `bench_vqav2`)."""
    from evalkit.tasks.vqa import vqav2_val

    task = vqav2_val()
    task.name, task.generation = "bench_vqav2", BENCH_SETTINGS["gen"]
    return task


def _register() -> None:
    from evalkit.tasks import TASKS

    if "bench_vqav2" not in TASKS:
        TASKS.register("bench_vqav2", "evalkit.testing.bench:bench_task")


def build_model(folder: Path, smoke: bool) -> Path:
    from evalkit.testing.tiny_llava import _TEST_CORPUS, build_tiny_llava, save_checkpoint, train_tokenizer

    tok = train_tokenizer(_TEST_CORPUS, vocab_size=300)
    hidden, layers = (128, (1, 1)) if smoke else (MODEL_TEXT_HIDDEN, (2, MODEL_TEXT_LAYERS))
    model, processor = build_tiny_llava(tok, image_size=64, patch_size=16, hidden=hidden, layers=layers, seed=0)
    save_checkpoint(model, processor, folder)
    return folder


def build_data(root: Path, n: int, image_px: int, per_image: int = 1) -> Path:
    """VQAv2-schema parquet with ``image_px``-wide JPEG photos-like images (decode cost like real data).

    ``per_image``: runs of that many consecutive rows ask about one image (same bytes and image_id), as VQAv2 val's
    ~5.3 questions per image do."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from evalkit.testing.hub_fixtures import write_fixture

    folder = write_fixture("lmms-lab/VQAv2", root, n=n, seed=0)
    rng = random.Random(0)
    base = Image.effect_noise((image_px, image_px * 3 // 4), 64).convert("RGB")
    index, image, image_id = 0, {}, 0
    for shard in sorted((folder / "data").glob("validation-*.parquet")):
        table = pq.read_table(shard)
        rows = table.to_pylist()
        for row in rows:
            if index % per_image == 0:
                img = base.rotate(rng.randint(0, 359))
                buf = io.BytesIO()
                img.save(buf, "JPEG", quality=90)
                image, image_id = {"bytes": buf.getvalue(), "path": None}, row["image_id"]
            row["image"] = image
            if per_image > 1:
                row["image_id"], row["question_id"] = image_id, image_id * 1000 + index % per_image
            index += 1
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), shard)
    return root


def evalkit_run(model: Path, data: Path, out: Path, limit: int, **opts: Any) -> dict[str, Any]:
    from evalkit.runner import RunOptions, Runner

    _register()
    options = RunOptions(model=str(model), tasks=["bench_vqav2"], data_dir=data, output=out, limit=limit,
                         progress=False, max_error_rate=1.0, **opts)
    t0 = time.perf_counter()
    record, _ = Runner(options).run()
    wall = time.perf_counter() - t0
    task = record.tasks["bench_vqav2"]
    tel = task.telemetry
    return {"wall_s": wall - record.telemetry.load_s, "load_s": record.telemetry.load_s, "n": task.n,
            "samples_per_s": task.n / tel.wall_s, "generated_tokens_per_s": tel.generated_tokens_per_s,
            "peak_rss_mb": record.telemetry.peak_rss_mb, "data_s": tel.data_s, "generate_s": tel.generate_s,
            "score_s": tel.score_s, "write_s": tel.write_s, "n_generated_tokens": tel.n_generated_tokens,
            "n_prompt_tokens": tel.n_prompt_tokens, "prefix_cache_hit_rate": tel.prefix_cache_hit_rate}


def hand_loop(model_dir: Path, data: Path, limit: int, batch_size: int, new_tokens: int,
              marks: dict[str, float] | None = None) -> dict[str, Any]:
    """The minimal transformers loop a user would write: read rows, decode, template, generate, decode.
    ``marks["first_batch"]``: when the first batch was done (time.time())."""
    import pyarrow.parquet as pq
    import torch
    from PIL import Image
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    t_load = time.perf_counter()
    processor = AutoProcessor.from_pretrained(model_dir)
    model = LlavaForConditionalGeneration.from_pretrained(model_dir, dtype=torch.float32).eval()
    processor.tokenizer.padding_side = "left"
    load = time.perf_counter() - t_load
    t0 = time.perf_counter()
    rows = []
    for shard in sorted((data / "lmms-lab" / "VQAv2" / "data").glob("validation-*.parquet")):
        rows += pq.read_table(shard, columns=["question", "image"]).to_pylist()
    rows = rows[:limit]
    n_tokens, generate_s = 0, 0.0
    for i in range(0, len(rows), batch_size):
        batch = rows[i : i + batch_size]
        images = [Image.open(io.BytesIO(r["image"]["bytes"])).convert("RGB") for r in batch]
        texts = [processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": r["question"] +
              "\nAnswer the question using a single word or phrase."}]}], add_generation_prompt=True)
            for r in batch]
        inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
        t_gen = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
        generate_s += time.perf_counter() - t_gen
        new = out[:, inputs["input_ids"].shape[1]:]
        processor.batch_decode(new, skip_special_tokens=True)
        n_tokens += int((new != processor.tokenizer.pad_token_id).sum())
        if marks is not None:
            marks.setdefault("first_batch", time.time())
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "load_s": load, "n": len(rows), "samples_per_s": len(rows) / wall,
            "generated_tokens_per_s": n_tokens / wall, "generate_s": generate_s}


def scoring_speed(sizes: Sizes) -> dict[str, Any]:
    from evalkit.metrics import vqa_accuracy

    rng = random.Random(0)
    vocab = ["yes", "no", "2", "two", "red", "a red car", "The dog.", "don't know", "1,000", "t-shirt"]
    pairs = [(rng.choice(vocab), [rng.choice(vocab) for _ in range(10)]) for _ in range(sizes.vqa_pairs)]
    t0 = time.perf_counter()
    total = sum(vqa_accuracy(p, a) for p, a in pairs)
    vqa_s = time.perf_counter() - t0
    out: dict[str, Any] = {"vqa_pairs": sizes.vqa_pairs, "vqa_s": round(vqa_s, 3), "vqa_mean": total / len(pairs)}
    try:
        from evalkit.metrics.captioning import score_captions

        words = ["a", "red", "circle", "blue", "square", "next", "to", "green", "triangle", "small", "large", "and"]
        preds = {str(i): " ".join(rng.choices(words, k=8)) for i in range(sizes.caption_images)}
        refs = {str(i): [" ".join(rng.choices(words, k=9)) for _ in range(5)] for i in range(sizes.caption_images)}
        t0 = time.perf_counter()
        score_captions(preds, refs, ("bleu", "meteor", "rouge_l", "cider"))
        out.update(caption_images=sizes.caption_images, caption_s=round(time.perf_counter() - t0, 3))
    except Exception as exc:  # Java missing: report, the rest of the bench still runs
        out["caption_error"] = f"{type(exc).__name__}: {exc}"
    return out


def startup() -> dict[str, Any]:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "evalkit.cli", "--help"], capture_output=True, check=True)
        best = min(best, time.perf_counter() - t0)
    code = "import sys; from evalkit.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    imports_torch = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip()
    return {"help_s": round(best, 3), "imports_torch": imports_torch == "True"}


def memory_run(model: Path, sizes: Sizes, work: Path) -> dict[str, Any]:
    """Peak RSS of two runs that differ only in length, in fresh processes (1 new token, batch 32)."""
    data = work / "mem-data"
    build_data(data, sizes.memory_large, 32)
    out = {}
    for label, n in (("small", sizes.memory_small), ("large", sizes.memory_large)):
        code = f"from evalkit.testing.bench import memory_child; memory_child({str(model)!r}, {str(data)!r}, {str(work / label)!r}, {n})"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-2000:])
        out[label] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"small_n": sizes.memory_small, "large_n": sizes.memory_large,
            "small_peak_rss_mb": out["small"]["peak_rss_mb"], "large_peak_rss_mb": out["large"]["peak_rss_mb"],
            "ratio": round(out["large"]["peak_rss_mb"] / out["small"]["peak_rss_mb"], 3)}


def memory_child(model: str, data: str, out: str, n: int) -> None:
    """One memory-section run in a fresh process (1 new token, batch 32); prints its figures as JSON."""
    BENCH_SETTINGS["gen"] = GenerationSettings(max_new_tokens=1)
    print(json.dumps(evalkit_run(Path(model), Path(data), Path(out), n, batch_size=32)))


def run_bench(sizes: Sizes, out_file: Path | None, with_vllm: bool) -> dict[str, Any]:
    from evalkit.runner import cpu_overlap_pays

    BENCH_SETTINGS["gen"] = GenerationSettings(max_new_tokens=sizes.new_tokens)
    report: dict[str, Any] = {"sizes": sizes.__dict__, "machine": _machine()}
    with tempfile.TemporaryDirectory(prefix="evalkit-bench-") as tmp:
        work = Path(tmp)
        model = build_model(work / "model", smoke=sizes is SMOKE)
        data = build_data(work / "data", sizes.samples, sizes.image_px)
        n = sizes.samples
        hand = hand_loop(model, data, n, 16, sizes.new_tokens)
        ek16 = evalkit_run(model, data, work / "r16", n, batch_size=16)
        ek1 = evalkit_run(model, data, work / "r1", n, batch_size=1)
        seq = evalkit_run(model, data, work / "seq", n, batch_size=16, prefetch=False)
        pre = evalkit_run(model, data, work / "pre", n, batch_size=16, prefetch=True)
        report["overhead"] = {"hand_loop": hand, "evalkit": ek16, "ratio": round(ek16["wall_s"] / hand["wall_s"], 3)}
        report["batching"] = {"batch1": ek1, "batch16": ek16,
                              "speedup": round(ek16["samples_per_s"] / ek1["samples_per_s"], 3)}
        report["overlap"] = {"inline": seq, "prefetch": pre, "speedup": round(seq["wall_s"] / pre["wall_s"], 3),
                             "default_uses_thread": cpu_overlap_pays()}
        if with_vllm:
            try:
                vl = evalkit_run(model, data, work / "vllm", n, backend="vllm", batch_size=16)
                report["backends"] = {"hf_batch16": ek16, "vllm": vl,
                                      "vllm_vs_hf": round(vl["samples_per_s"] / ek16["samples_per_s"], 3),
                                      "vllm_vs_hf_batch1": round(vl["samples_per_s"] / ek1["samples_per_s"], 3)}
            except Exception as exc:
                report["backends"] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        from evalkit.testing.bench_prefix import PREFIX_SMOKE, PrefixSizes, prefix_section

        report["prefix"] = prefix_section(work, PREFIX_SMOKE if sizes is SMOKE else PrefixSizes(), with_vllm)
        if sizes is not SMOKE:
            from evalkit.testing.bench_peer import peer_section

            report["peer"] = peer_section(model, data, work, n, with_vllm)
        report["scoring"] = scoring_speed(sizes)
        # Streaming is about the data path, not the model: a tiny model keeps 50,000 samples affordable.
        report["memory"] = memory_run(build_model(work / "mem-model", smoke=True), sizes, work)
    report["startup"] = startup()
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text(json.dumps(report, indent=2))
    return report


def _machine() -> dict[str, Any]:
    import os
    import platform

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "load_average_1m": round(os.getloadavg()[0], 2)}  # > cpus: a shared, busy machine (timings noisy)


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table("section", "A", "B", "ratio", "goal", title="evalkit bench (ratios measured side by side)")
    o = report["overhead"]
    t.add_row("overhead (evalkit / hand loop, wall excl. load)", f"{o['evalkit']['wall_s']:.2f}s",
              f"{o['hand_loop']['wall_s']:.2f}s", f"{o['ratio']:.2f}x", "<= 1.10x")
    e = o["evalkit"]
    t.add_row("  evalkit time split", f"data {e['data_s']:.2f}s ("
              + ("in a thread" if report["overlap"].get("default_uses_thread") else "inline") + ")", f"generate {e['generate_s']:.2f}s",
              f"score {e['score_s']:.2f}s / write {e['write_s']:.2f}s", "")
    b = report["batching"]
    t.add_row("batching (bs16 / bs1 samples/s)", f"{b['batch16']['samples_per_s']:.1f}/s",
              f"{b['batch1']['samples_per_s']:.1f}/s", f"{b['speedup']:.2f}x", "plain script: 5.9x")
    ov = report["overlap"]
    t.add_row("overlap (inline / prefetch thread wall; default here: "
              + ("thread" if ov.get("default_uses_thread") else "inline") + ")", f"{ov['inline']['wall_s']:.2f}s", f"{ov['prefetch']['wall_s']:.2f}s",
              f"{ov['speedup']:.2f}x", "> 1")
    if "backends" in report:
        bk = report["backends"]
        if "error" in bk:
            t.add_row("backends (vllm / hf)", "-", "-", bk["error"][:60], "")
        else:
            t.add_row("backends (vllm / hf bs16 samples/s)", f"{bk['vllm']['samples_per_s']:.1f}/s",
                      f"{bk['hf_batch16']['samples_per_s']:.1f}/s", f"{bk['vllm_vs_hf']:.2f}x",
                      f"vs hf bs1: {bk['vllm_vs_hf_batch1']:.2f}x")
    if "prefix" in report:
        from evalkit.testing.bench_prefix import prefix_rows

        for row in prefix_rows(report["prefix"]):
            t.add_row(*row)
    if "peer" in report:
        from evalkit.testing.bench_peer import peer_rows

        for row in peer_rows(report["peer"]):
            t.add_row(*row)
    s = report["scoring"]
    t.add_row(f"vqa_accuracy x {s['vqa_pairs']:,}", f"{s['vqa_s']:.2f}s", "", "", "< 10 s")
    if "caption_s" in s:
        t.add_row(f"caption metrics x {s['caption_images']:,} images", f"{s['caption_s']:.2f}s", "", "", "")
    m = report["memory"]
    t.add_row(f"peak RSS {m['large_n']:,} vs {m['small_n']:,} samples", f"{m['large_peak_rss_mb']:.0f} MB",
              f"{m['small_peak_rss_mb']:.0f} MB", f"{m['ratio']:.2f}x", "<= 1.2x")
    st = report["startup"]
    t.add_row("`evalkit --help`", f"{st['help_s']:.2f}s", f"imports torch: {st['imports_torch']}", "", "no torch")
    Console(width=140).print(t)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes (used by the test suite)")
    p.add_argument("--out", type=Path, default=Path("results/bench.json"))
    p.add_argument("--no-vllm", action="store_true")
    args = p.parse_args(argv)
    import importlib.util

    with_vllm = not args.no_vllm and importlib.util.find_spec("vllm") is not None
    report = run_bench(SMOKE if args.smoke else Sizes(), args.out, with_vllm)
    print_report(report)
    return 0
