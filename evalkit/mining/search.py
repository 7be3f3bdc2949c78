"""Finding CLIP-blind pairs among embedded images.

A pair (i, j) qualifies when its CLIP cosine similarity is at least ``clip_min`` and its SSL cosine similarity at
most ``ssl_max`` (MMVP: 0.95 and 0.6). Candidates come from the CLIP side: for each image its ``k`` nearest CLIP
neighbours (other than itself), kept when at least ``clip_min``; the SSL similarity is then computed exactly for
those candidates only. So the search costs one k-nearest-neighbour search over the CLIP embeddings plus O(n k) dot
products, never an n x n matrix in memory. An image with more than ``k`` CLIP neighbours above ``clip_min`` (a
cluster of near-duplicates) yields only its ``k`` nearest: raise ``k`` for such collections.

The neighbour search is exact (blockwise matrix products and top-k in torch, on CPU or GPU) up to a size, and an
approximate FAISS index (IVF-Flat, inner product; see ``faiss_topk``) above it, where it is installed
(``pip install 'evalkit[mining]'``). The size, measured with scripts/bench_mine_pairs.py (768-wide embeddings, a
shared 2-core CPU): exact and FAISS took the same at 10k images (6.5 s), at 100k exact took 592 s and FAISS 70 s,
finding the same pairs; so ``EXACT_MAX_CPU`` is 20k, while on a GPU the exact search stays cheap to ``EXACT_MAX``
(100k). An HNSW index was tried first: at 10k it took longer to build than the exact search took to finish. Pairs
are ranked by the gap ``clip - ssl`` (largest first).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from evalkit.core.errors import MissingDependency, UsageError

log = logging.getLogger(__name__)

EXACT_MAX = 100_000  # above this many images "auto" uses the approximate index (on a GPU)
EXACT_MAX_CPU = 20_000  # the same on CPU (see the module docstring for the measurement)
BLOCK_BYTES = 1 << 28  # similarity block of the exact search: 256 MiB of float32
INDEXES = ("auto", "exact", "faiss")


@dataclass(frozen=True)
class Pair:
    i: int  # row of the first image (i < j)
    j: int
    clip: float
    ssl: float

    @property
    def gap(self) -> float:
        return self.clip - self.ssl


def exact_topk(x: Any, k: int, device: str = "cpu") -> tuple[Any, Any]:
    """Each row's ``k`` most similar other rows of ``x`` (L2-normalised): (indices, similarities), both (n, k),
    most similar first. Blockwise: at most ``BLOCK_BYTES`` of similarities exist at once."""
    import numpy as np
    import torch

    n = len(x)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    data = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    block = max(1, min(n, BLOCK_BYTES // (4 * n)))
    idx = np.empty((n, k), np.int64)
    sim = np.empty((n, k), np.float32)
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(n, start + block)
            s = data[start:stop] @ data.T
            rows = torch.arange(stop - start, device=s.device)
            s[rows, rows + start] = -float("inf")  # not its own neighbour
            top = torch.topk(s, k, dim=1)
            idx[start:stop] = top.indices.cpu().numpy()
            sim[start:stop] = top.values.cpu().numpy()
    return idx, sim


def faiss_topk(x: Any, k: int, nprobe: int = 8) -> tuple[Any, Any]:
    """Approximate ``exact_topk`` with a FAISS inverted-file index (IVF-Flat, inner product): sqrt(n) k-means cells
    (fewer below 1.5k images) trained on at most 64 points per cell, each query scanning its ``nprobe`` nearest
    cells. The pairs wanted are near-identical for CLIP (cosine >= 0.95), so they share a cell or sit in
    neighbouring ones; the similarities returned are exact. Missing neighbours are index -1."""
    import numpy as np

    faiss = require_faiss()
    n, d = x.shape
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), np.int64), np.zeros((n, 0), np.float32)
    data = np.ascontiguousarray(x, dtype=np.float32)
    cells = max(1, min(int(n ** 0.5), n // 39))  # FAISS wants >= 39 training points per cell
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, cells, faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(0).choice(n, min(n, 64 * cells), replace=False)
    index.train(data[np.sort(sample)])
    index.add(data)
    index.nprobe = min(nprobe, cells)
    sim, idx = index.search(data, k + 1)
    own = idx == np.arange(n)[:, None]
    # Drop each row's own entry (usually first; a duplicate may come first instead), else its last neighbour.
    drop = np.where(own.any(axis=1), own.argmax(axis=1), k)
    keep = np.ones_like(own)
    keep[np.arange(n), drop] = False
    return idx[keep].reshape(n, k), sim[keep].reshape(n, k)


def require_faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise MissingDependency("faiss (the approximate index of `mine-pairs`, faiss-cpu)", "mining") from None
    return faiss


def has_faiss() -> bool:
    try:
        require_faiss()
    except MissingDependency:
        return False
    return True


def choose_index(n: int, requested: str = "auto", device: str = "cpu") -> str:
    """``exact`` or ``faiss`` for ``n`` images. ``auto``: exact up to EXACT_MAX on a GPU (EXACT_MAX_CPU on CPU),
    faiss above (exact, with a warning, when faiss is not installed)."""
    if requested not in INDEXES:
        raise UsageError(f"--index {requested!r}: choose one of {', '.join(INDEXES)}")
    if requested == "faiss":
        require_faiss()
    if requested != "auto":
        return requested
    if n <= (EXACT_MAX if device.startswith("cuda") else EXACT_MAX_CPU):
        return "exact"
    if has_faiss():
        return "faiss"
    log.warning("%d images: the exact search is slow at this size; pip install 'evalkit[mining]' for the "
                "approximate index", n)
    return "exact"


def find_pairs(clip: Any, ssl: Any, clip_min: float = 0.95, ssl_max: float = 0.6, k: int = 20,
               index: str = "auto", device: str = "cpu") -> list[Pair]:
    """Every qualifying pair once, ranked by gap (then by rows, for a stable order)."""
    import numpy as np

    n = len(clip)
    if n < 2:
        return []
    kind = choose_index(n, index, device)
    idx, sim = exact_topk(clip, k, device) if kind == "exact" else faiss_topk(clip, k)
    rows = np.repeat(np.arange(n), idx.shape[1])
    cols, sims = idx.reshape(-1), sim.reshape(-1)
    keep = (cols >= 0) & (sims >= clip_min)
    rows, cols, sims = rows[keep], cols[keep], sims[keep]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    key = lo.astype(np.int64) * n + hi
    key, first = np.unique(key, return_index=True)  # a pair found from both sides counts once
    lo, hi, sims = lo[first], hi[first], sims[first]
    ssl_sim = np.empty(len(lo), np.float32)
    for start in range(0, len(lo), 65536):  # exact SSL similarity of the candidates, in chunks
        a, b = lo[start:start + 65536], hi[start:start + 65536]
        ssl_sim[start:start + 65536] = np.einsum("ij,ij->i", ssl[a], ssl[b])
    keep = ssl_sim <= ssl_max
    pairs = [Pair(int(a), int(b), float(c), float(s))
             for a, b, c, s in zip(lo[keep], hi[keep], sims[keep], ssl_sim[keep])]
    pairs.sort(key=lambda p: (-p.gap, p.i, p.j))
    return pairs


def select_disjoint(pairs: list[Pair], max_pairs: int | None = None) -> list[Pair]:
    """Greedily, in rank order, the pairs whose images are in no earlier chosen pair (a benchmark uses each image
    once, as MMVP does), at most ``max_pairs``."""
    used: set[int] = set()
    chosen = []
    for p in pairs:
        if max_pairs is not None and len(chosen) >= max_pairs:
            break
        if p.i in used or p.j in used:
            continue
        used.update((p.i, p.j))
        chosen.append(p)
    return chosen
