"""The runner: streams samples through adapter -> backend -> parse -> score, one batch at a time.

Encoder tasks (kind "encoder") take the same path with ``Backend.similarity`` in place of ``generate``.

Every finished batch is appended to the run's sample store (fsynced) before the next one starts,
so a killed run loses at most the batch in flight and ``--resume`` picks up where it stopped.
Metrics are always computed from the store, never from memory, so a resumed run and an
uninterrupted one give identical results, and ``evalkit score`` can recompute them.
"""

from __future__ import annotations

import itertools
import logging
import queue
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.backends import BACKENDS, Backend, BackendConfig
from evalkit.core.errors import UsageError
from evalkit.runner.models import preloaded_spec, resolve_model
from evalkit.runner.options import RunOptions, apply_generation
from evalkit.core.results import (ModelInfo, RunConfig, RunRecord, SampleRecord, TaskResult, Telemetry, read_run,
                             write_run)
from evalkit.core.store import RunLock, SampleStore
from evalkit.tasks.base import ENCODER_KIND, TaskContext
from evalkit.core.telemetry import PeakMemory, Phases, hit_rate, rate
from evalkit.core.types import Generation, Prompt, Sample, SampleError
from evalkit.runner.records import _error_counts, _fail, _parse_into, prompt_hash
from evalkit.runner.run_folder import (_DEVICE, _WRITE_ERRNOS, _check_output, _check_same_data, _environment, _find_resumable, _mark_failed, _new_run_dir, _now, _resume_key, _run_config, _write_error)

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A sample ready for the engine, or already failed (then ``error`` is set and ``prompt`` is None)."""

    sample: Sample
    prompt: Prompt | None = None
    error: SampleError | None = None
    length: int = 0


class Interrupted(Exception):
    """Ctrl-C during a run: run.json was written with status 'interrupted'."""

    def __init__(self, run_dir: Path):
        super().__init__(f"interrupted; resume with the same command plus --resume ({run_dir})")
        self.run_dir = run_dir


def _is_oom(exc: BaseException) -> bool:
    return "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc).lower()


def _free_device_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def cpu_overlap_pays() -> bool:
    """On CPU, a prefetch thread pays only when torch leaves a core free (see Runner._overlap_pays)."""
    import os

    import torch

    return (os.cpu_count() or 1) > torch.get_num_threads()


def _sigterm_as_interrupt() -> None:
    """SIGTERM (a scheduler stopping the job) ends the run like Ctrl-C: run.json says 'interrupted'."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


class Runner:
    def __init__(self, opts: RunOptions):
        from evalkit.adapters import get_adapter
        from evalkit.tasks import get_task

        if opts.batch_size < 1:
            raise UsageError(f"--batch-size {opts.batch_size}: must be at least 1")
        if opts.limit is not None and opts.limit < 1:
            raise UsageError(f"--limit {opts.limit}: must be at least 1")
        if opts.data_dir is not None and not Path(opts.data_dir).is_dir():
            raise UsageError(f"--data-dir {opts.data_dir}: no such folder")
        if not _DEVICE.match(opts.device):
            raise UsageError(f"--device {opts.device!r}: use auto, cpu, cuda, cuda:N, mps or xpu")
        self.opts = opts
        self.spec = (preloaded_spec(opts.model, opts.preloaded[0]) if opts.preloaded is not None
                     else resolve_model(opts.model, opts.revision))
        # The adapter for this run: the --protocol's prompts for this checkpoint's model_type.
        self.adapter = get_adapter(self.spec.family).bind(opts.protocol, self.spec.model_type)
        if opts.backend not in BACKENDS:
            BACKENDS.meta(opts.backend)  # raises with "did you mean"
        self.adapter.check_backend(opts.backend)
        self.tasks = [get_task(name) for name in opts.tasks]
        _check_model_kind(self.spec.family, self.adapter.encoder, self.tasks)
        backend_cls = BACKENDS.get(opts.backend)
        for task in self.tasks:
            if opts.judge is not None and hasattr(task, "judge_config"):
                task.judge_config = opts.judge
            task.generation = apply_generation(self.adapter.generation_for(task.kind, task.generation),
                                               opts.gen_kwargs, seed=opts.seed)
            if task.generation.num_beams > 1 and not backend_cls.beam_search:
                raise UsageError(f"--gen-kwargs num_beams={task.generation.num_beams}: beam search runs on "
                                 f"--backend hf only (not {opts.backend})")
        if opts.preloaded is not None and opts.backend != "hf":
            raise UsageError(f"a model object in memory runs on the hf backend (not {opts.backend})")
        cfg = BackendConfig(batch_size=opts.batch_size, device=opts.device, dtype=opts.dtype, seed=opts.seed,
                            trust_remote_code=opts.trust_remote_code, extra=dict(opts.backend_args),
                            preloaded=opts.preloaded, prefix_reuse=opts.prefix_reuse)
        self.backend: Backend = backend_cls(self.spec, self.adapter, cfg)
        self.phases = Phases()

    # -- run level -------------------------------------------------------------------------------
    def _model_info(self) -> ModelInfo:
        if not hasattr(self, "_model"):  # the fingerprint hashes the weights: once
            self._model = ModelInfo(name=self.spec.name, family=self.spec.family, checkpoint=self.spec.checkpoint,
                                    revision=self.spec.revision, model_type=self.spec.model_type,
                                    fingerprint=self.spec.fingerprint())
        return self._model.model_copy()

    def _config(self) -> RunConfig:
        cfg = _run_config(self.opts)
        cfg.task_versions = {task.name: task.version for task in self.tasks}
        cfg.protocol_hash = self.adapter.protocol_hash(sorted({task.kind for task in self.tasks}))
        return cfg

    def _resume_target(self) -> tuple[RunRecord, Path] | None:
        """With --resume: the unfinished run to continue, its resume key checked and its folder locked (a second
        process resuming it exits 2 naming the holder), before the model loads. Computed once."""
        if hasattr(self, "_resumed"):
            return self._resumed
        opts, found = self.opts, None
        run_dir = _find_resumable(opts.output, self._model_info()) if opts.resume else None
        if run_dir is not None:
            old = read_run(run_dir)
            mine = _resume_key(self._model_info(), opts.backend, self._config())
            theirs = _resume_key(old.model, old.backend, old.config)
            diff = [k for k in mine if mine[k] != theirs[k]]
            if diff:
                raise UsageError(f"--resume: the unfinished run {run_dir} differs in {', '.join(diff)}; "
                                 "rerun without --resume to start a new run")
            _check_same_data(old, getattr(self, "data", {}), run_dir)
            self._lock = RunLock(run_dir)
            found = (read_run(run_dir), run_dir)  # re-read under the lock
        elif opts.resume:
            log.warning("--resume: no unfinished run of %s in %s; starting a new run", self.spec.name, opts.output)
        self._resumed = found
        return found

    def start(self) -> tuple[RunRecord, Path]:
        """The run folder: the resumed one, or a new one (created only once data and model are ready, so a failed
        start leaves no folder behind)."""
        opts, cfg = self.opts, self._config()
        found = self._resume_target()
        if found is not None:
            old, run_dir = found
            old.status, old.config, old.replicas = "running", cfg, None  # replicas: of the latest session
            return old, run_dir
        run_dir = _new_run_dir(opts.output, self.spec)
        self._lock = RunLock(run_dir)
        record = RunRecord(run_id=run_dir.name, status="running", created_at=_now(), model=self._model_info(),
                           backend=opts.backend, config=cfg)
        try:
            write_run(run_dir, record)
        except OSError as exc:  # full disk, read-only: leave nothing behind
            self._release()
            shutil.rmtree(run_dir, ignore_errors=True)
            raise _write_error(exc, opts.output) from exc
        return record, run_dir

    def _release(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is not None:
            lock.release()

    def run(self) -> tuple[RunRecord, Path]:
        _sigterm_as_interrupt()
        start = time.perf_counter()
        _check_output(self.opts.output)
        ctx = TaskContext(data_dir=self.opts.data_dir, limit=self.opts.limit, seed=self.opts.seed)
        try:
            # Open and check every dataset, then the resume target, then the model; the run folder comes last,
            # so a bad dataset, a bad option or an unloadable model leaves no folder for --resume to pick up.
            for task in self.tasks:  # e.g. captioning without Java: fail now, not after generating everything
                task.scoring.preflight()
            with self.phases.time("data"):
                self.data = {task.name: task.load(ctx) for task in self.tasks}
            self._resume_target()
            with PeakMemory() as mem:
                try:
                    with self.phases.time("load"):
                        self.backend.load()
                    record, run_dir = self.start()
                except BaseException:
                    self.backend.close()
                    raise
                return self._run_tasks(record, run_dir, start, mem)
        finally:
            self._release()

    def _run_tasks(self, record: RunRecord, run_dir: Path, start: float, mem: PeakMemory) -> tuple[RunRecord, Path]:
        store = SampleStore(run_dir)
        try:
            record.environment = _environment(self.backend)
            write_run(run_dir, record)
            for task in self.tasks:
                record.tasks[task.name] = self.evaluate(task, store, run_dir, mem)
                write_run(run_dir, record)
        except KeyboardInterrupt:
            record.status = "interrupted"
            self._partial_counts(record, store)
            record.telemetry = self._totals(record, time.perf_counter() - start, mem)
            write_run(run_dir, record)
            raise Interrupted(run_dir) from None
        except OSError as exc:
            if exc.errno not in _WRITE_ERRNOS:
                _mark_failed(run_dir, record)
                raise
            # Full disk mid-run: every stored sample is fsynced and a torn last line is repaired on resume.
            record.status = "interrupted"
            try:
                write_run(run_dir, record)
            except OSError:
                pass  # run.json keeps its last complete state ("running"): --resume continues it either way
            raise UsageError(f"{exc.strerror or exc} while writing {run_dir}; the samples stored so far are kept: "
                             "free space, then rerun the same command with --resume") from exc
        except BaseException:
            _mark_failed(run_dir, record)
            raise
        finally:
            self.backend.close()
        record.status, record.finished_at = "completed", _now()
        record.telemetry = self._totals(record, time.perf_counter() - start, mem)
        write_run(run_dir, record)
        return record, run_dir

    def _partial_counts(self, record: RunRecord, store: SampleStore) -> None:
        """On interrupt: what is stored so far for the unfinished tasks (metrics come with --resume)."""
        for task in self.tasks:
            if task.name in record.tasks:
                continue
            records = store.records(task.name)
            if not records:
                continue
            errors = sum(1 for r in records if r.error is not None)
            record.tasks[task.name] = TaskResult(
                version=task.version, primary_metric=task.primary_metric, n=len(records), n_errors=errors,
                dataset=self.data[task.name].dataset,
                notes=[f"interrupted after {len(records)} of {self.data[task.name].n} samples; rerun with --resume"],
            )

    def _totals(self, record: RunRecord, wall: float, mem: PeakMemory) -> Telemetry:
        tasks = [t.telemetry for t in record.tasks.values()]
        n = sum(t.n for t in record.tasks.values())
        gen_s = sum(t.generate_s for t in tasks)
        n_prompt, n_gen = sum(t.n_prompt_tokens for t in tasks), sum(t.n_generated_tokens for t in tasks)
        return Telemetry(
            wall_s=round(wall, 3), samples_per_s=rate(n, wall - self.phases.get("load")),
            prompt_tokens_per_s=rate(n_prompt, gen_s), generated_tokens_per_s=rate(n_gen, gen_s),
            peak_rss_mb=round(mem.peak_mb, 1), peak_gpu_memory_mb=self.backend.peak_gpu_memory_mb(),
            load_s=round(self.phases.get("load"), 3), data_s=round(sum(t.data_s for t in tasks), 3),
            generate_s=round(gen_s, 3), score_s=round(sum(t.score_s for t in tasks), 3),
            write_s=round(sum(t.write_s for t in tasks), 3), n_prompt_tokens=n_prompt, n_generated_tokens=n_gen,
            prefix_cache_hit_rate=hit_rate(None, self.backend.prefix_cache_counts()),
        )

    # -- task level ------------------------------------------------------------------------------
    def evaluate(self, task: Any, store: SampleStore, run_dir: Path, mem: PeakMemory) -> TaskResult:
        from evalkit.core.progress import task_progress

        phases = Phases()
        wall0 = time.perf_counter()
        mem.start_task()
        data = self.data[task.name]
        with phases.time("data"):
            done = store.done_ids(task.name)
        self.effective_batch = self.opts.batch_size
        counts0 = self.backend.prefix_cache_counts()
        todo: Iterator[Sample] = (s for s in data.samples if s.id not in done)
        n_prompt = n_gen = 0
        with task_progress(task.name, data.n, len(done), enabled=self.opts.progress) as advance:
            while True:
                for records, batch_prompt, batch_gen in self.produce(task, todo, phases):
                    with phases.time("write"):
                        store.append(task.name, records)
                    n_prompt += batch_prompt
                    n_gen += batch_gen
                    advance(len(records))
                # Multi-turn tasks: the next turns of each dialogue, asked once the earlier answers are stored.
                if not task.multi_turn:
                    break
                with phases.time("data"):
                    stored = store.records(task.name)
                    seen = {r.id for r in stored}
                    todo = iter([s for s in task.followups(stored) if s.id not in seen])
                    first = next(todo, None)
                if first is None:
                    break
                todo = itertools.chain([first], todo)
        with phases.time("score"):
            records = store.records(task.name)
            metrics = task.aggregate(records)
            artifacts, notes = task.finalize(records, run_dir)
        errors = _error_counts(records)
        wall = time.perf_counter() - wall0
        gen_s = phases.get("generate")
        if task.kind == "caption" and data.n < (data.dataset.n or data.n):
            notes.append(f"--limit {data.n} of {data.dataset.n}: CIDEr's idf comes from the evaluated references, "
                         "so this CIDEr differs from the full-set CIDEr")
        if self.effective_batch != self.opts.batch_size:
            notes.append(f"batch size reduced to {self.effective_batch} after failures (e.g. out of memory)")
        telemetry = Telemetry(
            wall_s=round(wall, 3), samples_per_s=rate(len(records) - len(done), wall),
            prompt_tokens_per_s=rate(n_prompt, gen_s), generated_tokens_per_s=rate(n_gen, gen_s),
            peak_rss_mb=round(mem.sample() and mem.task_peak_mb, 1), peak_gpu_memory_mb=self.backend.peak_gpu_memory_mb(),
            data_s=round(phases.get("data"), 3), generate_s=round(gen_s, 3), score_s=round(phases.get("score"), 3),
            write_s=round(phases.get("write"), 3), n_prompt_tokens=n_prompt, n_generated_tokens=n_gen,
            prefix_cache_hit_rate=hit_rate(counts0, self.backend.prefix_cache_counts()),
        )
        generation = {} if task.kind == ENCODER_KIND else dict(self.backend.effective_settings(task.generation))
        generation["batch_size"] = self.effective_batch
        return TaskResult(
            version=task.version, metrics=metrics, primary_metric=task.primary_metric, n=len(records),
            n_errors=sum(errors.values()),
            n_empty=sum(1 for r in records if r.error is None and not (r.output or "").strip()),
            errors_by_category=errors, dataset=data.dataset, generation=generation, telemetry=telemetry,
            notes=notes, artifacts=artifacts,
        )

    def produce(self, task: Any, samples: Iterator[Sample],
                phases: Phases) -> Iterator[tuple[list[SampleRecord], int, int]]:
        """Prepare, generate, parse and score ``samples``, in windows of ``_window_size()``.

        Yields each finished batch as (records, prompt tokens, generated tokens); the caller stores them.
        The unit of work shared by ``evaluate`` and the data-parallel replicas (evalkit.interop.distributed).
        """
        from evalkit.tasks.base import ParseContext

        parse_ctx = ParseContext(box_format=self.adapter.box_format_for(self.spec.model_type))
        for window in self._prefetch(samples, phases, task):
            for batch in self._batches(window):
                with phases.time("generate"):
                    gens = self._generate([p.prompt for p in batch if p.prompt is not None], task)
                with phases.time("score"):
                    records = self._records(task, batch, gens, parse_ctx)
                yield records, sum(g.n_prompt_tokens for g in gens), sum(g.n_generated_tokens for g in gens)

    def _window_size(self) -> int:
        # vLLM schedules by itself: give it large chunks (still bounded, so the store is written as we go).
        return 512 if self.backend.schedules_itself else self.opts.batch_size * 4

    def _overlap_pays(self) -> bool:
        """A prefetch thread overlaps with generation only where generation leaves a core idle: on an
        accelerator, a served model (openai) or vLLM's own engine, or when torch runs fewer threads than the
        machine has cores. Where torch's threads take
        every core, the thread preempts them and costs more than it saves (make bench on 2 cores, 2026-11-29:
        inline 12.65 s, with the thread 16.93 s, for the same 64 samples)."""
        if self.opts.prefetch is not None:
            return self.opts.prefetch
        device = getattr(self.backend, "device", None)  # only the hf backend computes here on a known device
        return device is None or not str(device).startswith("cpu") or cpu_overlap_pays()

    def _prefetch(self, samples: Iterator[Sample], phases: Phases, task: Any) -> Iterator[list[Prepared]]:
        """Decode images and build prompts for the next window in a thread while the current one generates."""
        size = self._window_size()
        if not self._overlap_pays():  # sequential
            window: list[Prepared] = []
            for sample in samples:
                with phases.time("data"):
                    window.append(self._prepare(sample, task.kind))
                if len(window) >= size:
                    full, window = self._cut(window)
                    yield full
            if window:
                yield window
            return
        q: queue.Queue = queue.Queue(maxsize=1)
        stop = threading.Event()

        def work() -> None:
            try:
                window: list[Prepared] = []
                for sample in samples:
                    if stop.is_set():
                        return
                    with phases.time("data"):
                        window.append(self._prepare(sample, task.kind))
                    if len(window) >= size:
                        full, window = self._cut(window)
                        q.put(full)
                if window:
                    q.put(window)
                q.put(None)
            except BaseException as exc:  # surfaced in the main thread
                q.put(exc)

        thread = threading.Thread(target=work, name="evalkit-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    q.get_nowait()
                except queue.Empty:
                    thread.join(timeout=0.05)

    def _prepare(self, sample: Sample, kind: str) -> Prepared:
        if sample.load_error is not None:
            return Prepared(sample, error=sample.load_error)
        try:
            images = [ref.load() for ref in sample.images]
        except SampleError as exc:
            return Prepared(sample, error=exc)
        try:
            prompt = self.adapter.build_prompt(sample, images, self.backend.processor, kind=kind)
        except (ValueError, KeyError, TypeError) as exc:
            return Prepared(sample, error=SampleError("prompt", f"{type(exc).__name__}: {exc}"))
        length = self.backend.count_prompt_tokens(prompt)
        context = self.backend.context_length() if kind != ENCODER_KIND else None
        if context is not None and length is not None and length >= context:  # would not fit: never generated
            return Prepared(sample, error=SampleError(
                "prompt_too_long", f"the prompt has {length} tokens; the model's context is {context}"))
        return Prepared(sample, prompt=prompt, length=length or len(prompt.text))

    def _cut(self, window: list[Prepared]) -> tuple[list[Prepared], list[Prepared]]:
        """A full window, less its trailing samples on the last sample's images when grouping by image: they open
        the next window, beside the rest of that image's questions."""
        if not self.opts.prefix_reuse:
            return window, []
        key, start = _image_key(window[-1]), len(window)
        while start > 0 and _image_key(window[start - 1]) == key:
            start -= 1
        return (window[:start], window[start:]) if start > 0 else (window, [])

    def _batches(self, window: list[Prepared]) -> Iterator[list[Prepared]]:
        """Batches of the current effective size; failed samples go out first. Length-sorted (less padding), or
        with prefix reuse grouped by image (an image's questions in a row, so its prompt prefix is prefilled once;
        groups longest first, each group length-sorted)."""
        failed = [p for p in window if p.prompt is None]
        ok = sorted((p for p in window if p.prompt is not None), key=lambda p: -p.length)
        if self.opts.prefix_reuse:
            groups: dict[tuple[str, ...], list[Prepared]] = {}
            for p in ok:  # dicts keep insertion order: groups come longest first
                groups.setdefault(_image_key(p), []).append(p)
            ok = [p for group in groups.values() for p in group]
        if failed:
            yield failed
        while ok:
            size = len(ok) if self.backend.schedules_itself else self.effective_batch
            batch, ok = ok[:size], ok[size:]
            yield batch

    def _generate(self, prompts: list[Prompt], task: Any) -> list[Generation]:
        """Generate; a failing batch is split in halves down to single prompts, so one bad sample fails alone.

        Out of memory also lowers the batch size for the rest of the run (recorded in run.json).
        """
        if not prompts:
            return []
        try:
            if task.kind == ENCODER_KIND:  # image-text encoders: similarity logits instead of generated text
                gens = self.backend.similarity(prompts)
            else:
                gens = self.backend.generate(prompts, task.generation)
            if len(gens) != len(prompts):
                raise RuntimeError(f"backend returned {len(gens)} generations for {len(prompts)} prompts")
            return gens
        except (KeyboardInterrupt, UsageError):
            raise
        except Exception as exc:
            if len(prompts) == 1:
                log.debug("generation failed", exc_info=True)
                return [Generation(text="", error=SampleError("generation", f"{type(exc).__name__}: {exc}"))]
            half = (len(prompts) + 1) // 2
            if _is_oom(exc):
                self.effective_batch = min(self.effective_batch, half)
                _free_device_memory()
            log.warning("batch of %d failed (%s); retrying in halves", len(prompts), type(exc).__name__)
            return self._generate(prompts[:half], task) + self._generate(prompts[half:], task)

    def _records(self, task: Any, batch: list[Prepared], gens: list[Generation], parse_ctx: Any) -> list[SampleRecord]:
        it = iter(gens)
        out: list[SampleRecord] = []
        parsed: list[SampleRecord] = []
        for item in batch:
            s = item.sample
            gen = next(it) if item.prompt is not None else None
            error = item.error or (gen.error if gen else None)
            rec = SampleRecord(
                id=s.id, task=task.name, prompt=item.prompt.text if item.prompt else None,
                prompt_hash=prompt_hash(item.prompt, s) if item.prompt else None,
                output=None if gen is None or gen.error else gen.text, target=s.target, metadata=s.metadata,
                n_prompt_tokens=gen.n_prompt_tokens if gen and not gen.error else None,
                n_generated_tokens=gen.n_generated_tokens if gen and not gen.error else None,
            )
            if error is None and gen is not None and _parse_into(rec, task, self.adapter, parse_ctx):
                parsed.append(rec)
            if error is not None:
                _fail(rec, error)
            out.append(rec)
        # Scored together: an LLM-judged task reviews the whole batch concurrently.
        for rec, outcome in zip(parsed, task.score_records(parsed)):
            if isinstance(outcome, SampleError):
                _fail(rec, outcome)
            else:
                rec.scores = outcome
        return out


def _check_model_kind(family: str, encoder: bool, tasks: list[Any]) -> None:
    """Encoder tasks need an image-text encoder (clip, siglip); every other task needs a generative model."""
    for task in tasks:
        if task.kind == ENCODER_KIND and not encoder:
            raise UsageError(f"{task.name} scores image-text encoders (--model clip, siglip or a local CLIP/SigLIP "
                             f"folder); the {family} family generates text")
        if task.kind != ENCODER_KIND and encoder:
            raise UsageError(f"the {family} family is an image-text encoder and cannot answer {task.name}; "
                             "it runs encoder tasks only (e.g. mmvp_vlm)")


def _image_key(item: Prepared) -> tuple[str, ...]:
    return tuple(ref.digest() for ref in item.sample.images)
