"""InternVL 2.5 / 3 in the transformers format (``*-hf`` checkpoints, model_type ``internvl``).

The chat template renders an image as ``<IMG_CONTEXT>``; the processor expands it into ``<img>`` + tiles'
tokens + ``</img>``. Grounding uses InternVL's own evaluation prompt with ``<ref>`` tags; boxes are
``[[x1, y1, x2, y2]]`` on 0-1000 (format ``internvl``). The original remote-code checkpoints
(model_type ``internvl_chat``) are not this family: convert them or use the ``-hf`` releases.
"""

from .base import Adapter

ADAPTER = Adapter(
    family="internvl",
    default_checkpoint="OpenGVLab/InternVL3-1B-hf",
    model_types=("internvl",),
    checkpoints={
        "internvl3-1b": "OpenGVLab/InternVL3-1B-hf",
        "internvl3-2b": "OpenGVLab/InternVL3-2B-hf",
        "internvl3-8b": "OpenGVLab/InternVL3-8B-hf",
        "internvl2.5-8b": "OpenGVLab/InternVL2_5-8B-MPO-hf",
    },
    box_format="internvl",
    instructions={
        "grounding": "Please provide the bounding box coordinate of the region this sentence describes: "
        "<ref>{expression}</ref>",
    },
    # vLLM runs the HF-format architecture (InternVLForConditionalGeneration); tests/test_vllm_families.py.
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
)
