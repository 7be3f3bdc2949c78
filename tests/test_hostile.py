"""Hostile data, without a model (issue 23): image bombs, empty/duplicate/mistyped/non-UTF-8 datasets, paths
outside the dataset folder, terminal escapes, NaN in run.json, the offline hub, Ctrl-C during METEOR.

The runs end to end (exit codes, run folders, locks, full disks, forged runs) are in tests/test_hostile_run.py.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evalkit.core.data import DatasetSpec, image_ref, open_dataset
from evalkit.core.errors import UsageError
from evalkit.core.types import ImageRef, SampleError
from evalkit.testing.hub_fixtures import write_fixture
from result_factory import TaskSpec, make_run

VQA = "lmms-lab/VQAv2"


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` grey pixels and holds almost none of them (a bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


# --- 1. decompression bombs and the decoded-pixel cap -------------------------------------------


def test_decompression_bomb_is_one_failed_sample_with_its_size() -> None:
    with pytest.raises(SampleError) as err:  # Pillow raises DecompressionBombError, which is not an OSError
        ImageRef(data=png_header(20000, 20000)).load()
    assert err.value.category == "image_decode"
    assert "400000000" in err.value.message or "20000x20000" in err.value.message


def test_images_above_the_pixel_cap_are_refused_from_the_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    # 12000 x 12000 is under Pillow's bomb error (2 x 89M pixels) and decoded to GBs without the cap.
    with pytest.raises(SampleError) as err:
        ImageRef(data=png_header(12000, 12000)).load()
    assert "12000x12000" in err.value.message and "EVALKIT_MAX_IMAGE_PIXELS" in err.value.message

    decoded: list[tuple[int, int]] = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or real_load(self))
    monkeypatch.setenv("EVALKIT_MAX_IMAGE_PIXELS", "10000")
    with pytest.raises(SampleError) as err:
        ImageRef(data=png(200, 100)).load()
    assert "200x100" in err.value.message and decoded == []  # refused before a single pixel was decoded
    monkeypatch.setenv("EVALKIT_MAX_IMAGE_PIXELS", "20000")
    assert ImageRef(data=png(200, 100)).load().size == (200, 100)
    monkeypatch.setenv("EVALKIT_MAX_IMAGE_PIXELS", "many")
    with pytest.raises(UsageError, match="EVALKIT_MAX_IMAGE_PIXELS"):
        ImageRef(data=png(2, 2)).load()


# --- 4-7. datasets wrong as a whole: exit 2 naming the file, at open --------------------------------


def rewrite_split(folder: Path, edit) -> Path:
    """Replace the validation shards of a VQAv2 mirror by one file holding ``edit(rows)`` (a pyarrow table)."""
    shards = sorted((folder / "data").glob("validation-*.parquet"))
    table = pa.concat_tables([pq.read_table(p) for p in shards])
    for p in shards:
        p.unlink()
    out = folder / "data" / "validation-00000-of-00001.parquet"
    pq.write_table(edit(table), out)
    return out


@pytest.fixture()
def vqa(tmp_path: Path) -> Path:
    write_fixture(VQA, tmp_path, n=6, seed=0)
    return tmp_path


def load_vqa(data_dir: Path) -> list:
    from evalkit.tasks import get_task
    from evalkit.tasks.base import TaskContext

    return list(get_task("vqav2_val").load(TaskContext(data_dir=data_dir)).samples)


def test_zero_row_parquet_names_the_file(vqa: Path) -> None:
    path = rewrite_split(vqa / VQA, lambda t: t.slice(0, 0))
    with pytest.raises(UsageError, match="holds no rows") as err:
        open_dataset(DatasetSpec(VQA, "validation"), data_dir=vqa)
    assert str(path) in str(err.value)


def test_empty_questions_csv_names_the_file(tmp_path: Path) -> None:
    folder = write_fixture("MMVP/MMVP", tmp_path, n=4)
    (folder / "Questions.csv").write_bytes(b"")
    with pytest.raises(UsageError, match="Questions.csv holds no rows"):
        open_dataset(DatasetSpec("MMVP/MMVP", "test", data_files="Questions.csv"), data_dir=tmp_path)


def test_duplicate_sample_ids_name_the_id(vqa: Path) -> None:
    def repeat(t: pa.Table) -> pa.Table:
        ids = t.column("question_id").to_pylist()
        ids[4] = ids[1]
        return t.set_column(t.schema.get_field_index("question_id"), "question_id", pa.array(ids, t.schema.field("question_id").type))

    rewrite_split(vqa / VQA, repeat)
    ids = pq.read_table(next((vqa / VQA / "data").glob("validation-*"))).column("question_id").to_pylist()
    with pytest.raises(UsageError, match="appears more than once") as err:
        load_vqa(vqa)
    assert repr(str(ids[1])) in str(err.value)


@pytest.mark.parametrize("column", ["question", "answers", "image"])
def test_missing_required_column_fails_at_open(vqa: Path, column: str) -> None:
    rewrite_split(vqa / VQA, lambda t: t.drop_columns([column]))
    with pytest.raises(UsageError, match=f"no column '{column}'"):
        load_vqa(vqa)


def test_wrong_column_type_fails_at_open(vqa: Path) -> None:
    def numbers(t: pa.Table) -> pa.Table:
        i = t.schema.get_field_index("question")
        return t.set_column(i, "question", pa.array(range(t.num_rows), pa.int64()))

    rewrite_split(vqa / VQA, numbers)
    with pytest.raises(UsageError, match="column 'question' holds integer values"):
        load_vqa(vqa)


def test_non_utf8_questions_csv_is_one_line(tmp_path: Path) -> None:
    from evalkit.tasks import get_task
    from evalkit.tasks.base import TaskContext

    folder = write_fixture("MMVP/MMVP", tmp_path, n=4)
    text = (folder / "Questions.csv").read_text(encoding="utf-8").replace("Is the", "Est-ce café", 1)
    (folder / "Questions.csv").write_bytes(text.encode("latin-1"))
    with pytest.raises(UsageError, match="is not UTF-8") as err:
        list(get_task("mmvp").load(TaskContext(data_dir=tmp_path)).samples)
    assert "Questions.csv" in str(err.value) and "\n" not in str(err.value)


# --- 8. image paths confined to the dataset folder ---------------------------------------------


@pytest.mark.parametrize("bad", ["../../../../../../etc/passwd", "/etc/passwd"])
def test_path_cells_outside_the_dataset_fail_unopened(vqa: Path, bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    def to_path(t: pa.Table) -> pa.Table:
        cells = t.column("image").to_pylist()
        cells[0] = {"bytes": None, "path": bad}
        return t.set_column(t.schema.get_field_index("image"), "image", pa.array(cells, t.schema.field("image").type))

    rewrite_split(vqa / VQA, to_path)
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k))
    first = load_vqa(vqa)[0]
    with pytest.raises(SampleError) as err:
        first.images[0].load()
    assert err.value.category == "image_path" and "outside the dataset folder" in err.value.message
    assert opened == []


def test_relative_paths_inside_the_dataset_still_load(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(png(4, 3))
    assert image_ref("imgs/../imgs/a.png", tmp_path).load().size == (4, 3)
    with pytest.raises(SampleError, match="outside"):
        image_ref("imgs/../../a.png", tmp_path).load()


def test_rating_sheet_never_embeds_files_outside_the_cases_folder(tmp_path: Path) -> None:
    from evalkit.commands.rating import _image_src

    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "1.png").write_bytes(png(2, 2))
    (tmp_path / "secret.png").write_bytes(png(2, 2))
    assert _image_src(tmp_path, "1.png", ).startswith("data:image/png;base64,")
    assert _image_src(tmp_path, "../secret.png") is None
    assert _image_src(tmp_path, "/etc/passwd") is None
    assert _image_src(tmp_path, "../../../../../../../etc/passwd") is None


# --- 13. terminal escapes -------------------------------------------------------------------------

ESCAPES = "evil\x1b]0;pwned\x07\x1b[2J\x9b31m\u202etxt"


def test_printable_escapes_control_characters() -> None:
    from evalkit.core.terminal import printable

    out = printable(ESCAPES + "\tok\nline")
    assert not any(c in out for c in "\x1b\x07\x9b\u202e")
    assert out == "evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202etxt\tok\nline"


@pytest.mark.parametrize("terminal", [True, False])
def test_tables_and_run_summary_print_no_escapes(terminal: bool, tmp_path: Path) -> None:
    from rich.console import Console

    from evalkit.commands.report import print_run_summary
    from evalkit.core.results import read_run

    record = read_run(make_run(tmp_path, "r1", {"vqav2_val": TaskSpec([1.0, 0.0])}, model=ESCAPES))
    record.tasks["vqav2_val"].notes.append(ESCAPES)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=terminal, width=200, no_color=True)
    print_run_summary(record, Path("/tmp/" + ESCAPES), console=console)
    out = buf.getvalue()
    assert "pwned" in out and "\x1b]0" not in out and "\x07" not in out and "\u202e" not in out


def test_error_lines_print_no_escapes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from evalkit.cli import main

    assert main(["score", str(tmp_path / ESCAPES)]) == 2
    err = capsys.readouterr().err
    assert "pwned" in err and "\x1b" not in err and "\x07" not in err


# --- 15. NaN in run.json ---------------------------------------------------------------------------


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_metric_is_a_malformed_file(tmp_path: Path, constant: str) -> None:
    from evalkit.core.results import read_run

    run_dir = make_run(tmp_path, "r1", {"vqav2_val": TaskSpec([1.0, 0.0])})
    text = (run_dir / "run.json").read_text()
    value = json.loads(text)
    task = next(iter(value["tasks"].values()))
    metric = next(iter(task["metrics"].values()))
    marker = f'"value": {json.dumps(metric["value"])}'
    assert marker in text
    (run_dir / "run.json").write_text(text.replace(marker, f'"value": {constant}', 1))
    with pytest.raises(UsageError, match="malformed"):
        read_run(run_dir)


# --- 14. unknown hub id offline: one line, at once ---------------------------------------------------


def test_unknown_hub_id_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from huggingface_hub import constants

    from evalkit.runner.models import resolve_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # the user did not say offline; the network is down

    def no_route(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_route)
    monkeypatch.setattr(socket, "getaddrinfo", no_route)
    start = time.perf_counter()
    with pytest.raises(UsageError, match="cannot be reached") as err:
        resolve_model("nobody-here/no-such-model")
    assert time.perf_counter() - start < 5
    assert "\n" not in str(err.value)


# --- 3. Ctrl-C while METEOR's JVM runs -----------------------------------------------------------------

METEOR_CHILD = """
import sys, time
import evalkit.metrics.caption_corpus as cc
def slow(self, stats, weights=None):
    with self._meteor.lock:  # as the real method does, then waits on the JVM
        print("scoring", self._meteor.meteor_p.pid, flush=True)
        time.sleep(120)
cc.MeteorSession.score = slow
from evalkit.metrics.captioning import score_captions
try:
    score_captions({"1": "a dog runs"}, {"1": ["a dog is running", "a brown dog"]}, metrics=("meteor",))
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.skipif(not __import__("shutil").which("java"), reason="needs Java")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_meteor_exits_at_once_and_ends_the_jvm(sig: int) -> None:
    pytest.importorskip("pycocoevalcap")
    child = METEOR_CHILD
    if sig == signal.SIGTERM:  # as the runner installs it: SIGTERM ends a run like Ctrl-C
        child = ("import signal\nfrom evalkit.runner.pipeline import _sigterm_as_interrupt\n"
                 "_sigterm_as_interrupt()\n") + child
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL) and None,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    try:
        line = proc.stdout.readline()
        assert line.startswith("scoring"), proc.stderr.read()
        jvm = int(line.split()[1])
        proc.send_signal(sig)
        rc = proc.wait(timeout=15)  # hung in Meteor.__del__ (waiting on the lock) before the fix
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 130
    with pytest.raises(ProcessLookupError):
        for _ in range(50):  # the JVM is gone (reaped by the child before it exited)
            os.kill(jvm, 0)
            time.sleep(0.1)


def test_known_hub_checkpoint_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from huggingface_hub import constants

    from evalkit.adapters import get_adapter
    from evalkit.backends.base import BackendConfig
    from evalkit.backends.hf import HfBackend
    from evalkit.runner.models import resolve_model

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    def no_route(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", no_route)
    monkeypatch.setattr(socket, "getaddrinfo", no_route)
    spec = resolve_model("llava")  # a hub id, not in the (empty) test cache
    backend = HfBackend(spec, get_adapter(spec.family), BackendConfig(device="cpu"))
    import transformers  # imported before the clock starts (lazily, ~5 s): only the load attempt is timed

    getattr(transformers, backend.adapter.hf_model_class), transformers.AutoProcessor

    start = time.perf_counter()
    with pytest.raises(UsageError, match="cannot load model"):
        backend.load()
    assert time.perf_counter() - start < 5
