"""Nothing drops out of ``n`` unseen: a sample with nothing to score against is a failed sample of category
``data`` (counted in n_errors and errors_by_category), whether it is caught when the record is read or when a
stored record is (re)scored."""

from __future__ import annotations

import pytest

from evalkit.core.results import SampleRecord
from evalkit.core.types import ERROR_CATEGORIES, SampleError
from evalkit.tasks import get_task

IMAGE = {"bytes": b"not decoded here", "path": None}


def _streamed(task_name: str, row: dict) -> SampleError | None:
    task = get_task(task_name)
    [sample] = list(task._stream(iter([row]), 1))
    return sample.load_error


def _scored(task_name: str, target: object) -> dict | SampleError:
    rec = SampleRecord(id="s", task=task_name, prompt="p", output="a dog", parsed="a dog", target=target)
    [out] = get_task(task_name).score_records([rec])
    return out


def test_data_is_an_error_category() -> None:
    assert "data" in ERROR_CATEGORIES


@pytest.mark.parametrize("answers", [[], None])
def test_vqa_record_without_answers_is_a_data_error(answers: object) -> None:
    row = {"question_id": "q1", "question": "what?", "image": IMAGE, "answers": answers, "answer_type": "other"}
    error = _streamed("okvqa_val", row)
    assert error is not None and error.category == "data"


def test_hidden_answers_are_not_an_error() -> None:
    row = {"question_id": 7, "question": "what?", "image": IMAGE, "answers": None}
    assert _streamed("vqav2_testdev", row) is None
    assert _scored("vqav2_testdev", None) == {}


@pytest.mark.parametrize("target", [[], "yes"])
def test_vqa_stored_record_without_answers_is_a_data_error(target: object) -> None:
    out = _scored("okvqa_val", target)
    assert isinstance(out, SampleError) and out.category == "data"


@pytest.mark.parametrize("answer", ["", "  ", None])
def test_gqa_record_without_answer_is_a_data_error(answer: object) -> None:
    row = {"id": "g1", "imageId": "i1", "question": "what?", "answer": answer, "image": IMAGE}
    error = _streamed("gqa_testdev", row)
    assert error is not None and error.category == "data"


@pytest.mark.parametrize("target", [None, ""])
def test_gqa_stored_record_without_answer_is_a_data_error(target: object) -> None:
    out = _scored("gqa_testdev", target)
    assert isinstance(out, SampleError) and out.category == "data"


def test_caption_record_without_references_is_a_data_error() -> None:
    row = {"image_id": "c1", "image": IMAGE, "annotations_captions": []}
    error = _streamed("nocaps_val", row)
    assert error is not None and error.category == "data"


@pytest.mark.parametrize("task", ["nocaps_val", "shapes_caption"])
@pytest.mark.parametrize("target", [[], None])
def test_caption_stored_record_without_references_is_a_data_error(task: str, target: object) -> None:
    out = _scored(task, target)
    assert isinstance(out, SampleError) and out.category == "data"
