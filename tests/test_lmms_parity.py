"""Scorer parity with lmms-eval: the same predictions go to lmms-eval's own scorers (``process_results`` and
aggregations imported from each task's ``utils.py``) and to evalkit's tasks; the numbers must agree.

Where evalkit deliberately differs (docs/lmms_eval.md, "Where the scores differ") the difference is
asserted as documented, so the document cannot silently go stale. Skipped only when lmms-eval is not
installed.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from evalkit.core.results import SampleRecord
from evalkit.metrics.caption_corpus import METRIC_NAMES
from evalkit.tasks import get_task
from evalkit.tasks.base import ParseContext

pytest.importorskip("lmms_eval")


def lmms_utils(task_dir: str, module: str = "utils") -> ModuleType:
    """lmms-eval's ``tasks/<task_dir>/<module>.py``, imported through the bridge's import helper."""
    from evalkit.interop.lmms_bridge import lmms_api

    lmms_api()
    return importlib.import_module(f"lmms_eval.tasks.{task_dir}.{module}")


def evalkit_record(task: Any, output: str, target: Any, metadata: dict[str, Any] | None = None,
                   box_format: str = "norm_xyxy", sid: str = "0") -> SampleRecord:
    """What the runner stores for one generation: parse (after the adapter's strip), then score."""
    rec = SampleRecord(id=sid, task=task.name, prompt="p", output=output, target=target, metadata=metadata or {})
    rec.parsed = task.parse(output.strip(), rec.metadata, ParseContext(box_format=box_format))
    rec.scores = task.score(rec)
    return rec


# -- VQA: VQAv2, OK-VQA, TextVQA -------------------------------------------------------------------

# (prediction, ten human answers): ordinary answers on which the two normalizations agree.
VQA_SAME: list[tuple[str, list[str]]] = [
    ("yes", ["yes"] * 10),
    ("Yes", ["yes"] * 7 + ["no"] * 3),
    ("no", ["yes"] * 7 + ["no"] * 3),  # 3 matching annotators: 0.9
    ("two", ["2"] * 4 + ["3"] * 6),  # number words become digits
    ("a dog", ["dog"] * 2 + ["puppy"] * 8),  # articles dropped
    ("dog.", ["dog"] * 10),  # trailing period
    ("1,000", ["1000"] * 5 + ["100"] * 5),  # digit grouping comma
    ("2.5", ["2.5"] * 10),  # decimal point kept
    ("red and white", ["red and white"] * 3 + ["red"] * 7),
    ("  Blue\n", ["blue"] * 3 + ["navy"] * 7),
    ("the man's hat", ["man's hat"] * 4 + ["hat"] * 6),
    ("", ["yes"] * 10),
    ("giraffe", ["zebra"] * 10),
    ("Tennis Racket", ["tennis racket", "racket", "tennis racquet", "racket", "tennis racket",
                       "racquet", "tennis racket", "racket", "tennis", "tennis racket"]),
    ("t shirt", ["t-shirt"] * 10),  # '-' is punctuation in both (the official list at a013f00)
    ("yes!", ["yes"] * 10),  # '!' likewise
    ("dont", ["don't"] * 10),  # both contraction maps write the ASCII apostrophe
    ("10 30", ["10:30"] * 10),  # ':' is not punctuation in either: 0
]
# (prediction, answers, lmms-eval's score, evalkit's score): the documented differences. lmms-eval's OK-VQA and
# TextVQA scorers run EvalAI's word_tokenize first, which deletes ',' and '?' outright; its VQAv2 scorer does not.
VQA_DIFFERENT: list[tuple[str, list[str], float, float]] = [
    ("left,right", ["left right"] * 10, 0.0, 1.0),  # official: ',' between letters becomes a space
    ("what?is", ["what is"] * 10, 0.0, 1.0),
]


def _vqav2_doc(answers: list[str], qid: int = 1) -> dict[str, Any]:
    return {"question_id": qid, "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                            for i, a in enumerate(answers)]}


def _lmms_vqa(kind: str) -> Any:
    """(prediction, answers) -> lmms-eval's per-sample VQA accuracy for ``kind`` (vqav2, okvqa, textvqa)."""
    if kind == "vqav2":
        fn = lmms_utils("vqav2").vqav2_process_results_val
        return lambda pred, answers: fn(_vqav2_doc(answers), [pred.strip()])["exact_match"]
    fn = {"okvqa": lmms_utils("ok_vqa").ok_vqa_process_results,
          "textvqa": lmms_utils("textvqa").textvqa_process_results}[kind]
    return lambda pred, answers: fn({"question_id": 1, "answers": list(answers)}, [pred.strip()])["exact_match"]


VQA_TASKS = {"vqav2": "vqav2_val", "okvqa": "okvqa_val", "textvqa": "textvqa_val"}


@pytest.mark.parametrize("kind", sorted(VQA_TASKS))
def test_vqa_accuracy_matches_lmms_eval_per_sample_and_overall(kind: str) -> None:
    lmms = _lmms_vqa(kind)
    task = get_task(VQA_TASKS[kind])
    records = [evalkit_record(task, pred, answers, sid=str(i)) for i, (pred, answers) in enumerate(VQA_SAME)]
    lmms_scores = [lmms(pred, answers) for pred, answers in VQA_SAME]
    for rec, expected in zip(records, lmms_scores):
        assert rec.scores["accuracy"] == pytest.approx(expected, abs=1e-12), rec.output
    assert lmms_scores[1] == 1.0 and lmms_scores[2] == pytest.approx(0.9) and lmms_scores[3] == 1.0
    assert lmms_scores[12] == 0.0  # "giraffe" vs ten "zebra"
    overall = task.aggregate(records)["accuracy"]
    assert overall.value == pytest.approx(100 * sum(lmms_scores) / len(lmms_scores), abs=1e-4)


@pytest.mark.parametrize("kind", sorted(VQA_TASKS))
def test_vqa_documented_punctuation_differences(kind: str) -> None:
    lmms = _lmms_vqa(kind)
    task = get_task(VQA_TASKS[kind])
    for pred, answers, lmms_expected, evalkit_expected in VQA_DIFFERENT:
        if kind == "vqav2":  # no word_tokenize step there: it agrees with the official script
            lmms_expected = evalkit_expected
        assert lmms(pred, answers) == lmms_expected, pred
        assert evalkit_record(task, pred, answers).scores["accuracy"] == evalkit_expected, pred


def test_vqa_single_answer_is_zero_in_lmms_eval_and_an_error_in_evalkit() -> None:
    """Leave-one-out over one answer leaves nobody to agree with: lmms-eval scores 0, evalkit refuses."""
    assert _lmms_vqa("okvqa")("yes", ["yes"]) == 0.0
    task = get_task("okvqa_val")
    rec = SampleRecord(id="0", task=task.name, prompt="p", output="yes", parsed="yes", target=["yes"])
    assert isinstance(task.score_records([rec])[0], Exception)


# -- RefCOCO bbox_rec -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def refcoco_docs(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """lmms-eval's own preprocessing (one document per expression, bbox normalized) of the RefCOCO fixture."""
    from evalkit.testing.hub_fixtures import write_fixture

    utils = lmms_utils("refcoco", "utils_rec")
    import datasets

    root = tmp_path_factory.mktemp("refcoco")
    folder = write_fixture("lmms-lab/RefCOCO", root, n=6, seed=3)
    files = [str(p) for p in sorted((folder / "data").glob("val-*.parquet"))]
    raw = datasets.Dataset.from_parquet(files, cache_dir=str(root / "cache"))
    return [{k: v for k, v in doc.items() if k != "image"} for doc in utils.refcoco_bbox_rec_preprocess_dataset(raw)]


def _norm_box(doc: dict[str, Any]) -> list[float]:
    return [float(v) for v in doc["bbox"]]


def _fmt(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in box) + "]"


def _grounding_outputs(doc: dict[str, Any], k: int) -> str:
    """Predictions in lmms-eval's [0, 1] format: exact, shifted, shrunk, enlarged, unparseable."""
    x1, y1, x2, y2 = _norm_box(doc)
    w, h = x2 - x1, y2 - y1
    return [
        _fmt([x1, y1, x2, y2]),
        _fmt([x1 + 0.1 * w, y1, min(1.0, x2 + 0.1 * w), y2]),
        _fmt([x1 + 0.3 * w, y1 + 0.3 * h, x2 - 0.3 * w, y2 - 0.3 * h]),
        f"The box is {_fmt([max(0.0, x1 - w), max(0.0, y1 - h), min(1.0, x2 + w), min(1.0, y2 + h)])}.",
        "I cannot find it.",
    ][k % 5]


def _evalkit_grounding(task: Any, doc: dict[str, Any], output: str, fmt: str = "norm_xyxy") -> SampleRecord:
    width, height = doc["image_width"], doc["image_height"]
    x1, y1, x2, y2 = _norm_box(doc)
    target = [x1 * width, y1 * height, x2 * width, y2 * height]  # the pixel box [x, y, x + w, y + h]
    return evalkit_record(task, output, target, {"width": width, "height": height}, box_format=fmt)


def test_refcoco_iou_and_accuracy_match_lmms_eval(refcoco_docs: list[dict[str, Any]]) -> None:
    utils = lmms_utils("refcoco", "utils_rec")
    task = get_task("refcoco_val")
    assert len(refcoco_docs) >= 12  # one document per referring expression
    lmms_items, records = [], []
    for k, doc in enumerate(refcoco_docs):
        output = _grounding_outputs(doc, k)
        item = utils.refcoco_bbox_rec_process_result(doc, [output])["refcoco_IoU"]
        rec = _evalkit_grounding(task, doc, output)
        assert rec.scores["iou"] == pytest.approx(utils.compute_iou(item["bbox"], item["pred"]), abs=1e-4), output
        assert rec.scores["acc@0.5"] == float(utils.compute_accuracy(item["bbox"], item["pred"], 0.5)), output
        lmms_items.append(item)
        records.append(rec)
    metrics = task.aggregate(records)
    assert metrics["acc@0.5"].value == pytest.approx(100 * utils.refcoco_bbox_rec_acc05(lmms_items), abs=1e-4)
    assert metrics["iou"].value == pytest.approx(100 * utils.refcoco_bbox_rec_iou(lmms_items), abs=1e-3)
    assert 0 < metrics["acc@0.5"].value < 100  # the cases cover hits and misses


def test_refcoco_documented_box_differences(refcoco_docs: list[dict[str, Any]]) -> None:
    """lmms-eval reads every answer as [0, 1] floats of the image, unclipped, digits before the point."""
    from evalkit.core.boxes import encode_box

    utils = lmms_utils("refcoco", "utils_rec")
    task = get_task("refcoco_val")
    doc = next(d for d in refcoco_docs if d["image_width"] != d["image_height"])
    width, height = doc["image_width"], doc["image_height"]
    gt = _evalkit_grounding(task, doc, "x").target

    def lmms_iou(output: str) -> float:
        item = utils.refcoco_bbox_rec_process_result(doc, [output])["refcoco_IoU"]
        return utils.compute_iou(item["bbox"], item["pred"])

    # LLaVA-1.5 answers relative to the image padded to a square: evalkit decodes that frame.
    square = encode_box(gt, "norm_xyxy_square", width, height)
    assert _evalkit_grounding(task, doc, square, "norm_xyxy_square").scores["iou"] == pytest.approx(1.0, abs=0.05)
    assert lmms_iou(square) < 0.9
    # Numbers without a leading digit: lmms-eval finds no box ([0, 0, 0, 0]).
    x1, y1, x2, y2 = _norm_box(doc)
    bare = "[" + ", ".join(f"{v:.3f}".lstrip("0") if v < 1 else f"{v:.3f}" for v in (x1, y1, x2, y2)) + "]"
    assert bare.startswith("[.") and lmms_iou(bare) == 0.0
    assert _evalkit_grounding(task, doc, bare).scores["iou"] == pytest.approx(1.0, abs=0.02)
    # A box reaching outside the image: evalkit clips it to the image (IoU = the target's share of the image),
    # lmms-eval keeps its full area (4x the image here).
    area = (x2 - x1) * (y2 - y1)
    outside = "[-0.5, -0.5, 1.5, 1.5]"
    assert _evalkit_grounding(task, doc, outside).scores["iou"] == pytest.approx(area, rel=0.02)
    assert lmms_iou(outside) == pytest.approx(area / 4, rel=1e-6)


# -- captioning: COCO Karpathy, NoCaps, Flickr30k --------------------------------------------------

CAPTION_REFS = [
    ["a man riding a horse on a beach", "a person on a horse near the ocean", "a rider and his horse at the shore",
     "a man rides a brown horse along the sand", "horse and rider on the beach at sunset"],
    ["a plate of food with broccoli and rice", "a dish of rice with green vegetables", "broccoli and rice on a plate",
     "a healthy meal of rice and broccoli", "white plate holding rice and broccoli"],
    ["two dogs playing in the snow", "a pair of dogs running through snow", "dogs play outside in winter",
     "two puppies in the snow", "a couple of dogs chase each other in the snow"],
    ["a red bus parked on a city street", "a double decker bus on the road", "a red bus next to a building",
     "a bus waiting at a stop in the city", "red public transit bus on a street"],
    ["a cat sleeping on a laptop keyboard", "a kitten lying on a computer", "a cat naps on the keyboard",
     "cat resting on an open laptop", "a sleepy cat on top of a laptop"],
]
CAPTION_PREDS = ["a man riding a horse on the beach", "a plate of rice and broccoli", "a dog in the snow",
                 "a bus", "a cat on a laptop computer"]


def _caption_records(task: Any) -> list[SampleRecord]:
    return [SampleRecord(id=str(i), task=task.name, prompt="p", output=p, parsed=p, target=refs)
            for i, (p, refs) in enumerate(zip(CAPTION_PREDS, CAPTION_REFS))]


# evalkit task -> lmms-eval task folder, its process_results, its aggregations' prefix, a document builder
CAPTION_CASES = {
    "coco_karpathy_test": ("coco_cap", "coco_process_result_karpathy", "coco",
                           lambda i, refs: {"filename": f"COCO_val2014_{391895 + i:012d}.jpg", "imgid": i,
                                            "sentences": refs}),
    "nocaps_val": ("nocaps", "nocaps_process_result", "nocaps",
                   lambda i, refs: {"image_id": i, "annotations_captions": refs}),
    "flickr30k_test": ("flickr30k", "flickr_process_result", "flickr",
                       lambda i, refs: {"img_id": str(1000 + i), "caption": refs}),
}
# COCO metric -> lmms-eval aggregation suffix. METEOR is left out: both sides hand the same tokenized
# captions to pycocoevalcap's Meteor jar (BLEU, ROUGE-L and CIDEr equality shows the tokens are the same),
# and each jar start costs ~8 s.
_AGGREGATIONS = {"Bleu_1": "bleu1", "Bleu_2": "bleu2", "Bleu_3": "bleu3", "Bleu_4": "bleu4", "ROUGE_L": "rougel",
                 "CIDEr": "cider"}
_EVALKIT_NAMES = {coco: ours for ours, coco in METRIC_NAMES.items()}


@pytest.mark.parametrize("name", sorted(CAPTION_CASES))
def test_caption_metrics_match_lmms_eval(name: str, tmp_path: Path) -> None:
    import dataclasses

    folder, process, prefix, make_doc = CAPTION_CASES[name]
    utils = lmms_utils(folder)
    items = [getattr(utils, process)(make_doc(i, refs), [pred])[f"{prefix}_CIDEr"]
             for i, (pred, refs) in enumerate(zip(CAPTION_PREDS, CAPTION_REFS))]
    task = get_task(name)
    task = dataclasses.replace(task, scoring=dataclasses.replace(task.scoring, metrics=("bleu", "rouge_l", "cider")))
    ours = task.aggregate(_caption_records(task))
    args = SimpleNamespace(output_path=str(tmp_path))  # lmms-eval writes submission files there
    for coco_name, suffix in _AGGREGATIONS.items():
        theirs = getattr(utils, f"{prefix}_{suffix}")(items, args)
        assert ours[_EVALKIT_NAMES[coco_name]].value == pytest.approx(100 * theirs, abs=1e-4), coco_name
    assert ours["cider"].value > 10  # a real corpus score, not a degenerate 0


# -- MMVP --------------------------------------------------------------------------------------------

# (Index, correct answer, prediction): clear answers that both extractors read the same way.
MMVP_SAME: list[tuple[int, str, str]] = [
    (1, "(a)", "A"), (2, "(b)", "B"),  # pair 0: both right
    (3, "(a)", "(a)"), (4, "(b)", "(a)"),  # pair 1: one wrong
    (5, "(b)", "B."), (6, "(a)", "The answer is A"),  # pair 2: both right
    (7, "(a)", "Option B"), (8, "(b)", "b"),  # pair 3: one wrong
    (9, "(b)", "(B) Right"), (10, "(a)", "A. Left"),  # pair 4: both right
]
# (correct answer, prediction, lmms-eval right?, evalkit right?): the documented extraction differences.
MMVP_DIFFERENT: list[tuple[str, str, bool, bool]] = [
    ("(a)", "A bird.", True, False),  # evalkit reads the article "A", not option A
    ("(a)", "There is a cat", True, False),  # lmms-eval's case-insensitive match finds "a " inside the sentence
    ("(a)", "(a) is wrong, (b) is right", True, False),  # evalkit: two options named, ambiguous
]


def _mmvp_pairs(utils: ModuleType, task: Any, cases: list[tuple[int, str, str]]) -> tuple[list[Any], list[Any]]:
    lmms_items, records = [], []
    for index, answer, pred in cases:
        doc = {"Index": index, "Question": "Where is the dog?", "Options": "(a) Left (b) Right",
               "Correct Answer": answer}
        lmms_items.append(utils.mmvp_process_results(doc, [pred.strip()])["mmvp_accuracy"])
        meta = {"index": index, "pair_id": (index - 1) // 2, "options": ["Left", "Right"]}
        records.append(evalkit_record(task, pred, 0 if answer == "(a)" else 1, meta, sid=str(index)))
    return lmms_items, records


def test_mmvp_accuracy_and_pair_accuracy_match_lmms_eval() -> None:
    utils = lmms_utils("mmvp")
    task = get_task("mmvp")
    lmms_items, records = _mmvp_pairs(utils, task, MMVP_SAME)
    assert [r.scores["accuracy"] == 1.0 for r in records] == [i["is_correct"] for i in lmms_items]
    metrics = task.aggregate(records)
    assert metrics["accuracy"].value == pytest.approx(100 * utils.mmvp_aggregate_results(lmms_items))
    assert metrics["pair_accuracy"].value == pytest.approx(100 * utils.mmvp_aggregate_pair_results(lmms_items))
    assert metrics["pair_accuracy"].value == pytest.approx(60.0) and metrics["pair_accuracy"].n == 5


def test_mmvp_documented_extraction_differences() -> None:
    utils = lmms_utils("mmvp")
    task = get_task("mmvp")
    for answer, pred, lmms_right, evalkit_right in MMVP_DIFFERENT:
        lmms_items, records = _mmvp_pairs(utils, task, [(1, answer, pred)])
        assert lmms_items[0]["is_correct"] is lmms_right, pred
        assert (records[0].scores["accuracy"] == 1.0) is evalkit_right, pred


def test_parity_cases_are_not_degenerate() -> None:
    """The shared VQA cases exercise partial credit, not only 0 and 1."""
    lmms = _lmms_vqa("vqav2")
    partial = [s for s in (lmms(p, a) for p, a in VQA_SAME) if 0 < s < 1]
    assert len(partial) >= 3 and all(not math.isnan(s) for s in partial)
