"""A synthetic OwlEval folder in the exact layout of X-PLUG/mPLUG-Owl's ``OwlEval/``.

    OwlEval/questions.jsonl   {"image": "4.jpg", "question_id": 5, "question": "...", "ability": "a,b,f",
                               "category": ["multi_turn"]}
    OwlEval/cases/<n>.jpg     one JPEG per image
    OwlEval/answer/*.jsonl    six model answer files {"image", "question_id", "question", "answer", "model_id"}

``full=True`` reproduces the real set's shape: 50 images, 82 questions, the same number of questions
per image (dialogues of 2-8 turns). The default is a small set of 6 images and 10 questions. The
real file's quirks are kept: question 2's category is ``["]single_turn"]`` and the answer files
copy questions with small differences (a dropped "?"). Images are shapes scenes (seeded), so
answers can be checked: the reference file (mPLUG-Owl 7B) names the shapes correctly.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from evalkit.testing.hub_fixtures import Scene, random_scene

# Questions per image, images 1..50 in order, as in the real questions.jsonl.
REAL_DIALOGUES: tuple[int, ...] = (
    1, 1, 1, 2, 3, 2, 1, 1, 2, 8, 2, 2, 4, 1, 1, 1, 2, 1, 1, 1, 2, 2, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 2, 2, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 1, 5, 1, 1, 1,
)
SMALL_DIALOGUES: tuple[int, ...] = (1, 1, 2, 3, 1, 2)
MODELS: dict[str, str] = {  # answer file -> model_id, as shipped
    "mPLUG_Owl_7b_answer.jsonl": "mPLUG_Owl_7b:v1",
    "llava_13b_answer.jsonl": "llava-13b",
    "minigpt4_13b_answer.jsonl": "minigpt4-13b",
    "MMreact_answer.jsonl": "MMreact",
    "blip2_13b_answer.jsonl": "blip2-13b",
    "openflamingo_answer.jsonl": "openflamingo",
}
FIRST_TURNS = ("Describe this image.", "What shapes are in this image?", "What is unusual about this image?")
FOLLOW_UPS = ("What color is the {shape}?", "Where is the {shape} in the image?", "How many shapes are there?",
              "Why do you think so?")


def _describe(scene: Scene) -> str:
    names = [s.name for s in scene.shapes]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"The image shows a {listed} on a light background."


def _answer(model: str, question: str, scene: Scene, rng: random.Random) -> str:
    """The reference model answers from the scene; the others are plausible but vaguer or wrong."""
    shape = scene.shapes[0]
    if model == "mPLUG_Owl_7b_answer.jsonl":
        if "color" in question:
            return f"The {shape.kind} is {shape.color}."
        if "Where" in question:
            return f"The {shape.kind} is on the {shape.side} side of the image."
        if "How many" in question:
            return f"There are {len(scene.shapes)} shapes."
        return _describe(scene)
    return rng.choice(["I am not sure.", "It is a picture of some shapes.", f"There is a {shape.kind}.",
                       "The image shows a cat sitting on a sofa."])


def write_owleval(root: Path, seed: int = 0, full: bool = False) -> Path:
    """Write ``root/OwlEval`` (questions, cases, six answer files); returns that folder."""
    rng = random.Random(seed)
    folder = Path(root) / "OwlEval"
    (folder / "cases").mkdir(parents=True, exist_ok=True)
    (folder / "answer").mkdir(exist_ok=True)
    questions: list[dict] = []
    scenes: dict[int, Scene] = {}
    for image_no, size in enumerate(REAL_DIALOGUES if full else SMALL_DIALOGUES, 1):
        scene = random_scene(rng)
        scenes[image_no] = scene
        (folder / "cases" / f"{image_no}.jpg").write_bytes(scene.encode("JPEG"))
        for turn in range(size):
            qid = len(questions) + 1
            if turn == 0:
                text = rng.choice(FIRST_TURNS)
                category = ["single_turn", "multi_turn"] if size > 1 else ["single_turn"]
                ability = "a,b" + rng.choice(["", ",c", ",e", ",d,e"])
            else:
                text = FOLLOW_UPS[(turn - 1) % len(FOLLOW_UPS)].format(shape=scene.shapes[0].kind)
                category, ability = ["multi_turn"], "a,b" + rng.choice(["", ",e"]) + ",f"
            if qid == 2 and category == ["single_turn"]:
                category = ["]single_turn"]  # the shipped file's typo
            questions.append({"image": f"{image_no}.jpg", "question_id": qid, "question": text,
                              "ability": ability, "category": category})
    _write_jsonl(folder / "questions.jsonl", questions)
    for file, model_id in MODELS.items():
        model_rng = random.Random(f"{seed}:{file}")
        rows = []
        for q in questions:
            text = q["question"].rstrip("?") if q["question_id"] == 3 else q["question"]  # as shipped: a lost "?"
            scene = scenes[int(q["image"].split(".")[0])]
            rows.append({"image": q["image"], "question_id": q["question_id"], "question": text,
                         "answer": _answer(file, q["question"], scene, model_rng), "model_id": model_id})
        _write_jsonl(folder / "answer" / file, rows)
    return folder


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
