"""Prefill each image once (issue 20): the hf backend's reused image prefix gives the plain path's token ids at
batch 1 and batch N; grouping samples by image changes no output, no stored id and no resume; --no-prefix-reuse
is a recorded switch. Tiny real-architecture LLaVA, fp32, greedy."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evalkit.adapters import get_adapter
from evalkit.backends.base import BackendConfig
from evalkit.backends.hf import HfBackend
from evalkit.core.types import GenerationSettings, Prompt, Sample
from evalkit.runner.models import ModelSpec

SETTINGS = GenerationSettings(max_new_tokens=8)
QUESTIONS = ("What color is the circle?", "How many shapes are there?", "Is there a blue square?",
             "What shape is left?")


def spec_for(folder: Path) -> ModelSpec:
    return ModelSpec(name=str(folder), family="llava", checkpoint=str(folder), local_path=str(folder),
                     model_type="llava")


@pytest.fixture(scope="module")
def backends(tiny_llava: Path) -> dict[str, HfBackend]:
    out = {}
    for name, reuse in (("plain", False), ("reuse", True)):
        backend = HfBackend(spec_for(tiny_llava), get_adapter("llava"),
                            BackendConfig(device="cpu", dtype="float32", prefix_reuse=reuse))
        backend.load()
        out[name] = backend
    assert out["reuse"].reuse and not out["plain"].reuse
    return out


def prompts(backend: HfBackend, n_images: int = 3) -> list[Prompt]:
    """Questions of different lengths on ``n_images`` images, grouped by image (as the runner hands them over)."""
    from PIL import Image

    out = []
    for i in range(n_images):
        image = Image.effect_noise((80, 60), 40 + 20 * i).convert("RGB").rotate(17 * i)
        for q in QUESTIONS[: 2 + i % 3]:
            sample = Sample(id=f"{i}-{q}", question=q)
            out.append(get_adapter("llava").build_prompt(sample, [image], backend.processor, kind="vqa"))
    return out


def token_ids(backend: HfBackend, batch: list[Prompt], size: int) -> list[list[int]]:
    gens = [g for i in range(0, len(batch), size) for g in backend.generate(batch[i : i + size], SETTINGS)]
    assert all(g.error is None for g in gens)
    return [list(g.token_ids) for g in gens]


@pytest.mark.parametrize("size", [1, 4, 16])
def test_reused_prefix_gives_the_plain_token_ids(backends: dict[str, HfBackend], size: int) -> None:
    plain, reuse = backends["plain"], backends["reuse"]
    batch = prompts(plain)
    expected = token_ids(plain, batch, size)
    assert len({tuple(t) for t in expected}) > 1  # the questions matter: identity below is not trivial
    before = reuse.prefix_cache_counts()
    got = token_ids(reuse, batch, size)
    assert got == expected
    after = reuse.prefix_cache_counts()
    assert after is not None and before is not None
    # Every question after an image's first one reused the image prefix (16 image tokens + the text before them).
    n_images, n_prompts = 3, len(batch)
    assert after[1] - before[1] >= (n_prompts - n_images) * 16
    assert plain.prefix_cache_counts() is None


def test_mixed_order_and_repeated_calls_stay_identical(backends: dict[str, HfBackend]) -> None:
    """Images interleaved within a batch (several groups per call, prefixes looked up again) and a second pass
    over the same prompts (stored prefix reused, not mutated by generation)."""
    plain, reuse = backends["plain"], backends["reuse"]
    batch = prompts(plain)
    mixed = batch[::2] + batch[1::2]
    expected = token_ids(plain, mixed, 5)
    assert token_ids(reuse, mixed, 5) == expected
    assert token_ids(reuse, mixed, 5) == expected


def test_each_distinct_image_is_processed_once_with_the_same_pixels(backends: dict[str, HfBackend]) -> None:
    from evalkit.backends.hf_prefix import shared_image_processing

    processor = backends["plain"].processor
    batch = prompts(backends["plain"])  # 9 prompts on 3 images
    kwargs = get_adapter("llava").processor_inputs(batch)
    expected = processor(**kwargs, return_tensors="pt", padding=True)
    seen: list[int] = []
    inner = processor.image_processor

    class Spy:
        def __getattr__(self, name: str) -> Any:
            return getattr(inner, name)

        def __call__(self, images: Any, **kw: Any) -> Any:
            seen.append(len(images))
            return inner(images, **kw)

    with shared_image_processing(processor):
        processor.image_processor.inner = Spy()
        got = processor(**kwargs, return_tensors="pt", padding=True)
    assert processor.image_processor is inner and seen == [3]  # 3 distinct images of 9
    assert set(got) == set(expected)
    for key in expected:
        assert (got[key] == expected[key]).all(), key


def test_prompts_without_the_layout_take_the_plain_path(backends: dict[str, HfBackend]) -> None:
    reuse = backends["reuse"]
    text_only = Prompt(text=reuse.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "Hello?"}]}], add_generation_prompt=True,
        tokenize=False), images=[])
    before = reuse.prefix_cache_counts()
    gens = reuse.generate([text_only], SETTINGS)
    assert gens[0].error is None and reuse.prefix_cache_counts()[1] == before[1]


# -- the runner: grouping by image -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def grouped_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.testing.bench import build_data

    return build_data(tmp_path_factory.mktemp("grouped"), 18, 64, per_image=3)


def run(model: Path, data: Path, out: Path, **opts: Any) -> tuple[Any, Path]:
    from evalkit.runner import RunOptions, Runner

    options = RunOptions(model=str(model), tasks=["vqav2_val"], data_dir=data, output=out, progress=False,
                         device="cpu", dtype="float32", max_error_rate=1.0, **opts)
    return Runner(options).run()


def outputs(run_dir: Path) -> dict[str, str | None]:
    lines = (run_dir / "samples" / "vqav2_val.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert len(ids) == len(set(ids))  # each id stored once
    return {json.loads(line)["id"]: json.loads(line)["output"] for line in lines}


def test_grouping_by_image_changes_no_output(tiny_llava: Path, grouped_data: Path, tmp_path: Path) -> None:
    on, on_dir = run(tiny_llava, grouped_data, tmp_path / "on", batch_size=4)
    off, off_dir = run(tiny_llava, grouped_data, tmp_path / "off", batch_size=4, prefix_reuse=False)
    assert outputs(on_dir) == outputs(off_dir) and len(outputs(on_dir)) == 18
    assert json.loads((on_dir / "run.json").read_text())["config"]["prefix_reuse"] is True
    assert json.loads((off_dir / "run.json").read_text())["config"]["prefix_reuse"] is False
    # 6 images x 3 questions: 2 of 3 prompts reuse the image prefix (16 image tokens + 4) of their ~77 tokens
    tel = on.tasks["vqav2_val"].telemetry
    assert tel.prefix_cache_hit_rate == round(12 * 20 / tel.n_prompt_tokens, 4)
    assert on.telemetry.prefix_cache_hit_rate == on.tasks["vqav2_val"].telemetry.prefix_cache_hit_rate
    assert off.tasks["vqav2_val"].telemetry.prefix_cache_hit_rate is None


def test_resume_with_grouping_never_redoes_a_stored_sample(tiny_llava: Path, grouped_data: Path,
                                                          tmp_path: Path) -> None:
    _, run_dir = run(tiny_llava, grouped_data, tmp_path, batch_size=4)
    full = outputs(run_dir)
    samples = run_dir / "samples" / "vqav2_val.jsonl"
    kept = samples.read_text().splitlines()[:7]  # an interrupted run: 7 stored, one image's group cut in two
    samples.write_text("\n".join(kept) + "\n")
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = "interrupted"
    (run_dir / "run.json").write_text(json.dumps(record))
    _, resumed_dir = run(tiny_llava, grouped_data, tmp_path, batch_size=4, resume=True)
    assert resumed_dir == run_dir
    lines = samples.read_text().splitlines()
    assert lines[:7] == kept and len(lines) == 18
    assert outputs(run_dir) == full


def test_no_prefix_reuse_flag() -> None:
    from evalkit.cli import build_parser
    from evalkit.commands.run import options_from_args

    parser = build_parser()
    on = options_from_args(parser.parse_args(["run", "--model", "m", "--tasks", "vqav2_val"]))
    off = options_from_args(parser.parse_args(["run", "--model", "m", "--tasks", "vqav2_val", "--no-prefix-reuse"]))
    assert on.prefix_reuse is True and off.prefix_reuse is False
    assert replace(on, prefix_reuse=False) == off


def test_old_run_json_without_the_new_fields_still_reads() -> None:
    from evalkit.core.results import RunConfig, Telemetry

    assert RunConfig(tasks=["vqav2_val"], batch_size=8).prefix_reuse is True
    assert Telemetry.model_validate({"wall_s": 1.0}).prefix_cache_hit_rate is None


def test_bench_prefix_section_measures_both_paths(tmp_path: Path) -> None:
    from evalkit.testing.bench_prefix import PREFIX_SMOKE, prefix_rows, prefix_section

    section = prefix_section(tmp_path, PREFIX_SMOKE, with_vllm=False)
    hf = section["hf"]
    assert hf["plain"]["n"] == hf["reuse"]["n"] == 12 and hf["plain"]["prefix_cache_hit_rate"] is None
    assert hf["reuse"]["prefix_cache_hit_rate"] > 0
    assert hf["reuse"]["prefilled_tokens"] < hf["plain"]["prefilled_tokens"] == hf["plain"]["n_prompt_tokens"]
    assert len(prefix_rows(section)) == 2


def test_a_window_does_not_end_inside_an_images_questions() -> None:
    from types import SimpleNamespace

    from evalkit.core.types import ImageRef
    from evalkit.runner.pipeline import Prepared, Runner

    def item(image: bytes, i: int) -> Prepared:
        return Prepared(Sample(id=f"{image!r}{i}", question="q", images=[ImageRef(data=image)]))

    window = [item(b"a", 0), item(b"a", 1), item(b"b", 2), item(b"b", 3)]
    on, off = SimpleNamespace(opts=SimpleNamespace(prefix_reuse=True)), SimpleNamespace(
        opts=SimpleNamespace(prefix_reuse=False))
    assert Runner._cut(on, window) == (window[:2], window[2:])  # b's questions open the next window
    assert Runner._cut(off, window) == (window, [])
    same = [item(b"a", i) for i in range(4)]
    assert Runner._cut(on, same) == (same, [])  # one image filling a whole window: cut there anyway
