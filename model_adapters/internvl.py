"""InternVL 2.5 / 3 in the transformers format (``*-hf`` checkpoints, model_type ``internvl``).

The chat template renders an image as ``<IMG_CONTEXT>``; the processor expands it into ``<img>`` + tiles'
tokens + ``</img>``. Grounding uses InternVL's own evaluation prompt with ``<ref>`` tags; boxes are
``[[x1, y1, x2, y2]]`` on 0-1000 (format ``internvl``). The original remote-code checkpoints
(model_type ``internvl_chat``) are not this family: convert them or use the ``-hf`` releases.
"""

from .base import Adapter, Checkpoint
from .protocols import Entry, lmms_eval_chat

_EVAL = "OpenGVLab/InternVL internvl_chat/eval"

ADAPTER = Adapter(
    family="internvl",
    default_checkpoint="OpenGVLab/InternVL3-1B-hf",
    model_types=("internvl",),
    tiny_variants={"internvl": ("internvl",)},
    checkpoints={
        "internvl3-1b": Checkpoint("OpenGVLab/InternVL3-1B-hf", "internvl"),
        "internvl3-2b": Checkpoint("OpenGVLab/InternVL3-2B-hf", "internvl"),
        "internvl3-8b": Checkpoint("OpenGVLab/InternVL3-8B-hf", "internvl"),
        "internvl2.5-8b": Checkpoint("OpenGVLab/InternVL2_5-8B-MPO-hf", "internvl"),
    },
    box_format="internvl",
    instructions={
        "grounding": "Please provide the bounding box coordinate of the region this sentence describes: "
        "<ref>{expression}</ref>",
    },
    # vLLM runs the HF-format architecture (InternVLForConditionalGeneration); tests/test_vllm_families.py.
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    protocols={
        "paper": {
            # InternVL's textvqa_val entry (no OCR tokens; textvqa_val_ocr is LLaVA's jsonl) and vqav2/okvqa/gqa
            "vqa": Entry("{question} Answer the question using a single word or phrase.", max_new_tokens=10,
                         source=f"{_EVAL}/vqa/evaluate_vqa.py (question + ' ' + base_prompt, max_new_tokens 10; "
                                "5 beams below 20B parameters)"),
            "caption": Entry("Provide a one-sentence caption for the provided image.", max_new_tokens=30,
                             source=f"{_EVAL}/caption/evaluate_caption.py (max_new_tokens 30, min_new_tokens 8; "
                                    "5 beams below 20B parameters)"),
            "grounding": Entry("Please provide the bounding box coordinate of the region this sentence describes: "
                               "<ref>{expression}</ref>", max_new_tokens=100,
                               source=f"{_EVAL}/refcoco/evaluate_grounding.py (max_new_tokens 100)"),
            "choice": Entry("{question}\n{options}\nAnswer with the option's letter from the given choices directly.",
                            options="letters", max_new_tokens=100,
                            source=f"{_EVAL}/mmvp/evaluate_mmvp.py (max_new_tokens 100; it decodes with 5 beams "
                                   "below 20B parameters)"),
        },
        # lmms-eval's internvl3 wrapper calls the remote code's model.chat, whose template adds InternVL's own
        # system message; the -hf checkpoints' chat template is used here instead (docs/protocols.md).
        "lmms-eval": lmms_eval_chat(None, "internvl3.py (model.chat)"),
    },
)
