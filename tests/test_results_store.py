"""Result files: typed, versioned, never silently stringified; the store survives torn writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.core.errors import UsageError
from evalkit.core.results import SampleRecord, read_run, read_samples
from evalkit.core.store import SampleStore


def rec(i: int, **kw: object) -> SampleRecord:
    base = dict(id=str(i), task="t", prompt="p", output="o", parsed="o", target=["o"], scores={"accuracy": 1.0})
    base.update(kw)
    return SampleRecord(**base)  # type: ignore[arg-type]


def test_non_json_values_are_rejected_not_stringified() -> None:
    with pytest.raises(ValueError):
        rec(1, parsed={1, 2})  # a set is not JSON
    with pytest.raises(ValueError):
        rec(1, metadata={"x": object()})


def test_store_appends_and_last_write_wins(tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    store.append("t", [rec(1), rec(2)])
    store.append("t", [rec(2, output="again")])
    got = {r.id: r for r in read_samples(tmp_path, "t")}
    assert set(got) == {"1", "2"} and got["2"].output == "again"
    assert store.done_ids("t") == {"1", "2"}


def test_torn_last_line_is_dropped_and_repaired(tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    store.append("t", [rec(1), rec(2)])
    with open(store.path("t"), "a") as fh:
        fh.write('{"id": "3", "task": "t", "pro')  # killed mid-write
    assert store.done_ids("t") == {"1", "2"}
    store.append("t", [rec(3)])
    lines = store.path("t").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["1", "2", "3"]


def test_corrupt_line_in_the_middle_is_a_usage_error(tmp_path: Path) -> None:
    store = SampleStore(tmp_path)
    store.append("t", [rec(1)])
    with open(store.path("t"), "a") as fh:
        fh.write("not json\n")
    store.append("t", [rec(2)])
    with pytest.raises(UsageError, match="t.jsonl:2"):
        read_samples(tmp_path, "t")


def test_read_run_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no run.json"):
        read_run(tmp_path)
    (tmp_path / "run.json").write_text("{broken")
    with pytest.raises(UsageError, match="not valid JSON"):
        read_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"schema_version": "9.0"}))
    with pytest.raises(UsageError, match="schema_version"):
        read_run(tmp_path)
