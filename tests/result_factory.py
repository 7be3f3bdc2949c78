"""Build result folders (run.json + samples/<task>.jsonl) from per-sample scores, with evalkit.core.results
models, so leaderboard and compare tests need no model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalkit.metrics import mean_stderr
from evalkit.core.results import (
    DatasetInfo,
    MetricValue,
    ModelInfo,
    RunConfig,
    RunRecord,
    SampleRecord,
    TaskResult,
    Telemetry,
    write_run,
)


@dataclass
class TaskSpec:
    """One task of a fake run: per-sample scores of the primary metric (None = the sample failed), corpus
    metrics with no per-sample scores, outputs (default: the score as text) and the dataset hash."""

    scores: list[float | None]
    metric: str = "accuracy"
    corpus: dict[str, float] = field(default_factory=dict)
    outputs: list[str] | None = None
    content_hash: str | None = "hash-1"
    samples_per_s: float | None = None
    primary: str | None = None  # defaults to ``metric``
    metadata: list[dict] | None = None  # per sample (e.g. MMVP's pair_id)
    version: int | None = 1  # the task definition's version


def make_run(root: Path, run_id: str, tasks: dict[str, TaskSpec], *, model: str = "model", checkpoint: str = "/ckpt",
             backend: str = "hf", status: str = "completed", created_at: str = "2024-05-01T10:00:00+00:00",
             samples_per_s: float | None = 10.0, gen_tok_s: float | None = 50.0, rss_mb: float | None = 900.0,
             gpu_mb: float | None = None, environment: dict[str, str | None] | None = None) -> Path:
    """Write <root>/<run_id>/ and return the folder. Metric values are mean x100 over non-failed samples."""
    run_dir = root / run_id
    results: dict[str, TaskResult] = {}
    for name, spec in tasks.items():
        records = []
        for i, score in enumerate(spec.scores):
            output = spec.outputs[i] if spec.outputs else (None if score is None else f"answer {score}")
            records.append(SampleRecord(
                id=f"q{i}", task=name, prompt=f"USER: <image>\nquestion {i} ASSISTANT:", output=output,
                parsed=output, target=["1"], scores={} if score is None else {spec.metric: score},
                error="boom" if score is None else None, error_category="generation" if score is None else None,
                n_generated_tokens=2, metadata=spec.metadata[i] if spec.metadata else {}))
        (run_dir / "samples").mkdir(parents=True, exist_ok=True)
        with open(run_dir / "samples" / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(r.model_dump_json() + "\n")
        ok = [s for s in spec.scores if s is not None]
        metrics: dict[str, MetricValue] = {}
        if ok:
            mean, se = mean_stderr(ok)
            metrics[spec.metric] = MetricValue(value=round(mean * 100, 4), stderr=round(se * 100, 4), n=len(ok))
        for cname, value in spec.corpus.items():
            metrics[cname] = MetricValue(value=value, stderr=None, n=len(ok))
        results[name] = TaskResult(
            version=spec.version, metrics=metrics, primary_metric=spec.primary or spec.metric, n=len(spec.scores),
            n_errors=len(spec.scores) - len(ok),
            dataset=DatasetInfo(id=f"org/{name}", split="val", content_hash=spec.content_hash, n=len(spec.scores)),
            telemetry=Telemetry(samples_per_s=spec.samples_per_s if spec.samples_per_s is not None else samples_per_s,
                                peak_rss_mb=rss_mb))
    record = RunRecord(
        run_id=run_id, status=status, created_at=created_at, model=ModelInfo(name=model, family="llava",
                                                                               checkpoint=checkpoint),
        backend=backend, config=RunConfig(tasks=list(tasks), batch_size=8),
        environment=environment if environment is not None else {"python": "3.11.7", "torch": "2.4.0"},
        tasks=results,
        telemetry=Telemetry(samples_per_s=samples_per_s, generated_tokens_per_s=gen_tok_s, peak_rss_mb=rss_mb,
                            peak_gpu_memory_mb=gpu_mb),
    )
    write_run(run_dir, record)
    return run_dir
