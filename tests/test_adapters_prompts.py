"""Family adapters without models: prompt texts per task kind, output clean-up, box formats, detection, hooks."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from evalkit.adapters import all_adapters, get_adapter
from evalkit.adapters.base import Adapter, FixedPromptAdapter, PromptFields, infer_kind
from evalkit.adapters.protocols import DEFAULT_PROTOCOL, PROTOCOLS
from evalkit.testing.tiny_models import VARIANTS
from evalkit.core.errors import UsageError
from evalkit.core.boxes import BOX_FORMATS, decode_box
from evalkit.runner.models import detect_family, resolve_model
from evalkit.core.types import Prompt, Sample, Turn

Q = "What color is the circle?"
VQA = Sample(id="v", question=Q + "\nAnswer the question using a single word or phrase.", metadata={"raw_question": Q})
CAPTION = Sample(id="c", question="Provide a one-sentence caption for the provided image.")
EXPR = "the red circle"
GROUNDING = Sample(id="g", question=f"Please provide the bounding box coordinate of the region this sentence "
                   f"describes: {EXPR}.", metadata={"expression": EXPR, "width": 640, "height": 480})
CHOICE = Sample(id="m", question="Is the dog facing left or right?\n(a) left\n(b) right",
                metadata={"options": ["left", "right"]})


def test_infer_kind_from_metadata() -> None:
    assert infer_kind(VQA) == "vqa"
    assert infer_kind(Sample(id="s", question="q", metadata={"question_raw": "q"})) == "vqa"
    assert infer_kind(GROUNDING) == "grounding"
    assert infer_kind(CHOICE) == "choice"
    assert infer_kind(CAPTION) is None


def test_prompt_fields_fall_back_to_the_task_text() -> None:
    f = PromptFields.of(VQA)
    assert (f.kind, f.question, f.prompt, f.expression) == ("vqa", Q, VQA.question, VQA.question)
    g = PromptFields.of(GROUNDING, kind="grounding")
    assert g.expression == EXPR and g.question == GROUNDING.question
    assert PromptFields.of(CAPTION, kind="caption").kind == "caption"
    with pytest.raises(ValueError, match="unknown field"):
        f.render("{answer}")


# (family, sample, kind, expected text of the prompt's user part / whole prompt)
PROMPTS = [
    ("blip2", VQA, "vqa", f"Question: {Q} Short answer:"),
    ("blip2", VQA, None, f"Question: {Q} Short answer:"),  # kind inferred from the raw question
    ("blip2", CAPTION, "caption", ""),
    ("blip2", CHOICE, "choice", f"Question: {CHOICE.question} Answer:"),
    ("instructblip", CAPTION, "caption", "A short image description:"),
    ("instructblip", VQA, "vqa", f"Question: {Q} Short answer:"),
    ("instructblip", GROUNDING, "grounding", GROUNDING.question),
    ("paligemma", VQA, "vqa", f"answer en {Q}"),
    ("paligemma", CAPTION, "caption", "caption en"),
    ("paligemma", GROUNDING, "grounding", f"detect {EXPR}"),
    ("paligemma", GROUNDING, None, f"detect {EXPR}"),
    ("paligemma", CHOICE, "choice", f"answer en {CHOICE.question}"),
    ("kosmos2", CAPTION, "caption", "An image of"),
    ("kosmos2", VQA, "vqa", f"Question: {Q} Answer:"),
    ("kosmos2", GROUNDING, "grounding", f"<grounding><phrase> {EXPR}</phrase>"),
    ("florence2", CAPTION, "caption", "<CAPTION>"),
    ("florence2", GROUNDING, "grounding", f"<CAPTION_TO_PHRASE_GROUNDING>{EXPR}"),
    ("florence2", VQA, "vqa", VQA.question),
    ("internvl", GROUNDING, "grounding",
     f"Please provide the bounding box coordinate of the region this sentence describes: <ref>{EXPR}</ref>"),
    ("internvl", VQA, "vqa", VQA.question),
    ("qwen_vl", GROUNDING, "grounding", GROUNDING.question),
    ("idefics", CAPTION, "caption", CAPTION.question),
    ("mplug_owl", VQA, "vqa", VQA.question),
]


@pytest.mark.parametrize(("family", "sample", "kind", "expected"), PROMPTS,
                         ids=[f"{f}-{k or 'inferred'}-{s.id}" for f, s, k, _ in PROMPTS])
def test_prompt_text_per_task_kind(family: str, sample: Sample, kind: str | None, expected: str) -> None:
    assert get_adapter(family).prompt_text(sample, kind) == expected


class FakeProcessor:
    """Stands in for a processor: renders messages as JSON-ish text so the structure can be asserted."""

    def apply_chat_template(self, messages: list[dict], add_generation_prompt: bool, tokenize: bool) -> str:
        assert add_generation_prompt and not tokenize
        parts = []
        for m in messages:
            body = "".join("<img>" if c["type"] == "image" else c["text"] for c in m["content"])
            parts.append(f"[{m['role']}]{body}")
        return "".join(parts) + "[assistant]"


def test_chat_prompt_puts_images_first_and_uses_the_kind_override() -> None:
    prompt = get_adapter("internvl").build_prompt(GROUNDING, ["IMG"], FakeProcessor(), kind="grounding")
    assert prompt.text == f"[user]<img>{get_adapter('internvl').prompt_text(GROUNDING, 'grounding')}[assistant]"
    assert prompt.images == ["IMG"]
    dialog = Sample(id="d", question="And now?", history=[Turn("user", "First?"), Turn("assistant", "yes")])
    text = get_adapter("qwen_vl").build_prompt(dialog, ["IMG"], FakeProcessor()).text
    assert text == "[user]<img>First?[assistant]yes[user]And now?[assistant]"


def test_fixed_prompt_adds_one_placeholder_per_image_and_refuses_dialogues() -> None:
    owl = get_adapter("mplug_owl")
    assert owl.build_prompt(VQA, ["a", "b"], None).text == "<|image|><|image|>" + VQA.question
    assert get_adapter("paligemma").build_prompt(VQA, ["a"], None).text == f"answer en {Q}"
    dialog = Sample(id="d", question="And now?", history=[Turn("user", "First?"), Turn("assistant", "yes")])
    with pytest.raises(ValueError, match="multi-turn"):
        get_adapter("blip2").build_prompt(dialog, ["a"], None)


def test_kosmos2_parse_keeps_boxes_only_for_grounding() -> None:
    raw = "<phrase> the red circle</phrase><object><patch_index_0044><patch_index_0863></object>"
    k = get_adapter("kosmos2")
    kept = k.parse(raw, kind="grounding")
    assert kept == "the red circle<patch_index_0044><patch_index_0863>"
    # cells (12, 1) and (31, 26) of the 32x32 grid, different rows and columns: cell centres
    assert decode_box(kept, k.box_format, 320, 320) == pytest.approx((125.0, 15.0, 315.0, 265.0))
    assert k.parse(" a red <phrase>circle</phrase><object><patch_index_0001><patch_index_0002></object> ",
                   kind="vqa") == "a red circle"
    assert "<patch_index_0044>" in k.parse(raw)  # kind unknown: nothing a grounding task needs is dropped


def test_florence2_and_idefics_clean_up() -> None:
    f = get_adapter("florence2")
    assert f.skip_special_tokens is False
    out = f.parse("<s>the red circle<loc_100><loc_200><loc_500><loc_600></s><pad>")
    assert out == "the red circle<loc_100><loc_200><loc_500><loc_600>"
    assert decode_box(out, f.box_format, 1000, 1000) == (100.5, 200.5, 500.5, 600.5)
    assert get_adapter("idefics").parse(" red<end_of_utterance>") == "red"


def test_qwen_box_format_per_generation() -> None:
    q = get_adapter("qwen_vl")
    w, h = 640, 480
    # Qwen2-VL: "(x1,y1),(x2,y2)" on 0-1000 once <|box_start|>/<|box_end|> are skipped as special tokens.
    box = decode_box("the circle(100,200),(500,600)", q.box_format_for("qwen2_vl"), w, h)
    assert box == pytest.approx((100 / 999 * w, 200 / 999 * h, 500 / 999 * w, 600 / 999 * h))
    # Qwen2.5-VL: absolute pixels in JSON.
    out = '```json\n[{"bbox_2d": [64, 96, 320, 288], "label": "circle"}]\n```'
    assert decode_box(out, q.box_format_for("qwen2_5_vl"), w, h) == (64, 96, 320, 288)
    # Qwen3-VL: the same JSON on a 0-1000 grid.
    out = '[{"bbox_2d": [100, 200, 500, 600], "label": "circle"}]'
    assert decode_box(out, q.box_format_for("qwen3_vl"), w, h) == pytest.approx((64, 96, 320, 288))


KINDS = ("vqa", "caption", "grounding", "choice", "open", "default")


def test_every_adapter_is_consistent() -> None:
    import transformers

    seen: dict[str, str] = {}
    fields = PromptFields(kind=None, prompt="p", question="q", expression="e")
    for a in all_adapters():
        assert a.box_format in BOX_FORMATS and set(a.box_format_by_model_type.values()) <= set(BOX_FORMATS)
        assert set(a.box_format_by_model_type) <= set(a.model_types), a.family
        assert "hf" not in a.backends or hasattr(transformers, a.hf_model_class), a.hf_model_class
        for template in a.instructions.values():
            fields.render(template)  # raises on a field that does not exist
        for mt in a.model_types:
            assert seen.setdefault(mt, a.family) == a.family, f"{mt} claimed by {seen[mt]} and {a.family}"
            assert detect_family({"model_type": mt}, "cfg") == a.family
        # A family no backend runs says why (and is listed for none); a runnable one says nothing.
        assert bool(a.backends) != bool(a.not_runnable), a.family
        assert not a.vllm_engine_args or "vllm" in a.backends or not a.backends, a.family
        for ckpt in a.checkpoints.values():
            assert ckpt.model_type in a.model_types, (a.family, ckpt)
        assert a.family == "openai" or a.model_type_of(a.default_checkpoint) is not None, a.family
        # the family record names a tiny test checkpoint for each model_type, or why there is none
        assert set(a.tiny_variants) | set(a.tiny_missing) == set(a.model_types), a.family
        assert not set(a.tiny_variants) & set(a.tiny_missing), a.family
        assert all(v in VARIANTS or v == "tiny_llava" for vs in a.tiny_variants.values() for v in vs), a.family
        for protocol, entries in a.protocols.items():
            assert protocol in PROTOCOLS and protocol != DEFAULT_PROTOCOL, (a.family, protocol)
            for key, entry in entries.items():
                kind, _, mt = key.partition("@")
                assert kind in KINDS and (not mt or mt in a.model_types), (a.family, key)
                assert entry.text is None or fields.render(entry.text, entry.options) is not None


@pytest.mark.parametrize(("name", "family", "checkpoint"), [
    ("blip2", "blip2", "Salesforce/blip2-opt-2.7b"),
    ("blip2-flan-t5-xl", "blip2", "Salesforce/blip2-flan-t5-xl"),
    ("qwen2.5-vl-7b", "qwen_vl", "Qwen/Qwen2.5-VL-7B-Instruct"),
    ("Qwen/Qwen3-VL-8B-Instruct", "qwen_vl", "Qwen/Qwen3-VL-8B-Instruct"),
    ("paligemma2-3b-mix-448", "paligemma", "google/paligemma2-3b-mix-448"),
    ("kosmos2", "kosmos2", "microsoft/kosmos-2-patch14-224"),
    ("internvl", "internvl", "OpenGVLab/InternVL3-1B-hf"),
    ("smolvlm-instruct", "idefics", "HuggingFaceTB/SmolVLM-Instruct"),
])
def test_names_a_user_types_resolve_offline(name: str, family: str, checkpoint: str) -> None:
    spec = resolve_model(name)
    assert (spec.family, spec.checkpoint) == (family, checkpoint)


def test_engine_hooks() -> None:
    plain = Adapter(family="x", default_checkpoint="x")
    decoder = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=False))
    t5 = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=False, use_decoder_only_language_model=False))
    bart = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=True))
    assert (plain.padding_side(decoder), plain.output_offset(decoder, 37)) == ("left", 37)
    assert (plain.padding_side(t5), plain.output_offset(t5, 37)) == ("right", 1)
    assert (plain.padding_side(bart), plain.output_offset(bart, 37)) == ("right", 1)
    prompts = [Prompt("a", ["i1"]), Prompt("b", []), Prompt("c", ["i2", "i3"])]
    assert plain.processor_inputs(prompts) == {"text": ["a", "b", "c"], "images": ["i1", "i2", "i3"]}
    assert plain.processor_inputs([Prompt("a")]) == {"text": ["a"], "images": None}
    nested = FixedPromptAdapter(family="x", default_checkpoint="x", images_per_prompt=True)
    assert nested.processor_inputs(prompts)["images"] == [["i1"], [], ["i2", "i3"]]


def test_mplug_owl_needs_remote_code_and_one_conversation() -> None:
    owl = get_adapter("mplug_owl")
    with pytest.raises(UsageError, match="--trust-remote-code"):
        owl.check_load_options(trust_remote_code=False)
    owl.check_load_options(trust_remote_code=True)
    get_adapter("blip2").check_load_options(trust_remote_code=False)
    prompt = owl.build_prompt(VQA, ["img"], None)
    assert owl.processor_inputs([prompt]) == {
        "messages": [{"role": "user", "content": "<|image|>" + VQA.question}, {"role": "assistant", "content": ""}],
        "images": ["img"], "videos": None}
    with pytest.raises(ValueError):
        owl.processor_inputs([prompt, prompt])
    assert owl.hf_max_batch_size == 1 and get_adapter("kosmos2").hf_max_batch_size == 1
