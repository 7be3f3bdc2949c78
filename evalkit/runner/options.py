"""The options of a run, defined once.

Each field of ``RunOptions`` carries its command-line flag and help (``evalkit run`` builds its arguments from
them) and whether it is recorded in run.json's ``config`` (``RunConfig``) and part of the ``--resume`` key.
Adding an option is one field here; the CLI, the recorded config and the resume check follow.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


def option(default: Any = MISSING, *, help: str, record: bool = False, resume_key: bool = False,
           cli: bool = True, metavar: str | None = None, kind: str | None = None, factory: Any = MISSING) -> Any:
    """A RunOptions field. ``kind``: how the CLI parses it (positive_int, key_values, path, flag, csv, float)."""
    meta = {"help": help, "record": record, "resume_key": resume_key, "cli": cli, "metavar": metavar, "kind": kind}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunOptions:
    model: str = option(help="family (llava), 'reference', a local folder or a hub id")
    tasks: list[str] = option(help="comma list of tasks or groups (see `evalkit list tasks`)", kind="tasks",
                              record=True, resume_key=True)
    backend: str = option("hf", help="hf (transformers), vllm or openai")
    batch_size: int = option(8, help="samples per engine call (results do not depend on it)", kind="positive_int",
                             record=True)
    limit: int | None = option(None, help="evaluate at most N samples per task", kind="positive_int", record=True,
                               resume_key=True)
    data_dir: Path | None = option(None, help="local mirror of hub datasets: DIR/<org>/<name>", kind="path",
                                   record=True, resume_key=True)
    output: Path = option(Path("results"), help="folder that receives the run folder", kind="path")
    resume: bool = option(False, help="continue the latest unfinished run of this model", kind="flag")
    seed: int = option(0, help="seed of sampling and shuffles", kind="int", record=True, resume_key=True)
    device: str = option("auto", help="auto, cpu, cuda, cuda:N or mps", record=True)
    dtype: str = option("auto", help="auto, float32, float16 or bfloat16", record=True, resume_key=True)
    revision: str | None = option(None, help="hub revision of the model")
    backend_args: dict[str, Any] = option(help="engine options key=value,...", kind="key_values", factory=dict,
                                          record=True, resume_key=True)
    max_error_rate: float = option(0.0, help="exit 1 when a task's share of failed samples exceeds this (default 0)",
                                   kind="float", record=True)
    trust_remote_code: bool = option(False, help="allow the checkpoint's own Python code", kind="flag")
    progress: bool = option(True, help="progress bars", cli=False)
    judge: Any = option(None, help="JudgeConfig for judged tasks (--judge flags)", cli=False)
    # Decode/prepare the next window in a thread while the current one generates. None: where it pays
    # (Runner._overlap_pays); True/False force it (make bench measures both).
    prefetch: bool | None = option(None, help="prefetch thread (None: where it pays)", cli=False)


def cli_fields() -> list[Any]:
    return [f for f in fields(RunOptions) if f.metadata["cli"]]


def recorded(opts: RunOptions) -> dict[str, Any]:
    """The options written to run.json's config, JSON-ready."""
    out: dict[str, Any] = {}
    for f in fields(RunOptions):
        if f.metadata["record"]:
            value = getattr(opts, f.name)
            out[f.name] = str(value) if isinstance(value, Path) else (list(value) if f.name == "tasks" else
                                                                       dict(value) if isinstance(value, dict) else value)
    return out


def resume_key_names() -> list[str]:
    return [f.name for f in fields(RunOptions) if f.metadata["resume_key"]]
