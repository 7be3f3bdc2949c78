"""CLIP (OpenAI and compatible checkpoints in the transformers format): an image-text encoder.

Runs encoder tasks only (``mmvp_vlm``). ``CLIPModel``'s ``logits_per_text`` is the learned temperature times the
cosine similarity of the projected text and image embeddings; texts are padded to the longest in the batch
(the text tower pools at the end-of-text token behind a causal mask, so padding does not change a text's embedding).
"""

from .base import Checkpoint, EncoderAdapter

ADAPTER = EncoderAdapter(
    family="clip",
    default_checkpoint="openai/clip-vit-large-patch14",  # ViT-L/14, the encoder MMVP-VLM's script evaluates
    model_types=("clip",),
    tiny_variants={"clip": ("clip",)},
    checkpoints={
        "clip-vit-base-patch32": Checkpoint("openai/clip-vit-base-patch32", "clip"),
        "clip-vit-base-patch16": Checkpoint("openai/clip-vit-base-patch16", "clip"),
        "clip-vit-large-patch14": Checkpoint("openai/clip-vit-large-patch14", "clip"),
        "clip-vit-large-patch14-336": Checkpoint("openai/clip-vit-large-patch14-336", "clip"),
    },
    hf_model_class="CLIPModel",
)
