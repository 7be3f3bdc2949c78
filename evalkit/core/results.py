"""The result files: typed, versioned, and the only thing leaderboard/compare read.

Layout (a contract, see DESIGN.md):
    <out>/<run_id>/run.json              RunRecord
    <out>/<run_id>/samples/<task>.jsonl  one SampleRecord per line, appended as samples finish

Serialization is pydantic's: a value that is not JSON-representable raises instead of
being silently turned into a string.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evalkit import RESULT_SCHEMA_VERSION
from evalkit.core.errors import UsageError
from pydantic import JsonValue as Json


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SampleRecord(_Model):
    """One evaluated sample, exactly as sent and received."""

    id: str
    task: str
    prompt: str | None = Field(description="the exact text sent to the model (chat template applied)")
    prompt_hash: str | None = Field(default=None, description="sha256 of prompt text + image digests")
    output: str | None = Field(description="raw model output")
    parsed: Json = Field(default=None, description="answer after adapter and task parsing")
    target: Json = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    error: str | None = Field(default=None, description="null, or why this sample failed")
    error_category: str | None = None
    n_prompt_tokens: int | None = None
    n_generated_tokens: int | None = None
    metadata: dict[str, Json] = Field(default_factory=dict)


class MetricValue(_Model):
    value: float | None = Field(description="x100 for rates; null when not computable (e.g. hidden answers)")
    stderr: float | None = None
    n: int


class Telemetry(_Model):
    wall_s: float = 0.0
    samples_per_s: float | None = None
    prompt_tokens_per_s: float | None = None
    generated_tokens_per_s: float | None = None
    peak_rss_mb: float | None = None
    peak_gpu_memory_mb: float | None = None
    load_s: float = 0.0
    data_s: float = Field(default=0.0, description="reading records and decoding images")
    generate_s: float = 0.0
    score_s: float = 0.0
    write_s: float = 0.0
    n_prompt_tokens: int = 0
    n_generated_tokens: int = 0
    prefix_cache_hit_rate: float | None = Field(
        default=None, description="share of prompt tokens whose KV cache came from an earlier prompt with the same "
        "image and prefix (vLLM: its prefix-cache counters; hf: reused image prefixes); null when none was reused")


class ReplicaTelemetry(Telemetry):
    """One data-parallel replica's share of a task (or, in ``RunRecord.replicas``, of the whole run).

    ``wall_s`` is the time the replica was busy with work units; token rates are per its own generate time.
    """

    replica: int = Field(description="replica index, 0..N-1 (a restarted replica keeps its index)")
    node: str | None = Field(default=None, description="IP address of the node the replica ran on (last one)")
    n: int = Field(default=0, description="samples this replica evaluated")
    restarts: int = Field(default=0, description="times the replica died and was restarted")


class DatasetInfo(_Model):
    id: str
    split: str
    config: str | None = None
    revision: str | None = None
    content_hash: str | None = None
    location: str | None = None
    n: int | None = None


class TaskResult(_Model):
    version: int | None = Field(default=None, description="the task definition's version when it was scored")
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    primary_metric: str
    n: int = Field(description="samples evaluated (errors included)")
    n_errors: int = 0
    n_empty: int = Field(default=0, description="samples whose output was empty (counted, scored as given)")
    errors_by_category: dict[str, int] = Field(default_factory=dict)
    dataset: DatasetInfo
    generation: dict[str, Json] = Field(default_factory=dict, description="effective decoding settings")
    telemetry: Telemetry = Field(default_factory=Telemetry)
    replicas: list[ReplicaTelemetry] | None = Field(
        default=None, description="data-parallel runs: each replica's share (telemetry above is the aggregate)")
    notes: list[str] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict, description="extra files, relative to the run folder")


class ModelInfo(_Model):
    name: str
    family: str
    checkpoint: str
    revision: str | None = None
    model_type: str | None = Field(default=None, description="config.json model_type")
    fingerprint: str | None = Field(default=None, description="hash of the weight files' content")


class RunConfig(_Model):
    tasks: list[str]
    batch_size: int
    limit: int | None = None
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    data_dir: str | None = None
    backend_args: dict[str, Json] = Field(default_factory=dict)
    gen_kwargs: dict[str, Json] = Field(default_factory=dict, description="--gen-kwargs: overrides of every task's "
                                        "decoding (the effective settings are each task's 'generation')")
    max_error_rate: float = 0.0
    prefix_reuse: bool = Field(default=True, description="questions grouped by image, image prefix prefilled once "
                               "(false: --no-prefix-reuse)")
    data_parallel: int = Field(default=1, description="model replicas (--data-parallel) in the latest session")
    task_versions: dict[str, int] = Field(
        default_factory=dict, description="each task's definition version (prompt, data, scoring); part of the resume key")
    protocol: str = Field(default="evalkit", description="prompt protocol (--protocol; docs/protocols.md); runs "
                          "written before protocols existed used the evalkit prompts")
    protocol_hash: str | None = Field(default=None, description="hash of the protocol entries rendered for the "
                                      "run's task kinds (family, model_type, texts, system prompt, limits)")


class RunRecord(_Model):
    schema_version: str = RESULT_SCHEMA_VERSION
    run_id: str
    status: Literal["running", "completed", "interrupted", "failed"]
    created_at: str
    finished_at: str | None = None
    model: ModelInfo
    backend: str
    config: RunConfig
    environment: dict[str, str | None] = Field(default_factory=dict)
    tasks: dict[str, TaskResult] = Field(default_factory=dict)
    telemetry: Telemetry = Field(default_factory=Telemetry)
    replicas: list[ReplicaTelemetry] | None = Field(
        default=None, description="data-parallel runs: each replica over the whole run, model load included")


def json_schema() -> dict[str, Any]:
    """JSON Schema of run.json and of one samples/<task>.jsonl line (printed by `evalkit schema`)."""
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "run.json": RunRecord.model_json_schema(),
        "samples/<task>.jsonl line": SampleRecord.model_json_schema(),
    }


def write_run(run_dir: Path, record: RunRecord) -> None:
    """Atomically replace run.json (write to a temp file, fsync, rename)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / f".run.json.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(record.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, run_dir / "run.json")
    except BaseException:  # full disk, Ctrl-C: run.json keeps its last complete state, no temp file is left
        tmp.unlink(missing_ok=True)
        raise


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_run(path: Path) -> RunRecord:
    """Read a run folder or a run.json. Bad files are a UsageError (exit 2), never a traceback."""
    path = Path(path)
    file = path / "run.json" if path.is_dir() else path
    if not file.is_file():
        raise UsageError(f"no run.json at {path}; pass a run folder written by `evalkit run`")
    try:
        data = json.loads(file.read_text(encoding="utf-8"), parse_constant=_no_constant)  # NaN, Infinity
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file} is not valid JSON ({exc}); was the run interrupted while writing?") from exc
    except ValueError as exc:
        raise UsageError(f"{file} is malformed: {exc} (a metric must be a number or null)") from exc
    version = str(data.get("schema_version", "")) if isinstance(data, dict) else ""
    if version.split(".")[0] != RESULT_SCHEMA_VERSION.split(".")[0]:
        raise UsageError(f"{file} has schema_version {version!r}; this evalkit reads {RESULT_SCHEMA_VERSION}")
    try:
        return RunRecord.model_validate(data)
    except ValueError as exc:
        first = str(exc).splitlines()[0:3]
        raise UsageError(f"{file} does not match the run.json schema: {' '.join(first)}") from exc


def read_samples(run_dir: Path, task: str) -> list[SampleRecord]:
    """All records of a task, last write per sample id wins; a torn last line (killed run) is skipped."""
    file = Path(run_dir) / "samples" / f"{task}.jsonl"
    if not file.exists():
        return []
    by_id: dict[str, SampleRecord] = {}
    with open(file, encoding="utf-8") as fh:
        lines = fh.readlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = SampleRecord.model_validate_json(line)
        except ValueError as exc:
            if lineno == len(lines) and not line.endswith("\n"):
                continue  # torn write at the end of a killed run: that sample is redone
            raise UsageError(f"{file}:{lineno} is not a valid sample record: {str(exc).splitlines()[0]}") from exc
        by_id[rec.id] = rec
    return list(by_id.values())
