"""InstructBLIP (Vicuna and Flan-T5): the instruction goes to both the Q-Former and the language model.

Prompt formats of the InstructBLIP paper's evaluation templates: VQA "Question: {q} Short answer:",
captioning "A short image description:". No chat template, no grounding output.
"""

from .base import DEFAULT_KIND, FixedPromptAdapter

ADAPTER = FixedPromptAdapter(
    family="instructblip",
    default_checkpoint="Salesforce/instructblip-vicuna-7b",
    model_types=("instructblip",),
    checkpoints={
        "instructblip-vicuna-7b": "Salesforce/instructblip-vicuna-7b",
        "instructblip-vicuna-13b": "Salesforce/instructblip-vicuna-13b",
        "instructblip-flan-t5-xl": "Salesforce/instructblip-flan-t5-xl",
        "instructblip-flan-t5-xxl": "Salesforce/instructblip-flan-t5-xxl",
    },
    hf_model_class="InstructBlipForConditionalGeneration",
    instructions={
        "vqa": "Question: {question} Short answer:",
        "caption": "A short image description:",
        DEFAULT_KIND: "{prompt}",
    },
)
