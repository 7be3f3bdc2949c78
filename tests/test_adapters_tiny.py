"""Every MLLM family end to end on a tiny real-architecture checkpoint (evalkit.testing.tiny_models).

One record per checkpoint variant, one runner for all of them (the shape of vLLM's multimodal tests):
the family is detected from the saved config.json, the adapter's prompt is the family's exact format
(a golden string, and the token layout the processor makes of it), the hf backend's greedy output is the
same at batch 1 and batch 4 (compared on token ids), and ``evalkit run`` scores shapes_vqa through it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from evalkit.adapters import get_adapter  # noqa: E402
from evalkit.backends import BackendConfig  # noqa: E402
from evalkit.backends.hf import HfBackend  # noqa: E402
from evalkit.cli import main  # noqa: E402
from evalkit.runner.models import resolve_model  # noqa: E402
from evalkit.core.types import GenerationSettings, Sample  # noqa: E402


@dataclass(frozen=True)
class Case:
    variant: str  # key of evalkit.testing.tiny_models.VARIANTS
    family: str
    model_type: str
    prompt: str  # the VQA prompt; {q} = bare question, {full} = question with the task instruction
    layout: str  # what the processor makes of it, decoded keeping special tokens ({q}, {full} as above)
    box_format: str


QWEN2_CHAT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>{img}"
              "<|vision_end|>{{full}}<|im_end|>\n<|im_start|>assistant\n")
IMG4 = "<image>" * 4
CASES = [
    Case("blip2_opt", "blip2", "blip-2", "Question: {q} Short answer:", IMG4 + "<s>Question: {q} Short answer:",
         "norm_xyxy"),
    Case("blip2_t5", "blip2", "blip-2", "Question: {q} Short answer:", IMG4 + "Question: {q} Short answer:</s>",
         "norm_xyxy"),
    Case("instructblip", "instructblip", "instructblip", "Question: {q} Short answer:",
         IMG4 + "<s>Question: {q} Short answer:", "norm_xyxy"),
    Case("qwen2_vl", "qwen_vl", "qwen2_vl", QWEN2_CHAT.format(img="<|image_pad|>"),
         QWEN2_CHAT.format(img="<|image_pad|>" * 4), "qwen_vl"),
    Case("qwen2_5_vl", "qwen_vl", "qwen2_5_vl", QWEN2_CHAT.format(img="<|image_pad|>"),
         QWEN2_CHAT.format(img="<|image_pad|>" * 4), "pixel"),
    Case("qwen3_vl", "qwen_vl", "qwen3_vl",
         "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{full}<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>{full}<|im_end|>\n"
         "<|im_start|>assistant\n", "internvl"),
    Case("qwen3_vl_moe", "qwen_vl", "qwen3_vl_moe",
         "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>{full}<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>user\n<|vision_start|>" + "<|image_pad|>" * 4 + "<|vision_end|>{full}<|im_end|>\n"
         "<|im_start|>assistant\n", "internvl"),
    Case("paligemma", "paligemma", "paligemma", "answer en {q}", IMG4 + "<bos>answer en {q}\n", "paligemma"),
    Case("idefics2", "idefics", "idefics2", "User:<image>{full}<end_of_utterance>\nAssistant:",
         "<s>User:<fake_token_around_image>" + IMG4 + "<fake_token_around_image> {full}<end_of_utterance>\nAssistant:",
         "norm_xyxy"),
    Case("idefics3", "idefics", "idefics3", "<|begin_of_text|>User:<image>{full}<end_of_utterance>\nAssistant:",
         "<|begin_of_text|>User:<fake_token_around_image><global-img>" + IMG4
         + "<fake_token_around_image>{full}<end_of_utterance>\nAssistant:", "norm_xyxy"),
    Case("kosmos2", "kosmos2", "kosmos-2", "Question: {q} Answer:", "Question: {q} Answer:", "kosmos2",
         ),
    Case("internvl", "internvl", "internvl",
         "<|im_start|>user\n<IMG_CONTEXT>\n{full}<|im_end|>\n<|im_start|>assistant\n",
         "<|im_start|>user\n<img>" + "<IMG_CONTEXT>" * 4 + "</img>\n{full}<|im_end|>\n<|im_start|>assistant\n",
         "internvl"),
    Case("florence2", "florence2", "florence2", "{full}", "<image>" * 17 + "<s>{full}</s>", "florence2",
         ),
    # 64x48 px -> anyres: a 32 px base image and 64x32 px of tiles, with a newline embedding per tile row
    # llava-v1.6-mistral-7b-hf's and llava-onevision-qwen2-*-ov-hf's own chat templates (tiny_models)
    Case("llava_next", "llava", "llava_next", "[INST] <image>\n{full} [/INST]",
         "<s>[INST] " + "<image>" * 24 + "\n{full} [/INST]", "norm_xyxy"),
    Case("llava_onevision", "llava", "llava_onevision",
         "<|im_start|>user <image>\n{full}<|im_end|><|im_start|>assistant\n",
         "<|im_start|>user " + "<image>" * 24 + "\n{full}<|im_end|><|im_start|>assistant\n", "norm_xyxy"),
]
IDS = [c.variant for c in CASES]


def test_cases_are_the_family_records_tiny_checkpoints() -> None:
    """CASES runs every tiny checkpoint the family records name (LLaVA-1.5's tiny_llava and the encoders are
    run by their own tests), each under the family and model_type its record gives it."""
    from evalkit.adapters import all_adapters

    named = {(v, a.family, mt) for a in all_adapters() if not a.encoder
             for mt, variants in a.tiny_variants.items() for v in variants if v != "tiny_llava"}
    assert {(c.variant, c.family, c.model_type) for c in CASES} == named
QUESTION = "What color is the circle?"
FULL = QUESTION + "\nAnswer the question using a single word or phrase."


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny checkpoints, built on first use and shared by the tests of this module."""
    return {}


def folder_of(case: Case, folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.testing.tiny_models import build

    if case.variant not in folders:
        folders[case.variant] = build(case.variant, tmp_path_factory.mktemp(case.variant))
    return folders[case.variant]


def load_backend(folder: Path) -> HfBackend:
    spec = resolve_model(str(folder))
    backend = HfBackend(spec, get_adapter(spec.family), BackendConfig(device="cpu", dtype="float32"))
    backend.load()
    return backend


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_detects_family_and_box_format(case: Case, folders: dict[str, Path],
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    from transformers import AutoConfig

    folder = folder_of(case, folders, tmp_path_factory)
    spec = resolve_model(str(folder))
    assert (spec.family, spec.model_type) == (case.family, case.model_type)
    assert get_adapter(spec.family).box_format_for(spec.model_type) == case.box_format
    n_params = sum(p.numel() for p in _model(folder).parameters())
    assert n_params < 5_000_000, n_params
    assert AutoConfig.from_pretrained(str(folder)).model_type == case.model_type


def _model(folder: Path):  # type: ignore[no-untyped-def]
    import transformers

    spec = resolve_model(str(folder))
    cls = getattr(transformers, get_adapter(spec.family).hf_model_class)
    model, info = cls.from_pretrained(str(folder), output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_golden_prompt_and_token_layout(case: Case, folders: dict[str, Path],
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    from PIL import Image
    from transformers import AutoProcessor

    folder = folder_of(case, folders, tmp_path_factory)
    adapter = get_adapter(case.family)
    processor = AutoProcessor.from_pretrained(str(folder))
    sample = Sample(id="q1", question=FULL, metadata={"question_raw": QUESTION})
    prompt = adapter.build_prompt(sample, [Image.new("RGB", (64, 48), (200, 30, 30))], processor, kind="vqa")
    assert prompt.text == case.prompt.format(q=QUESTION, full=FULL)
    assert len(prompt.images) == 1
    inputs = processor(**adapter.processor_inputs([prompt]), return_tensors="pt")
    layout = processor.tokenizer.decode(inputs["input_ids"][0], skip_special_tokens=False)
    if case.family == "kosmos2":  # image slots are written as ordinary ids after <unk>; check their span instead
        mask = inputs["image_embeds_position_mask"][0].tolist()
        assert sum(mask) == 64 and mask[:2] == [0, 0] and mask[2:66] == [1] * 64
        assert layout.startswith("<s><image>") and "</image>" in layout
        layout = layout.split("</image>", 1)[1].lstrip()
    assert layout == case.layout.format(q=QUESTION, full=FULL)


def _shapes_prompts(backend: HfBackend, n: int) -> list:  # type: ignore[type-arg]
    from evalkit.tasks import get_task
    from evalkit.tasks.base import TaskContext

    task = get_task("shapes_vqa")
    samples = list(task.load(TaskContext(limit=n)).samples)
    return [backend.adapter.build_prompt(s, [r.load() for r in s.images], backend.processor, kind=task.kind)
            for s in samples]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_greedy_ids_identical_at_batch_1_and_4(case: Case, folders: dict[str, Path],
                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    backend = load_backend(folder_of(case, folders, tmp_path_factory))
    prompts = _shapes_prompts(backend, 4)
    assert len({len(p.text) for p in prompts}) > 1  # prompts of different lengths: padding is exercised
    settings = GenerationSettings(max_new_tokens=6)
    one_by_one = [backend.generate([p], settings)[0] for p in prompts]
    batched = backend.generate(prompts, settings)
    assert [g.token_ids for g in batched] == [g.token_ids for g in one_by_one]
    assert [g.text for g in batched] == [g.text for g in one_by_one]
    assert all(1 <= g.n_generated_tokens <= 6 for g in batched)
    assert len({tuple(g.token_ids) for g in batched}) > 1  # the model says different things: a real check


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_evalkit_run_shapes_vqa(case: Case, folders: dict[str, Path], tmp_path_factory: pytest.TempPathFactory,
                                tmp_path: Path) -> None:
    folder = folder_of(case, folders, tmp_path_factory)
    code = main(["run", "--model", str(folder), "--tasks", "shapes_vqa", "--limit", "8", "--batch-size", "4",
                 "--output", str(tmp_path), "--no-progress"])
    assert code == 0
    run_dir = next(p for p in tmp_path.iterdir() if (p / "run.json").exists())
    rec = json.loads((run_dir / "run.json").read_text())
    assert rec["status"] == "completed" and rec["model"]["family"] == case.family
    assert rec["model"]["model_type"] == case.model_type
    assert rec["tasks"]["shapes_vqa"]["n"] == 8 and rec["tasks"]["shapes_vqa"]["n_errors"] == 0
    lines = [json.loads(x) for x in (run_dir / "samples" / "shapes_vqa.jsonl").read_text().splitlines()]
    assert len(lines) == 8
    for s in lines:
        q = s["metadata"]["question_raw"]
        assert s["prompt"] == case.prompt.format(q=q, full=q + "\nAnswer the question using a single word or phrase.")
        assert s["error"] is None and s["n_generated_tokens"] >= 1
        assert s["parsed"] == get_adapter(case.family).parse(s["output"], kind="vqa")
