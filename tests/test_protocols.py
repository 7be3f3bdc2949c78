"""Prompt protocols (--protocol): golden prompts per (family, task kind, protocol) rendered through the real chat
templates, generation limits, the run.json record, --resume, compare and leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evalkit.adapters import all_adapters, get_adapter
from evalkit.adapters.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from evalkit.core.errors import UsageError
from evalkit.core.types import GenerationSettings, Sample
from evalkit.testing.tiny_models import (INTERNVL_TEMPLATE, LLAVA_15_HF_TEMPLATE, LLAVA_NEXT_MISTRAL_TEMPLATE,
                                         LLAVA_ONEVISION_TEMPLATE, QWEN2_VL_TEMPLATE, QWEN3_VL_TEMPLATE)

Q = "Is the dog facing left or right?"
VQA = Sample(id="v", question=Q + "\nAnswer the question using a single word or phrase.", metadata={"raw_question": Q})
TEXTVQA = Sample(id="t", question="what is written?\nReference OCR token: stop, sign\nAnswer the question using a "
                 "single word or phrase.", metadata={"raw_question": "what is written?"})
CAPTION = Sample(id="c", question="Provide a one-sentence caption for the provided image.")
EXPR = "the red circle"
GROUNDING = Sample(id="g", question=f"Please provide the bounding box coordinate of the region this sentence "
                   f"describes: {EXPR}.", metadata={"expression": EXPR})
# As tasks/mmvp.py writes it: the question, MMVP's own option line, the letter instruction; options in metadata.
CHOICE = Sample(id="m", question=f"{Q}\n(a) left (b) right\nAnswer with the option's letter from the given choices "
                "directly.", metadata={"options": ["left", "right"]})
# tasks/mmvp.py also records the bare question (raw_question); the options are laid out by the protocol.
CHOICE_RAW = Sample(id="r", question=f"Q: {Q}\n(a) left (b) right", metadata={"options": ["left", "right"],
                                                                           "raw_question": Q})
SHORT = "\nAnswer the question using a single word or phrase."
LETTER = "\nAnswer with the option's letter from the given choices directly."
VICUNA = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")
LLAVA_V1 = ("A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
            "detailed, and polite answers to the human's questions.")
LMMS_BOX = ("Bounding box coordinates are specified in the format (top-left x, top-left y, bottom-right x, "
            "bottom-right y). All values are floating point numbers bounded between 0 and 1. Please provide the "
            "bounding box coordinate of the region this sentence describes: ")
QWEN_SYS = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
QWEN_USER = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
QWEN_END = "<|im_end|>\n<|im_start|>assistant\n"
OV_END = "<|im_end|><|im_start|>assistant\n"


class TemplateProcessor:
    """A processor whose apply_chat_template is transformers' own renderer over a published chat template."""

    def __init__(self, template: str) -> None:
        self.template = template

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool, tokenize: bool) -> str:
        from transformers.utils.chat_template_utils import render_jinja_template

        rendered, _ = render_jinja_template(conversations=[messages], chat_template=self.template,
                                            add_generation_prompt=add_generation_prompt)
        return rendered[0]


# (family, model_type, chat template (None: fixed prompt format), sample, kind, protocol, the whole rendered prompt)
GOLDEN = [
    # LLaVA-1.5 (llava-hf template): evalkit, LLaVA's own vicuna_v1 eval, the MMVP script, lmms-eval's llava wrapper
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, VQA, "vqa", "evalkit", f"USER: <image>\n{VQA.question} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, VQA, "vqa", "paper", f"{VICUNA} USER: <image>\n{VQA.question} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, TEXTVQA, "vqa", "paper",
     f"{VICUNA} USER: <image>\n{TEXTVQA.question} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, TEXTVQA, "vqa", "lmms-eval",
     f"{VICUNA} USER: <image>\nwhat is written?{SHORT} ASSISTANT:"),  # lmms-eval: ocr false
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, CHOICE, "choice", "evalkit", f"USER: <image>\n{CHOICE.question} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, CHOICE, "choice", "paper",
     f"{LLAVA_V1} USER: <image>\n{Q} (a) left (b) right ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, CHOICE, "choice", "lmms-eval",
     f"{VICUNA} USER: <image>\n{Q}\nA. left\nB. right{LETTER} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, GROUNDING, "grounding", "lmms-eval",
     f"{VICUNA} USER: <image>\n{LMMS_BOX}{EXPR} ASSISTANT:"),
    ("llava", "llava", LLAVA_15_HF_TEMPLATE, CAPTION, "caption", "paper",
     f"{VICUNA} USER: <image>\n{CAPTION.question} ASSISTANT:"),
    # LLaVA-NeXT (Mistral): evaluated with lmms-eval, no system turn
    ("llava", "llava_next", LLAVA_NEXT_MISTRAL_TEMPLATE, CHOICE, "choice", "paper",
     f"[INST] <image>\n{Q}\nA. left\nB. right{LETTER} [/INST]"),
    ("llava", "llava_next", LLAVA_NEXT_MISTRAL_TEMPLATE, CAPTION, "caption", "paper",
     f"[INST] <image>\n{CAPTION.question} [/INST]"),
    ("llava", "llava_next", LLAVA_NEXT_MISTRAL_TEMPLATE, VQA, "vqa", "evalkit", f"[INST] <image>\n{VQA.question} [/INST]"),
    # LLaVA-OneVision: the qwen_1_5 conversation's system turn, rendered by the llava-hf template
    ("llava", "llava_onevision", LLAVA_ONEVISION_TEMPLATE, VQA, "vqa", "evalkit",
     f"<|im_start|>user <image>\n{VQA.question}{OV_END}"),
    ("llava", "llava_onevision", LLAVA_ONEVISION_TEMPLATE, VQA, "vqa", "paper",
     f"<|im_start|>system \nYou are a helpful assistant.<|im_end|><|im_start|>user <image>\n{Q}{SHORT}{OV_END}"),
    ("llava", "llava_onevision", LLAVA_ONEVISION_TEMPLATE, GROUNDING, "grounding", "lmms-eval",
     f"<|im_start|>system \nYou are a helpful assistant.<|im_end|><|im_start|>user <image>\n{LMMS_BOX}{EXPR}{OV_END}"),
    # Qwen-VL: one grounding request per generation; lmms-eval's wrappers add the system turn
    ("qwen_vl", "qwen2_5_vl", QWEN2_VL_TEMPLATE, GROUNDING, "grounding", "paper",
     f"{QWEN_SYS}{QWEN_USER}Locate {EXPR}, output its bbox coordinates using JSON format.{QWEN_END}"),
    ("qwen_vl", "qwen2_5_vl", QWEN2_VL_TEMPLATE, GROUNDING, "grounding", "evalkit",
     f"{QWEN_SYS}{QWEN_USER}{GROUNDING.question}{QWEN_END}"),
    ("qwen_vl", "qwen2_vl", QWEN2_VL_TEMPLATE, GROUNDING, "grounding", "paper",  # Qwen2-VL: no published prompt
     f"{QWEN_SYS}{QWEN_USER}{GROUNDING.question}{QWEN_END}"),
    ("qwen_vl", "qwen3_vl", QWEN3_VL_TEMPLATE, GROUNDING, "grounding", "paper",
     f"{QWEN_USER}Locate {EXPR}, output its bbox coordinates using JSON format.{QWEN_END}"),
    ("qwen_vl", "qwen3_vl", QWEN3_VL_TEMPLATE, VQA, "vqa", "evalkit", f"{QWEN_USER}{VQA.question}{QWEN_END}"),
    ("qwen_vl", "qwen3_vl", QWEN3_VL_TEMPLATE, VQA, "vqa", "lmms-eval", f"{QWEN_SYS}{QWEN_USER}{Q}{SHORT}{QWEN_END}"),
    ("qwen_vl", "qwen2_5_vl", QWEN2_VL_TEMPLATE, CHOICE, "choice", "lmms-eval",
     f"{QWEN_SYS}{QWEN_USER}{Q}\nA. left\nB. right{LETTER}{QWEN_END}"),
    # InternVL: its own eval scripts
    ("internvl", "internvl", INTERNVL_TEMPLATE, TEXTVQA, "vqa", "paper",
     f"<|im_start|>user\n<IMG_CONTEXT>\nwhat is written? Answer the question using a single word or phrase."
     f"{QWEN_END}"),
    ("internvl", "internvl", INTERNVL_TEMPLATE, CHOICE, "choice", "paper",
     f"<|im_start|>user\n<IMG_CONTEXT>\n{Q}\nA. left\nB. right{LETTER}{QWEN_END}"),
    ("internvl", "internvl", INTERNVL_TEMPLATE, GROUNDING, "grounding", "paper",
     f"<|im_start|>user\n<IMG_CONTEXT>\nPlease provide the bounding box coordinate of the region this sentence "
     f"describes: <ref>{EXPR}</ref>{QWEN_END}"),
    # fixed prompt formats (the whole prompt)
    ("paligemma", "paligemma", None, CHOICE, "choice", "paper", f"answer en  {Q} choose from: left \t right"),
    ("paligemma", "paligemma", None, CHOICE, "choice", "evalkit", f"answer en {CHOICE.question}"),
    ("paligemma", "paligemma", None, CHOICE_RAW, "choice", "paper", f"answer en  {Q} choose from: left \t right"),
    ("paligemma", "paligemma", None, VQA, "vqa", "lmms-eval", f"answer en {Q}"),  # no lmms-eval wrapper: generic
    ("blip2", "blip-2", None, CAPTION, "caption", "paper", "a photo of"),
    ("blip2", "blip-2", None, CAPTION, "caption", "evalkit", ""),
    ("instructblip", "instructblip", None, CAPTION, "caption", "paper", "A short image caption."),
    ("instructblip", "instructblip", None, VQA, "vqa", "paper", f"Question: {Q} Short Answer:"),
    ("instructblip", "instructblip", None, VQA, "vqa", "evalkit", f"Question: {Q} Short answer:"),
    ("instructblip", "instructblip", None, VQA, "vqa", "lmms-eval", f"{Q}{SHORT}"),
    ("florence2", "florence2", None, GROUNDING, "grounding", "paper", f"<CAPTION_TO_PHRASE_GROUNDING>{EXPR}"),
    ("kosmos2", "kosmos-2", None, GROUNDING, "grounding", "paper", f"<grounding><phrase> {EXPR}</phrase>"),
]


@pytest.mark.parametrize(("family", "model_type", "template", "sample", "kind", "protocol", "expected"), GOLDEN,
                         ids=[f"{g[0]}-{g[1]}-{g[4]}-{g[5]}-{g[3].id}" for g in GOLDEN])
def test_golden_prompt(family: str, model_type: str, template: str | None, sample: Sample, kind: str,
                       protocol: str, expected: str) -> None:
    adapter = get_adapter(family).bind(protocol, model_type)
    processor = TemplateProcessor(template) if template is not None else None
    assert adapter.build_prompt(sample, ["IMG"] if template else [], processor, kind=kind).text == expected


def test_every_family_renders_every_task_kind_in_every_protocol() -> None:
    """--protocol works for every family and task kind: an entry or, with no official format, the generic text."""
    processor = TemplateProcessor(QWEN3_VL_TEMPLATE)
    open_ended = Sample(id="o", question="Describe the image in detail.")
    samples = {"vqa": VQA, "caption": CAPTION, "grounding": GROUNDING, "choice": CHOICE, "open": open_ended}
    for adapter in all_adapters():
        if adapter.encoder or adapter.family == "openai":
            continue
        for model_type in adapter.model_types:
            for protocol in PROTOCOLS:
                bound = adapter.bind(protocol, model_type)
                for kind, sample in samples.items():
                    text = bound.build_prompt(sample, [], processor, kind=kind).text
                    entry = bound.entry(kind)
                    assert (entry.text is None and entry.system is None) or entry.source, (adapter.family, kind)
                    assert kind == "caption" or text, (adapter.family, model_type, protocol, kind)


def test_unknown_protocol_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--protocol 'papers'.*evalkit, paper, lmms-eval"):
        get_adapter("llava").bind("papers")


def test_generation_limits_follow_the_protocol() -> None:
    task = GenerationSettings(max_new_tokens=16)
    llava = get_adapter("llava")
    assert llava.bind("evalkit", "llava").generation_for("vqa", task) == task
    assert llava.bind("paper", "llava").generation_for("vqa", task).max_new_tokens == 128
    assert llava.bind("paper", "llava").generation_for("choice", task).max_new_tokens == 1024
    assert llava.bind("lmms-eval", "llava").generation_for("caption", task).max_new_tokens == 64
    assert get_adapter("instructblip").bind("paper").generation_for("caption", task).max_new_tokens == 80


def test_protocol_hash_tells_protocols_and_model_types_apart() -> None:
    qwen = get_adapter("qwen_vl")
    hashes = {(p, mt): qwen.bind(p, mt).protocol_hash(["grounding", "vqa"]) for p in PROTOCOLS
              for mt in ("qwen2_vl", "qwen2_5_vl")}
    assert len(set(hashes.values())) == len(hashes)
    assert qwen.bind("paper", "qwen2_5_vl").protocol_hash(["vqa", "grounding"]) == hashes[("paper", "qwen2_5_vl")]
    assert DEFAULT_PROTOCOL == "evalkit"


def test_qwen25_paper_grounding_answer_decodes_as_pixels() -> None:
    """The paper prompt asks for Qwen2.5-VL's JSON; its box format reads that JSON in pixels."""
    from evalkit.core.boxes import decode_box

    qwen = get_adapter("qwen_vl").bind("paper", "qwen2_5_vl")
    out = qwen.parse('```json\n[{"bbox_2d": [10, 20, 110, 220], "label": "the red circle"}]\n```', kind="grounding")
    assert decode_box(out, qwen.box_format_for(qwen.model_type), 640, 480) == (10, 20, 110, 220)


# ---- end to end on the bundled reference model ------------------------------------------------------------

def _run(args: list[str]) -> int:
    from evalkit.cli import main

    return main(["run", "--model", "reference", "--tasks", "shapes_vqa", "--limit", "2", "--device", "cpu",
                 "--batch-size", "2", *args])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("protocols")
    assert _run(["--output", str(out / "evalkit")]) == 0
    assert _run(["--output", str(out / "paper"), "--protocol", "paper"]) == 0
    return next((out / "evalkit").glob("*/run.json")).parent, next((out / "paper").glob("*/run.json")).parent


def test_run_json_records_the_protocol_and_its_hash(two_runs: tuple[Path, Path]) -> None:
    evalkit_run, paper_run = two_runs
    cfg = {p: json.loads((run / "run.json").read_text())["config"] for p, run in zip(("evalkit", "paper"), two_runs)}
    assert cfg["evalkit"]["protocol"] == "evalkit" and cfg["paper"]["protocol"] == "paper"
    assert cfg["evalkit"]["protocol_hash"] != cfg["paper"]["protocol_hash"]
    prompts = [json.loads(line)["prompt"] for line in (paper_run / "samples" / "shapes_vqa.jsonl").read_text()
               .splitlines()]
    assert prompts and all(p.startswith("A chat between a curious user") for p in prompts)


def test_resume_refuses_another_protocol(two_runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    paper_run = two_runs[1]
    record = json.loads((paper_run / "run.json").read_text())
    record["status"] = "interrupted"
    (paper_run / "run.json").write_text(json.dumps(record))
    try:
        assert _run(["--output", str(paper_run.parent), "--protocol", "lmms-eval", "--resume"]) == 2
        assert "protocol" in capsys.readouterr().err
    finally:
        record["status"] = "completed"
        (paper_run / "run.json").write_text(json.dumps(record))


def test_compare_and_leaderboard_flag_different_protocols(two_runs: tuple[Path, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from evalkit.cli import main

    evalkit_run, paper_run = two_runs
    assert main(["compare", str(evalkit_run), str(paper_run)]) == 2
    assert "protocols differ (baseline evalkit, candidate paper)" in capsys.readouterr().err
    assert main(["compare", str(evalkit_run), str(paper_run), "--allow-protocol-change"]) == 0
    assert "compared anyway" in capsys.readouterr().out
    for run in two_runs:
        shutil.copytree(run, tmp_path / run.parent.name / run.name)
    assert main(["leaderboard", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "different prompt protocols (evalkit: 1, paper: 1" in " ".join(out.split())
