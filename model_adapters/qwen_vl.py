"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL through their processors' chat templates.

Box formats differ per generation (declared per config.json model_type):
- Qwen2-VL: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000 grid (format ``qwen_vl``; the tags are
  special tokens and vanish when decoding, the decoder does not need them).
- Qwen2.5-VL: absolute pixel coordinates, JSON ``{"bbox_2d": [x1, y1, x2, y2]}``, in the frame of the image
  as the processor resized it (smart_resize: sides rounded to multiples of 28). Read as ``pixel`` of the
  original image, which is exact only when smart_resize keeps the size (see docs/models.md).
- Qwen3-VL: back to 0-1000 relative coordinates, JSON ``bbox_2d``: ``[x1, y1, x2, y2] / 1000`` is what the
  ``internvl`` decoder reads.

Protocols: ``paper`` asks for boxes the way each generation's own cookbook does (Qwen2.5-VL and Qwen3-VL: a JSON
``bbox_2d`` request); Qwen2-VL published no grounding prompt (generic text), and no Qwen-VL generation published
VQA/caption/choice evaluation prompts (generic text). ``lmms-eval``: its task prompts with the system prompt its
qwen2_vl / qwen2_5_vl / qwen3_vl wrappers send ("You are a helpful assistant.", which Qwen3-VL's own template
does not add).
"""

from .base import Adapter, Checkpoint
from .protocols import Entry, lmms_eval_chat

_JSON_BOX = "Locate {expression}, output its bbox coordinates using JSON format."
_COOKBOOK = "QwenLM/Qwen2.5-VL cookbooks/spatial_understanding.ipynb ('Locate the top right brown cake, output its " \
            "bbox coordinates using JSON format.')"

ADAPTER = Adapter(
    family="qwen_vl",
    default_checkpoint="Qwen/Qwen2.5-VL-7B-Instruct",
    model_types=("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"),
    tiny_variants={mt: (mt,) for mt in ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe")},
    checkpoints={
        "qwen2-vl-2b": Checkpoint("Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl"),
        "qwen2-vl-7b": Checkpoint("Qwen/Qwen2-VL-7B-Instruct", "qwen2_vl"),
        "qwen2.5-vl-3b": Checkpoint("Qwen/Qwen2.5-VL-3B-Instruct", "qwen2_5_vl"),
        "qwen2.5-vl-7b": Checkpoint("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl"),
        "qwen2.5-vl-32b": Checkpoint("Qwen/Qwen2.5-VL-32B-Instruct", "qwen2_5_vl"),
        "qwen2.5-vl-72b": Checkpoint("Qwen/Qwen2.5-VL-72B-Instruct", "qwen2_5_vl"),
        "qwen3-vl-2b": Checkpoint("Qwen/Qwen3-VL-2B-Instruct", "qwen3_vl"),
        "qwen3-vl-4b": Checkpoint("Qwen/Qwen3-VL-4B-Instruct", "qwen3_vl"),
        "qwen3-vl-8b": Checkpoint("Qwen/Qwen3-VL-8B-Instruct", "qwen3_vl"),
        "qwen3-vl-30b-a3b": Checkpoint("Qwen/Qwen3-VL-30B-A3B-Instruct", "qwen3_vl_moe"),
    },
    box_format="qwen_vl",
    box_format_by_model_type={"qwen2_5_vl": "pixel", "qwen3_vl": "internvl", "qwen3_vl_moe": "internvl"},
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    protocols={
        "paper": {
            "grounding@qwen2_5_vl": Entry(_JSON_BOX, source=_COOKBOOK),
            "grounding@qwen3_vl": Entry(_JSON_BOX, source=f"{_COOKBOOK}; Qwen3-VL answers on 0-1000 (its own "
                                                          "cookbook's wording not checked here)"),
            "grounding@qwen3_vl_moe": Entry(_JSON_BOX, source=f"{_COOKBOOK}; as Qwen3-VL"),
        },
        "lmms-eval": lmms_eval_chat("You are a helpful assistant.", "qwen2_vl.py, qwen2_5_vl.py, qwen3_vl.py "
                                    "system_prompt"),
    },
)
