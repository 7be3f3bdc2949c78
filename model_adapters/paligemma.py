"""PaliGemma and PaliGemma 2: task prefixes instead of a chat template ("answer en", "caption en", "detect").

The processor puts the image tokens and ``<bos>`` before the prefix and ends it with a newline, so the
prompt text is the bare prefix (also what vLLM expects). Boxes: four ``<locNNNN>`` tokens, y1 x1 y2 x2 on
0-1023 (format ``paligemma``); they are ordinary vocabulary tokens and survive decoding.
"""

from .base import Checkpoint, DEFAULT_KIND, FixedPromptAdapter
from .protocols import Entry

_BV = "google-research/big_vision big_vision/configs/proj/paligemma/transfers"

ADAPTER = FixedPromptAdapter(
    family="paligemma",
    default_checkpoint="google/paligemma-3b-mix-224",
    model_types=("paligemma",),
    tiny_variants={"paligemma": ("paligemma",)},
    checkpoints={
        "paligemma-3b-mix-224": Checkpoint("google/paligemma-3b-mix-224", "paligemma"),
        "paligemma-3b-mix-448": Checkpoint("google/paligemma-3b-mix-448", "paligemma"),
        "paligemma2-3b-mix-224": Checkpoint("google/paligemma2-3b-mix-224", "paligemma"),
        "paligemma2-3b-mix-448": Checkpoint("google/paligemma2-3b-mix-448", "paligemma"),
        "paligemma2-10b-mix-448": Checkpoint("google/paligemma2-10b-mix-448", "paligemma"),
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
    protocols={
        "paper": {
            "vqa": Entry("answer en {question}", source=f"{_BV}/vqav2.py, gqa.py, textvqa.py (strfmt 'answer en "
                                                       "{{question}}')"),
            "caption": Entry("caption en", source=f"{_BV}/cococap.py"),
            "grounding": Entry("detect {expression}", source="google/paligemma-3b-mix-224 model card (mix prompts: "
                                                           "'detect [entity]')"),
            # PREFIX 'answer en ' + ' {question}': big_vision's format string leaves two spaces.
            "choice": Entry("answer en  {question} choose from: {options}", options="tab",
                            source=f"{_BV}/aokvqa_mc.py (PROMPT 'choose from:', PROMPT_SEP ' \\t '; the answer is "
                                   "the option's text)"),
        },
    },
)
