"""BLIP-2 (OPT and Flan-T5 language models): no chat template, LAVIS's fixed prompt formats.

VQA: "Question: {q} Short answer:" (LAVIS projects/blip2/eval/vqav2_zeroshot_*_eval.yaml); captioning:
no text prompt (the pretrained checkpoints' zero-shot captioning). The processor puts the Q-Former's
query tokens before the text itself. BLIP-2 has no grounding output: boxes are read as the task asked
for them (norm_xyxy).
"""

from .base import Checkpoint, DEFAULT_KIND, FixedPromptAdapter
from .protocols import Entry

_LAVIS = "salesforce/LAVIS lavis/projects/blip2/eval"

ADAPTER = FixedPromptAdapter(
    family="blip2",
    default_checkpoint="Salesforce/blip2-opt-2.7b",
    model_types=("blip-2",),
    tiny_variants={"blip-2": ("blip2_opt", "blip2_t5")},
    checkpoints={
        "blip2-opt-2.7b": Checkpoint("Salesforce/blip2-opt-2.7b", "blip-2"),
        "blip2-opt-6.7b": Checkpoint("Salesforce/blip2-opt-6.7b", "blip-2"),
        "blip2-opt-2.7b-coco": Checkpoint("Salesforce/blip2-opt-2.7b-coco", "blip-2"),
        "blip2-flan-t5-xl": Checkpoint("Salesforce/blip2-flan-t5-xl", "blip-2"),
        "blip2-flan-t5-xxl": Checkpoint("Salesforce/blip2-flan-t5-xxl", "blip-2"),
    },
    hf_model_class="Blip2ForConditionalGeneration",
    instructions={
        "vqa": "Question: {question} Short answer:",
        "caption": "",
        DEFAULT_KIND: "Question: {prompt} Answer:",
    },
    # vLLM runs the OPT checkpoints (its BLIP-2 has no Flan-T5 encoder-decoder path).
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    protocols={
        "paper": {
            "vqa": Entry("Question: {question} Short answer:", max_new_tokens=10,
                         source=f"{_LAVIS}/vqav2_zeroshot_opt_eval.yaml (max_len 10; it decodes with beam search 5)"),
            "caption": Entry("a photo of", max_new_tokens=30,
                             source="salesforce/LAVIS lavis/configs/models/blip2/blip2_caption_opt2.7b.yaml (prompt; "
                                    f"the *-coco checkpoints'), {_LAVIS}/caption_coco_opt2.7b_eval.yaml (max_len 30, "
                                    "min_len 8, 5 beams)"),
        },
    },
)
