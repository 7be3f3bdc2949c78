"""OwlEval: the real layout, dialogues asked with the model's own history, LLaVA-Bench-style judging
(parse, retry, cache, relative score) and blind human rating, against the local OpenAI-compatible server."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, last_user_text

from evalkit.backends.openai import EndpointConfig
from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.backends.judge import Judge, JudgeConfig, PairwiseReview, parse_scores
from evalkit.core.results import SampleRecord
from evalkit.testing.owleval_fixture import REAL_DIALOGUES, write_owleval
from evalkit.tasks import get_task
from evalkit.tasks.base import TaskContext
from evalkit.tasks.owleval import Question, _ratio, read_questions

FAST = "retry_base_s=0.01,retry_max_s=0.02"


@pytest.fixture(scope="module")
def owl_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("owl")
    write_owleval(root)
    return root


@pytest.fixture(autouse=True)
def _no_judge_from_the_outside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("EVALKIT_JUDGE_MODEL", "EVALKIT_JUDGE_URL", "EVALKIT_JUDGE_API_KEY_ENV", "EVALKIT_OWLEVAL_REFERENCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EVALKIT_JUDGE_CACHE", str(tmp_path / "judge-cache"))


def use_judge(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("EVALKIT_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("EVALKIT_JUDGE_URL", url)


def is_judge(body: dict) -> bool:
    return "[System]" in last_user_text(body)


def judge_question(body: dict) -> str:
    return last_user_text(body).split("[Question]\n", 1)[1].split("\n\n", 1)[0]


def run_owleval(data: Path, out: Path, url: str, *extra: str) -> tuple[int, Path]:
    """`evalkit run` of owleval; (exit code, the run folder it wrote)."""
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/run.json")} if out.exists() else {}
    code = main(["run", "--model", "openai", "--backend", "openai", "--tasks", "owleval", "--data-dir", str(data),
                 "--output", str(out), "--no-progress", "--backend-args", f"base_url={url},{FAST}", *extra])
    [run_json] = [p for p in out.glob("*/run.json") if before.get(p) != p.stat().st_mtime_ns]
    return code, run_json.parent


def samples(run_dir: Path) -> dict[str, dict]:
    lines = (run_dir / "samples" / "owleval.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def owleval_result(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())["tasks"]["owleval"]


# -- data ----------------------------------------------------------------------------------------


def test_reads_the_shipped_layout_and_links_dialogues(tmp_path: Path) -> None:
    rows = [  # ids, images and categories as in the shipped questions.jsonl (question 2's typo included)
        (1, "1.jpg", "a,b,e", ["single_turn"]), (2, "2.jpg", "a,b,e", ["]single_turn"]),
        (4, "4.jpg", "a,c", ["single_turn", "multi_turn"]), (5, "4.jpg", "a,b,c,e,f", ["multi_turn"]),
        (6, "5.jpg", "a,b", ["single_turn", "multi_turn"]), (7, "5.jpg", "a,b", ["multi_turn"]),
        (8, "5.jpg", "a,b,e,f", ["multi_turn"]), (11, "7.jpg", "a,c", ["single_turn"]),
    ]
    folder = tmp_path / "OwlEval"
    folder.mkdir()
    (folder / "questions.jsonl").write_text("".join(
        json.dumps({"image": im, "question_id": q, "question": f"question {q}?", "ability": ab, "category": cat}) + "\n"
        for q, im, ab, cat in rows) + "{not json\n")
    parsed = read_questions(folder)
    questions = [q for q in parsed if isinstance(q, Question)]
    assert [(q.question_id, q.dialogue, q.turn) for q in questions] == [
        (1, 1, 1), (2, 2, 1), (4, 4, 1), (5, 4, 2), (6, 6, 1), (7, 6, 2), (8, 6, 3), (11, 11, 1)]
    assert questions[1].single_turn and not questions[1].multi_turn  # the typo still reads as single_turn
    assert questions[3].abilities == ("a", "b", "c", "e", "f")
    assert parsed[-1].load_error is not None and parsed[-1].load_error.category == "bad_record"


def test_full_fixture_has_the_real_sets_shape(tmp_path: Path) -> None:
    write_owleval(tmp_path, full=True)
    task = get_task("owleval")
    data = task.load(TaskContext(data_dir=tmp_path))
    first = list(data.samples)
    questions = task._questions
    assert (data.n, len(first), len({q.image for q in questions})) == (82, 50, 50)
    lengths = {}
    for q in questions:
        lengths[q.dialogue] = max(lengths.get(q.dialogue, 0), q.turn)
    assert sorted(lengths.values(), reverse=True)[:3] == [8, 5, 4] and sum(lengths.values()) == 82
    assert [q.question_id for q in questions if q.image == "10.jpg"] == list(range(15, 23))  # as shipped
    assert len(REAL_DIALOGUES) == 50
    assert first[0].target and first[0].metadata["reference_model"] == "mPLUG_Owl_7b:v1"


def test_missing_data_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--data-dir"):
        get_task("owleval").load(TaskContext(data_dir=None))
    with pytest.raises(UsageError, match="no OwlEval/questions.jsonl"):
        get_task("owleval").load(TaskContext(data_dir=tmp_path))


def _record(sample, output: str | None) -> SampleRecord:
    return SampleRecord(id=sample.id, task="owleval", prompt="p", output=output, parsed=output, target=sample.target,
                        metadata=sample.metadata, error=None if output is not None else "boom",
                        error_category=None if output is not None else "generation")


def test_followups_continue_each_dialogue_with_its_own_answers(owl_data: Path) -> None:
    task = get_task("owleval")
    first = list(task.load(TaskContext(data_dir=owl_data)).samples)
    by_dialogue = {q.dialogue: [p for p in task._questions if p.dialogue == q.dialogue] for q in task._questions}
    records = [_record(s, f"own answer {s.id}") for s in first]
    second = task.followups(records)
    assert sorted(int(s.id) for s in second) == sorted(d[1].question_id for d in by_dialogue.values() if len(d) > 1)
    three = next(d for d in by_dialogue.values() if len(d) == 3)
    turn2 = next(s for s in second if s.id == str(three[1].question_id))
    assert [(t.role, t.content) for t in turn2.history] == [("user", three[0].text),
                                                            ("assistant", f"own answer {three[0].question_id}")]
    records += [_record(s, f"own answer {s.id}") for s in second]
    [turn3] = task.followups(records)
    assert turn3.id == str(three[2].question_id) and len(turn3.history) == 4
    assert turn3.metadata["earlier_questions"] == [three[0].text, three[1].text]
    records.append(_record(turn3, None))  # the last turn failed: nothing is left to ask
    assert task.followups(records) == []
    # An earlier turn without an answer: the later turn is recorded as an error, not asked without history.
    failed = [_record(s, None if s.id == str(three[0].question_id) else "x") for s in first]
    blocked = next(s for s in task.followups(failed) if s.id == str(three[1].question_id))
    assert blocked.load_error is not None and blocked.load_error.category == "generation"


# -- judging -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("8 7\nAssistant 1 is better.", (8.0, 7.0)),
    ("8, 7", (8.0, 7.0)),
    ("\n  **8.5 6**\nbecause", (8.5, 6.0)),
    ("Assistant 1: 9, Assistant 2: 3", (9.0, 3.0)),
    ("8/10 7/10", (8.0, 7.0)),
    ("Assistant 1: 8\nAssistant 2: 7", None),  # one score per line: not the requested format
    ("8 7 6", None),
    ("11 7", None),
    ("0 7", None),
    ("I cannot judge this.", None),
    ("", None),
])
def test_parse_scores(text: str, expected: tuple[float, float] | None) -> None:
    assert parse_scores(text) == expected


def test_relative_score_and_delta_method_stderr_by_hand() -> None:
    # (reference, model) = (8, 6), (6, 6), (10, 3): means 8 and 5 -> 62.5. Residuals m - 0.625 r:
    # 1, 2.25, -3.25; squares sum 16.625; sqrt(16.625 / (3 * 2)) / 8 = 0.208073 -> 20.8073.
    value = _ratio([0.6, 0.6, 0.3], [0.8, 0.6, 1.0])
    assert (value.value, value.n) == (62.5, 3) and value.stderr == pytest.approx(20.8073, abs=1e-4)
    assert _ratio([], []).value is None


def _judge(url: str, tmp_path: Path, **kw: object) -> Judge:
    endpoint = EndpointConfig.from_args({"base_url": url, "retry_base_s": 0.01, "retry_max_s": 0.02})
    return Judge(JudgeConfig(model="judge-model", endpoint=endpoint, cache_dir=tmp_path / "cache", **kw))


def test_judge_retries_unreadable_replies_then_caches(tmp_path: Path) -> None:
    replies = iter(["I think both are fine.", "7 5\nThe first is more accurate."])
    with FakeOpenAI(reply=lambda body: next(replies)) as server:
        judge = _judge(server.url, tmp_path)
        review = PairwiseReview(question="What is it?", answer_1="A red box.", answer_2="A box.")
        [verdict] = judge.review([review])
        assert (verdict.scores, verdict.requests, verdict.error) == ((7.0, 5.0), 2, None)
        assert verdict.raw.startswith("7 5") and len(verdict.prompt_hash) == 16
        [again] = _judge(server.url, tmp_path).review([review])  # a new judge: from the disk cache
        assert again.cached and again.scores == (7.0, 5.0) and len(server.requests) == 2
        body = server.requests[0]
        assert body["model"] == "judge-model" and body["temperature"] == 0.2
        assert "[Assistant 1]\nA red box.\n\n[End of Assistant 1]" in last_user_text(body)


def test_unreadable_judgement_is_a_failure_not_a_score(tmp_path: Path) -> None:
    with FakeOpenAI(reply=lambda body: "Both answers are good.") as server:
        [verdict] = _judge(server.url, tmp_path, parse_retries=2).review(
            [PairwiseReview(question="q", answer_1="a", answer_2="b")])
    assert verdict.scores is None and "unreadable judgement" in verdict.error and verdict.requests == 3
    assert not list((tmp_path / "cache").rglob("*.json"))  # failures are not cached


def test_identical_reviews_are_asked_once_and_images_change_the_hash(tmp_path: Path) -> None:
    from evalkit.backends.openai import EncodedImage

    with FakeOpenAI(reply=lambda body: "6 4") as server:
        judge = _judge(server.url, tmp_path)
        a = PairwiseReview(question="q", answer_1="a", answer_2="b", images=(EncodedImage("image/png", b"1"),))
        b = PairwiseReview(question="q", answer_1="a", answer_2="b", images=(EncodedImage("image/png", b"2"),))
        verdicts = judge.review([a, a, b])
    assert [v.scores for v in verdicts] == [(6.0, 4.0)] * 3 and len(server.requests) == 2
    assert verdicts[0].prompt_hash == verdicts[1].prompt_hash != verdicts[2].prompt_hash


def test_judge_rejected_key_stops_scoring(tmp_path: Path) -> None:
    with FakeOpenAI() as server:
        server.script(401)
        with pytest.raises(UsageError, match="rejected the API key"):
            _judge(server.url, tmp_path).review([PairwiseReview(question="q", answer_1="a", answer_2="b")])


def test_judge_options_from_the_cli_and_the_environment(tmp_path: Path) -> None:
    cfg = JudgeConfig.from_options("gpt-4o", "http://h:1/v1", {"images": "false", "temperature": 0,
                                                               "max_concurrency": 2})
    assert (cfg.with_images, cfg.temperature, cfg.endpoint.max_concurrency, cfg.endpoint.base_url) == (
        False, 0.0, 2, "http://h:1/v1")
    assert JudgeConfig.from_env({}) is None
    env = {"EVALKIT_JUDGE_MODEL": "m", "EVALKIT_JUDGE_CACHE": "off", "EVALKIT_JUDGE_API_KEY_ENV": "JUDGE_KEY"}
    cfg = JudgeConfig.from_env(env)
    assert (cfg.model, cfg.cache_dir, cfg.endpoint.api_key_env, cfg.with_images) == ("m", None, "JUDGE_KEY", True)
    with pytest.raises(UsageError, match="never pass the API key"):
        JudgeConfig.from_options("m", None, {"api_key": "sk-x"})


# -- runs ----------------------------------------------------------------------------------------


def test_run_without_judge_stores_answers_and_leaves_scores_pending(owl_data: Path, tmp_path: Path) -> None:
    with FakeOpenAI(reply=lambda body: "a shape") as server:
        code, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
    assert code == 0
    result, recs = owleval_result(run_dir), samples(run_dir)
    assert result["metrics"]["relative_score"] == {"value": None, "stderr": None, "n": 0}
    assert result["n"] == len(recs) and result["n_errors"] == 0
    assert any("scores pending" in note for note in result["notes"])
    assert all(r["output"] == "a shape" and r["metadata"]["judge"] == {"status": "pending"} for r in recs.values())
    answers = [json.loads(line) for line in (run_dir / "owleval_answers.jsonl").read_text().splitlines()]
    assert len(answers) == len(recs) and set(answers[0]) == {"image", "question_id", "question", "answer", "model_id"}


def _scripted_judge(body: dict) -> str:
    if not is_judge(body):
        return f"model reply {len(body['messages'])}"
    return "8 4\nok" if "unusual" in judge_question(body) else "6 6\nok"


def test_run_with_judge_scores_relative_to_the_reference(owl_data: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeOpenAI(reply=_scripted_judge) as server:
        use_judge(monkeypatch, server.url)
        code, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
        recs = samples(run_dir)
        n_odd = sum("unusual" in r["metadata"]["question"] for r in recs.values())
        n = len(recs)
        # Each question is judged once: reference 8 / model 4 on "unusual" questions, 6 / 6 on the others.
        expected = 100 * (4 * n_odd + 6 * (n - n_odd)) / (8 * n_odd + 6 * (n - n_odd))
        result = owleval_result(run_dir)
        assert code == 0 and 0 < n_odd < n and result["n_errors"] == 0
        assert result["metrics"]["relative_score"]["value"] == pytest.approx(expected, abs=1e-3)
        ocr = [r for r in recs.values() if "c" in r["metadata"]["abilities"]]
        assert result["metrics"]["relative_score.ocr"]["n"] == len(ocr)
        some = next(iter(recs.values()))
        assert some["metadata"]["judge"]["model"] == "judge-model" and some["metadata"]["judge"]["raw"].endswith("ok")
        assert some["scores"]["reference_score"] in (0.8, 0.6)
        judged = sum(is_judge(b) for b in server.requests)
        assert judged == n
        # Rescoring reads the judgements from the cache: the same metrics, no new judge request.
        assert main(["score", str(run_dir), "--check"]) == 0
        assert sum(is_judge(b) for b in server.requests) == judged


def test_dialogues_are_asked_turn_by_turn_with_the_models_own_answers(owl_data: Path, tmp_path: Path) -> None:
    counter = iter(range(1000))
    with FakeOpenAI(reply=lambda body: f"reply #{next(counter)}") as server:
        code, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
    recs = samples(run_dir)
    assert code == 0 and len(recs) == 10 == owleval_result(run_dir)["n"]
    for rec in recs.values():
        meta = rec["metadata"]
        prompt = json.loads(rec["prompt"])
        assert len(prompt) == 2 * meta["turn"] - 1
        earlier = [recs[str(q)] for q in range(meta["dialogue"], meta["question_id"])]
        assert [m["content"] for m in prompt[1::2]] == [e["output"] for e in earlier]  # its own answers
    assert len(server.requests) == 10 and len({r["output"] for r in recs.values()}) == 10


def test_resume_continues_dialogues_from_the_stored_answers(owl_data: Path, tmp_path: Path) -> None:
    counter = iter(range(1000))
    with FakeOpenAI(reply=lambda body: f"first #{next(counter)}") as server:
        _, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
        lines = (run_dir / "samples" / "owleval.jsonl").read_text().splitlines(keepends=True)
        kept = {json.loads(line)["id"] for line in lines[:7]}  # all first turns, one second turn
        (run_dir / "samples" / "owleval.jsonl").write_text("".join(lines[:7]))
        record = json.loads((run_dir / "run.json").read_text())
        record["status"] = "interrupted"
        (run_dir / "run.json").write_text(json.dumps(record))
        server.reply, before = (lambda body: "resumed"), len(server.requests)
        code, again = run_owleval(owl_data, tmp_path / "out", server.url, "--resume")
    recs = samples(again)
    assert code == 0 and again == run_dir and len(recs) == 10 and len(server.requests) - before == 3
    assert {i for i, r in recs.items() if r["output"] == "resumed"} == set(recs) - kept
    for rec in recs.values():
        meta = rec["metadata"]
        earlier = [recs[str(q)]["output"] for q in range(meta["dialogue"], meta["question_id"])]
        assert [m["content"] for m in json.loads(rec["prompt"])[1::2]] == earlier


def test_judge_failure_is_counted_and_excluded(owl_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def reply(body: dict) -> str:
        if not is_judge(body):
            return "answer"
        return "no scores here" if "color" in judge_question(body) else "9 6\nok"

    with FakeOpenAI(reply=reply) as server:
        use_judge(monkeypatch, server.url)
        code, run_dir = run_owleval(owl_data, tmp_path / "out", server.url)
    recs, result = samples(run_dir), owleval_result(run_dir)
    failed = [r for r in recs.values() if "color" in r["metadata"]["question"]]
    assert code == 1 and failed and result["errors_by_category"] == {"judge": len(failed)}
    assert all(r["output"] == "answer" and r["metadata"]["judge"]["status"] == "failed" for r in failed)
    metric = result["metrics"]["relative_score"]
    assert metric["n"] == len(recs) - len(failed) and metric["value"] == pytest.approx(100 * 6 / 9, abs=1e-3)


def test_served_model_names() -> None:
    from evalkit.runner.models import resolve_model

    spec = resolve_model("openai:meta-llama/Llama-3.2-11B-Vision-Instruct")
    assert (spec.family, spec.checkpoint) == ("openai", "meta-llama/Llama-3.2-11B-Vision-Instruct")
    assert resolve_model("openai").checkpoint == "gpt-4o"
    with pytest.raises(UsageError, match="name the served model"):
        resolve_model("openai:")


# -- human rating ----------------------------------------------------------------------------------


def test_rate_export_is_blind_and_import_reads_grades_back(owl_data: Path, tmp_path: Path) -> None:
    runs = []
    for name in ("alpha", "beta"):
        with FakeOpenAI(reply=lambda body, name=name: f"{name} says hi") as server:
            runs.append(run_owleval(owl_data, tmp_path / "out", server.url)[1])
    sheet = tmp_path / "sheet"
    assert main(["rate", "export", *map(str, runs), "--out", str(sheet)]) == 0
    page = (sheet / "rating.html").read_text()
    rows = list(csv.DictReader(open(sheet / "rating.csv", encoding="utf-8")))
    n = len(samples(runs[0]))
    assert len(rows) == 2 * n and "<script" in page and "http" not in page.replace("http-equiv", "")
    for run in runs:
        assert run.name not in page and run.name not in (sheet / "rating.csv").read_text()
    import base64
    assert base64.b64encode((owl_data / "OwlEval" / "cases" / "1.jpg").read_bytes()).decode() in page
    key = json.loads((sheet / "key.json").read_text())
    by_dialogue: dict = {}
    for qid, order in key["responses"].items():  # one order per dialogue: a rater can follow a conversation
        by_dialogue.setdefault(samples(runs[0])[qid]["metadata"]["dialogue"], set()).add(tuple(order))
    assert all(len(orders) == 1 for orders in by_dialogue.values())
    for row in rows:  # alpha's answers get A, beta's C; one is left blank
        row["grade"] = "A" if "alpha" in row["answer"] else "c"
    rows[0]["grade"] = ""
    with open(sheet / "rating.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["rate", "import", str(sheet / "rating.csv")]) == 0
    stored = [json.loads((run / "ratings" / "owleval.json").read_text()) for run in runs]
    blank_run = 0 if "alpha" in rows[0]["answer"] else 1
    assert stored[0]["distribution"] == {"A": n - (blank_run == 0), "B": 0, "C": 0, "D": 0}
    assert stored[1]["distribution"] == {"A": 0, "B": 0, "C": n - (blank_run == 1), "D": 0}
    assert not (runs[0] / "run.json").read_text().count("grades")  # a separate file, run.json untouched
    rows[1]["grade"] = "E"
    with open(sheet / "bad.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(UsageError, match=r"bad.csv:3: grade 'E'"):
        from evalkit.commands.rating import import_grades
        import_grades(sheet / "bad.csv")
