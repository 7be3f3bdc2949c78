"""LLaVA-1.5, LLaVA-NeXT (1.6) and LLaVA-OneVision, all through their HF processors' chat templates."""

from .base import Adapter

ADAPTER = Adapter(
    family="llava",
    default_checkpoint="llava-hf/llava-1.5-7b-hf",
    model_types=("llava", "llava_next", "llava_onevision"),
    checkpoints={
        "llava-1.5-7b": "llava-hf/llava-1.5-7b-hf",
        "llava-1.5-13b": "llava-hf/llava-1.5-13b-hf",
        "llava-v1.6-mistral-7b": "llava-hf/llava-v1.6-mistral-7b-hf",
        "llava-v1.6-vicuna-7b": "llava-hf/llava-v1.6-vicuna-7b-hf",
        "llava-v1.6-34b": "llava-hf/llava-v1.6-34b-hf",
        "llava-onevision-0.5b": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
        "llava-onevision-7b": "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    },
    # LLaVA-1.5 was trained on boxes relative to the image padded to a square (expand2square).
    box_format="norm_xyxy_square",
    box_format_by_model_type={"llava_next": "norm_xyxy", "llava_onevision": "norm_xyxy"},
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
)
