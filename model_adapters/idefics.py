"""Idefics2, Idefics3 and SmolVLM through their processors' chat templates ("User:<image>...").

The processors expand ``<image>`` into the image's tokens (with sub-image splitting where configured).
SmolVLM's processor needs the ``num2words`` package. No grounding output.
"""

from .base import Adapter

ADAPTER = Adapter(
    family="idefics",
    default_checkpoint="HuggingFaceM4/Idefics3-8B-Llama3",
    model_types=("idefics2", "idefics3", "smolvlm"),
    checkpoints={
        "idefics2-8b": "HuggingFaceM4/idefics2-8b",
        "idefics3-8b": "HuggingFaceM4/Idefics3-8B-Llama3",
        "smolvlm-instruct": "HuggingFaceTB/SmolVLM-Instruct",
        "smolvlm2-2.2b": "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
        "smolvlm-256m": "HuggingFaceTB/SmolVLM-256M-Instruct",
    },
    clean_patterns=(r"<end_of_utterance>",),
    # vLLM runs Idefics3 and SmolVLM (not Idefics2).
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    vllm_unsupported={"idefics2": "Idefics2 is not in vLLM's model registry, and its Transformers-modelling fallback "
                                  "fails at engine start ('Idefics2Processor' has no '_get_num_multimodal_tokens')"},
)
