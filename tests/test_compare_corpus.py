"""compare on corpus caption metrics: a paired bootstrap over the images (each resample recomputes CIDEr, BLEU,
ROUGE-L on both runs), so a CIDEr drop is judged like an accuracy drop, not by tolerance alone."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest
from result_factory import TaskSpec, make_run

from evalkit.commands.compare import compare_runs
from evalkit.core.results import SampleRecord, read_run, write_run
from evalkit.tasks import get_task
from evalkit.tasks.captioning import CaptionScoring

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="the PTB tokenizer needs Java")
WORDS = "a dog cat man woman red blue ball runs sits on the grass table with two of plays near big small".split()
N = 40


def _captions(seed: int) -> tuple[list[list[str]], list[str]]:
    rng = random.Random(seed)
    refs = [[" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))) for _ in range(4)] for _ in range(N)]
    noise = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(N)]
    return refs, noise


def caption_run(root: Path, name: str, hyps: list[str], refs: list[list[str]]) -> Path:
    """A finished nocaps_val run whose samples are these captions and whose metrics are computed from them."""
    run_dir = make_run(root, name, {"nocaps_val": TaskSpec([0.0] * N, metric="unused", primary="cider")})
    records = [SampleRecord(id=f"q{i}", task="nocaps_val", prompt="p", output=h, parsed=h, target=r)
               for i, (h, r) in enumerate(zip(hyps, refs))]
    (run_dir / "samples" / "nocaps_val.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    record = read_run(run_dir)
    scoring = CaptionScoring(metrics=("bleu", "rouge_l", "cider"), n_boot=0)
    record.tasks["nocaps_val"].metrics = scoring.aggregate(records, get_task("nocaps_val"))
    write_run(run_dir, record)
    return run_dir


def test_a_cider_drop_gets_a_paired_corpus_test(tmp_path: Path) -> None:
    refs, noise = _captions(0)
    good = [r[0] for r in refs]
    worse = [n if i % 3 == 0 else r[0] for i, (n, r) in enumerate(zip(noise, refs))]
    base, cand = caption_run(tmp_path, "base", good, refs), caption_run(tmp_path, "cand", worse, refs)
    task = compare_runs(base, cand).tasks[0]
    metrics = {m.metric: m for m in task.metrics}
    cider = metrics["cider"]
    assert cider.primary and cider.test is not None and cider.test.method == "corpus bootstrap"
    assert cider.test.n == N and cider.test.mean_diff == pytest.approx(cider.delta, abs=1e-3)
    assert cider.test.significant and cider.test.ci_high < 0
    assert cider.verdict == "regression" and cider.regression
    for name in ("bleu1", "bleu4", "rouge_l"):
        assert metrics[name].test is not None and metrics[name].test.method == "corpus bootstrap", name


def test_a_cider_drop_beyond_tolerance_that_is_noise_does_not_fail_the_gate(tmp_path: Path) -> None:
    refs, noise = _captions(1)
    base_caps = [n if i % 2 else r[0] for i, (n, r) in enumerate(zip(noise, refs))]
    cand_caps = list(base_caps)
    cand_caps[1], cand_caps[2], cand_caps[4] = refs[1][0], noise[2], noise[4]  # one image better, two worse
    base, cand = caption_run(tmp_path, "base", base_caps, refs), caption_run(tmp_path, "cand", cand_caps, refs)
    cider = compare_runs(base, cand).tasks[0].metrics[0]
    assert cider.metric == "cider" and cider.delta < -5  # tolerance alone (1 point) would fail the gate
    assert cider.test is not None and not cider.test.significant and cider.test.ci_low < 0 < cider.test.ci_high
    assert cider.verdict == "drop not significant" and not cider.regression
