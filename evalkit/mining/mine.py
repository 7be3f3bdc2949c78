"""One mining run: embed (resumable), search, write. See docs/mine_pairs.md."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

DEFAULT_CLIP = "openai/clip-vit-large-patch14"  # the paper's pair
DEFAULT_SSL = "facebook/dinov2-large"
FORMAT = "evalkit-mine-pairs/1"


@dataclass
class MineOptions:
    images_dir: Path
    out: Path
    clip: str = DEFAULT_CLIP
    ssl: str = DEFAULT_SSL
    clip_min: float = 0.95
    ssl_max: float = 0.6
    max_pairs: int | None = None
    top_k: int = 20
    index: str = "auto"
    batch_size: int = 32
    device: str = "auto"
    progress: bool | None = None  # None: when stderr is a terminal


def _check(opts: MineOptions) -> None:
    if not -1.0 <= opts.ssl_max <= 1.0 or not -1.0 <= opts.clip_min <= 1.0:
        raise UsageError("--clip-min and --ssl-max are cosine similarities, between -1 and 1")
    if opts.batch_size < 1 or opts.top_k < 1 or (opts.max_pairs is not None and opts.max_pairs < 1):
        raise UsageError("--batch-size, --top-k and --max-pairs must be at least 1")
    out, images = Path(opts.out).resolve(), Path(opts.images_dir).resolve()
    if out == images:
        raise UsageError("--out must not be the image folder itself (a subfolder is fine)")
    from evalkit.mining.annotations import read_annotations

    if read_annotations(out):
        raise UsageError(f"{out} holds questions written for earlier mined pairs (annotations.json); mining again "
                         "would renumber the pairs: use another --out (copy embeddings/ there to skip embedding)")


def mine(opts: MineOptions) -> dict[str, Any]:
    """Embed every image of ``opts.images_dir`` (resuming), find and rank pairs, write ``opts.out``; returns the
    summary also written to ``OUT/mining.json``."""
    from evalkit.core.progress import task_progress
    from evalkit.mining.embed import EmbeddingStore, embed_folder, list_images, load_encoder, resolve_device
    from evalkit.mining.export import MinedPair, write_mined
    from evalkit.mining.search import choose_index, find_pairs, select_disjoint

    _check(opts)
    out = Path(opts.out)
    files = list_images(opts.images_dir, exclude=out)
    if not files:
        raise UsageError(f"no images (.jpg, .png, ...) in {opts.images_dir}")
    device = resolve_device(opts.device)
    clip, ssl = load_encoder(opts.clip, "clip", device), load_encoder(opts.ssl, "ssl", device)
    fingerprint = {"images_dir": str(Path(opts.images_dir).resolve()), "clip": clip.describe(),
                   "ssl": ssl.describe()}
    store = EmbeddingStore(out / "embeddings", fingerprint)
    done = len(store.done() & set(files))
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    start = time.perf_counter()
    with task_progress("embed", len(files), done, enabled=show) as advance:
        embedded = embed_folder(opts.images_dir, files, store, clip, ssl, opts.batch_size, advance)
    embed_s = time.perf_counter() - start
    emb = store.load()
    wanted = set(files)
    rows = [r for r, f in enumerate(emb.files) if f in wanted]  # images since deleted from the folder drop out
    names = [emb.files[r] for r in rows]
    clip_x, ssl_x = emb.clip[rows], emb.ssl[rows]
    start = time.perf_counter()
    index = choose_index(len(rows), opts.index, device)
    found = find_pairs(clip_x, ssl_x, opts.clip_min, opts.ssl_max, opts.top_k, index, device)
    chosen = select_disjoint(found, opts.max_pairs)
    search_s = time.perf_counter() - start
    pairs = [MinedPair(pair=k, images=(names[p.i], names[p.j]), clip=round(p.clip, 6), ssl=round(p.ssl, 6))
             for k, p in enumerate(chosen, 1)]
    failed = {f: e for f, e in emb.failed.items() if f in wanted}
    summary = {
        "format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items() if k != "progress"},
        "device": device, "clip": clip.describe(), "ssl": ssl.describe(), "index": index,
        "n_images": len(files), "n_embedded": len(names), "n_read_now": embedded,
        "n_unreadable": len(failed), "unreadable": failed, "n_qualifying": len(found), "n_pairs": len(pairs),
        "seconds": {"embed": round(embed_s, 3), "search": round(search_s, 3)},
    }
    write_mined(out, opts.images_dir, pairs, summary)
    return summary
