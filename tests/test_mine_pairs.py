"""`evalkit mine-pairs`: tiny real-architecture encoders on a planted image set, resume after SIGKILL, the search.

The planted set (evalkit.testing.tiny_mining) has CLIP-blind pairs (identical centre crop for CLIP, outer thirds
inverted for DINOv2), near-duplicate decoys (close for both) and unrelated images: the mined pairs must be exactly
the CLIP-blind ones.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.core.errors import MissingDependency, UsageError
from evalkit.mining import search
from evalkit.testing.tiny_mining import PlantedSet, build_clip_vision, build_dinov2, write_planted_images


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return build_clip_vision(root / "clip"), build_dinov2(root / "dinov2")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedSet:
    s = write_planted_images(tmp_path_factory.mktemp("images"))
    (s.folder / "broken.jpg").write_bytes(b"not an image")  # counted, never embedded
    return s


def mine_args(planted: PlantedSet, encoders: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    return ["mine-pairs", str(planted.folder), "--out", str(out), "--clip", str(encoders[0]),
            "--ssl", str(encoders[1]), "--batch-size", "3", *extra]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def mined(planted: PlantedSet, encoders: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("mined")
    assert main(mine_args(planted, encoders, out)) == 0
    return out


def test_mines_exactly_the_planted_pairs_ranked_by_gap(mined: Path, planted: PlantedSet) -> None:
    pairs = read_jsonl(mined / "pairs.jsonl")
    assert {tuple(p["images"]) for p in pairs} == planted.blind_pairs
    assert [p["pair"] for p in pairs] == [1, 2, 3, 4]
    gaps = [p["gap"] for p in pairs]
    assert gaps == sorted(gaps, reverse=True)
    for p in pairs:
        assert p["clip"] >= 0.95 and p["ssl"] <= 0.6 and p["gap"] == pytest.approx(p["clip"] - p["ssl"])
    summary = json.loads((mined / "mining.json").read_text())
    assert summary["n_images"] == len(planted.files) + 1 and summary["n_embedded"] == len(planted.files)
    assert list(summary["unreadable"]) == ["broken.jpg"] and summary["n_qualifying"] == 4
    assert summary["index"] == "exact" and summary["clip"]["class"] == "CLIPVisionModelWithProjection"


def test_similarities_are_the_encoders_own(mined: Path, planted: PlantedSet, encoders: tuple[Path, Path]) -> None:
    """Recompute one pair with transformers directly: CLIP image features and DINOv2's CLS token."""
    import torch
    import transformers as tf
    from PIL import Image

    pair = read_jsonl(mined / "pairs.jsonl")[0]
    images = [Image.open(planted.folder / name).convert("RGB") for name in pair["images"]]
    clip = tf.CLIPVisionModelWithProjection.from_pretrained(encoders[0]).eval()
    dino = tf.Dinov2Model.from_pretrained(encoders[1]).eval()
    with torch.no_grad():
        c = clip(**tf.AutoImageProcessor.from_pretrained(encoders[0])(images=images, return_tensors="pt")).image_embeds
        d = dino(**tf.AutoImageProcessor.from_pretrained(encoders[1])(images=images, return_tensors="pt"))
        d = d.last_hidden_state[:, 0]
    cos = torch.nn.functional.cosine_similarity
    assert pair["clip"] == pytest.approx(float(cos(c[0], c[1], dim=0)), abs=1e-5)
    assert pair["ssl"] == pytest.approx(float(cos(d[0], d[1], dim=0)), abs=1e-5)


def test_output_is_the_mmvp_layout_with_questions_left_to_write(mined: Path, planted: PlantedSet) -> None:
    from PIL import Image

    folder = mined / "MMVP" / "MMVP"
    with open(folder / "Questions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["Index"] for r in rows] == [str(i) for i in range(1, 9)]
    assert all(r["Question"] == r["Options"] == r["Correct Answer"] == "" for r in rows)
    for pair in read_jsonl(mined / "pairs.jsonl"):
        for side in (1, 2):
            index = 2 * (pair["pair"] - 1) + side  # pair k is rows 2k-1, 2k
            view = folder / "MMVP Images" / f"{index}.jpg"
            assert view.read_bytes() == (mined / pair["files"][side - 1]).read_bytes()
            with Image.open(view) as img:
                got = np.asarray(img.convert("RGB"), dtype=float)
            want = np.asarray(Image.open(planted.folder / pair["images"][side - 1]).convert("RGB"), dtype=float)
            assert got.shape == want.shape and np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.9  # JPEG of it


def test_thresholds_and_max_pairs_reuse_the_embeddings(mined: Path, planted: PlantedSet,
                                                       encoders: tuple[Path, Path], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "again"
    (out).mkdir()
    os.symlink(mined / "embeddings", out / "embeddings")
    assert main(mine_args(planted, encoders, out, "--ssl-max", "1.0")) == 0  # decoys now qualify too
    assert "(0 read now)" in capsys.readouterr().out
    pairs = {tuple(p["images"]) for p in read_jsonl(out / "pairs.jsonl")}
    assert pairs == planted.blind_pairs | planted.decoys
    assert main(mine_args(planted, encoders, out, "--max-pairs", "2")) == 0
    best = [tuple(p["images"]) for p in read_jsonl(mined / "pairs.jsonl")][:2]
    assert [tuple(p["images"]) for p in read_jsonl(out / "pairs.jsonl")] == best
    assert main(mine_args(planted, encoders, out, "--clip-min", "1.01")) == 2  # not a cosine


KILLER = """
import os, signal, sys
from evalkit.mining import embed
append, written = embed.EmbeddingStore.append, []
def killing_append(self, *args, **kwargs):
    path = append(self, *args, **kwargs)
    written.append(path)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return path
embed.EmbeddingStore.append = killing_append
from evalkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_resume_after_sigkill_embeds_no_image_twice(mined: Path, planted: PlantedSet, encoders: tuple[Path, Path],
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.mining.embed import Encoder

    out = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, *mine_args(planted, encoders, out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    shards = sorted((out / "embeddings").glob("shard-*.npz"))
    assert len(shards) == 2 and not (out / "pairs.jsonl").exists()
    (out / "embeddings" / ".shard-00002.npz.1234.tmp").write_bytes(b"half a shard")  # a write cut short
    before = {str(f) for s in shards for key in ("files", "failed") for f in np.load(s)[key]}

    seen: list[str] = []
    embed = Encoder.embed

    def counting(self: Encoder, images: list) -> np.ndarray:
        if self.role == "clip":
            seen.extend(img.filename for img in images)
        return embed(self, images)

    monkeypatch.setattr(Encoder, "embed", counting)
    monkeypatch.setattr("evalkit.mining.embed.open_image", _named_open)
    assert main(mine_args(planted, encoders, out)) == 0
    assert not list((out / "embeddings").glob("*.tmp"))
    names = {Path(n).relative_to(planted.folder).as_posix() for n in seen}
    assert len(seen) == len(names) and not names & before  # nothing embedded twice
    assert names | before == set(planted.files) | ({"broken.jpg"} & before)  # broken.jpg is never embedded
    stored = [str(f) for s in sorted((out / "embeddings").glob("shard-*.npz")) for f in np.load(s)["files"]]
    assert sorted(stored) == sorted(set(stored)) == planted.files
    assert read_jsonl(out / "pairs.jsonl") == read_jsonl(mined / "pairs.jsonl")  # the same pairs as one clean run


def _named_open(path: Path):  # type: ignore[no-untyped-def]
    from PIL import Image

    with Image.open(path) as img:
        rgb = img.convert("RGB")
    rgb.filename = str(path)  # type: ignore[attr-defined]
    return rgb


def test_other_encoders_settings_are_refused(mined: Path, planted: PlantedSet, encoders: tuple[Path, Path],
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "swap"
    out.mkdir()
    os.symlink(mined / "embeddings", out / "embeddings")
    assert main(mine_args(planted, (encoders[1], encoders[1]), out)) == 2  # DINOv2 as the CLIP side
    assert "not a clip encoder" in capsys.readouterr().err
    build_clip_vision(tmp_path / "other", seed=5)
    assert main(mine_args(planted, (tmp_path / "other", encoders[1]), out)) == 2
    assert "other settings (clip differ)" in capsys.readouterr().err


def test_full_clip_and_siglip_checkpoints_give_their_image_features(tmp_path: Path) -> None:
    import torch
    import transformers as tf

    from evalkit.mining.embed import load_encoder
    from evalkit.testing.tiny_models import build_clip, build_siglip

    images = [np.random.default_rng(k).integers(0, 256, (40, 40, 3)).astype(np.uint8) for k in range(2)]
    for builder, cls in ((build_clip, tf.CLIPModel), (build_siglip, tf.SiglipModel)):
        folder = builder(tmp_path / builder.__name__)
        enc = load_encoder(str(folder), "clip")
        full = cls.from_pretrained(folder).eval()
        pixels = tf.AutoImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            want = torch.nn.functional.normalize(full.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        from PIL import Image

        assert np.allclose(enc.embed([Image.fromarray(i) for i in images]), want.numpy(), atol=1e-5)


def test_a_clip_vision_tower_without_projection_is_refused(tmp_path: Path) -> None:
    import transformers as tf

    from evalkit.mining.embed import load_encoder

    tf.CLIPVisionModel(tf.CLIPVisionConfig(image_size=32, patch_size=16, hidden_size=64, intermediate_size=128,
                                           num_hidden_layers=1, num_attention_heads=1)).save_pretrained(tmp_path)
    tf.CLIPImageProcessor().save_pretrained(tmp_path)
    with pytest.raises(UsageError, match="lacks weights"):
        load_encoder(str(tmp_path), "clip")


# --- the search ------------------------------------------------------------------------------------------------

def synthetic(n: int, planted: int, d: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray, set]:
    """Random unit vectors, with ``planted`` pairs near-identical in ``clip`` and unrelated in ``ssl``."""
    rng = np.random.default_rng(seed)
    clip, ssl = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    pairs = set()
    for k in range(planted):
        i, j = 2 * k, 2 * k + 1
        clip[j] = clip[i] + 0.05 * rng.normal(size=d)
        pairs.add((i, j))
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(clip), unit(ssl), pairs


def brute_force(clip: np.ndarray, ssl: np.ndarray, clip_min: float, ssl_max: float) -> set:
    c, s = clip @ clip.T, ssl @ ssl.T
    i, j = np.nonzero(np.triu((c >= clip_min) & (s <= ssl_max), k=1))
    return set(zip(i.tolist(), j.tolist()))


def test_exact_topk_is_the_brute_force_top_k(monkeypatch: pytest.MonkeyPatch) -> None:
    clip, _, _ = synthetic(300, 0)
    monkeypatch.setattr(search, "BLOCK_BYTES", 4 * 300 * 7)  # 7 rows per block: many blocks, a ragged last one
    idx, sim = search.exact_topk(clip, 5)
    full = clip @ clip.T
    np.fill_diagonal(full, -np.inf)
    want = np.argsort(-full, axis=1)[:, :5]
    assert np.array_equal(idx, want)
    assert np.allclose(sim, np.take_along_axis(full, want, axis=1), atol=1e-6)


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_find_pairs_is_the_brute_force_answer(index: str) -> None:
    if index == "faiss" and not search.has_faiss():
        pytest.skip("faiss-cpu is not installed (pip install 'evalkit[mining]')")
    clip, ssl, planted = synthetic(2000, 40)
    found = search.find_pairs(clip, ssl, 0.95, 0.6, k=10, index=index)
    assert {(p.i, p.j) for p in found} == brute_force(clip, ssl, 0.95, 0.6) == planted
    assert [p.gap for p in found] == sorted((p.gap for p in found), reverse=True)


def test_disjoint_selection_and_the_index_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = [search.Pair(0, 1, 1.0, 0.0), search.Pair(1, 2, 1.0, 0.1), search.Pair(2, 3, 1.0, 0.2),
             search.Pair(4, 5, 0.99, 0.5)]
    assert search.select_disjoint(pairs) == [pairs[0], pairs[2], pairs[3]]
    assert search.select_disjoint(pairs, max_pairs=2) == [pairs[0], pairs[2]]
    assert search.choose_index(search.EXACT_MAX_CPU) == search.choose_index(search.EXACT_MAX, device="cuda") == "exact"
    if search.has_faiss():
        assert search.choose_index(search.EXACT_MAX_CPU + 1) == search.choose_index(search.EXACT_MAX + 1, "auto",
                                                                                   "cuda:0") == "faiss"
    monkeypatch.setitem(sys.modules, "faiss", None)  # not installed
    assert search.choose_index(search.EXACT_MAX_CPU + 1) == "exact"  # with a warning
    with pytest.raises(MissingDependency, match=r"pip install 'evalkit\[mining\]'"):
        search.choose_index(10, "faiss")


def test_a_vit_is_read_as_an_ssl_encoder_by_its_class_token(tmp_path: Path) -> None:
    import torch
    import transformers as tf
    from PIL import Image

    from evalkit.mining.embed import load_encoder

    vit = tf.ViTModel(tf.ViTConfig(image_size=32, patch_size=16, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=1, num_attention_heads=1), add_pooling_layer=False).eval()
    vit.save_pretrained(tmp_path)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    images = [Image.fromarray(np.random.default_rng(k).integers(0, 256, (48, 48, 3)).astype(np.uint8))
              for k in range(2)]
    enc = load_encoder(str(tmp_path), "ssl")
    pixels = tf.ViTImageProcessor.from_pretrained(tmp_path)(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        want = torch.nn.functional.normalize(vit(pixel_values=pixels).last_hidden_state[:, 0], dim=-1)
    assert enc.output == "cls" and np.allclose(enc.embed(images), want.numpy(), atol=1e-5)
