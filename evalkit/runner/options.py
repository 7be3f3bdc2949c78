"""The options of a run, defined once.

Each field of ``RunOptions`` carries its command-line flag and help (``evalkit run`` builds its arguments from
them) and whether it is recorded in run.json's ``config`` (``RunConfig``) and part of the ``--resume`` key.
Adding an option is one field here; the CLI, the recorded config and the resume check follow.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError


def option(default: Any = MISSING, *, help: str, record: bool = False, resume_key: bool = False,
           cli: bool = True, metavar: str | None = None, kind: str | None = None, factory: Any = MISSING,
           aliases: tuple[str, ...] = ()) -> Any:
    """A RunOptions field. ``kind``: how the CLI parses it (positive_int, key_values, path, flag, csv, float);
    ``aliases``: more flags for it (``--gen_kwargs`` as lmms-eval spells it)."""
    meta = {"help": help, "record": record, "resume_key": resume_key, "cli": cli, "metavar": metavar, "kind": kind,
            "aliases": aliases}
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
    data_dir: Path | None = option(None, help="local mirror of hub datasets: DIR/<org>/<name> (default: "
                                   "$EVALKIT_DATA_DIR, else the hub and its cache)", kind="path",
                                   record=True, resume_key=True)
    output: Path = option(Path("results"), help="folder that receives the run folder", kind="path")
    resume: bool = option(False, help="continue the latest unfinished run of this model", kind="flag")
    seed: int = option(0, help="seed of sampling and shuffles", kind="int", record=True, resume_key=True)
    device: str = option("auto", help="auto, cpu, cuda, cuda:N or mps", record=True)
    dtype: str = option("auto", help="auto, float32, float16 or bfloat16", record=True, resume_key=True)
    protocol: str = option("evalkit", help="prompt protocol: evalkit (default), paper (each family's published "
                           "evaluation code) or lmms-eval (docs/protocols.md)", record=True, resume_key=True)
    revision: str | None = option(None, help="hub revision of the model")
    backend_args: dict[str, Any] = option(help="engine options key=value,...", kind="key_values", factory=dict,
                                          record=True, resume_key=True)
    # lmms-eval's name for checkpoint/engine options; merged into backend_args (the recorded one) on construction.
    model_args: dict[str, Any] = option(help="checkpoint/engine options key=value,... (merged with --backend-args)",
                                        kind="key_values", factory=dict)
    gen_kwargs: dict[str, Any] = option(help="override the tasks' decoding: " + ", ".join(
                                            f"{k}=..." for k in ("max_new_tokens", "temperature", "top_p",
                                                                 "num_beams", "stop")),
                                        kind="key_values", factory=dict, record=True, resume_key=True,
                                        aliases=("--gen_kwargs",))
    max_error_rate: float = option(0.0, help="exit 1 when a task's share of failed samples exceeds this (default 0)",
                                   kind="float", record=True)
    trust_remote_code: bool = option(False, help="allow the checkpoint's own Python code", kind="flag")
    # Questions on one image are handed to the engine together and the image's prompt prefix is prefilled once
    # (hf: reused KV cache, vLLM: prefix caching). Results do not depend on it; --no-prefix-reuse turns it off.
    prefix_reuse: bool = option(True, help="do not group questions by image nor reuse the image prefix's KV cache "
                                "(debugging)", kind="no_flag", record=True)
    progress: bool = option(True, help="progress bars", cli=False)
    judge: Any = option(None, help="JudgeConfig for judged tasks (--judge flags)", cli=False)
    # Decode/prepare the next window in a thread while the current one generates. None: where it pays
    # (Runner._overlap_pays); True/False force it (make bench measures both).
    prefetch: bool | None = option(None, help="prefetch thread (None: where it pays)", cli=False)
    # evalkit.evaluate(model=<a PreTrainedModel>): (model, processor) used as they are, nothing loaded.
    preloaded: Any = option(None, help="(model, processor) already in memory (Python API)", cli=False)

    def __post_init__(self) -> None:
        """Normalise what the CLI and the Python API both pass: --model-args merged into --backend-args,
        --gen-kwargs validated, $EVALKIT_DATA_DIR as the default --data-dir."""
        set_ = object.__setattr__  # frozen
        merged = dict(self.backend_args)
        for key, value in self.model_args.items():
            if key in merged and merged[key] != value:
                raise UsageError(f"--model-args {key}={value!r} conflicts with --backend-args {key}={merged[key]!r}; "
                                 "give it once")
            merged[key] = value
        set_(self, "backend_args", merged)
        set_(self, "model_args", {})
        set_(self, "gen_kwargs", generation_overrides(self.gen_kwargs))
        env_dir = os.environ.get("EVALKIT_DATA_DIR", "").strip()
        if self.data_dir is None and env_dir:
            if not Path(env_dir).expanduser().is_dir():
                raise UsageError(f"EVALKIT_DATA_DIR={env_dir}: no such folder; fix or unset it, or pass --data-dir")
            set_(self, "data_dir", Path(env_dir).expanduser())


GEN_KWARGS = ("max_new_tokens", "temperature", "top_p", "num_beams", "stop")
_GEN_ALIASES = {"until": "stop"}  # lmms-eval's generation_kwargs name


def generation_overrides(raw: Mapping[str, Any]) -> dict[str, Any]:
    """--gen-kwargs validated, JSON-ready (stop as a list): the overrides of every task's GenerationSettings."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = _GEN_ALIASES.get(key, key)
        if name not in GEN_KWARGS:
            raise UsageError(f"--gen-kwargs: unknown key {key!r}; allowed: {', '.join(GEN_KWARGS)} "
                             f"(and {', '.join(_GEN_ALIASES)} for stop)")
        out[name] = _gen_value(name, value)
    return out


def _gen_value(name: str, value: Any) -> Any:
    def bad(expected: str) -> UsageError:
        return UsageError(f"--gen-kwargs {name}={value!r}: give {expected}")

    if name == "stop":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(s, str) and s for s in items):
            raise bad("a string or a JSON list of strings, e.g. stop='[\"\\n\", \".\"]'")
        return list(items)
    if name in ("max_new_tokens", "num_beams"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad("a whole number of at least 1")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad("a number")
    if name == "temperature" and value < 0:
        raise bad("a temperature of 0 (greedy) or more")
    if name == "top_p" and not 0 < value <= 1:
        raise bad("a share in (0, 1]")
    return float(value)


def apply_generation(settings: Any, overrides: Mapping[str, Any], seed: int | None = None) -> Any:
    """A task's GenerationSettings with the --gen-kwargs overrides applied, and the run's --seed as the sampling
    seed (it matters only when temperature > 0; greedy decoding ignores it)."""
    from dataclasses import replace

    values = {k: tuple(v) if k == "stop" else v for k, v in overrides.items()}
    if seed is not None:
        values["seed"] = seed
    return replace(settings, **values) if values else settings


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
