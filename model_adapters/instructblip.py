"""InstructBLIP (Vicuna and Flan-T5): the instruction goes to both the Q-Former and the language model.

Prompt formats of the InstructBLIP paper's evaluation templates: VQA "Question: {q} Short answer:",
captioning "A short image description:". No chat template, no grounding output.
"""

from .base import Checkpoint, DEFAULT_KIND, FixedPromptAdapter
from .protocols import Entry, lmms_eval_chat

_LAVIS = "salesforce/LAVIS lavis/projects/instructblip"

ADAPTER = FixedPromptAdapter(
    family="instructblip",
    default_checkpoint="Salesforce/instructblip-vicuna-7b",
    model_types=("instructblip",),
    tiny_variants={"instructblip": ("instructblip",)},
    checkpoints={
        "instructblip-vicuna-7b": Checkpoint("Salesforce/instructblip-vicuna-7b", "instructblip"),
        "instructblip-vicuna-13b": Checkpoint("Salesforce/instructblip-vicuna-13b", "instructblip"),
        "instructblip-flan-t5-xl": Checkpoint("Salesforce/instructblip-flan-t5-xl", "instructblip"),
        "instructblip-flan-t5-xxl": Checkpoint("Salesforce/instructblip-flan-t5-xxl", "instructblip"),
    },
    hf_model_class="InstructBlipForConditionalGeneration",
    instructions={
        "vqa": "Question: {question} Short answer:",
        "caption": "A short image description:",
        DEFAULT_KIND: "{prompt}",
    },
    protocols={
        "paper": {
            "vqa": Entry("Question: {question} Short Answer:", max_new_tokens=10,
                         source=f"{_LAVIS}/qa_okvqa_vicuna7b_eval.yaml (max_len 10; beam search 5)"),
            "caption": Entry("A short image caption.", max_new_tokens=80,
                             source=f"{_LAVIS}/caption_coco_vicuna7b_eval_test.yaml (max_len 80, min_len 10; beam "
                                    "search 5)"),
        },
        # lmms-eval's instructblip wrapper sends the task text as the whole prompt.
        "lmms-eval": lmms_eval_chat(None, "instructblip.py (the task text is the prompt)"),
    },
)
