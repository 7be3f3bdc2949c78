"""--seed is the sampling seed the engines receive (it used to stop at the run config)."""

from __future__ import annotations

from evalkit.runner import Runner, RunOptions
from evalkit.runner.options import apply_generation
from evalkit.core.types import GenerationSettings


def test_run_seed_reaches_every_task_generation_settings() -> None:
    runner = Runner(RunOptions(model="reference", tasks=["shapes_vqa", "shapes_pairs"], seed=7, progress=False))
    assert [task.generation.seed for task in runner.tasks] == [7, 7]
    assert dict(runner.backend.effective_settings(runner.tasks[0].generation))["seed"] == 7


def test_apply_generation_keeps_the_task_settings_and_sets_the_seed() -> None:
    base = GenerationSettings(max_new_tokens=8)
    out = apply_generation(base, {"temperature": 0.5}, seed=3)
    assert (out.max_new_tokens, out.temperature, out.seed) == (8, 0.5, 3)
    assert apply_generation(base, {}) is base
