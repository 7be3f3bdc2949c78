"""The output folder of ``evalkit mine-pairs``: the mined pairs, and the benchmark folders made from them.

    OUT/mining.json            settings, encoders and counts of the mining run
    OUT/pairs.jsonl            one line per pair, best first: pair number, source images, CLIP and SSL similarity, gap
    OUT/pair_images/           each pair's two images as JPEG, NNNNN-1.jpg and NNNNN-2.jpg (the source of the views)
    OUT/annotations.json       what was written for the pairs (``evalkit annotate-pairs``; evalkit.mining.annotations)
    OUT/MMVP/MMVP/             the MMVP layout: Questions.csv (Index, Question, Options, Correct Answer) and
                               "MMVP Images/<Index>.jpg"; pair k is rows 2k-1 and 2k
    OUT/MMVP/MMVP_VLM/         the MMVP-VLM layout (pairs with statements): Questions.csv (Question ID, Type,
                               Statement) and "MLLM_VLM Images/<Type>/<Question ID>.jpg"
    OUT/embeddings/            the resumable embedding store (evalkit.mining.embed)

``OUT`` is a ``--data-dir``: ``evalkit run --tasks mmvp --data-dir OUT`` (and ``--tasks mmvp_vlm``) read it. The two
benchmark folders are views, written again from ``pairs.jsonl`` and ``annotations.json`` after every import: every
pair not dropped is in the MMVP folder (a pair not yet written has empty Question, Options and Correct Answer, which
a run counts as bad records), numbered in rank order. Images that are not JPEG are converted (quality 95), so that
the files match the ``.jpg`` names the layouts use (quality 95, no chroma subsampling); JPEG sources are copied
byte for byte.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError
from evalkit.mining.annotations import Annotation, read_annotations

MINING_FILE, PAIRS_FILE, PAIR_IMAGES = "mining.json", "pairs.jsonl", "pair_images"
MMVP_DIR = Path("MMVP") / "MMVP"
VLM_DIR = Path("MMVP") / "MMVP_VLM"
MMVP_IMAGES, VLM_IMAGES = "MMVP Images", "MLLM_VLM Images"  # the folders tasks/mmvp.py and mmvp_vlm.py read first


@dataclass(frozen=True)
class MinedPair:
    pair: int  # 1-based rank
    images: tuple[str, str]  # source images, relative to the mined folder
    clip: float
    ssl: float

    @property
    def gap(self) -> float:
        return self.clip - self.ssl

    def image_file(self, side: int) -> str:
        """The pair's copy of image ``side`` (1 or 2), relative to OUT."""
        return f"{PAIR_IMAGES}/{self.pair:05d}-{side}.jpg"


def copy_as_jpeg(src: Path, dst: Path) -> None:
    from PIL import Image

    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as img:
        if img.format == "JPEG":
            shutil.copyfile(src, dst)
        else:
            img.convert("RGB").save(dst, "JPEG", quality=95, subsampling=0)  # 4:4:4: no colour detail lost


def write_mined(out: Path, images_dir: Path, pairs: list[MinedPair], summary: dict[str, Any]) -> None:
    """Write the pairs (images, pairs.jsonl, mining.json), then the benchmark views."""
    out = Path(out)
    shutil.rmtree(out / PAIR_IMAGES, ignore_errors=True)
    for p in pairs:
        for side, name in enumerate(p.images, 1):
            copy_as_jpeg(Path(images_dir) / name, out / p.image_file(side))
    with open(out / PAIRS_FILE, "w", encoding="utf-8") as fh:
        for p in pairs:
            fh.write(json.dumps({**asdict(p), "gap": p.gap, "files": [p.image_file(1), p.image_file(2)]}) + "\n")
    (out / MINING_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    write_views(out)


def read_pairs(out: Path) -> list[MinedPair]:
    path = Path(out) / PAIRS_FILE
    if not path.is_file():
        raise UsageError(f"no {PAIRS_FILE} in {out}; pass the --out folder of `evalkit mine-pairs`")
    pairs = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                rec = json.loads(line)
                pairs.append(MinedPair(pair=int(rec["pair"]), images=tuple(rec["images"]),  # type: ignore[arg-type]
                                       clip=float(rec["clip"]), ssl=float(rec["ssl"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise UsageError(f"{path}:{line_no}: not a mined pair ({exc})") from exc
    return pairs


@dataclass
class Views:
    mmvp_pairs: int  # pairs in the MMVP folder (all not dropped)
    written: int  # of those, with questions
    vlm_pairs: int  # pairs in the MMVP-VLM folder
    dropped: int


def write_views(out: Path) -> Views:
    """Write OUT/MMVP/MMVP and OUT/MMVP/MMVP_VLM from pairs.jsonl and annotations.json (each replaced whole)."""
    out = Path(out)
    pairs = read_pairs(out)
    notes = read_annotations(out)
    kept = [p for p in pairs if not notes.get(p.pair, Annotation()).drop]
    with_statements = [p for p in kept if notes.get(p.pair, Annotation()).has_statements]

    def mmvp(folder: Path) -> None:
        rows = []
        for k, p in enumerate(kept):
            note = notes.get(p.pair, Annotation())
            for side, answer in ((1, note.answer_1), (2, note.answer_2)):
                index = 2 * k + side
                _link(out / p.image_file(side), folder / MMVP_IMAGES / f"{index}.jpg")
                rows.append([index, note.question, note.options_text() if note.written else "",
                             f"({answer})" if note.written else ""])
        _write_csv(folder / "Questions.csv", ["Index", "Question", "Options", "Correct Answer"], rows)

    def vlm(folder: Path) -> None:
        rows = []
        for k, p in enumerate(with_statements):
            note = notes[p.pair]
            for side, statement in ((1, note.statement_1), (2, note.statement_2)):
                qid = 2 * k + side
                _link(out / p.image_file(side), folder / VLM_IMAGES / note.type / f"{qid}.jpg")
                rows.append([qid, note.type, statement])
        _write_csv(folder / "Questions.csv", ["Question ID", "Type", "Statement"], rows)

    _replace_folder(out / MMVP_DIR, mmvp)
    if with_statements:
        _replace_folder(out / VLM_DIR, vlm)
    else:
        shutil.rmtree(out / VLM_DIR, ignore_errors=True)
    return Views(mmvp_pairs=len(kept), written=sum(notes.get(p.pair, Annotation()).written for p in kept),
                 vlm_pairs=len(with_statements), dropped=len(pairs) - len(kept))


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another file system, or no hard links: a copy
        shutil.copyfile(src, dst)


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _replace_folder(final: Path, build: Callable[[Path], None]) -> None:
    """Build the folder beside ``final`` and swap it in, so a crash leaves the old view or the new one."""
    tmp, old = final.with_name(f".{final.name}.new"), final.with_name(f".{final.name}.old")
    for stale in (tmp, old):
        shutil.rmtree(stale, ignore_errors=True)
    tmp.mkdir(parents=True)
    build(tmp)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
