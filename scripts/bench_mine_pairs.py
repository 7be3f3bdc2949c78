"""Benchmark of `evalkit mine-pairs`: embedding throughput and the pair search at growing sizes.

    .venv/bin/python scripts/bench_mine_pairs.py [--sizes 1000,10000,100000] [--methods exact,faiss]
                                                 [--images 256] [--json FILE]

- embedding: ``--images`` noise images (256 x 256 JPEG) through the whole path of a run (list, decode, both
  encoders, a fsynced shard per batch of 32), with the *tiny* test encoders (evalkit.testing.tiny_mining): this is
  the pipeline's own cost (decoding, preprocessing, storing), not the speed of CLIP ViT-L/14 or DINOv2-L;
- search: synthetic unit embeddings of the real widths (CLIP ViT-L/14 768, DINOv2-L 1024), with n/100 planted
  CLIP-near-identical, SSL-unrelated pairs; each (method, n) in its own process, whose peak RSS is reported
  (embeddings included). ``faiss`` is the IVF-Flat index ``--index faiss`` uses; its recall is measured against
  the exact search's pairs at the same n. Imports (torch, faiss) happen before the clock starts.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLIP_DIM, SSL_DIM, TOP_K = 768, 1024, 20


def synthetic(n: int, seed: int = 0) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    clip = rng.standard_normal((n, CLIP_DIM), dtype=np.float32)
    ssl = rng.standard_normal((n, SSL_DIM), dtype=np.float32)
    planted = max(1, n // 100)
    clip[1:2 * planted:2] = clip[0:2 * planted:2] + 0.05 * rng.standard_normal((planted, CLIP_DIM), dtype=np.float32)
    clip /= np.linalg.norm(clip, axis=1, keepdims=True)
    ssl /= np.linalg.norm(ssl, axis=1, keepdims=True)
    return clip, ssl


def search_child(method: str, n: int) -> dict[str, Any]:
    from evalkit.mining.search import find_pairs

    import torch  # noqa: F401  (imported before the clock starts)

    if method == "faiss":
        import faiss  # noqa: F401
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the imports alone
    clip, ssl = synthetic(n)
    start = time.perf_counter()
    pairs = find_pairs(clip, ssl, 0.95, 0.6, k=TOP_K, index=method)
    seconds = time.perf_counter() - start
    return {"method": method, "n": n, "planted": max(1, n // 100), "seconds": round(seconds, 3),
            "pairs": sorted([p.i, p.j] for p in pairs),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "imports_rss_mb": round(baseline, 1), "embeddings_mb": round((clip.nbytes + ssl.nbytes) / 2**20, 1)}


def embed_bench(n_images: int) -> dict[str, Any]:
    import numpy as np
    from PIL import Image

    from evalkit.mining.embed import EmbeddingStore, embed_folder, list_images, load_encoder
    from evalkit.testing.tiny_mining import build_clip_vision, build_dinov2

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rng = np.random.default_rng(0)
        (root / "img").mkdir()
        for k in range(n_images):
            Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(root / "img" / f"{k}.jpg")
        clip = load_encoder(str(build_clip_vision(root / "clip")), "clip")
        ssl = load_encoder(str(build_dinov2(root / "dino")), "ssl")
        files = list_images(root / "img")
        store = EmbeddingStore(root / "out", {"bench": True})
        start = time.perf_counter()
        embed_folder(root / "img", files, store, clip, ssl, batch_size=32)
        seconds = time.perf_counter() - start
    return {"images": n_images, "seconds": round(seconds, 3), "images_per_s": round(n_images / seconds, 1),
            "encoders": "tiny (1 layer, 64 wide; 32 px crop for CLIP, 96 x 32 for DINOv2)", "batch_size": 32}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000,10000,100000")
    p.add_argument("--methods", default="exact,faiss")
    p.add_argument("--images", type=int, default=256, help="images for the embedding throughput (0: skip)")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "N"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(search_child(args.child[0], int(args.child[1]))))
        return 0
    import os

    report: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "note": "shared with other jobs: upper bounds"}}
    rows, exact_pairs = [], {}
    for n in (int(s) for s in args.sizes.split(",")):
        for method in args.methods.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", method, str(n)], capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            found = {tuple(x) for x in r.pop("pairs")}
            if method == "exact":
                exact_pairs[n] = found
            r["n_pairs"] = len(found)
            if method != "exact" and n in exact_pairs:
                r["recall_vs_exact"] = round(len(found & exact_pairs[n]) / max(1, len(exact_pairs[n])), 4)
            rows.append(r)
            print(f"search {method:5s} n={n:>7d}: {r['seconds']:8.2f}s  peak RSS {r['peak_rss_mb']:7.1f} MB "
                  f"(imports {r['imports_rss_mb']:.0f}, "
                  f"embeddings {r['embeddings_mb']:.0f})  "
                  f"pairs {r['n_pairs']}" + (f"  recall {r['recall_vs_exact']}" if "recall_vs_exact" in r else ""),
                  flush=True)
    report["search"] = rows
    if args.images:  # after the searches: their processes fork from this one, which stays small until here
        report["embedding"] = embed_bench(args.images)
        e = report["embedding"]
        print(f"embedding: {e['images']} images in {e['seconds']:.1f}s = {e['images_per_s']:.1f} images/s "
              f"({e['encoders']})", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
