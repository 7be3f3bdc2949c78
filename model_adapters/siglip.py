"""SigLIP (Google, transformers format): an image-text encoder trained with a sigmoid loss.

Runs encoder tasks only (``mmvp_vlm``). ``SiglipModel``'s ``logits_per_text`` is scale x cosine + bias; a task that
takes a softmax over images (MMVP-VLM) is unaffected by the bias. As in training (and in the SigLIP variant of
MMVP-VLM's evaluation script), texts are padded to the tokenizer's full length (64) and the model gets no attention
mask: the text tower pools the last position, padding included.
"""

from .base import Checkpoint, EncoderAdapter

ADAPTER = EncoderAdapter(
    family="siglip",
    default_checkpoint="google/siglip-so400m-patch14-384",
    model_types=("siglip",),
    tiny_variants={"siglip": ("siglip",)},
    checkpoints={
        "siglip-base-patch16-224": Checkpoint("google/siglip-base-patch16-224", "siglip"),
        "siglip-large-patch16-384": Checkpoint("google/siglip-large-patch16-384", "siglip"),
        "siglip-so400m-patch14-224": Checkpoint("google/siglip-so400m-patch14-224", "siglip"),
        "siglip-so400m-patch14-384": Checkpoint("google/siglip-so400m-patch14-384", "siglip"),
    },
    hf_model_class="SiglipModel",
    text_padding="max_length",
    text_attention_mask=False,
)
