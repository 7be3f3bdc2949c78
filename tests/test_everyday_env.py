"""The Hugging Face environment users already have (issue 22): HF_HOME's hub cache, HF_DATASETS_CACHE (what
datasets.load_dataset prepared, e.g. for lmms-eval), HF_HUB_OFFLINE. Each run is a fresh process (huggingface_hub
reads its environment when imported)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.core.results import read_run


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lmms-lab/VQAv2 in the hub's own layout (6 validation questions)."""
    from evalkit.testing.hub_fixtures import write_fixture

    root = tmp_path_factory.mktemp("hubcopy")
    write_fixture("lmms-lab/VQAv2", root, n=6, seed=0, corrupt=0)
    return root / "lmms-lab" / "VQAv2"


def _run(tmp: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EVALKIT_DATA_DIR"))}
    return subprocess.run([sys.executable, "-m", "evalkit", "run", "--model", "reference", "--tasks", "vqav2",
                           "--limit", "3", "--output", str(tmp / "out"), "--no-progress", "--json"],
                          capture_output=True, text=True, timeout=300, env={**clean, "HF_HUB_OFFLINE": "1", **env})


def _dataset(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    task = json.loads(proc.stdout)["vqav2_val"]
    assert task["n"] == 3 and task["n_errors"] == 0
    return task["dataset"]


def test_hub_cache_under_hf_home(hub_copy: Path, tmp_path: Path) -> None:
    sha = "0" * 40
    repo = tmp_path / "hf" / "hub" / "datasets--lmms-lab--VQAv2"
    shutil.copytree(hub_copy, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    dataset = _dataset(_run(tmp_path, {"HF_HOME": str(tmp_path / "hf")}))
    assert dataset["location"] == f"hf://lmms-lab/VQAv2@{sha}" and dataset["revision"] == sha


def test_prepared_copy_in_hf_datasets_cache(hub_copy: Path, tmp_path: Path) -> None:
    from datasets.packaged_modules.parquet.parquet import Parquet

    cache = tmp_path / "datasets-cache"
    files = sorted(str(p) for p in hub_copy.rglob("validation-*.parquet"))
    Parquet(cache_dir=str(cache), dataset_name="VQAv2", hash="0123abcd",
            data_files={"validation": files}).download_and_prepare()
    # load_dataset("lmms-lab/VQAv2") writes the same layout under the repo's namespace: <org>___<snake name>
    (cache / "vq_av2").rename(cache / "lmms-lab___vq_av2")
    proc = _run(tmp_path, {"HF_HOME": str(tmp_path / "empty-home"), "HF_DATASETS_CACHE": str(cache)})
    dataset = _dataset(proc)
    assert dataset["location"].startswith("hf-datasets-cache://") and "lmms-lab___vq_av2" in dataset["location"]
    (run,) = (tmp_path / "out").iterdir()
    assert read_run(run).tasks["vqav2_val"].dataset.content_hash


def test_offline_without_a_copy_names_both_caches(tmp_path: Path) -> None:
    proc = _run(tmp_path, {"HF_HOME": str(tmp_path / "home")})
    assert proc.returncode == 2
    assert f"not in the hub cache ({tmp_path / 'home' / 'hub'})" in proc.stderr
    assert f"the datasets cache ({tmp_path / 'home' / 'datasets'})" in proc.stderr
    assert "HF_HUB_OFFLINE is set" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_evalkit_data_dir_beats_the_caches(hub_copy: Path, tmp_path: Path) -> None:
    shutil.copytree(hub_copy, tmp_path / "mirror" / "lmms-lab" / "VQAv2")
    proc = _run(tmp_path, {"HF_HOME": str(tmp_path / "home"), "EVALKIT_DATA_DIR": str(tmp_path / "mirror")})
    _dataset(proc)
    (run,) = (tmp_path / "out").iterdir()
    assert read_run(run).config.data_dir == str(tmp_path / "mirror")
