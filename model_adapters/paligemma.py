"""PaliGemma and PaliGemma 2: task prefixes instead of a chat template ("answer en", "caption en", "detect").

The processor puts the image tokens and ``<bos>`` before the prefix and ends it with a newline, so the
prompt text is the bare prefix (also what vLLM expects). Boxes: four ``<locNNNN>`` tokens, y1 x1 y2 x2 on
0-1023 (format ``paligemma``); they are ordinary vocabulary tokens and survive decoding.
"""

from .base import DEFAULT_KIND, FixedPromptAdapter

ADAPTER = FixedPromptAdapter(
    family="paligemma",
    default_checkpoint="google/paligemma-3b-mix-224",
    model_types=("paligemma",),
    checkpoints={
        "paligemma-3b-mix-224": "google/paligemma-3b-mix-224",
        "paligemma-3b-mix-448": "google/paligemma-3b-mix-448",
        "paligemma2-3b-mix-224": "google/paligemma2-3b-mix-224",
        "paligemma2-3b-mix-448": "google/paligemma2-3b-mix-448",
        "paligemma2-10b-mix-448": "google/paligemma2-10b-mix-448",
    },
    box_format="paligemma",
    hf_model_class="PaliGemmaForConditionalGeneration",
    instructions={
        "vqa": "answer en {question}",
        "caption": "caption en",
        "grounding": "detect {expression}",
        DEFAULT_KIND: "answer en {prompt}",
    },
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
)
