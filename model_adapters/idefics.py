"""Idefics2, Idefics3 and SmolVLM through their processors' chat templates ("User:<image>...").

The processors expand ``<image>`` into the image's tokens (with sub-image splitting where configured).
SmolVLM's processor needs the ``num2words`` package. No grounding output.
"""

from .base import Adapter, Checkpoint
from .protocols import lmms_eval_chat

ADAPTER = Adapter(
    family="idefics",
    default_checkpoint="HuggingFaceM4/Idefics3-8B-Llama3",
    model_types=("idefics2", "idefics3", "smolvlm"),
    tiny_variants={"idefics2": ("idefics2",), "idefics3": ("idefics3",)},
    tiny_missing={"smolvlm": "its processor needs the num2words package, not installed here"},
    checkpoints={
        "idefics2-8b": Checkpoint("HuggingFaceM4/idefics2-8b", "idefics2"),
        "idefics3-8b": Checkpoint("HuggingFaceM4/Idefics3-8B-Llama3", "idefics3"),
        "smolvlm-instruct": Checkpoint("HuggingFaceTB/SmolVLM-Instruct", "idefics3"),
        "smolvlm2-2.2b": Checkpoint("HuggingFaceTB/SmolVLM2-2.2B-Instruct", "smolvlm"),
        "smolvlm-256m": Checkpoint("HuggingFaceTB/SmolVLM-256M-Instruct", "idefics3"),
    },
    clean_patterns=(r"<end_of_utterance>",),
    # vLLM runs Idefics3 and SmolVLM (not Idefics2).
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    vllm_unsupported={"idefics2": "Idefics2 is not in vLLM's model registry, and its Transformers-modelling fallback "
                                  "fails at engine start ('Idefics2Processor' has no '_get_num_multimodal_tokens')"},
    protocols={
        "lmms-eval": lmms_eval_chat(None, "idefics2.py (processor chat template, no system turn)"),
    },
)
