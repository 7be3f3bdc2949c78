"""Append-only per-task sample store: the crash-safe record of a run.

Each finished batch is appended to ``samples/<task>.jsonl``, flushed and fsynced before the
runner moves on, so a killed run loses at most the batch in flight. A resumed run reads the ids
already present and skips them.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from evalkit.core.errors import UsageError
from evalkit.core.results import SampleRecord, read_samples

LOCK_FILE = ".lock"


class RunLock:
    """An exclusive lock on a run folder (``fcntl.flock`` on ``<run>/.lock``) held while a process writes it.

    Two processes resuming the same folder would both generate and append; the second to arrive gets a
    UsageError naming the holder (pid and host written into the lock file). The kernel drops the lock when
    its holder exits, however it exits (SIGKILL included), so a stale lock never blocks a resume.
    """

    def __init__(self, run_dir: Path):
        import fcntl

        self.path = Path(run_dir) / LOCK_FILE
        self._fh = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise UsageError(f"{run_dir} is in use by {holder}: another evalkit process is writing this run; "
                             "wait for it to finish (or stop it), then rerun") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self._fh.flush()

    def release(self) -> None:
        if not self._fh.closed:
            self._fh.close()  # closing the file drops the flock


class SampleStore:
    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir) / "samples"
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, task: str) -> Path:
        return self.dir / f"{task}.jsonl"

    def done_ids(self, task: str) -> set[str]:
        return {rec.id for rec in read_samples(self.dir.parent, task)}

    def records(self, task: str) -> list[SampleRecord]:
        return read_samples(self.dir.parent, task)

    def append(self, task: str, records: list[SampleRecord]) -> None:
        if not records:
            return
        payload = "".join(rec.model_dump_json() + "\n" for rec in records)
        path = self.path(task)
        self._repair_torn_tail(path)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    @staticmethod
    def _repair_torn_tail(path: Path) -> None:
        """A run killed mid-write can leave a last line without its newline: drop it before appending."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as fh:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) == b"\n":
                return
            fh.seek(0)
            data = fh.read()
            cut = data.rfind(b"\n") + 1
            fh.truncate(cut)
