"""Every name `evalkit list models` shows behaves like the real checkpoint folder it stands for.

A family alias or named checkpoint carries the ``model_type`` of the hub checkpoint's config.json (written out
below from the hub configs, independently of the adapters), so its box format and protocol entries are the ones
a local copy of that folder gets. Regression: ``--model qwen2.5-vl-7b --tasks refcoco_val`` decoded Qwen2.5-VL's
JSON pixel boxes with Qwen2-VL's ``(x,y)`` format (every answer unparseable, Acc@0.5 = 0).
"""

from __future__ import annotations

import json

import pytest

from evalkit.adapters import get_adapter
from evalkit.adapters.protocols import PROTOCOLS
from evalkit.cli import main
from evalkit.runner.models import resolve_model

# config.json "model_type" of each hub checkpoint evalkit names (read off the hub repositories' config.json).
REAL_MODEL_TYPES = {
    "llava-hf/llava-1.5-7b-hf": "llava", "llava-hf/llava-1.5-13b-hf": "llava",
    "llava-hf/llava-v1.6-mistral-7b-hf": "llava_next", "llava-hf/llava-v1.6-vicuna-7b-hf": "llava_next",
    "llava-hf/llava-v1.6-34b-hf": "llava_next",
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": "llava_onevision",
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": "llava_onevision",
    "Qwen/Qwen2-VL-2B-Instruct": "qwen2_vl", "Qwen/Qwen2-VL-7B-Instruct": "qwen2_vl",
    "Qwen/Qwen2.5-VL-3B-Instruct": "qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2_5_vl",
    "Qwen/Qwen2.5-VL-32B-Instruct": "qwen2_5_vl", "Qwen/Qwen2.5-VL-72B-Instruct": "qwen2_5_vl",
    "Qwen/Qwen3-VL-2B-Instruct": "qwen3_vl", "Qwen/Qwen3-VL-4B-Instruct": "qwen3_vl",
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3_vl", "Qwen/Qwen3-VL-30B-A3B-Instruct": "qwen3_vl_moe",
    "Salesforce/blip2-opt-2.7b": "blip-2", "Salesforce/blip2-opt-6.7b": "blip-2",
    "Salesforce/blip2-opt-2.7b-coco": "blip-2", "Salesforce/blip2-flan-t5-xl": "blip-2",
    "Salesforce/blip2-flan-t5-xxl": "blip-2",
    "Salesforce/instructblip-vicuna-7b": "instructblip", "Salesforce/instructblip-vicuna-13b": "instructblip",
    "Salesforce/instructblip-flan-t5-xl": "instructblip", "Salesforce/instructblip-flan-t5-xxl": "instructblip",
    "HuggingFaceM4/idefics2-8b": "idefics2", "HuggingFaceM4/Idefics3-8B-Llama3": "idefics3",
    "HuggingFaceTB/SmolVLM-Instruct": "idefics3", "HuggingFaceTB/SmolVLM-256M-Instruct": "idefics3",
    "HuggingFaceTB/SmolVLM2-2.2B-Instruct": "smolvlm",
    "google/paligemma-3b-mix-224": "paligemma", "google/paligemma-3b-mix-448": "paligemma",
    "google/paligemma2-3b-mix-224": "paligemma", "google/paligemma2-3b-mix-448": "paligemma",
    "google/paligemma2-10b-mix-448": "paligemma",
    "microsoft/kosmos-2-patch14-224": "kosmos-2",
    "OpenGVLab/InternVL3-1B-hf": "internvl", "OpenGVLab/InternVL3-2B-hf": "internvl",
    "OpenGVLab/InternVL3-8B-hf": "internvl", "OpenGVLab/InternVL2_5-8B-MPO-hf": "internvl",
    "florence-community/Florence-2-base": "florence2", "florence-community/Florence-2-large": "florence2",
    "florence-community/Florence-2-base-ft": "florence2", "florence-community/Florence-2-large-ft": "florence2",
    "mPLUG/mPLUG-Owl3-7B-240728": "mplugowl3", "mPLUG/mPLUG-Owl3-2B-241014": "mplugowl3",
    "mPLUG/mPLUG-Owl3-1B-241014": "mplugowl3",
    "openai/clip-vit-base-patch32": "clip", "openai/clip-vit-base-patch16": "clip",
    "openai/clip-vit-large-patch14": "clip", "openai/clip-vit-large-patch14-336": "clip",
    "google/siglip-base-patch16-224": "siglip", "google/siglip-large-patch16-384": "siglip",
    "google/siglip-so400m-patch14-224": "siglip", "google/siglip-so400m-patch14-384": "siglip",
}
# The box format each model_type's checkpoints answer in (evalkit.core.boxes; the families' own code).
REAL_BOX_FORMATS = {
    "llava": "norm_xyxy_square", "llava_next": "norm_xyxy", "llava_onevision": "norm_xyxy",
    "qwen2_vl": "qwen_vl", "qwen2_5_vl": "pixel", "qwen3_vl": "internvl", "qwen3_vl_moe": "internvl",
    "internvl": "internvl", "paligemma": "paligemma", "florence2": "florence2", "kosmos-2": "kosmos2",
}
KINDS = ("vqa", "caption", "grounding", "choice", "open")


def listed_names() -> list[str]:
    """Every name `evalkit list models` offers: the family aliases and their named checkpoints."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["list", "models", "--json"]) == 0
    rows = json.loads(out.getvalue())
    return [r["name"] for r in rows if r["name"] not in ("reference", "openai")] + [
        name for r in rows for name in r["checkpoints"]]


NAMES = listed_names()


@pytest.mark.parametrize("name", NAMES)
def test_listed_name_carries_its_checkpoints_model_type(name: str) -> None:
    spec = resolve_model(name)
    real = REAL_MODEL_TYPES[spec.checkpoint]
    assert spec.model_type == real
    adapter = get_adapter(spec.family)
    assert adapter.box_format_for(spec.model_type) == REAL_BOX_FORMATS.get(real, "norm_xyxy")
    # The protocol entries it gets are those of a local folder with that config.json.
    folder_like = resolve_model(spec.checkpoint)  # the hub id typed out
    assert folder_like.model_type == real
    for protocol in PROTOCOLS:
        alias, folder = adapter.bind(protocol, spec.model_type), adapter.bind(protocol, real)
        assert [alias.entry(k) for k in KINDS] == [folder.entry(k) for k in KINDS]


def test_every_listed_checkpoint_is_in_the_real_table() -> None:
    assert len(NAMES) > 50
    assert {resolve_model(n).checkpoint for n in NAMES} <= set(REAL_MODEL_TYPES)


def test_list_models_shows_the_default_checkpoints_box_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["qwen_vl"]["box_format"] == "pixel"  # Qwen2.5-VL-7B, not Qwen2-VL's format
    assert rows["mplug_owl"]["backends"] == [] and "not runnable" in rows["mplug_owl"]["description"]


@pytest.mark.parametrize(("name", "answer", "box"), [
    # Qwen2.5-VL: JSON, absolute pixels (a 640x480 image that smart_resize keeps as it is)
    ("qwen2.5-vl-7b", '```json\n[{"bbox_2d": [64, 96, 320, 288], "label": "the red circle"}]\n```',
     [64.0, 96.0, 320.0, 288.0]),
    ("qwen_vl", '[{"bbox_2d": [64, 96, 320, 288]}]', [64.0, 96.0, 320.0, 288.0]),
    # Qwen3-VL: JSON on 0-1000
    ("qwen3-vl-8b", '[{"bbox_2d": [100, 200, 500, 600]}]', [64.0, 96.0, 320.0, 288.0]),
    # LLaVA-NeXT: relative to the image itself, not to LLaVA-1.5's padded square
    ("llava-v1.6-mistral-7b", "[0.1, 0.2, 0.5, 0.6]", [64.0, 96.0, 320.0, 288.0]),
    ("llava-onevision-7b", "[0.1, 0.2, 0.5, 0.6]", [64.0, 96.0, 320.0, 288.0]),
])
def test_named_checkpoint_grounding_decodes_its_own_box_format(name: str, answer: str, box: list[float]) -> None:
    """The grounding bug: the runner's parse context for a named checkpoint is its model_type's box format."""
    from evalkit.runner.options import RunOptions
    from evalkit.runner.pipeline import Runner
    from evalkit.tasks.base import ParseContext

    runner = Runner(RunOptions(model=name, tasks=["refcoco_val"], progress=False))
    task = runner.tasks[0]
    ctx = ParseContext(box_format=runner.adapter.box_format_for(runner.spec.model_type))
    parsed = task.parse(runner.adapter.parse(answer, kind="grounding"), {"width": 640, "height": 480}, ctx)
    assert parsed == pytest.approx(box)


def test_a_family_no_backend_runs_says_why() -> None:
    from evalkit.core.errors import UsageError
    from evalkit.runner.options import RunOptions
    from evalkit.runner.pipeline import Runner

    with pytest.raises(UsageError, match="the mplug_owl family cannot be run: .*AutoProcessor"):
        Runner(RunOptions(model="mplug-owl3-2b", tasks=["shapes_vqa"], progress=False))
