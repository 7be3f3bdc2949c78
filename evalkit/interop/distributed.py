"""Data-parallel evaluation on Ray: N model replicas, one writer, results equal to a single-process run.

Design (docs/distributed.md has the user's view):

- The driver (the ``evalkit run`` process) reads the datasets, cuts each task's pending samples into
  *work units* and hands them to replicas on demand. A unit is exactly a window of the single-process
  runner (``Runner._window_size()`` consecutive pending samples, in dataset order), so its length-sorted
  batches hold the same samples as in a single-process run. Which replica runs a unit is decided at run
  time (the next free one): a fast replica takes more units, and a dead one's work goes to the others.
  Under greedy decoding a sample's output does not depend on the replica that produced it.
- A replica is a Ray actor holding one loaded model (one GPU bundle of a placement group on GPU clusters,
  ``num_cpus`` CPUs elsewhere). It runs ``Runner.produce`` on each unit, the same code a single-process
  run executes, and streams each finished batch back (a Ray streaming generator).
- Only the driver writes the sample store: it appends every batch it receives (fsynced) before taking
  the next one. One writer keeps the single-process guarantees (no interleaved lines, nothing lost but
  batches in flight) and needs no shared filesystem for the results.
- A replica that dies (killed, out of host memory, node lost) is restarted in its bundle; the samples of
  its units that had not come back are queued again. Samples already stored are never regenerated, and
  ``--resume`` works across replica counts because the store, not the replicas, is the record.

Ray is an optional dependency (``pip install 'evalkit[ray]'``) imported only here, only when used.
"""

from __future__ import annotations

import copyreg
import functools
import logging
import os
import resource
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.backends import BACKENDS, Backend
from evalkit.core.errors import MissingDependency, UsageError
from evalkit.core.results import ReplicaTelemetry, RunRecord, SampleRecord, TaskResult, Telemetry
from evalkit.runner import RunOptions, Runner
from evalkit.core.store import SampleStore
from evalkit.core.telemetry import PeakMemory, Phases, rate
from evalkit.core.types import GenerationSettings, Sample, SampleError

log = logging.getLogger(__name__)

# Exceptions whose __init__ takes more than the message do not survive pickling by default; samples
# (``Sample.load_error``) and errors raised in a replica cross process boundaries here.
copyreg.pickle(SampleError, lambda e: (SampleError, (e.category, e.message)))
copyreg.pickle(MissingDependency, lambda e: (UsageError, (str(e),)))

# Settings a replica needs from the driver's environment (never credentials: tokens stay on the driver).
FORWARDED_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE",
                 "TRANSFORMERS_VERBOSITY")


def require_ray() -> Any:
    """The ray module, or a UsageError (exit 2) naming the install that provides it."""
    try:
        import ray
    except ImportError:
        raise MissingDependency("Ray (needed by --data-parallel and --ray-address)", "ray") from None
    return ray


@dataclass(frozen=True)
class DataParallelOptions:
    """How to spread a run over Ray. The CLI sets ``replicas`` and ``address``; the rest are for the API."""

    replicas: int
    address: str | None = None  # None: RAY_ADDRESS, else a local Ray started (and stopped) by the run
    cpus_per_replica: int | None = None  # None: 1 with GPUs, else the cluster's CPUs / replicas
    gpus_per_replica: float | None = None  # None: 1 when the cluster has GPUs (and --device is not cpu), else 0
    max_restarts: int = 3  # per replica; a replica that dies more often is given up
    units_in_flight: int = 2  # units queued at a replica, so it never waits for the driver
    placement_timeout_s: float = 300.0


class WorkUnits:
    """A task's pending samples cut into consecutive windows of ``size``, handed out in dataset order.

    Units given back with ``requeue`` (a dead replica's unfinished samples) go out before new ones.
    """

    def __init__(self, samples: Iterator[Sample], size: int):
        self._samples = samples
        self._size = size
        self._requeued: deque[list[Sample]] = deque()

    def take(self) -> list[Sample] | None:
        if self._requeued:
            return self._requeued.popleft()
        unit = [s for _, s in zip(range(self._size), self._samples)]
        return unit or None

    def requeue(self, samples: list[Sample]) -> None:
        if samples:
            self._requeued.append(samples)

    @property
    def requeued(self) -> int:
        return sum(len(u) for u in self._requeued)


@dataclass
class BatchOut:
    """One finished batch as a replica streams it back, with what it cost the replica."""

    records: list[SampleRecord]
    n_prompt_tokens: int
    n_generated_tokens: int
    seconds: dict[str, float]  # phase -> seconds since the previous batch ("busy" is wall time)
    peak_rss_mb: float
    peak_gpu_memory_mb: float | None
    effective_batch: int


class Replica:
    """The Ray actor: one loaded model running ``Runner.produce`` on the units it is sent."""

    def __init__(self, opts: RunOptions, threads: int):
        self.opts, self.threads = opts, threads
        self.runner: Runner | None = None
        self.task_name: str | None = None

    def load(self) -> dict[str, Any]:
        """Load the model; returns where and how (node, pid, device, load seconds)."""
        import ray
        import torch

        start = time.perf_counter()
        self.mem = PeakMemory().__enter__()  # sampled until the process ends: loading counts too
        torch.set_num_threads(self.threads)
        self.runner = Runner(self.opts)
        self.runner.backend.load()
        return {"node": ray.util.get_node_ip_address(), "pid": os.getpid(),
                "device": self.runner.backend.device_name(), "load_s": time.perf_counter() - start}

    def effective_settings(self, settings: GenerationSettings) -> dict[str, Any]:
        assert self.runner is not None
        return dict(self.runner.backend.effective_settings(settings))

    def run_unit(self, task_name: str, samples: list[Sample]) -> Iterator[BatchOut]:
        runner = self.runner
        assert runner is not None, "load() first"
        task = next(t for t in runner.tasks if t.name == task_name)
        if task_name != self.task_name:  # as in a single-process run, OOM halving lasts for one task
            self.task_name, runner.effective_batch = task_name, runner.opts.batch_size
        phases, before = Phases(), {}
        last = time.perf_counter()
        for records, n_prompt, n_gen in runner.produce(task, iter(samples), phases):
            now = time.perf_counter()
            seconds = {k: v - before.get(k, 0.0) for k, v in phases.seconds.items()}
            seconds["busy"], before, last = now - last, dict(phases.seconds), now
            self.mem.sample()
            yield BatchOut(records, n_prompt, n_gen, seconds, self.mem.peak_mb, runner.backend.peak_gpu_memory_mb(),
                           runner.effective_batch)


@functools.cache
def _actor_class() -> Any:
    """``Replica`` as a Ray actor class (made once: Ray exports a class definition per ``ray.remote``)."""
    return require_ray().remote(max_restarts=0, max_task_retries=0)(Replica)


@dataclass
class _Tally:
    """What one replica did for one task, summed over the batches it sent back."""

    n: int = 0
    n_prompt_tokens: int = 0
    n_generated_tokens: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    effective_batch: int | None = None

    def add(self, out: BatchOut) -> None:
        self.n += len(out.records)
        self.n_prompt_tokens += out.n_prompt_tokens
        self.n_generated_tokens += out.n_generated_tokens
        for k, v in out.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v
        self.effective_batch = min(self.effective_batch or out.effective_batch, out.effective_batch)

    @classmethod
    def merged(cls, tallies: list["_Tally"]) -> "_Tally":
        total = cls()
        for t in tallies:
            total.n += t.n
            total.n_prompt_tokens += t.n_prompt_tokens
            total.n_generated_tokens += t.n_generated_tokens
            for k, v in t.seconds.items():
                total.seconds[k] = total.seconds.get(k, 0.0) + v
        return total

    def telemetry(self, slot: "_Slot", restarts: int, load_s: float) -> ReplicaTelemetry:
        sec = {k: round(self.seconds.get(k, 0.0), 3) for k in ("busy", "data", "generate", "score")}
        return ReplicaTelemetry(
            replica=slot.index, node=slot.node, n=self.n, restarts=restarts, wall_s=sec["busy"],
            samples_per_s=rate(self.n, sec["busy"]), prompt_tokens_per_s=rate(self.n_prompt_tokens, sec["generate"]),
            generated_tokens_per_s=rate(self.n_generated_tokens, sec["generate"]),
            peak_rss_mb=round(slot.peak_rss_mb, 1), peak_gpu_memory_mb=slot.peak_gpu_memory_mb, load_s=round(load_s, 3),
            data_s=sec["data"], generate_s=sec["generate"], score_s=sec["score"],
            n_prompt_tokens=self.n_prompt_tokens, n_generated_tokens=self.n_generated_tokens,
        )


@dataclass
class _Slot:
    """A replica's place in the pool: its bundle index, current actor and history."""

    index: int
    actor: Any = None
    incarnation: int = 0
    restarts: int = 0
    loading: Any = None  # ObjectRef of the pending load() call
    ready: bool = False
    given_up: bool = False
    in_flight: int = 0
    node: str | None = None
    pid: int | None = None
    device: str | None = None
    load_s: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_memory_mb: float | None = None
    tasks: dict[str, _Tally] = field(default_factory=dict)
    task_restarts: dict[str, int] = field(default_factory=dict)


def _unwrap(exc: Exception, slot: _Slot) -> Exception:
    """A replica's own exception (RayTaskError.cause): usage errors stay usage errors."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, UsageError):
        return cause
    what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc).splitlines()[0]
    return RuntimeError(f"replica {slot.index} failed: {what}")


class ReplicaPool(Backend):
    """The engine as the driver sees it: ``load`` starts N replicas on Ray, ``close`` stops them.

    The driver never calls ``generate``: it sends whole units to replicas (``submit``) instead.
    """

    name = "ray"

    def __init__(self, runner: Runner, dp: DataParallelOptions):
        super().__init__(runner.spec, runner.adapter, runner.backend.config)
        self.dp = dp
        self.schedules_itself = BACKENDS.get(runner.opts.backend).schedules_itself
        self.run_opts = runner.opts
        self.slots = [_Slot(i) for i in range(dp.replicas)]
        self._pg: Any = None
        self._own_ray = False

    # -- lifecycle ----------------------------------------------------------------------------------
    def load(self) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            local = self.dp.address is None and not os.environ.get("RAY_ADDRESS")
            extra = {"include_dashboard": False} if local else {}
            ray.init(address=self.dp.address, log_to_driver=log.isEnabledFor(logging.INFO),
                     logging_level=logging.WARNING, **extra)
            self._own_ray = True
        bundle = self._bundle(ray.cluster_resources())
        from ray.util.placement_group import placement_group

        self._bundle_spec = bundle
        self._pg = placement_group([bundle] * self.dp.replicas, strategy="PACK")
        if not self._pg.wait(timeout_seconds=self.dp.placement_timeout_s):
            raise UsageError(f"--data-parallel {self.dp.replicas}: Ray could not place {self.dp.replicas} replicas "
                             f"of {bundle} within {self.dp.placement_timeout_s:.0f}s; free resources or lower it")
        for slot in self.slots:
            self._spawn(slot)
        while self.loading_refs():  # every replica loaded (or given up) before the first unit goes out
            ready, _ = ray.wait(self.loading_refs(), num_returns=1, timeout=1.0)
            for ref in ready:
                self.finish_loading(ref)

    def _bundle(self, resources: dict[str, float]) -> dict[str, float]:
        n, cpus, gpus = self.dp.replicas, resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        device = self.run_opts.device
        if device.startswith("cuda") and gpus == 0:
            raise UsageError(f"--device {device}: the Ray cluster has no GPUs; use --device cpu or add GPU nodes")
        per_gpu = self.dp.gpus_per_replica
        if per_gpu is None:
            per_gpu = 1.0 if gpus >= 1 and device != "cpu" else 0.0
        if per_gpu and gpus < per_gpu * n:
            raise UsageError(f"--data-parallel {n} needs {per_gpu * n:g} GPUs ({per_gpu:g} per replica); the Ray "
                             f"cluster has {gpus:g}: lower --data-parallel or add GPU nodes")
        per_cpu = self.dp.cpus_per_replica or (1 if per_gpu else max(1, int(cpus // n)))
        if cpus < per_cpu * n:
            raise UsageError(f"--data-parallel {n} needs {per_cpu * n} CPUs ({per_cpu} per replica); the Ray "
                             f"cluster has {cpus:g}: lower --data-parallel or add nodes")
        return {"CPU": float(per_cpu), **({"GPU": float(per_gpu)} if per_gpu else {})}

    def _spawn(self, slot: _Slot) -> None:
        ray = require_ray()
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        opts = self.run_opts
        device = "cuda" if "GPU" in self._bundle_spec else ("cpu" if opts.device == "auto" else opts.device)
        # Replicas read no dataset and may run elsewhere: an absolute checkpoint path, no data dir, no bar.
        model = self.spec.checkpoint if Path(self.spec.checkpoint).is_absolute() else opts.model
        actor_opts = replace(opts, model=model, device=device, data_dir=None, progress=False, resume=False)
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        slot.actor = _actor_class().options(
            num_cpus=self._bundle_spec["CPU"], num_gpus=self._bundle_spec.get("GPU", 0),
            scheduling_strategy=PlacementGroupSchedulingStrategy(self._pg, placement_group_bundle_index=slot.index),
            runtime_env={"env_vars": env} if env else None,
        ).remote(actor_opts, int(self._bundle_spec["CPU"]))
        slot.loading, slot.ready = slot.actor.load.remote(), False

    def loading_refs(self) -> list[Any]:
        return [s.loading for s in self.slots if s.loading is not None]

    def finish_loading(self, ref: Any) -> None:
        """A load() call ended: the replica is ready, or (it died) it is restarted."""
        ray = require_ray()
        slot = next(s for s in self.slots if s.loading == ref)
        slot.loading = None
        try:
            info = ray.get(ref)
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
            self.replace(slot, slot.incarnation)
            return
        except ray.exceptions.RayTaskError as exc:
            raise _unwrap(exc, slot) from None
        slot.ready, slot.node, slot.pid, slot.device = True, info["node"], info["pid"], info["device"]
        slot.load_s += info["load_s"]

    def replace(self, slot: _Slot, incarnation: int) -> None:
        """Restart a replica that died (once per death); give it up after ``max_restarts``."""
        ray = require_ray()
        if slot.incarnation != incarnation or slot.given_up:
            return  # this death was already handled
        slot.ready = False
        try:
            ray.kill(slot.actor, no_restart=True)
        except Exception:  # already gone
            pass
        if slot.restarts >= self.dp.max_restarts:
            slot.given_up = True
            log.warning("replica %d died %d times; continuing without it", slot.index, slot.restarts + 1)
            if all(s.given_up for s in self.slots):
                raise RuntimeError(f"all {len(self.slots)} replicas died more than {self.dp.max_restarts} times "
                                   "each; the samples finished so far are stored: rerun with --resume")
            return
        slot.restarts += 1
        slot.incarnation += 1
        slot.in_flight = 0
        log.warning("replica %d died; restarting it (%d of %d) and re-queuing its unfinished samples",
                    slot.index, slot.restarts, self.dp.max_restarts)
        self._spawn(slot)

    def close(self) -> None:
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        for slot in self.slots:
            if slot.actor is not None:
                try:
                    ray.kill(slot.actor, no_restart=True)
                except Exception:  # already gone
                    pass
                slot.actor, slot.ready = None, False
        if self._pg is not None:
            from ray.util.placement_group import remove_placement_group

            remove_placement_group(self._pg)
            self._pg = None
        if self._own_ray:
            ray.shutdown()
            self._own_ray = False

    # -- work ---------------------------------------------------------------------------------------
    def ready_slots(self) -> list[_Slot]:
        return [s for s in self.slots if s.ready]

    def submit(self, slot: _Slot, task_name: str, unit: list[Sample]) -> Any:
        slot.in_flight += 1
        return slot.actor.run_unit.options(num_returns="streaming").remote(task_name, unit)

    def account(self, slot: _Slot, task_name: str, out: BatchOut) -> None:
        slot.tasks.setdefault(task_name, _Tally()).add(out)
        slot.peak_rss_mb = max(slot.peak_rss_mb, out.peak_rss_mb)
        if out.peak_gpu_memory_mb is not None:
            slot.peak_gpu_memory_mb = max(slot.peak_gpu_memory_mb or 0.0, out.peak_gpu_memory_mb)

    def generate(self, prompts: Any, settings: GenerationSettings) -> Any:  # pragma: no cover - never called
        raise NotImplementedError("replicas generate whole units: see DataParallelRunner.produce")

    # -- what the runner asks a backend -------------------------------------------------------------
    def device_name(self) -> str:
        names = sorted({s.device for s in self.slots if s.device})
        return f"{len(self.slots)} x {' / '.join(names) or 'unknown'} (Ray data-parallel)"

    def peak_gpu_memory_mb(self) -> float | None:
        peaks = [s.peak_gpu_memory_mb for s in self.slots if s.peak_gpu_memory_mb is not None]
        return round(sum(peaks), 1) if peaks else None

    def peak_rss_mb(self) -> float:
        """Replicas' peak RSS summed, plus the driver's own (its Ray processes are counted as replicas)."""
        driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return round(driver + sum(s.peak_rss_mb for s in self.slots), 1)

    def effective_settings(self, settings: GenerationSettings) -> dict[str, Any]:
        """As the engine applies them (vLLM maps some settings): asked of a live replica."""
        ray = require_ray()
        while True:
            for slot in self.ready_slots():
                try:
                    return ray.get(slot.actor.effective_settings.remote(settings))
                except ray.exceptions.RayActorError:
                    self.replace(slot, slot.incarnation)
            if not self.loading_refs():
                raise RuntimeError("no live replica to report the effective decoding settings; rerun with --resume")
            ready, _ = ray.wait(self.loading_refs(), num_returns=1)  # a restarted replica: wait for it
            self.finish_loading(ready[0])

    def telemetry(self, task_name: str | None = None) -> list[ReplicaTelemetry]:
        """Each replica's share of one task, or (``None``) of the whole run, model load included."""
        if task_name is None:
            return [_Tally.merged(list(s.tasks.values())).telemetry(s, s.restarts, s.load_s) for s in self.slots]
        return [s.tasks.get(task_name, _Tally()).telemetry(s, s.task_restarts.get(task_name, 0), 0.0)
                for s in self.slots]


@dataclass
class _Flight:
    """A unit sent to a replica: which samples of it have come back."""

    slot: _Slot
    incarnation: int
    unit: list[Sample]
    done: set[str] = field(default_factory=set)

    def unfinished(self) -> list[Sample]:
        return [s for s in self.unit if s.id not in self.done]


class DataParallelRunner(Runner):
    """A Runner whose engine is a pool of replicas on Ray; run/resume/store/scoring are the Runner's."""

    def __init__(self, opts: RunOptions, dp: DataParallelOptions):
        require_ray()
        if dp.replicas < 1:
            raise UsageError(f"--data-parallel {dp.replicas}: must be at least 1")
        super().__init__(opts)
        self.dp = dp
        self.pool = ReplicaPool(self, dp)
        self.backend = self.pool

    def start(self) -> tuple[RunRecord, Path]:
        record, run_dir = super().start()
        record.config.data_parallel = self.dp.replicas
        return record, run_dir

    def produce(self, task: Any, samples: Iterator[Sample],
                phases: Phases) -> Iterator[tuple[list[SampleRecord], int, int]]:
        """Send units to free replicas; yield their batches as they stream back (the caller stores them)."""
        ray = require_ray()
        pool, units = self.pool, WorkUnits(samples, self._window_size())
        flights: dict[Any, _Flight] = {}
        exhausted = False

        def dispatch() -> None:
            nonlocal exhausted
            for slot in pool.ready_slots():
                while slot.in_flight < self.dp.units_in_flight:
                    with phases.time("data"):
                        unit = units.take()
                    if unit is None:
                        exhausted = True
                        return
                    flights[pool.submit(slot, task.name, unit)] = _Flight(slot, slot.incarnation, unit)

        def lost(gen: Any, flight: _Flight) -> None:
            del flights[gen]
            units.requeue(flight.unfinished())
            slot = flight.slot
            if slot.incarnation == flight.incarnation and not slot.given_up:
                slot.task_restarts[task.name] = slot.task_restarts.get(task.name, 0) + 1
            pool.replace(slot, flight.incarnation)

        dispatch()
        while flights or (units.requeued or not exhausted):
            waitables = list(flights) + pool.loading_refs()
            if not waitables:
                raise RuntimeError("no replica is left to evaluate the remaining samples; rerun with --resume")
            with phases.time("generate"):
                ready, _ = ray.wait(waitables, num_returns=1, timeout=1.0)
            if not ready:
                continue
            item = ready[0]
            flight = flights.get(item)
            if flight is None:  # a restarted replica finished loading
                pool.finish_loading(item)
                dispatch()
                continue
            try:
                with phases.time("generate"):
                    out = ray.get(next(item))
            except StopIteration:
                del flights[item]
                if flight.incarnation == flight.slot.incarnation:
                    flight.slot.in_flight -= 1
                dispatch()
                continue
            except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                lost(item, flight)
                dispatch()
                continue
            except ray.exceptions.RayTaskError as exc:
                raise _unwrap(exc, flight.slot) from None
            flight.done.update(r.id for r in out.records)
            pool.account(flight.slot, task.name, out)
            yield out.records, out.n_prompt_tokens, out.n_generated_tokens
        batches = [t.effective_batch for s in pool.slots if (t := s.tasks.get(task.name)) and t.effective_batch]
        self.effective_batch = min(batches, default=self.opts.batch_size)

    def evaluate(self, task: Any, store: SampleStore, run_dir: Path, mem: PeakMemory) -> TaskResult:
        result = super().evaluate(task, store, run_dir, mem)
        result.replicas = self.pool.telemetry(task.name)
        result.telemetry.peak_rss_mb = self.pool.peak_rss_mb()
        return result

    def _totals(self, record: RunRecord, wall: float, mem: PeakMemory) -> Telemetry:
        import ray

        totals = super()._totals(record, wall, mem)
        totals.peak_rss_mb = self.pool.peak_rss_mb()
        record.replicas = self.pool.telemetry()
        record.environment["ray"] = ray.__version__
        return totals
