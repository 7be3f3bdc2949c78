"""Dataset loading: offline first, streaming, in the hub's own file layouts.

A task names its data with a :class:`DatasetSpec` (hub id, split, optional config and pinned
revision). :func:`open_dataset` resolves it to a readable copy, in this order:

1. ``path``: a per-task local folder (any layout below) or a single ``.parquet``/``.arrow``/``.csv``
   file, read whatever the split;
2. ``data_dir``: ``data_dir/<org>/<name>`` (the hub repository mirrored as folders), or a Hugging
   Face cache under ``data_dir`` (``datasets--<org>--<name>/snapshots/<sha>``);
3. the hub: ``huggingface_hub.snapshot_download`` of only that split's files, then the same reader.

Layouts read (the real ones):

- hub repository with parquet shards: ``data/<split>-*.parquet``, ``data/<split>/*.parquet``,
  ``<config>/<split>-*.parquet``, ``<config>/<split>/*.parquet``, ``<split>-*.parquet``;
- ``datasets.save_to_disk`` output: a Dataset folder (``state.json``, ``data-*.arrow``) or a
  DatasetDict folder (``dataset_dict.json`` + one subfolder per split), read with pyarrow;
- explicit table files (``DatasetSpec.data_files``, a glob such as ``"Questions.csv"``) for repos
  that are not parquet, e.g. MMVP.

Rows come out as plain dicts, one record batch at a time. Hub image columns stay as
``{"bytes": ..., "path": ...}`` cells; :func:`image_ref` turns a cell into a lazy
:class:`~evalkit.core.types.ImageRef`.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError
from evalkit.core.hf_cache import NotCached, prepared_split
from evalkit.core.types import ImageRef, SampleError
from evalkit.core.data_files import (  # noqa: F401 - DatasetSpec and hub_unreachable are re-exported
    _FIX, DatasetSpec, _download, _find_files, _mirror_folder, _one_line, hub_unreachable)

BATCH_SIZE = 256  # rows per record batch; with ~100-row hub row groups this bounds memory
TABLE_SUFFIXES = (".parquet", ".arrow", ".csv")
# ---------------------------------------------------------------------------------------------
# Readers: one per file format, all streaming.


def _parquet_file(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=False: pyarrow's default pre-buffering reads every requested row group up
        # front (the whole file when iterating it); without it memory stays at ~one row group.
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"cannot read parquet file {path}: {_one_line(exc)}; re-download it or {_FIX}"
        ) from exc


def _open_arrow(path: Path) -> Any:
    """A record-batch reader over a memory-mapped Arrow IPC file (stream format, or file format)."""
    import pyarrow as pa

    try:
        source = pa.memory_map(str(path))
        try:
            return pa.ipc.open_stream(source)
        except pa.ArrowInvalid:
            return pa.ipc.open_file(source)
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(
            f"cannot read arrow file {path}: {_one_line(exc)}; re-save it with "
            f"datasets.save_to_disk or {_FIX}"
        ) from exc


def _arrow_batches(path: Path) -> Iterator[Any]:
    reader = _open_arrow(path)
    if hasattr(reader, "num_record_batches"):  # IPC file format
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)
    else:
        yield from reader


def _count_rows(path: Path) -> int:
    """Row count without materialising rows (parquet footer; memory-mapped arrow batch headers)."""
    suffix = path.suffix
    if suffix == ".parquet":
        return int(_parquet_file(path).metadata.num_rows)
    if suffix == ".arrow":
        return sum(batch.num_rows for batch in _guard(path, _arrow_batches(path)))
    return sum(1 for _ in _csv_rows(path))


def _columns_of(path: Path) -> list[str]:
    if path.suffix == ".parquet":
        return list(_parquet_file(path).schema_arrow.names)
    if path.suffix == ".arrow":
        return list(_open_arrow(path).schema.names)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return list(next(csv.reader(f), []))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _bad_csv(path, exc) from exc


def _bad_csv(path: Path, exc: Exception) -> UsageError:
    if isinstance(exc, UnicodeDecodeError):
        return UsageError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); re-save it as UTF-8")
    return UsageError(f"{path} is not a readable CSV file ({_one_line(exc)}); re-save it")


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a UTF-8 CSV file; undecodable bytes or a broken quote are a UsageError naming the file."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _bad_csv(path, exc) from exc


def _guard(path: Path, batches: Iterator[Any]) -> Iterator[Any]:
    """Re-raise a read failure in the middle of a file as a UsageError naming the file."""
    import pyarrow as pa

    try:
        yield from batches
    except (pa.ArrowException, OSError) as exc:
        raise UsageError(f"cannot read {path}: {_one_line(exc)}; re-download it or {_FIX}") from exc


def _file_rows(path: Path, columns: list[str] | None, batch_size: int) -> Iterator[dict[str, Any]]:
    if path.suffix == ".csv":
        for row in _csv_rows(path):
            yield row if columns is None else {c: row[c] for c in columns}
        return
    if path.suffix == ".parquet":
        batches = _parquet_file(path).iter_batches(batch_size=batch_size, columns=columns)
    else:
        batches = (b if columns is None else b.select(columns) for b in _arrow_batches(path))
    for batch in _guard(path, batches):
        # Convert at most ``batch_size`` rows at a time, so Python objects stay bounded too.
        for start in range(0, batch.num_rows, batch_size):
            yield from batch.slice(start, batch_size).to_pylist()


def _footer(path: Path) -> bytes:
    """The parquet footer: schema, row groups, column-chunk offsets/sizes/statistics."""
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size < 12:
            raise UsageError(f"parquet file {path} is truncated ({size} bytes); re-download it")
        f.seek(size - 8)
        tail = f.read(8)
        footer_len = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1" or footer_len + 8 > size:
            raise UsageError(f"parquet file {path} has no valid footer; re-download it or {_FIX}")
        f.seek(size - 8 - footer_len)
        return f.read(footer_len)


def _file_digest(path: Path, full: bool) -> bytes:
    if path.suffix == ".parquet" and not full:
        return hashlib.sha256(_footer(path)).digest()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


# ---------------------------------------------------------------------------------------------


class DatasetSource:
    """A resolved, readable copy of one split: its table files, in read order, under ``root``.

    ``location`` is the folder read (or ``hf://<id>@<sha>`` for a hub download); ``revision`` is
    the commit of what is read where known (hub download or HF cache snapshot), else ``None``.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        root: Path,
        files: list[Path],
        location: str | None = None,
        revision: str | None = None,
    ):
        self.spec = spec
        self.root = root
        self.files = files
        self.location = location or str(root)
        self.revision = revision
        self._n: int | None = None
        self._hash: str | None = None

    def __len__(self) -> int:
        """Row count from parquet/arrow metadata, without reading rows."""
        if self._n is None:
            self._n = sum(_count_rows(p) for p in self.files)
        return self._n

    @property
    def columns(self) -> list[str]:
        return _columns_of(self.files[0])

    def rows(
        self, columns: list[str] | None = None, batch_size: int = BATCH_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Stream the split's records as dicts, one record batch at a time (memory bounded).

        ``columns`` selects columns (others are never read from parquet); a column the copy
        lacks is a UsageError naming the columns it has.
        """
        if columns is not None:
            have = self.columns
            missing = [c for c in columns if c not in have]
            if missing:
                raise UsageError(
                    f"{self.location} has no column(s) {', '.join(missing)} for "
                    f"{self.spec.hub_id} (has: {', '.join(have)}); {_FIX}"
                )
        root = str(self.root)
        for path in self.files:
            for row in _file_rows(path, columns, batch_size):
                yield {k: _confine_cell(v, root) for k, v in row.items()}

    def content_hash(self, full: bool = False) -> str:
        """A stable hash of the table files read, independent of where the copy lives.

        Covers, per file in read order: its path relative to the dataset folder, its size, and
        a digest. For parquet the digest (default) is of the footer, which records every row
        group's row count, column-chunk offsets and compressed sizes and min/max statistics:
        reads a few KB per shard, milliseconds for a 68-shard split; any added, dropped or
        re-encoded row changes it, but a same-size in-place byte edit inside a page may not.
        ``full=True`` (and always for arrow/csv, which have no footer) hashes every byte,
        about 1 GB/s. Images referenced by path (MMVP, Karpathy) are not covered.
        """
        if self._hash is None or full:
            h = hashlib.sha256()
            for path in self.files:
                rel = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else path.name
                h.update(f"{rel}\0{path.stat().st_size}\0".encode())
                h.update(_file_digest(path, full))
            digest = h.hexdigest()[:16]
            if full:
                return digest
            self._hash = digest
        return self._hash

    def image_ref(self, value: Any) -> ImageRef:
        """:func:`image_ref` with paths resolved against, and confined to, this dataset's folder."""
        return image_ref(value, self.root)

    def check(self, columns: dict[str, tuple[str, ...]] | None = None, id_column: str | None = None) -> None:
        """Whole-dataset checks at open, before any model loads (each a UsageError naming the file):

        - ``columns``: required column -> the arrow type kinds it may have ("string", "integer", "list",
          "struct", "binary", "floating"); a CSV holds strings only, which any kind accepts (parsed per row);
        - ``id_column``: every id is unique (read from that column alone); a repeated id names the id and file.
        """
        for name, kinds in (columns or {}).items():
            for path in self.files:
                kind = _column_kind(path, name)
                if kind is None:
                    raise UsageError(f"{path} has no column {name!r} (has: {', '.join(_columns_of(path))}), "
                                     f"which {self.spec.hub_id} needs; {_FIX}")
                if kinds and kind != "csv" and kind not in kinds:
                    raise UsageError(f"{path}: column {name!r} holds {kind} values, {self.spec.hub_id} needs "
                                     f"{' or '.join(kinds)}; {_FIX}")
        if id_column is not None:
            seen: set[str] = set()
            for path in self.files:
                if _column_kind(path, id_column) is None:
                    continue  # ids then come from row positions (``row-<i>``), unique by construction
                rows = _file_rows(path, None if path.suffix == ".csv" else [id_column], BATCH_SIZE)
                for row in rows:
                    key = str(_clean_keys(row).get(id_column)).strip()
                    if key in seen:
                        raise UsageError(f"{path}: sample id {key!r} ({id_column}) appears more than once; "
                                         "ids must be unique (remove or renumber the repeated rows)")
                    seen.add(key)

    def describe(self) -> dict[str, Any]:
        """What run.json records about the data read."""
        return {
            "id": self.spec.hub_id,
            "split": self.spec.split,
            "config": self.spec.config,
            "revision": self.revision,
            "content_hash": self.content_hash(),
            "location": self.location,
            "n": len(self),
        }


def _confine_cell(value: Any, root: str) -> Any:
    """A hub image cell holding only a path becomes an ImageRef confined to the dataset folder ``root``."""
    if isinstance(value, dict) and value.keys() == {"bytes", "path"} and value["bytes"] is None and value["path"]:
        return ImageRef(path=os.path.join(root, str(value["path"])), root=root)
    return value


def _clean_keys(row: dict[str, Any]) -> dict[str, Any]:
    """Column names without a byte-order mark or padding (Excel-saved CSVs have both)."""
    return {str(k).lstrip("\ufeff").strip(): v for k, v in row.items()}


def _column_kind(path: Path, name: str) -> str | None:
    """The arrow type kind of column ``name`` of a table file ("csv" for any CSV column), None when absent."""
    if path.suffix == ".csv":
        return "csv" if name in _clean_keys(dict.fromkeys(_columns_of(path))) else None
    import pyarrow as pa

    schema = _parquet_file(path).schema_arrow if path.suffix == ".parquet" else _open_arrow(path).schema
    if name not in schema.names:
        return None
    t = schema.field(name).type
    for kind, test in (("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
                       ("integer", pa.types.is_integer), ("floating", pa.types.is_floating),
                       ("list", lambda t: pa.types.is_list(t) or pa.types.is_large_list(t)),
                       ("struct", pa.types.is_struct),
                       ("binary", lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t))):
        if test(t):
            return kind
    return str(t)


def image_ref(value: Any, root: Path | None = None) -> ImageRef:
    """A lazy ImageRef from a hub image cell ``{"bytes", "path"}``, raw bytes, or a path.

    Paths resolve against ``root`` (the dataset folder) and must stay inside it (``ImageRef.load`` refuses
    ``../..`` and absolute paths elsewhere without opening them). A record without any image
    raises SampleError("bad_record"); undecodable bytes only fail later, in ``ImageRef.load``.
    """
    if isinstance(value, ImageRef):
        return value
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            return ImageRef(data=bytes(data))
        value = path
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ImageRef(data=bytes(value))
    if isinstance(value, (str, Path)) and str(value):
        if root is not None:  # joined lexically; ImageRef.file() checks it stays inside root
            return ImageRef(path=os.path.join(root, value), root=str(root))
        return ImageRef(path=str(value))
    raise SampleError("bad_record", f"record has no image (got {type(value).__name__})")


# ---------------------------------------------------------------------------------------------
# Resolution of a spec to files.


def open_dataset(
    spec: DatasetSpec, data_dir: Path | None = None, path: Path | None = None
) -> DatasetSource:
    """Resolve ``spec`` to a local readable copy: ``path``, else ``data_dir``, else the hub."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.exists():
            raise UsageError(f"data path {path} for {spec.hub_id} does not exist; fix the path")
        if path.is_file():
            if path.suffix not in TABLE_SUFFIXES:
                raise UsageError(
                    f"data path {path} is not a .parquet, .arrow or .csv file; pass a folder "
                    "in the hub layout or one of those files"
                )
            return _source(spec, path.parent, [path], str(path))
        return _source(spec, path, _find_files(spec, path))
    if data_dir is not None:
        root, revision = _mirror_folder(spec, Path(data_dir).expanduser())
        return _source(spec, root, _find_files(spec, root), revision=revision)
    try:
        root, revision = _download(spec)
    except NotCached:  # offline and not in the hub cache: what datasets.load_dataset prepared (HF_DATASETS_CACHE)
        prepared = prepared_split(spec.hub_id, spec.config, spec.split)
        if prepared is None:
            raise
        return _source(spec, prepared[0], prepared[1], f"hf-datasets-cache://{prepared[0]}")
    return _source(spec, root, _find_files(spec, root), f"hf://{spec.hub_id}@{revision}", revision)


def _source(
    spec: DatasetSpec,
    root: Path,
    files: list[Path],
    location: str | None = None,
    revision: str | None = None,
) -> DatasetSource:
    source = DatasetSource(spec, root, files, location, revision)
    for p in files:  # fail at open, with the file named, rather than mid-run
        if p.suffix == ".parquet":
            _parquet_file(p)
    if len(source) == 0:
        named = files[0] if len(files) == 1 else f"{root} ({len(files)} files)"
        raise UsageError(f"{named} holds no rows of {spec.hub_id} ({spec.split}); re-download it or {_FIX}")
    return source
