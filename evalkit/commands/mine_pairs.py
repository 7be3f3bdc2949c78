"""``evalkit mine-pairs IMAGES_DIR --out DIR``: CLIP-blind pairs from an image collection (the MMVP construction).

Embeds every image with a CLIP-side and an SSL-side encoder (resumable: run the same command again after a
crash), keeps the pairs CLIP sees as near-identical (cosine >= --clip-min) and the SSL encoder as different
(cosine <= --ssl-max), ranks them by the gap and writes an MMVP-layout folder with the questions left to write
(``evalkit annotate-pairs DIR``). See docs/mine_pairs.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_mine(args: argparse.Namespace) -> int:
    from evalkit.mining.mine import MineOptions, mine

    opts = MineOptions(images_dir=args.images_dir, out=args.out, clip=args.clip, ssl=args.ssl,
                       clip_min=args.clip_min, ssl_max=args.ssl_max, max_pairs=args.max_pairs, top_k=args.top_k,
                       index=args.index, batch_size=args.batch_size, device=args.device)
    s = mine(opts)
    unreadable = f", {s['n_unreadable']} unreadable (listed in mining.json)" if s["n_unreadable"] else ""
    print(f"embedded {s['n_embedded']} of {s['n_images']} images ({s['n_read_now']} read now){unreadable}; "
          f"{s['n_qualifying']} pairs with CLIP >= {opts.clip_min} and SSL <= {opts.ssl_max} ({s['index']} search, "
          f"{s['seconds']['search']:.1f}s); wrote {s['n_pairs']} disjoint pairs to {Path(opts.out) / 'MMVP' / 'MMVP'}")
    if s["n_pairs"]:
        print(f"next: write their questions with `evalkit annotate-pairs {opts.out}`")
    return 0


def add_parser(sub: Any) -> None:
    from evalkit.mining.mine import DEFAULT_CLIP, DEFAULT_SSL, MineOptions
    from evalkit.mining.search import INDEXES

    d = MineOptions(images_dir=Path("."), out=Path("."))
    p = sub.add_parser("mine-pairs", help="find CLIP-blind image pairs in a folder and write an MMVP-layout benchmark "
                                          "for people to write questions for")
    p.add_argument("images_dir", type=Path, help="folder of images (searched recursively)")
    p.add_argument("--out", type=Path, required=True, help="output folder (a --data-dir for mmvp once written); "
                                                           "running again resumes its embeddings")
    p.add_argument("--clip", default=DEFAULT_CLIP, help=f"CLIP or SigLIP checkpoint (default {DEFAULT_CLIP})")
    p.add_argument("--ssl", default=DEFAULT_SSL, help=f"DINOv2 or ViT checkpoint (default {DEFAULT_SSL})")
    p.add_argument("--clip-min", type=float, default=d.clip_min, help="least CLIP cosine similarity of a pair")
    p.add_argument("--ssl-max", type=float, default=d.ssl_max, help="most SSL cosine similarity of a pair")
    p.add_argument("--max-pairs", type=int, default=None, help="write at most this many pairs (best gap first)")
    p.add_argument("--top-k", type=int, default=d.top_k, help="CLIP neighbours considered per image")
    p.add_argument("--index", choices=INDEXES, default=d.index,
                   help="neighbour search: exact, faiss (approximate), auto (exact up to 20k images on CPU, 100k "
                        "on GPU)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per batch (and per stored shard)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:1, ...")
    p.set_defaults(func=cmd_mine)
