"""evalkit.core.data: resolution order, the real hub/save_to_disk layouts, streaming, errors, hub path."""

from __future__ import annotations

import shutil
from fnmatch import fnmatch
from pathlib import Path

import pyarrow as pa
import pytest

from evalkit.core.data import DatasetSpec, image_ref, open_dataset
from evalkit.core.errors import UsageError
from evalkit.testing.hub_fixtures import I64, STR, Image, write_dataset_dict, write_fixture, write_split
from evalkit.core.types import ImageRef, SampleError

VQA = "lmms-lab/VQAv2"
FEATURES = {"question_id": I64, "question": STR, "image": Image()}


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"question_id": start + i, "question": f"q{start + i}", "image": None} for i in range(n)]


def _ids(source) -> list[int]:
    return [r["question_id"] for r in source.rows(["question_id"])]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mirror")
    write_fixture(VQA, root, n=12, seed=0)
    return root


# --- resolution -------------------------------------------------------------------------------


def test_data_dir_mirror_reads_every_shard_in_order(mirror: Path) -> None:
    source = open_dataset(DatasetSpec(VQA, "validation"), data_dir=mirror)
    assert [p.name for p in source.files] == [
        "validation-00000-of-00002.parquet", "validation-00001-of-00002.parquet"]
    assert len(source) == 12
    rows = list(source.rows())
    assert len(rows) == 12
    assert sorted(rows[0]) == sorted(
        ["question_type", "multiple_choice_answer", "answers", "image_id", "answer_type",
         "question_id", "question", "image"])
    assert set(rows[0]["image"]) == {"bytes", "path"}  # left as the hub's struct cell
    ids = [r["question_id"] for r in rows]
    assert len(set(ids)) == 12 and _ids(source) == ids


def test_path_wins_over_data_dir_and_accepts_a_single_file(mirror: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_split(other, "validation", _rows(3), FEATURES)
    source = open_dataset(DatasetSpec(VQA, "validation"), data_dir=mirror, path=other)
    assert _ids(source) == [0, 1, 2]
    single = open_dataset(DatasetSpec(VQA, "whatever"), path=other / "data" / "validation-00000-of-00001.parquet")
    assert len(single) == 3 and single.location.endswith(".parquet")


def test_columns_selects_and_a_missing_column_is_a_usage_error(mirror: Path) -> None:
    source = open_dataset(DatasetSpec(VQA, "validation"), data_dir=mirror)
    row = next(source.rows(["question", "question_id"]))
    assert list(row) == ["question", "question_id"]
    with pytest.raises(UsageError, match=r"no column\(s\) caption .*has: question_type"):
        next(source.rows(["question", "caption"]))


def test_hf_cache_layout_under_data_dir_reports_its_revision(mirror: Path, tmp_path: Path) -> None:
    sha = "a" * 40
    cache = tmp_path / "datasets--lmms-lab--VQAv2"
    shutil.copytree(mirror / VQA, cache / "snapshots" / sha)
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(sha)
    source = open_dataset(DatasetSpec(VQA, "validation"), data_dir=tmp_path)
    assert source.describe()["revision"] == sha and len(source) == 12
    with pytest.raises(UsageError, match="no snapshot bbbb"):
        open_dataset(DatasetSpec(VQA, "validation", revision="b" * 40), data_dir=tmp_path)


# --- layouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["data/{s}/0000.parquet", "{s}-00000-of-00001.parquet",
                                    "default/{s}/0000.parquet", "data/{s}.parquet"])
def test_parquet_layout_variants(tmp_path: Path, layout: str) -> None:
    for split, start in (("test", 0), ("testA", 100), ("testdev", 200)):
        write_split(tmp_path / "stage", split, _rows(2, start), FEATURES)
        target = tmp_path / "repo" / layout.format(s=split)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(tmp_path / "stage" / "data" / f"{split}-00000-of-00001.parquet", target)
    # "test" must not pick up the "testA" or "testdev" shards that share its prefix.
    assert _ids(open_dataset(DatasetSpec("org/x", "test"), path=tmp_path / "repo")) == [0, 1]
    assert _ids(open_dataset(DatasetSpec("org/x", "testdev"), path=tmp_path / "repo")) == [200, 201]


def test_config_folders(tmp_path: Path) -> None:
    repo = tmp_path / "lmms-lab" / "GQA"
    write_split(repo, "testdev", _rows(2), FEATURES, config="testdev_balanced_instructions")
    write_split(repo, "testdev", _rows(3, 10), FEATURES, config="testdev_balanced_images")
    spec = DatasetSpec("lmms-lab/GQA", "testdev", config="testdev_balanced_images")
    assert _ids(open_dataset(spec, data_dir=tmp_path)) == [10, 11, 12]
    with pytest.raises(UsageError, match="no config 'train_all' .*found: testdev_balanced_images, testdev_balanced_instructions"):
        open_dataset(DatasetSpec("lmms-lab/GQA", "testdev", config="train_all"), data_dir=tmp_path)


def test_save_to_disk_dataset_dict_and_single_dataset(tmp_path: Path) -> None:
    folder = tmp_path / VQA
    write_split(folder, "validation", _rows(4), FEATURES, layout="save_to_disk")
    write_split(folder, "testdev", _rows(2, 50), FEATURES, layout="save_to_disk")
    write_dataset_dict(folder, ["validation", "testdev"])
    source = open_dataset(DatasetSpec(VQA, "testdev"), data_dir=tmp_path)
    assert len(source) == 2 and _ids(source) == [50, 51]
    # A lone Dataset folder (state.json + data-*.arrow) is read as the split it was saved as.
    lone = open_dataset(DatasetSpec(VQA, "validation"), path=folder / "validation")
    assert _ids(lone) == [0, 1, 2, 3]
    with pytest.raises(UsageError, match="holds split 'validation', not 'testdev'"):
        open_dataset(DatasetSpec(VQA, "testdev"), path=folder / "validation")
    with pytest.raises(UsageError, match=r"no 'test' split under .*\(found: validation, testdev\)"):
        open_dataset(DatasetSpec(VQA, "test"), data_dir=tmp_path)


def test_csv_tables_via_data_files(tmp_path: Path) -> None:
    folder = write_fixture("MMVP/MMVP", tmp_path, n=4)
    source = open_dataset(DatasetSpec("MMVP/MMVP", "test", data_files="Questions.csv"), data_dir=tmp_path)
    assert len(source) == 4
    row = next(source.rows())
    assert list(row) == ["Index", "Question", "Options", "Correct Answer"]
    ref = source.image_ref(f"MMVP Images/{row['Index']}.jpg")
    assert ref.path == str(folder / "MMVP Images" / "1.jpg") and ref.load().mode == "RGB"


# --- errors -----------------------------------------------------------------------------------


def test_missing_dataset_folder_names_the_expected_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        open_dataset(DatasetSpec(VQA, "validation"), data_dir=tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "lmms-lab" / "VQAv2") in msg and "--data-dir" in msg and "\n" not in msg
    with pytest.raises(UsageError, match="does not exist"):
        open_dataset(DatasetSpec(VQA, "validation"), path=tmp_path / "nope")


def test_missing_split_lists_the_splits_present(mirror: Path) -> None:
    with pytest.raises(UsageError, match=r"no 'test' split under .*VQAv2 \(found: testdev, validation\); pass --data-dir"):
        open_dataset(DatasetSpec(VQA, "test"), data_dir=mirror)


def test_truncated_parquet_is_a_usage_error_naming_the_file(mirror: Path, tmp_path: Path) -> None:
    repo = tmp_path / VQA
    shutil.copytree(mirror / VQA, repo)
    shard = repo / "data" / "validation-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(UsageError, match=f"cannot read parquet file {shard}"):
        open_dataset(DatasetSpec(VQA, "validation"), data_dir=tmp_path)


def test_bad_dataset_id(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not of the form 'org/name'"):
        open_dataset(DatasetSpec("VQAv2", "validation"), data_dir=tmp_path)


# --- streaming --------------------------------------------------------------------------------


def test_rows_stream_batch_by_batch_with_bounded_memory(tmp_path: Path) -> None:
    """3000 rows x 24 KB of image bytes = 72 MB on disk; reading must hold a batch, not the split."""
    import random

    rng = random.Random(0)
    # Incompressible and distinct per row (a row-id prefix defeats dictionary encoding; snappy's
    # 64 KB window cannot see the reuse 16 rows apart), cheap to generate.
    payload = [rng.randbytes(24_000) for _ in range(16)]
    n = 3000
    rows = [{"question_id": i, "question": f"q{i}",
             "image": {"bytes": i.to_bytes(4, "little") + payload[i % 16], "path": None}}
            for i in range(n)]
    write_split(tmp_path / "org" / "big", "validation", rows, FEATURES, shards=2)
    del rows
    source = open_dataset(DatasetSpec("org/big", "validation"), data_dir=tmp_path)
    assert len(source) == n
    on_disk = sum(p.stat().st_size for p in source.files)
    assert on_disk > 60e6

    base = pa.total_allocated_bytes()
    peak, count = 0, 0
    for row in source.rows(batch_size=64):
        assert row["question_id"] == count
        count += 1
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert count == n
    # A couple of 100-row groups (2.4 MB each) in flight; an eager read holds >= one 36 MB shard.
    assert peak < on_disk / 6, f"peak arrow memory {peak / 1e6:.1f} MB for {on_disk / 1e6:.1f} MB of data"


# --- content hash and describe ------------------------------------------------------------------


def test_content_hash_ignores_location_but_not_content(mirror: Path, tmp_path: Path) -> None:
    spec = DatasetSpec(VQA, "validation")
    a = open_dataset(spec, data_dir=mirror)
    shutil.copytree(mirror / VQA, tmp_path / "moved")
    b = open_dataset(spec, path=tmp_path / "moved")
    assert a.content_hash() == b.content_hash() and len(a.content_hash()) == 16
    assert a.content_hash(full=True) == b.content_hash(full=True)
    # Rewrite one shard with one question changed.
    import pyarrow.parquet as pq

    shard = b.files[1]
    table = pq.read_table(shard)
    questions = table.column("question").to_pylist()
    questions[0] = questions[0] + " really?"
    table = table.set_column(table.schema.get_field_index("question"), "question", pa.array(questions))
    pq.write_table(table, shard, row_group_size=100)
    assert open_dataset(spec, path=tmp_path / "moved").content_hash() != a.content_hash()


def test_describe_for_run_json(mirror: Path) -> None:
    d = open_dataset(DatasetSpec(VQA, "testdev", revision="abc"), data_dir=mirror).describe()
    assert d == {"id": VQA, "split": "testdev", "config": None, "revision": None,
                 "content_hash": d["content_hash"], "location": str(mirror / VQA), "n": 12}


# --- image_ref --------------------------------------------------------------------------------


def test_image_ref_accepts_cells_bytes_and_relative_paths(tmp_path: Path) -> None:
    assert image_ref({"bytes": b"\x89PNG", "path": "x.png"}) == ImageRef(data=b"\x89PNG")
    assert image_ref(b"raw") == ImageRef(data=b"raw")
    ref = image_ref({"bytes": None, "path": "imgs/1.jpg"}, tmp_path)
    assert ref.path == str(tmp_path / "imgs/1.jpg") and ref.file() == str(tmp_path / "imgs/1.jpg")
    with pytest.raises(SampleError) as outside:  # confined to the dataset folder (tests/test_hostile.py)
        image_ref("/abs/1.jpg", tmp_path).file()
    assert outside.value.category == "image_path"
    for empty in (None, {"bytes": None, "path": None}, ""):
        with pytest.raises(SampleError) as err:
            image_ref(empty)
        assert err.value.category == "bad_record"


# --- hub path (no network: snapshot_download is replaced) ---------------------------------------


def test_hub_download_fetches_only_the_split(mirror: Path, tmp_path: Path, monkeypatch) -> None:
    import huggingface_hub

    sha = "c" * 40
    calls = []

    def fake_snapshot_download(repo_id, *, repo_type, revision, allow_patterns, **_):
        calls.append((repo_id, repo_type, revision))
        src = mirror / repo_id
        dst = tmp_path / "hub" / f"datasets--{repo_id.replace('/', '--')}" / "snapshots" / sha
        for f in src.rglob("*"):
            rel = f.relative_to(src).as_posix()
            if f.is_file() and any(fnmatch(rel, p) for p in allow_patterns):
                (dst / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f, dst / rel)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    source = open_dataset(DatasetSpec(VQA, "testdev"))
    assert calls == [(VQA, "dataset", None)]
    assert sorted(p.name for p in (source.root / "data").iterdir()) == [
        "testdev-00000-of-00002.parquet", "testdev-00001-of-00002.parquet"]
    assert source.location == f"hf://{VQA}@{sha}" and source.describe()["revision"] == sha
    assert len(source) == 12


def test_hub_errors_become_usage_errors(monkeypatch) -> None:
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach the hub and nothing cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(UsageError,
                       match=f"{VQA} is not in the hub cache .* nor prepared in the datasets cache .*--data-dir DIR"):
        open_dataset(DatasetSpec(VQA, "validation"))

    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(UsageError, match="cannot download .*Network is unreachable"):
        open_dataset(DatasetSpec(VQA, "validation"))
