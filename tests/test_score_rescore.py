"""`evalkit score` on stored samples: --check of a judged task needs no judge, --judge --write appends the new
judgements and recounts the errors, and a parser exception while rescoring is recorded on its sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openai_server import FakeOpenAI
from result_factory import TaskSpec, make_run
from test_owleval import _no_judge_from_the_outside, owl_data  # noqa: F401 - the same fixtures
from test_owleval import is_judge, judge_question, owleval_result, run_owleval, samples, use_judge

from evalkit.cli import main
from evalkit.core.results import SampleRecord, read_samples
from evalkit.runner import rescore

FAST_JUDGE = "max_retries=0,parse_retries=0"


def _judge(body: dict) -> str:
    if not is_judge(body):
        return "an answer"
    return "no scores here" if "color" in judge_question(body) else "8 6\nok"


def test_check_of_a_judged_run_recomputes_from_the_stored_judgements(owl_data: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply=_judge) as server:
        use_judge(monkeypatch, server.url)
        _, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
        stored = owleval_result(run_dir)
        assert stored["metrics"]["relative_score"]["value"] == pytest.approx(75.0)
        before = len(server.requests)
        # no judge configured any more, and a cold cache: only the stored judgements can reproduce the metrics
        for name in ("EVALKIT_JUDGE_MODEL", "EVALKIT_JUDGE_URL"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("EVALKIT_JUDGE_CACHE", str(tmp_path / "empty-cache"))
        assert main(["score", str(run_dir), "--check"]) == 0
        assert len(server.requests) == before


def test_judge_write_appends_new_judgements_and_updates_n_errors(owl_data: Path, tmp_path: Path) -> None:
    with FakeOpenAI(reply=_judge) as server:
        _, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)  # no judge: scores pending
        file = run_dir / "samples" / "owleval.jsonl"
        original = file.read_bytes()
        assert owleval_result(run_dir)["n_errors"] == 0
        code = main(["score", str(run_dir), "--judge", "judge-model", "--judge-url", server.url,
                     "--judge-args", FAST_JUDGE, "--write"])
    assert code == 0
    grown = file.read_bytes()
    assert grown.startswith(original) and len(grown.splitlines()) == 2 * len(original.splitlines())
    recs = samples(run_dir)  # last record per id
    failed = [r for r in recs.values() if "color" in r["metadata"]["question"]]
    judged = [r for r in recs.values() if r["error"] is None]
    assert failed and judged and all(r["error_category"] == "judge" for r in failed)
    assert all(r["scores"] == {"model_score": 0.6, "reference_score": 0.8} for r in judged)
    result = owleval_result(run_dir)
    assert result["n_errors"] == len(failed) and result["errors_by_category"] == {"judge": len(failed)}
    assert result["metrics"]["relative_score"]["n"] == len(judged)
    # and the written run now checks without a judge
    assert main(["score", str(run_dir), "--check"]) == 0


def test_parser_exception_during_rescoring_is_recorded_on_the_sample(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = make_run(tmp_path, "r", {"okvqa_val": TaskSpec(scores=[1.0, 1.0, 0.0], outputs=["yes", "boom", "no"])})
    file = run_dir / "samples" / "okvqa_val.jsonl"
    recs = [SampleRecord.model_validate_json(line) for line in file.read_text().splitlines()]
    file.write_text("".join(r.model_copy(update={"target": ["yes"] * 10}).model_dump_json() + "\n" for r in recs))

    from evalkit.tasks.vqa import VQAScoring

    def parse(self, output, metadata, ctx):  # noqa: ANN001 - a parser with a bug on one answer
        if output == "boom":
            raise RuntimeError("parser bug")
        return output

    monkeypatch.setattr(VQAScoring, "parse", parse)
    result = rescore(run_dir, write=True).tasks["okvqa_val"]
    assert result.n_errors == 1 and result.errors_by_category == {"scoring": 1}
    assert result.metrics["accuracy"].n == 2 and result.metrics["accuracy"].value == 50.0
    bad = {r.id: r for r in read_samples(run_dir, "okvqa_val")}["q1"]
    assert bad.error_category == "scoring" and "parser bug" in bad.error and bad.scores == {}
    assert json.loads(file.read_text().splitlines()[1])["error"] is None  # the stored line is not rewritten
