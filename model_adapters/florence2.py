"""Florence-2 through transformers' native Florence2ForConditionalGeneration (an encoder-decoder).

Prompts are task tokens: ``<CAPTION>``, ``<CAPTION_TO_PHRASE_GROUNDING>{expr}``; the processor turns them
into its text prompts. Boxes are ``<loc_N>`` x4 on 0-999 (format ``florence2``); they are special tokens,
so outputs are decoded keeping special tokens and ``<s>``/``</s>``/``<pad>`` are removed here. Florence-2
has no VQA task: other kinds send the task's text as it is. Use the transformers-format checkpoints
(``florence-community/*``); microsoft/Florence-2-* ship remote code with another weight layout.
"""

from .base import Checkpoint, DEFAULT_KIND, FixedPromptAdapter
from .protocols import Entry

ADAPTER = FixedPromptAdapter(
    family="florence2",
    default_checkpoint="florence-community/Florence-2-large",
    model_types=("florence2",),
    tiny_variants={"florence2": ("florence2",)},
    checkpoints={
        "florence-2-base": Checkpoint("florence-community/Florence-2-base", "florence2"),
        "florence-2-large": Checkpoint("florence-community/Florence-2-large", "florence2"),
        "florence-2-base-ft": Checkpoint("florence-community/Florence-2-base-ft", "florence2"),
        "florence-2-large-ft": Checkpoint("florence-community/Florence-2-large-ft", "florence2"),
    },
    box_format="florence2",
    hf_model_class="Florence2ForConditionalGeneration",
    instructions={
        "caption": "<CAPTION>",
        "grounding": "<CAPTION_TO_PHRASE_GROUNDING>{expression}",
        DEFAULT_KIND: "{prompt}",
    },
    skip_special_tokens=False,
    clean_patterns=(r"</?s>", r"<pad>"),
    protocols={
        "paper": {
            "caption": Entry("<CAPTION>", source="microsoft/Florence-2-large model card (task token <CAPTION>)"),
            "grounding": Entry("<CAPTION_TO_PHRASE_GROUNDING>{expression}",
                               source="microsoft/Florence-2-large model card (task token <CAPTION_TO_PHRASE_GROUNDING> "
                                      "+ text; Florence-2 reports RefCOCO with its fine-tuned -ft checkpoints)"),
        },
    },
)
