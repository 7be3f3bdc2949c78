"""BLIP-2 (OPT and Flan-T5 language models): no chat template, LAVIS's fixed prompt formats.

VQA: "Question: {q} Short answer:" (LAVIS projects/blip2/eval/vqav2_zeroshot_*_eval.yaml); captioning:
no text prompt (the pretrained checkpoints' zero-shot captioning). The processor puts the Q-Former's
query tokens before the text itself. BLIP-2 has no grounding output: boxes are read as the task asked
for them (norm_xyxy).
"""

from .base import DEFAULT_KIND, FixedPromptAdapter

ADAPTER = FixedPromptAdapter(
    family="blip2",
    default_checkpoint="Salesforce/blip2-opt-2.7b",
    model_types=("blip-2",),
    checkpoints={
        "blip2-opt-2.7b": "Salesforce/blip2-opt-2.7b",
        "blip2-opt-6.7b": "Salesforce/blip2-opt-6.7b",
        "blip2-opt-2.7b-coco": "Salesforce/blip2-opt-2.7b-coco",
        "blip2-flan-t5-xl": "Salesforce/blip2-flan-t5-xl",
        "blip2-flan-t5-xxl": "Salesforce/blip2-flan-t5-xxl",
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
)
