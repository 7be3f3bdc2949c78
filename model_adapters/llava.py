"""LLaVA-1.5, LLaVA-NeXT (1.6) and LLaVA-OneVision, all through their HF processors' chat templates.

Protocols (docs/protocols.md): ``paper`` is LLaVA-1.5's own evaluation code for model_type ``llava`` (the
vicuna_v1 conversation with its system prompt, the task prompts of its eval jsonl files, MMVP through the MMVP
repository's script) and lmms-eval for NeXT and OneVision, whose releases were evaluated with it (OneVision
with the ``qwen_1_5`` conversation's system turn). ``lmms-eval`` is lmms-eval's ``llava`` (vicuna_v1) and
``llava_onevision`` (qwen_1_5) wrappers.
"""

from .base import Adapter, Checkpoint
from .protocols import Entry, lmms_eval_chat

LLAVA = "haotian-liu/LLaVA"
# llava/conversation.py conv_vicuna_v1 (LLaVA-1.5's eval scripts: --conv-mode vicuna_v1)
VICUNA_V1 = ("A chat between a curious user and an artificial intelligence assistant. "
             "The assistant gives helpful, detailed, and polite answers to the user's questions.")
# llava/conversation.py conv_llava_v1 (the MMVP repository's scripts/evaluate_mllm.py default --conv-mode llava_v1)
LLAVA_V1 = ("A chat between a curious human and an artificial intelligence assistant. "
            "The assistant gives helpful, detailed, and polite answers to the human's questions.")
# LLaVA-NeXT llava/conversation.py conv_qwen_1_5 (lmms-eval's llava_onevision wrapper: conv_template="qwen_1_5")
QWEN_1_5 = "You are a helpful assistant."
_V15 = f"{LLAVA} llava/conversation.py conv_vicuna_v1"
_NEXT_LMMS = lmms_eval_chat(None, "llava.py (conv mistral_instruct/vicuna_v1 per checkpoint: none sent here)")
_OV_LMMS = lmms_eval_chat(QWEN_1_5, "llava_onevision.py conv_template qwen_1_5")
_V15_LMMS = lmms_eval_chat(VICUNA_V1, "llava.py conv_template vicuna_v1")

ADAPTER = Adapter(
    family="llava",
    default_checkpoint="llava-hf/llava-1.5-7b-hf",
    model_types=("llava", "llava_next", "llava_onevision"),
    tiny_variants={"llava": ("tiny_llava",), "llava_next": ("llava_next",), "llava_onevision": ("llava_onevision",)},
    checkpoints={
        "llava-1.5-7b": Checkpoint("llava-hf/llava-1.5-7b-hf", "llava"),
        "llava-1.5-13b": Checkpoint("llava-hf/llava-1.5-13b-hf", "llava"),
        "llava-v1.6-mistral-7b": Checkpoint("llava-hf/llava-v1.6-mistral-7b-hf", "llava_next"),
        "llava-v1.6-vicuna-7b": Checkpoint("llava-hf/llava-v1.6-vicuna-7b-hf", "llava_next"),
        "llava-v1.6-34b": Checkpoint("llava-hf/llava-v1.6-34b-hf", "llava_next"),
        "llava-onevision-0.5b": Checkpoint("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", "llava_onevision"),
        "llava-onevision-7b": Checkpoint("llava-hf/llava-onevision-qwen2-7b-ov-hf", "llava_onevision"),
    },
    # LLaVA-1.5 was trained on boxes relative to the image padded to a square (expand2square).
    box_format="norm_xyxy_square",
    box_format_by_model_type={"llava_next": "norm_xyxy", "llava_onevision": "norm_xyxy"},
    backends=("hf", "vllm"),
    vllm_engine_args={"limit_mm_per_prompt": {"image": 1}},
    protocols={
        "paper": {
            # The task texts are LLaVA-1.5's: VQAv2/GQA "\nAnswer the question using a single word or phrase.",
            # TextVQA with its "Reference OCR token:" line (llava_textvqa_val_v051_ocr.jsonl).
            "vqa": Entry("{prompt}", VICUNA_V1, max_new_tokens=128,
                         source=f"{_V15}; llava/eval/model_vqa_loader.py (max_new_tokens 128); "
                                "scripts/v1_5/eval/vqav2.sh, gqa.sh, textvqa.sh"),
            "choice": Entry("{question} {options}", LLAVA_V1, "paren", max_new_tokens=1024,
                            source="tsb0601/MMVP scripts/evaluate_mllm.py (Question + ' ' + Options, conv llava_v1, "
                                   "max_new_tokens 1024; it samples at temperature 0.2, evalkit decodes greedily)"),
            "default": Entry(None, VICUNA_V1, source=f"{_V15} (system turn); no official prompt for this task kind"),
            **{f"{kind}@llava_next": entry for kind, entry in _NEXT_LMMS.items()},
            **{f"{kind}@llava_onevision": entry for kind, entry in _OV_LMMS.items()},
            "default@llava_next": Entry(),  # not the vicuna_v1 default above
            "default@llava_onevision": Entry(None, QWEN_1_5, source="LLaVA-VL/LLaVA-NeXT llava/conversation.py "
                                             "conv_qwen_1_5 (system turn); no official prompt for this task kind"),
        },
        "lmms-eval": {
            **_V15_LMMS,
            **{f"{kind}@llava_next": entry for kind, entry in _NEXT_LMMS.items()},
            **{f"{kind}@llava_onevision": entry for kind, entry in _OV_LMMS.items()},
        },
    },
)
