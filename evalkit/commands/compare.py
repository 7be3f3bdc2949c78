"""`evalkit compare BASELINE CANDIDATE`: per-task metric deltas with paired significance tests, and a
CI regression gate (``--fail-on-regression``, exit 1).

Reads only result files (run.json and samples/<task>.jsonl). For each task both runs evaluated and each
metric both report: both values, the delta (candidate - baseline, in the metric's units: points for
x100 metrics), and a paired test over the samples both runs scored: McNemar's exact test for 0/1 scores,
otherwise a seeded paired bootstrap (its confidence interval is shown for both). Pair accuracy (MMVP) is
tested at the level it is defined on: McNemar over the pairs both runs scored, a pair being right only
when all its questions are. Corpus caption metrics without per-sample scores (CIDEr, BLEU, METEOR, ROUGE-L)
get a paired bootstrap over the images both runs captioned: each resample of the images is scored on both runs,
the corpus metric recomputed (evalkit.metrics.caption_corpus; at most CORPUS_N_BOOT resamples).

The gate: a PRIMARY metric regresses when it drops by more than ``tolerance`` points AND the drop is
significant at ``alpha`` (p < alpha with a negative paired mean difference). A primary metric with no
paired test fails on the tolerance alone, since nothing shows the drop is noise.
The JSON shape (``--json``) is documented in docs/leaderboard.md.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.core.errors import UsageError
from evalkit.core.terminal import printable
from evalkit.metrics.caption_corpus import RESAMPLED
from evalkit.metrics.choice import pair_scores
from evalkit.metrics.paired import DEFAULT_N_BOOT, DEFAULT_SEED, PairedTest, paired_test

if TYPE_CHECKING:  # pragma: no cover - pydantic models, imported when a comparison runs
    from evalkit.core.results import RunRecord, SampleRecord, TaskResult

DEFAULT_TOLERANCE = 1.0  # points on the x100 scale
DEFAULT_ALPHA = 0.05
DEFAULT_SHOW = 5
CORPUS_N_BOOT = 1000  # resamples for corpus metrics: each recomputes the metric on both runs


@dataclass(frozen=True)
class CompareOptions:
    """How to compare: the gate's tolerance (points) and alpha, which tasks, how many flipped samples to
    list, whether differing dataset content is allowed, and the bootstrap's size and seed."""

    tolerance: float = DEFAULT_TOLERANCE
    alpha: float = DEFAULT_ALPHA
    tasks: tuple[str, ...] = ()
    show: int = DEFAULT_SHOW
    allow_dataset_change: bool = False
    n_boot: int = DEFAULT_N_BOOT
    allow_protocol_change: bool = False
    seed: int = DEFAULT_SEED


@dataclass
class RunSide:
    """One side of the comparison: where it was read from and its record."""

    path: Path
    run_dir: Path
    record: RunRecord
    results_file: Path | None = None  # lmms-eval output (evalkit.interop.lmms_results): its samples files are read

    def describe(self) -> dict[str, Any]:
        m = self.record.model
        return {"path": str(self.path), "run_id": self.record.run_id, "model": m.name, "checkpoint": m.checkpoint,
                "revision": m.revision, "backend": self.record.backend, "status": self.record.status,
                "protocol": self.record.config.protocol}


@dataclass
class MetricComparison:
    """One metric of one task: both values, the delta, the paired test (None with ``no_test`` saying why)
    and the verdict: "regression" (primary) or "drop" (other metrics), "drop not significant", "drop within
    tolerance", "improved", "no significant change", "ok (untested)", "not computable" (no baseline
    value) or "missing in candidate" (a gate failure for the primary metric)."""

    metric: str
    primary: bool
    baseline: float | None
    candidate: float | None
    delta: float | None
    test: PairedTest | None
    no_test: str | None
    verdict: str
    regression: bool


@dataclass
class Flip:
    """A sample whose primary per-sample score (or, without one, whose parsed answer) changed."""

    id: str
    prompt: str | None
    baseline_output: str | None
    candidate_output: str | None
    baseline_score: float | None
    candidate_score: float | None


@dataclass
class TaskComparison:
    """All metrics of one task, the sample overlap, and the first flipped samples."""

    task: str
    primary_metric: str
    metrics: list[MetricComparison]
    n_shared: int
    n_only_baseline: int
    n_only_candidate: int
    n_better: int
    n_worse: int
    flips: list[Flip]
    notes: list[str] = field(default_factory=list)
    flip_metric: str = ""  # the per-sample score flips are judged by: the primary's, else the task's first one


@dataclass
class Comparison:
    """The whole comparison; ``regressions`` are the primary metrics that fail the gate."""

    baseline: RunSide
    candidate: RunSide
    options: CompareOptions
    tasks: list[TaskComparison]
    only_in_baseline: list[str]
    only_in_candidate: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[tuple[str, MetricComparison]]:
        return [(t.task, m) for t in self.tasks for m in t.metrics if m.regression]

    def to_json(self, fail_on_regression: bool = False) -> dict[str, Any]:
        def metric(m: MetricComparison) -> dict[str, Any]:
            out = {k: v for k, v in asdict(m).items() if k != "test"}
            out["test"] = None if m.test is None else {**asdict(m.test), "significant": m.test.significant}
            return out

        return {
            "baseline": self.baseline.describe(),
            "candidate": self.candidate.describe(),
            "options": {**asdict(self.options), "tasks": list(self.options.tasks)},
            "tasks": {t.task: {**{k: v for k, v in asdict(t).items() if k not in ("task", "metrics")},
                               "metrics": [metric(m) for m in t.metrics]} for t in self.tasks},
            "only_in_baseline": self.only_in_baseline,
            "only_in_candidate": self.only_in_candidate,
            "notes": self.notes,
            "regressions": [{"task": t, "metric": m.metric, "delta": m.delta,
                             "p_value": m.test.p_value if m.test else None} for t, m in self.regressions],
            "passed": not self.regressions,
            "exit_code": 1 if fail_on_regression and self.regressions else 0,
        }


# -- loading ------------------------------------------------------------------------------------------

def load_side(path: Path) -> RunSide:
    """A run folder or a run.json (or lmms-eval output: a *_results.json or its folder); a missing or malformed
    file is a UsageError (exit 2)."""
    from evalkit.interop.lmms_results import find_results_file, read_lmms_run
    from evalkit.core.results import read_run

    path = Path(path)
    lmms_file = find_results_file(path)
    if lmms_file is not None:
        return RunSide(path=path, run_dir=lmms_file.parent, record=read_lmms_run(lmms_file), results_file=lmms_file)
    record = read_run(path)
    return RunSide(path=path, run_dir=path if path.is_dir() else path.parent, record=record)


def _samples(side: RunSide, task: str, result: TaskResult) -> list[SampleRecord]:
    from evalkit.core.results import read_samples

    if side.results_file is not None:
        from evalkit.interop.lmms_results import read_lmms_samples, samples_file

        records = read_lmms_samples(side.results_file, task)
        if not records and result.n > 0:
            raise UsageError(f"{samples_file(side.results_file, task)} is missing; rerun lmms-eval with --log_samples")
        return records
    records = read_samples(side.run_dir, task)
    if not records and result.n > 0:
        raise UsageError(f"{side.run_dir}/samples/{task}.jsonl is missing or empty but run.json reports {result.n} "
                         f"samples; copy the whole run folder, not only run.json")
    return records


def _selected_tasks(base: RunRecord, cand: RunRecord, wanted: tuple[str, ...]) -> list[str]:
    common = [t for t in base.tasks if t in cand.tasks]
    if not common:
        raise UsageError(f"the runs have no task in common (baseline: {', '.join(base.tasks) or 'none'}; "
                         f"candidate: {', '.join(cand.tasks) or 'none'}); compare runs of the same tasks")
    if not wanted:
        return common
    missing = [t for t in wanted if t not in common]
    if missing:
        raise UsageError(f"--tasks {', '.join(missing)}: not evaluated by both runs; tasks in common: "
                         f"{', '.join(common)}")
    return list(dict.fromkeys(wanted))


# -- per task -----------------------------------------------------------------------------------------

def _scored(records: list[SampleRecord], metric: str) -> dict[str, float]:
    return {r.id: float(v) for r in records if r.error is None and (v := r.scores.get(metric)) is not None}


def _score_maps(records: list[SampleRecord], metric: str) -> dict[str, dict[str, float]]:
    """Per-sample scores that ``metric`` may be the mean of, by where they came from: "" for the metric's
    own per-sample scores; "pairs" for pair_accuracy (per-pair scores); for a breakdown metric
    "<base>.<group>" (e.g. accuracy.yes/no) and each metadata key K, the base scores of the samples whose
    metadata[K] == group. Whether the metric really is that mean is checked against its stored value
    (``_scale``) before any test is run."""
    own = _scored(records, metric)
    if own:
        return {"": own}
    maps: dict[str, dict[str, float]] = {}
    if metric == "pair_accuracy" and (pairs := pair_scores(records)):
        maps["pairs"] = pairs
    for i, ch in enumerate(metric):
        if ch != ".":
            continue
        base, group = metric[:i], metric[i + 1:]
        for key in sorted({k for r in records for k in r.metadata}):
            subset = [r for r in records if str(r.metadata.get(key)) == group]
            if subset and (scores := _scored(subset, base)):
                maps[f"{base} where {key} = {group}"] = scores
    return maps


def _scale(value: float | None, scores: dict[str, float]) -> set[float]:
    """Which of x100 / x1 makes ``value`` the mean of these per-sample scores (empty: it is not their mean)."""
    if value is None or not scores:
        return set()
    mean = math.fsum(scores.values()) / len(scores)
    return {s for s in (100.0, 1.0) if abs(mean * s - value) <= 1e-3 * s}


def _matching_scores(b_val: float | None, c_val: float | None, b_maps: dict[str, dict[str, float]],
                     c_maps: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float], float] | None:
    """The first source whose per-sample means reproduce both stored values: (base, candidate, scale)."""
    for source, b_scores in b_maps.items():
        c_scores = c_maps.get(source)
        if c_scores is not None and (scales := _scale(b_val, b_scores) & _scale(c_val, c_scores)):
            return b_scores, c_scores, max(scales)
    return None


def _verdict(primary: bool, delta: float | None, test: PairedTest | None, opts: CompareOptions) -> tuple[str, bool]:
    """(verdict, is a gate failure). Only primary metrics can fail the gate."""
    if delta is None:
        return "not computable", False
    sig = test is not None and test.significant
    if delta < -opts.tolerance:
        if test is None or (sig and test.mean_diff < 0):
            return ("regression" if primary else "drop"), primary
        return "drop not significant", False
    if test is None:
        return "ok (untested)", False
    if sig:
        return ("improved" if test.mean_diff > 0 else "drop within tolerance"), False
    return "no significant change", False


def _compare_metric(name: str, primary: bool, base_res: TaskResult, cand_res: TaskResult,
                    base_recs: list[SampleRecord], cand_recs: list[SampleRecord],
                    opts: CompareOptions, corpus_test: PairedTest | None = None) -> MetricComparison:
    b_val = base_res.metrics[name].value
    c_metric = cand_res.metrics.get(name)
    c_val = None if c_metric is None else c_metric.value
    if b_val is not None and c_val is None:  # e.g. every candidate sample failed: never a silent pass
        why = "missing from the candidate" if c_metric is None else "not computable in the candidate"
        return MetricComparison(name, primary, b_val, None, None, None, f"the metric is {why}",
                                "missing in candidate", primary)
    delta = None if b_val is None or c_val is None else round(c_val - b_val, 6)
    test: PairedTest | None = None
    reason: str | None = None
    b_maps, c_maps = _score_maps(base_recs, name), _score_maps(cand_recs, name)
    found = _matching_scores(b_val, c_val, b_maps, c_maps)
    if delta is None:
        reason = "metric not computable in one of the runs"
    elif (not b_maps or not c_maps) and corpus_test is not None:
        test = corpus_test
    elif not b_maps or not c_maps:
        reason = "test not available: no per-sample scores (a corpus-level metric" + (
            ", and the stored samples do not reproduce it)" if name in RESAMPLED else ")")
    elif found is None:
        reason = "test not available: the metric is not the mean of per-sample scores"
    else:
        b_scores, c_scores, scale = found
        shared = [i for i in b_scores if i in c_scores]
        if not shared:
            reason = "test not available: no sample scored in both runs"
        else:
            test = paired_test([b_scores[i] for i in shared], [c_scores[i] for i in shared], alpha=opts.alpha,
                               scale=scale, n_boot=opts.n_boot, seed=opts.seed)
    verdict, regression = _verdict(primary, delta, test, opts)
    return MetricComparison(name, primary, b_val, c_val, delta, test, reason, verdict, regression)


def _flips(base_recs: list[SampleRecord], cand_recs: list[SampleRecord], metric: str,
           show: int) -> tuple[list[Flip], int, int]:
    """Samples whose primary score changed (baseline order), plus how many got better and worse.
    Without per-sample primary scores, samples whose parsed answer changed (better/worse unknown: 0, 0)."""
    cand = {r.id: r for r in cand_recs}
    flips: list[Flip] = []
    better = worse = 0
    for b in base_recs:
        c = cand.get(b.id)
        if c is None or b.error is not None or c.error is not None:
            continue
        bs, cs = b.scores.get(metric), c.scores.get(metric)
        if bs is not None and cs is not None:
            if bs == cs:
                continue
            better, worse = better + (cs > bs), worse + (cs < bs)
        elif bs is not None or cs is not None or b.parsed == c.parsed:
            continue
        if len(flips) < show:
            flips.append(Flip(b.id, b.prompt, b.output, c.output, bs, cs))
    return flips, better, worse


def _compare_task(task: str, base: RunSide, cand: RunSide, opts: CompareOptions) -> TaskComparison:
    b_res, c_res = base.record.tasks[task], cand.record.tasks[task]
    notes: list[str] = []
    b_hash, c_hash = b_res.dataset.content_hash, c_res.dataset.content_hash
    if b_hash and c_hash and b_hash != c_hash:
        if not opts.allow_dataset_change:
            raise UsageError(f"task {task}: dataset content differs (hash {b_hash} vs {c_hash}), so the scores are "
                             f"not comparable; pass --allow-dataset-change to compare anyway")
        notes.append(f"dataset content differs (hash {b_hash} vs {c_hash}); compared anyway")
    if b_res.version is not None and c_res.version is not None and b_res.version != c_res.version:
        if not opts.allow_dataset_change:
            raise UsageError(f"task {task}: the task definition changed (version {b_res.version} vs "
                             f"{c_res.version}: prompt, data or scoring), so the scores are not comparable; "
                             f"pass --allow-dataset-change to compare anyway")
        notes.append(f"task version differs ({b_res.version} vs {c_res.version}); compared anyway")
    if b_res.primary_metric != c_res.primary_metric:
        notes.append(f"primary metric differs ({b_res.primary_metric} vs {c_res.primary_metric}); "
                     f"the baseline's is gated")
    if b_res.n_errors != c_res.n_errors:
        notes.append(f"failed samples: baseline {b_res.n_errors}, candidate {c_res.n_errors}")
    b_recs, c_recs = _samples(base, task, b_res), _samples(cand, task, c_res)
    primary = b_res.primary_metric
    names = [m for m in b_res.metrics if m in c_res.metrics or m == primary]
    names.sort(key=lambda m: (m != primary, m))
    corpus = _corpus_tests(names, {m: v.value for m, v in b_res.metrics.items()},
                           {m: v.value for m, v in c_res.metrics.items()}, b_recs, c_recs, opts, notes)
    metrics = [_compare_metric(m, m == primary, b_res, c_res, b_recs, c_recs, opts, corpus.get(m)) for m in names]
    b_ids, c_ids = {r.id for r in b_recs}, {r.id for r in c_recs}
    flip_metric = _flip_metric(primary, names, b_recs)
    flips, better, worse = _flips(b_recs, c_recs, flip_metric, opts.show)
    return TaskComparison(task, primary, metrics, len(b_ids & c_ids), len(b_ids - c_ids), len(c_ids - b_ids),
                          better, worse, flips, notes, flip_metric)


def _corpus_tests(names: list[str], b_vals: dict[str, float | None], c_vals: dict[str, float | None],
                  b_recs: list[SampleRecord], c_recs: list[SampleRecord], opts: CompareOptions,
                  notes: list[str]) -> dict[str, PairedTest]:
    """Paired corpus bootstraps of the caption metrics that have no per-sample scores, kept where the images
    both runs captioned reproduce both stored values (needs Java: PTB tokenizer)."""
    from evalkit.metrics.caption_corpus import paired_record_tests

    wanted = [m for m in names if m in RESAMPLED and not _score_maps(b_recs, m)]
    if not wanted:
        return {}
    try:
        found = paired_record_tests(b_recs, c_recs, wanted, n_boot=min(opts.n_boot, CORPUS_N_BOOT),
                                    seed=opts.seed, alpha=opts.alpha)
    except UsageError as exc:
        notes.append(f"corpus metrics not tested: {exc}")
        return {}
    return {m: t.test for m, t in found.items()
            if all(v is not None and abs(v - mine) <= 1e-3 for v, mine in
                   ((b_vals.get(m), t.base_value), (c_vals.get(m), t.cand_value)))}


def _flip_metric(primary: str, names: list[str], records: list[SampleRecord]) -> str:
    """The primary metric when samples carry it; else (pair accuracy, CIDEr) the first metric they carry,
    so the flipped samples listed are judged better/worse on a per-sample score (MMVP: accuracy)."""
    carried = {m for r in records for m in r.scores}
    return next((m for m in [primary, *names] if m in carried), primary)


def protocol_difference(base: RunRecord, cand: RunRecord) -> str | None:
    """Why two runs' prompts differ by protocol (docs/protocols.md), or None: a different ``--protocol``, or the
    same protocol rendering other entries for the same family and model_type (its definition changed)."""
    b, c = base.config, cand.config
    if b.protocol != c.protocol:
        return f"protocols differ (baseline {b.protocol}, candidate {c.protocol})"
    same_model = (base.model.family, base.model.model_type) == (cand.model.family, cand.model.model_type)
    if same_model and b.protocol_hash and c.protocol_hash and b.protocol_hash != c.protocol_hash:
        return f"protocol {b.protocol} rendered differently (hash {b.protocol_hash} vs {c.protocol_hash})"
    return None


def compare_runs(baseline: Path, candidate: Path, opts: CompareOptions | None = None) -> Comparison:
    """Compare two runs (folders or run.json files). Raises UsageError on unusable input."""
    opts = opts or CompareOptions()
    if opts.tolerance < 0:
        raise UsageError(f"--tolerance {opts.tolerance}: give a number of points >= 0")
    if not 0.0 < opts.alpha < 1.0:
        raise UsageError(f"--alpha {opts.alpha}: give a significance level between 0 and 1, e.g. 0.05")
    if opts.show < 0:
        raise UsageError(f"--show {opts.show}: give a number of samples >= 0")
    base, cand = load_side(baseline), load_side(candidate)
    tasks = _selected_tasks(base.record, cand.record, opts.tasks)
    notes = [f"{name} run status is {side.record.status}: its metrics cover only the samples it finished"
             for name, side in (("baseline", base), ("candidate", cand)) if side.record.status != "completed"]
    protocol = protocol_difference(base.record, cand.record)
    if protocol is not None:
        if not opts.allow_protocol_change:
            raise UsageError(f"{protocol}: the prompts differ, so the scores are not comparable; rerun one side "
                             f"with the other's --protocol, or pass --allow-protocol-change to compare anyway")
        notes.append(f"{protocol}; compared anyway")
    return Comparison(
        baseline=base, candidate=cand, options=opts,
        tasks=[_compare_task(t, base, cand, opts) for t in tasks],
        only_in_baseline=[t for t in base.record.tasks if t not in cand.record.tasks],
        only_in_candidate=[t for t in cand.record.tasks if t not in base.record.tasks],
        notes=notes,
    )


# -- terminal -----------------------------------------------------------------------------------------

def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _clip(text: str | None, limit: int) -> str:
    if text is None:
        return "(none)"
    text = printable(json.dumps(text, ensure_ascii=False)[1:-1])  # newlines, quotes, escapes made visible
    return text if len(text) <= limit else text[: limit - 1] + "…"


_STYLE = {"regression": "bold red", "missing in candidate": "bold red", "drop": "red",
          "drop not significant": "yellow", "drop within tolerance": "yellow", "improved": "green",
          "ok (untested)": "dim"}


def print_comparison(cmp: Comparison, fail_on_regression: bool = False, console: Any = None) -> None:
    """The comparison as a rich table, then flipped samples and the gate's verdict. All user data goes
    through rich Text, so model outputs are never read as rich markup."""
    from rich.text import Text

    from evalkit.commands.tables import Col, print_table, wide_console

    console = console or wide_console()
    for label, side in (("baseline ", cmp.baseline), ("candidate", cmp.candidate)):
        d = side.describe()
        console.print(Text(printable(f"{label}  {d['model']}  ({d['checkpoint']}, {d['backend']}, "
                                     f"protocol {d['protocol']}, run {d['run_id']}, {d['status']})  {d['path']}")))
    ci_title = f"{100 * (1 - cmp.options.alpha):g}% CI"
    columns = [Col("task"), Col("metric")] + [Col(c, numeric=True) for c in (
        "baseline", "candidate", "delta", ci_title, "p")] + [Col("test"), Col("n", numeric=True), Col("verdict")]
    rows = []
    for t in cmp.tasks:
        for m in t.metrics:
            test = m.test
            ci = f"[{test.ci_low:+.2f}, {test.ci_high:+.2f}]" if test else "-"
            method = (f"McNemar b={test.b} c={test.c}" if test.method == "mcnemar" else test.method) if test \
                else "n/a"
            rows.append([t.task, m.metric + (" *" if m.primary else ""), _num(m.baseline), _num(m.candidate),
                         _num(m.delta, signed=True), ci, f"{test.p_value:.4g}" if test else "-", method,
                         str(test.n) if test else "-", Text(m.verdict, style=_STYLE.get(m.verdict, ""))])
    print_table(columns, rows, console=console, title=f"evalkit compare (tolerance {cmp.options.tolerance:g} "
                f"points, alpha {cmp.options.alpha:g})")
    console.print("* primary metric (the one gated). n: samples scored in both runs.", style="dim")
    for t in cmp.tasks:
        for m in t.metrics:
            if m.no_test and m.delta is not None:
                console.print(Text(f"{t.task} {m.metric}: {m.no_test}"
                                   + ("; gated on the tolerance alone" if m.primary else "")))
        for note in t.notes:
            console.print(Text(f"note {t.task}: {note}", style="yellow"))
        if t.flips:
            console.print(Text(f"{t.task}: {t.n_worse} samples worse, {t.n_better} better on {t.flip_metric}; "
                               f"first {len(t.flips)} changed:", style="bold"))
        for f in t.flips:
            console.print(Text(f"  {f.id}  {_num(f.baseline_score)} -> {_num(f.candidate_score)}"))
            console.print(Text(f"    prompt:    {_clip(f.prompt, 240)}"))
            console.print(Text(f"    baseline:  {_clip(f.baseline_output, 160)}"))
            console.print(Text(f"    candidate: {_clip(f.candidate_output, 160)}"))
    for note in cmp.notes:
        console.print(Text(f"note: {note}", style="yellow"))
    for label, names in (("only in baseline", cmp.only_in_baseline), ("only in candidate", cmp.only_in_candidate)):
        if names:
            console.print(Text(f"{label} (not compared): {', '.join(names)}", style="dim"))
    if cmp.regressions:
        listed = ", ".join(f"{t} {m.metric} {_num(m.delta, signed=True) if m.delta is not None else m.verdict}"
                           for t, m in cmp.regressions)
        word = "FAIL" if fail_on_regression else "regression (not gating: no --fail-on-regression)"
        console.print(Text(f"{word}: {listed}", style="bold red"))
    else:
        console.print(Text(f"PASS: no primary metric dropped by more than {cmp.options.tolerance:g} points "
                           f"with p < {cmp.options.alpha:g}", style="bold green"))


# -- command line -------------------------------------------------------------------------------------

def split_names(values: list[str] | None) -> tuple[str, ...]:
    """--tasks a,b c -> ('a', 'b', 'c')."""
    return tuple(n.strip() for v in values or [] for n in v.split(",") if n.strip())


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare two runs task by task; a CI regression gate",
                       description="Compare two runs (run folders or run.json files) with paired significance "
                                   "tests. Exit 1 with --fail-on-regression when a primary metric drops by more "
                                   "than the tolerance and the drop is significant; exit 2 on unusable input.")
    p.add_argument("baseline", type=Path, help="run folder or run.json of the reference run")
    p.add_argument("candidate", type=Path, help="run folder or run.json of the run under test")
    p.add_argument("--fail-on-regression", action="store_true", help="exit 1 when a primary metric regresses")
    p.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help=f"allowed drop in points on the x100 scale (default {DEFAULT_TOLERANCE:g})")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help="significance level (default 0.05)")
    p.add_argument("--tasks", nargs="+", default=None, help="only these tasks (comma or space separated)")
    p.add_argument("--json", action="store_true", help="print a JSON report instead of the table")
    p.add_argument("--show", type=int, default=DEFAULT_SHOW, help="list the first N flipped samples per task")
    p.add_argument("--allow-dataset-change", action="store_true",
                   help="compare even when the dataset content hashes or the task versions differ")
    p.add_argument("--allow-protocol-change", action="store_true",
                   help="compare even when the runs used different prompt protocols (--protocol)")
    p.add_argument("--n-boot", type=int, default=DEFAULT_N_BOOT, help="bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed (default 0)")
    p.add_argument("--html", type=Path, default=None,
                   help="also write the sample viewer page of the two runs here (as `evalkit view BASE CAND`)")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    if args.n_boot < 1:
        raise UsageError(f"--n-boot {args.n_boot}: give at least 1 resample")
    opts = CompareOptions(tolerance=args.tolerance, alpha=args.alpha, tasks=split_names(args.tasks), show=args.show,
                          allow_dataset_change=args.allow_dataset_change, n_boot=args.n_boot, seed=args.seed,
                          allow_protocol_change=args.allow_protocol_change)
    cmp = compare_runs(args.baseline, args.candidate, opts)
    if args.json:
        print(json.dumps(cmp.to_json(args.fail_on_regression), indent=2))
    else:
        print_comparison(cmp, args.fail_on_regression)
    if args.html:
        import sys

        from evalkit.commands.view import write_compare_page

        print(f"wrote {write_compare_page(cmp, args.html)}", file=sys.stderr)
    return 1 if args.fail_on_regression and cmp.regressions else 0
