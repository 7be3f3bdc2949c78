"""lmms-eval's result files, read as evalkit results (in memory), for `evalkit leaderboard` and `compare`.

lmms-eval (0.3 and later) writes, per run, into ``<output_path>/<model>/``:

    <date_id>_results.json               aggregated metrics, task configs, model config, timings
    <date_id>_samples_<task>.jsonl       one logged sample per document (with --log_samples)

``<date_id>`` is the run's date string (``%Y%m%d_%H%M%S``, UTC+8 by default). Each results file is one
run. Its tasks are named ``lmms:<task>``, the name an evalkit run of the same task through the
lmms-eval bridge (:mod:`evalkit.interop.lmms_bridge`) uses, and metrics keep lmms-eval's names and scale
(``exact_match`` = 0.78, not 78): a ``lmms:vqav2_val`` run of evalkit and one of lmms-eval line up in
``evalkit compare`` metric by metric, sample by sample (``doc_id``).

Metric names: lmms-eval's ``"<metric>,<filter>"`` keys become ``<metric>`` for the default filter
``none`` and stay ``<metric>,<filter>`` otherwise (:func:`metric_key`). A value that is not a number
(a submission-file aggregation, ``"N/A"``) is left out.

This module imports nothing from lmms-eval: reading result files does not need it installed.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError

PREFIX = "lmms:"
RESULTS_SUFFIX = "_results.json"
_SKIP_KEYS = ("alias", "samples", " ", "")
_DATE = re.compile(r"^(\d{8}_\d{6})")
_LMMS_TZ = timezone(timedelta(hours=8))  # lmms-eval's get_datetime_str: Asia/Singapore


# -- names and scores shared with the bridge --------------------------------------------------------

def evalkit_name(lmms_task: str) -> str:
    """lmms-eval task name -> evalkit task name (``vqav2_val`` -> ``lmms:vqav2_val``)."""
    return lmms_task if lmms_task.startswith(PREFIX) else PREFIX + lmms_task


def metric_key(metric: str, filter_name: str) -> str:
    """evalkit's name of an lmms-eval metric under a filter pipeline (``none`` is the default one)."""
    return metric if filter_name == "none" else f"{metric},{filter_name}"


def number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (bools count: 1.0 / 0.0), else None."""
    if isinstance(value, (bool, int, float)) and not (isinstance(value, float) and not math.isfinite(value)):
        return float(value)
    return None


def numeric_scores(parsed: Any) -> dict[str, float | None]:
    """The per-sample scores of a ``process_results`` output: its entries that are numbers.

    Entries that are records for a corpus-level aggregation (dicts, lists: CIDEr, RefCOCO IoU, MMVP
    pairs) have no per-sample score.
    """
    if not isinstance(parsed, dict):
        return {}
    return {k: v for k, raw in parsed.items() if (v := number(raw)) is not None}


# -- finding result files ---------------------------------------------------------------------------

def is_results_file(path: Path) -> bool:
    return path.name.endswith(RESULTS_SUFFIX) and path.is_file()


def results_files(folder: Path) -> list[Path]:
    """The lmms-eval results files directly inside ``folder``, oldest first."""
    return sorted(p for p in Path(folder).glob(f"*{RESULTS_SUFFIX}") if p.is_file())


def find_results_file(path: Path) -> Path | None:
    """``path`` itself when it is an lmms-eval results file; the only one in ``path`` when ``path`` is a
    folder without run.json; else None (not lmms-eval output). Several in one folder: UsageError."""
    path = Path(path)
    if path.is_file():
        return path if path.name.endswith(RESULTS_SUFFIX) else None
    if not path.is_dir() or (path / "run.json").exists():
        return None
    found = results_files(path)
    if len(found) > 1:
        raise UsageError(f"{path} holds {len(found)} lmms-eval runs ({found[0].name}, ...); "
                         "pass one *_results.json file")
    return found[0] if found else None


# -- reading -----------------------------------------------------------------------------------------

def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path} is not readable JSON ({exc}); pass an lmms-eval *_results.json file") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise UsageError(f"{path} has no 'results' object; it is not an lmms-eval results file")
    return data


def date_id(path: Path) -> str:
    """``20250102_030405_results.json`` -> ``20250102_030405`` (the prefix its samples files share)."""
    return path.name[: -len(RESULTS_SUFFIX)]


def _created_at(data: dict[str, Any], path: Path) -> str:
    m = _DATE.match(str(data.get("date") or date_id(path)))
    if m:
        when = datetime.strptime(m.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=_LMMS_TZ)
    else:
        when = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return when.isoformat(timespec="seconds")


def _model_name(data: dict[str, Any]) -> str:
    """The checkpoint lmms-eval evaluated: its ``model_name`` (from ``pretrained=``), else the model args."""
    config = data.get("config") or {}
    name = data.get("model_name") or ""
    if not name:
        args = str(config.get("model_args") or "")
        m = re.search(r"(?:pretrained|model|model_version|model_name|model_id|path)=([^,]+)", args)
        name = m.group(1) if m else args
    return str(name or config.get("model") or "unknown")


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 1 else None


def _primary(config: dict[str, Any], metrics: dict[str, Any]) -> str:
    """The first metric of the task's metric_list (what the bridge reports as primary), else the first found."""
    for entry in config.get("metric_list") or []:
        if isinstance(entry, dict) and metric_key(str(entry.get("metric")), "none") in metrics:
            return metric_key(str(entry.get("metric")), "none")
    return next(iter(metrics), "none")


def _task_result(name: str, values: dict[str, Any], data: dict[str, Any], source: Path) -> Any:
    from evalkit.core.results import DatasetInfo, MetricValue, TaskResult

    config = (data.get("configs") or {}).get(name) or {}
    counts = (data.get("n-samples") or {}).get(name) or {}
    n = int(values.get("samples") or counts.get("effective") or 0)
    metrics: dict[str, MetricValue] = {}
    for key, raw in values.items():
        metric, _, filter_name = str(key).partition(",")
        if metric in _SKIP_KEYS or "_stderr" in metric or (value := number(raw)) is None:
            continue
        stderr = number(values.get(f"{metric}_stderr,{filter_name}"))
        metrics[metric_key(metric, filter_name or "none")] = MetricValue(value=value, stderr=stderr, n=n)
    split = config.get("test_split") or config.get("validation_split") or "unknown"
    dataset = DatasetInfo(id=str(config.get("dataset_path") or "unknown"), split=str(split),
                          config=config.get("dataset_name"), n=_int_or_none(counts.get("original")))
    generation = config.get("generation_kwargs")
    return TaskResult(
        metrics=metrics, primary_metric=_primary(config, metrics), n=n, dataset=dataset,
        generation=json.loads(json.dumps(generation, default=str)) if isinstance(generation, dict) else {},
        notes=[f"converted from lmms-eval output {source.name}"],
    )


def read_lmms_run(path: Path) -> Any:
    """An lmms-eval ``*_results.json`` as an evalkit RunRecord (tasks ``lmms:<task>``, status completed).

    Groups are left out (their members are listed). A malformed file is a UsageError naming it.
    """
    from evalkit.core.results import ModelInfo, RunConfig, RunRecord, Telemetry

    path = Path(path)
    data = _load_json(path)
    config = data.get("config") or {}
    configs = data.get("configs") or {}
    names = [t for t in data["results"] if t in configs] or list(data["results"])
    try:
        tasks = {evalkit_name(t): _task_result(t, data["results"][t] or {}, data, path) for t in names}
        wall = number(_as_float(data.get("total_evaluation_time_seconds"))) or 0.0
        name = _model_name(data)
        return RunRecord(
            run_id=f"lmms-eval_{date_id(path)}", status="completed", created_at=_created_at(data, path),
            model=ModelInfo(name=name, family=f"lmms-eval:{config.get('model') or 'unknown'}", checkpoint=name),
            backend="lmms-eval",
            config=RunConfig(tasks=list(tasks), batch_size=_int_or_none(config.get("batch_size")) or 1,
                             limit=_int_or_none(config.get("limit")), seed=int(config.get("random_seed") or 0),
                             device=str(config.get("device") or "auto")),
            environment={"lmms_eval": _str(data.get("lmms_eval_version")), "git_hash": _str(data.get("git_hash")),
                         "source": str(path)},
            tasks=tasks, telemetry=Telemetry(wall_s=wall),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path} does not look like lmms-eval output: {str(exc).splitlines()[0]}") from exc


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def samples_file(results_file: Path, task: str) -> Path:
    """Where lmms-eval logged the samples of ``task`` (evalkit or lmms-eval name) of this run."""
    name = task[len(PREFIX):] if task.startswith(PREFIX) else task
    return Path(results_file).parent / f"{date_id(Path(results_file))}_samples_{name}.jsonl"


def _text(value: Any) -> str | None:
    """A logged response or prompt as text: ``[["a"]]`` / ``["a"]`` -> ``"a"``; other shapes as JSON."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _prompt(line: dict[str, Any]) -> str | None:
    """The model input: ``input`` (0.4+), else the first argument (older ``arguments`` lists or dicts)."""
    if isinstance(line.get("input"), str):
        return line["input"]
    args = line.get("arguments")
    if isinstance(args, dict):  # {"gen_args_0": {"arg_0": ctx, "arg_1": gen_kwargs}}
        first = next(iter(args.values()), None)
        args = list(first.values()) if isinstance(first, dict) else [first]
    if isinstance(args, list):
        return next((a for a in args if isinstance(a, str)), None)
    return None


def _tokens(line: dict[str, Any], key: str) -> int | None:
    counts = line.get("token_counts")
    first = counts[0] if isinstance(counts, list) and counts else None
    value = first.get(key) if isinstance(first, dict) else None
    return value if isinstance(value, int) else None


def read_lmms_samples(results_file: Path, task: str, metrics: list[str] | None = None) -> list[Any]:
    """The logged samples of ``task`` as SampleRecords (id = ``doc_id``; last line per id wins).

    ``parsed`` holds the lmms-eval ``process_results`` values of ``metrics`` (default: every key of the
    line that is not a logging field), ``scores`` their numeric ones, as the bridge stores them. A
    missing samples file gives ``[]``.
    """
    from evalkit.core.results import SampleRecord

    file = samples_file(results_file, task)
    if not file.is_file():
        return []
    logging_keys = {"doc_id", "doc", "target", "arguments", "input", "resps", "filtered_resps", "token_counts",
                    "doc_hash", "prompt_hash", "target_hash", "input_media", "filter", "metrics"}
    by_id: dict[str, Any] = {}
    for lineno, raw in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            keys = metrics if metrics is not None else [k for k in line if k not in logging_keys]
            parsed = {metric_key(*_split_key(k)): line[k] for k in keys if k in line}
            output = _text(line.get("resps", line.get("filtered_resps")))
            record = SampleRecord(
                id=str(line["doc_id"]), task=evalkit_name(task), prompt=_prompt(line), output=output,
                parsed=parsed, target=_text(line.get("target")), scores=numeric_scores(parsed),
                n_prompt_tokens=_tokens(line, "input_tokens"), n_generated_tokens=_tokens(line, "output_tokens"),
                metadata={"doc_id": line["doc_id"], "doc_hash": line.get("doc_hash")},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"{file}:{lineno} is not an lmms-eval sample line: {str(exc).splitlines()[0]}") from exc
        by_id[record.id] = record
    return list(by_id.values())


def _split_key(key: str) -> tuple[str, str]:
    metric, _, filter_name = key.partition(",")
    return metric, filter_name or "none"
