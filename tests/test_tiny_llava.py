"""The tiny LLaVA builder: hub-layout checkpoint round trip, chat template, image-token expansion."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from safetensors import safe_open  # noqa: E402

from evalkit.testing.tiny_llava import load_checkpoint, make_tiny_llava  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    folder = tmp_path_factory.mktemp("tiny_llava")
    model, processor = make_tiny_llava(folder, seed=0)
    return folder, model, processor


def _messages(q: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]


def test_chat_template_renders_llava_1_5_prompt(tiny) -> None:
    _, _, processor = tiny
    got = processor.apply_chat_template(_messages("What color is the circle?"), add_generation_prompt=True)
    assert got == "USER: <image>\nWhat color is the circle? ASSISTANT:"


def test_chat_template_multi_turn(tiny) -> None:
    _, _, processor = tiny
    msgs = _messages("Q1") + [
        {"role": "assistant", "content": [{"type": "text", "text": "red"}]},
        {"role": "user", "content": [{"type": "text", "text": "Q2"}]},
    ]
    got = processor.apply_chat_template(msgs, add_generation_prompt=True)
    assert got == "USER: <image>\nQ1 ASSISTANT: red</s>USER: Q2 ASSISTANT:"


def test_checkpoint_uses_hub_key_layout(tiny) -> None:
    folder, _, _ = tiny
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "vision_tower.vision_model.embeddings.patch_embedding.weight" in keys
    assert "language_model.model.embed_tokens.weight" in keys
    assert "language_model.lm_head.weight" in keys
    assert "multi_modal_projector.linear_1.weight" in keys
    assert not any(k.startswith(("model.", "lm_head.")) for k in keys)


def test_reload_has_no_missing_keys_and_same_logits(tiny) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder, model, processor = tiny
    loaded, info = AutoModelForImageTextToText.from_pretrained(str(folder), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    proc = AutoProcessor.from_pretrained(str(folder))
    prompt = proc.apply_chat_template(_messages("How many shapes are there?"), add_generation_prompt=True)
    inputs = proc(images=Image.new("RGB", (64, 64), (200, 30, 30)), text=prompt, return_tensors="pt")
    model.eval()
    loaded.eval()
    with torch.no_grad():
        a = model(**inputs).logits
        b = loaded(**inputs).logits
    assert torch.equal(a, b)
    reloaded, _ = load_checkpoint(folder)  # raises on any missing/unexpected key
    with torch.no_grad():
        assert torch.equal(reloaded(**inputs).logits, a)


def test_processor_image_tokens_match_vision_patches(tiny) -> None:
    _, model, processor = tiny
    vc = model.config.vision_config
    n_patches = (vc.image_size // vc.patch_size) ** 2
    prompt = processor.apply_chat_template(_messages("Q"), add_generation_prompt=True)
    inputs = processor(images=Image.new("RGB", (64, 64)), text=prompt, return_tensors="pt")
    image_id = model.config.image_token_index
    assert int((inputs["input_ids"] == image_id).sum()) == n_patches == 16
    assert inputs["input_ids"][0, 0].item() == processor.tokenizer.bos_token_id
    with torch.no_grad():
        feats = model.get_image_features(pixel_values=inputs["pixel_values"])
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    n_feats = sum(f.shape[0] for f in feats) if isinstance(feats, (list, tuple)) else feats.shape[-2]
    assert n_feats == n_patches


def test_head_size_is_64(tiny) -> None:
    _, model, _ = tiny
    tc, vc = model.config.text_config, model.config.vision_config
    assert tc.hidden_size // tc.num_attention_heads == 64
    assert vc.hidden_size // vc.num_attention_heads == 64


def test_whole_word_tokenizer_keeps_phrases_and_coordinates_whole() -> None:
    from evalkit.testing.tiny_llava import train_tokenizer

    instruction = "\nAnswer the question using a single word or phrase."
    corpus = [f"USER: <image>\nWhat color is the {k}?{instruction} ASSISTANT: {c}</s>"
              for k in ("circle", "square") for c in ("red", "blue")] + [" [0.27, 0.02, 0.42, 0.17]"] * 3
    tok = train_tokenizer(corpus, vocab_size=400, whole_words=True, phrases=[instruction, " ASSISTANT:"])
    ids = tok("What color is the circle?" + instruction + " ASSISTANT:", add_special_tokens=False)["input_ids"]
    pieces = tok.convert_ids_to_tokens(ids)
    assert pieces[-2:] == [instruction, " ASSISTANT:"]  # each fixed phrase is one token
    assert tok.convert_ids_to_tokens(tok(" [0.27, 0.02,", add_special_tokens=False)["input_ids"]) == ["Ġ[0.27,", "Ġ0.02,"]
    for text in ("What color is the triangle?" + instruction, " [0.99, 0.5]", "yes\n(a) left (b) right"):
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # exact round trip, unseen text too


def test_reference_tokenizer_round_trips_every_suite_prompt_and_reply() -> None:
    from transformers import AutoProcessor

    from evalkit.runner.models import reference_path
    from evalkit.synthetic import shapes as S

    tok = AutoProcessor.from_pretrained(reference_path()).tokenizer
    for items in S.suite(S.EVAL_SEED).values():
        for it in items:
            for text in (it.question, f" {it.target}"):
                ids = tok(text, add_special_tokens=False)["input_ids"]
                assert tok.unk_token_id not in ids
                assert tok.decode(ids) == text
