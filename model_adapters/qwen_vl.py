"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL through their processors' chat templates.

Box formats differ per generation (declared per config.json model_type):
- Qwen2-VL: ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` on a 0-1000 grid (format ``qwen_vl``; the tags are
  special tokens and vanish when decoding, the decoder does not need them).
- Qwen2.5-VL: absolute pixel coordinates, JSON ``{"bbox_2d": [x1, y1, x2, y2]}``, in the frame of the image
  as the processor resized it (smart_resize: sides rounded to multiples of 28). Read as ``pixel`` of the
  original image, which is exact only when smart_resize keeps the size (see docs/models.md).
- Qwen3-VL: back to 0-1000 relative coordinates, JSON ``bbox_2d``: ``[x1, y1, x2, y2] / 1000`` is what the
  ``internvl`` decoder reads.
"""

from .base import Adapter

ADAPTER = Adapter(
    family="qwen_vl",
    default_checkpoint="Qwen/Qwen2.5-VL-7B-Instruct",
    model_types=("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "qwen3_vl_moe"),
    checkpoints={
        "qwen2-vl-2b": "Qwen/Qwen2-VL-2B-Instruct",
        "qwen2-vl-7b": "Qwen/Qwen2-VL-7B-Instruct",
        "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
        "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
        "qwen2.5-vl-32b": "Qwen/Qwen2.5-VL-32B-Instruct",
        "qwen2.5-vl-72b": "Qwen/Qwen2.5-VL-72B-Instruct",
        "qwen3-vl-2b": "Qwen/Qwen3-VL-2B-Instruct",
        "qwen3-vl-4b": "Qwen/Qwen3-VL-4B-Instruct",
        "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
        "qwen3-vl-30b-a3b": "Qwen/Qwen3-VL-30B-A3B-Instruct",
    },
    box_format="qwen_vl",
    box_format_by_model_type={"qwen2_5_vl": "pixel", "qwen3_vl": "internvl", "qwen3_vl_moe": "internvl"},
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
)
