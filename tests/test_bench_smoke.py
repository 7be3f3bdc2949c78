"""The benchmark's smoke version runs in the suite so `make bench` cannot rot (its figures are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from evalkit.testing.bench import main


def test_bench_smoke_writes_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--smoke", "--no-vllm", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    for section in ("overhead", "batching", "overlap", "scoring", "memory", "startup"):
        assert section in report
    assert report["overhead"]["ratio"] > 0 and report["batching"]["speedup"] > 0
    assert report["memory"]["large_n"] > report["memory"]["small_n"]
    assert report["startup"]["imports_torch"] is False
    assert report["overhead"]["evalkit"]["n"] == report["overhead"]["hand_loop"]["n"] == 8
