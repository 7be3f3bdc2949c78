"""Run an installed lmms-eval task through evalkit: ``evalkit run --tasks lmms:<task>``.

The task is lmms-eval's own object (``ConfigurableMessagesTask`` built from its YAML and ``utils.py``):
prompts come from its ``doc_to_text`` (``fewshot_context`` with 0 shots: description + text) and
``doc_to_visual``, or from ``doc_to_messages`` when it has no ``doc_to_text``; answers are scored by its
filters, ``process_results`` and metric aggregations. Only two things are evalkit's:

- **Data**: the YAML's ``dataset_path`` / ``dataset_name`` / test (else validation) split is resolved
  offline by :mod:`evalkit.core.data` (``--data-dir DIR`` holds ``DIR/<dataset_path>``), then handed to
  lmms-eval's own loading code (``datasets`` builder on those files, its ``process_docs``).
- **Generation**: the model runs through evalkit's adapter and backend with the task's
  ``generation_kwargs`` exactly: ``max_new_tokens`` (1024, the default of lmms-eval's HF models, when the
  YAML has none), ``until`` as stop strings (lmms-eval's default ``["\\n\\n"]`` included), temperature,
  top_p. lmms-eval's vLLM models raise ``max_new_tokens`` to their own setting (1024/4096); evalkit does not.

Each sample stores its document without media (what lmms-eval's ``process_results`` receives) in
``metadata["doc"]``, and ``parsed`` is the ``process_results`` output, so ``evalkit score`` rescores a run
from its files. Metrics keep lmms-eval's names and scale (``exact_match`` 0.78; ``<metric>,<filter>`` for
a filter other than ``none``); the primary metric is the first of ``metric_list``.

Deliberate differences from an lmms-eval run, and what is not supported: docs/lmms_eval.md.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import difflib
import functools
import inspect
import io
import logging
import math
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.core.errors import MissingDependency, UsageError
from evalkit.interop.lmms_results import PREFIX, evalkit_name, metric_key, number, numeric_scores
from evalkit.core.results import DatasetInfo, MetricValue, SampleRecord
from evalkit.tasks.base import ParseContext, Task, TaskContext, TaskData, limited
from evalkit.core.types import GenerationSettings, ImageRef, Json, Sample, SampleError, Turn

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = 1024  # lmms-eval's HF models: gen_kwargs["max_new_tokens"] = 1024 when unset
KIND = "open"  # adapters keep the task's own text for this kind
# dataset_kwargs keys that do not change what is read (or that the bridge handles itself).
_DATASET_KWARGS = frozenset({"token", "trust_remote_code", "verification_mode", "num_proc", "max_retries",
                             "local_files_only", "create_link", "cache_dir", "download_mode", "revision",
                             "data_files"})
_LOCAL_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


# -- importing lmms-eval ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def lmms_api() -> Any:
    """lmms-eval's task module, imported once. Its logger is quieted (WARNING with -v, DEBUG with -vv) and
    PIL's LOAD_TRUNCATED_IMAGES, which importing lmms-eval turns on for the whole process, is put back."""
    from PIL import ImageFile

    truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import lmms_eval  # noqa: F401
    except ImportError as exc:
        raise MissingDependency("lmms-eval (needed for lmms: tasks)", "lmms") from exc
    _quiet_loguru()
    try:
        import datasets
        import lmms_eval.api.task as api
        import lmms_eval.tasks  # noqa: F401  (registers metrics, filters, the TaskManager)
    except ImportError as exc:
        fix = "run: pip install 'evalkit[lmms]' (or the lean install in docs/lmms_eval.md)"
        raise UsageError(f"lmms-eval is installed but does not import ({exc}); {fix}") from exc
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = truncated
    datasets.disable_progress_bars()
    return api


def _quiet_loguru() -> None:
    from loguru import logger

    root = logging.getLogger().getEffectiveLevel()
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if root <= logging.DEBUG else "WARNING" if root <= logging.INFO else "ERROR")


@contextlib.contextmanager
def _lmms_io(truncated_images: bool = False) -> Iterator[None]:
    """Around lmms-eval code: its prints go to the debug log; PIL's truncated-image flag as given."""
    from PIL import ImageFile

    before, buffer = ImageFile.LOAD_TRUNCATED_IMAGES, io.StringIO()
    ImageFile.LOAD_TRUNCATED_IMAGES = truncated_images
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
        if buffer.getvalue().strip():
            log.debug("lmms-eval printed: %s", buffer.getvalue().strip())


# -- names -----------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def task_index() -> dict[str, dict[str, Any]]:
    """lmms-eval's index of its installed tasks, groups and tags (name -> type, yaml_path, members)."""
    lmms_api()
    from lmms_eval.tasks import TaskManager

    with _lmms_io():
        return dict(TaskManager(verbosity="ERROR").task_index)


def _entry(name: str) -> dict[str, Any]:
    index = task_index()
    if name in index:
        return index[name]
    close = difflib.get_close_matches(name, list(index), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(PREFIX + c for c in close)}? " if close else ""
    raise UsageError(f"lmms-eval has no task or group {name!r}; {hint}`python -m lmms_eval --tasks list` lists them")


def expand(name: str) -> list[str]:
    """``lmms:<task|group|tag>`` -> the ``lmms:<task>`` names it stands for (groups and tags expanded)."""
    bare = name[len(PREFIX):].strip()
    if not bare:
        raise UsageError("lmms: needs an lmms-eval task name, e.g. --tasks lmms:vqav2_val")
    return list(dict.fromkeys(evalkit_name(t) for t in _members(bare, ())))


def _members(name: str, trail: tuple[str, ...]) -> list[str]:
    entry = _entry(name)
    kind = entry.get("type")
    if kind == "task":
        return [name]
    if kind == "python_task":
        raise UsageError(f"lmms-eval task {name} is a Python class, not a YAML task; the bridge runs YAML tasks only")
    if name in trail:
        raise UsageError(f"lmms-eval group {name} contains itself ({' -> '.join(trail + (name,))})")
    members = entry.get("task")
    if not isinstance(members, list):  # a group defined by its own YAML file
        from lmms_eval.utils import load_yaml_config

        members = load_yaml_config(entry["yaml_path"], mode="simple").get("task") or []
    out: list[str] = []
    for member in members:
        if not isinstance(member, str):
            raise UsageError(f"lmms-eval group {name} defines a task inline; run its tasks by name instead")
        out += _members(member, trail + (name,))
    return out


def task_config(name: str) -> dict[str, Any]:
    """The full config of lmms-eval task ``name`` (YAML with includes, ``!function`` hooks imported)."""
    entry = _entry(name)
    if entry.get("type") != "task":
        raise UsageError(f"lmms:{name} is an lmms-eval {entry.get('type')}, not a task; pass it to --tasks, which "
                         "expands it")
    from lmms_eval.utils import load_yaml_config

    try:
        with _lmms_io():
            return dict(load_yaml_config(entry["yaml_path"], mode="full"))
    except Exception as exc:  # its utils.py may need packages this machine lacks
        raise UsageError(f"lmms-eval task {name} does not load ({type(exc).__name__}: {exc})") from exc


# -- generation ------------------------------------------------------------------------------------

def generation_settings(kwargs: dict[str, Any] | None) -> tuple[GenerationSettings, list[str]]:
    """A task's (post-TaskConfig) ``generation_kwargs`` as evalkit settings, plus notes on what was
    defaulted or is not applied. ``num_beams`` > 1 is a UsageError (evalkit backends do not beam-search)."""
    gk = dict(kwargs or {})
    notes: list[str] = []
    if gk.get("max_new_tokens") is not None:
        max_new = int(gk.pop("max_new_tokens"))
    else:
        gk.pop("max_new_tokens", None)
        max_new = DEFAULT_MAX_NEW_TOKENS
        notes.append(f"generation_kwargs has no max_new_tokens: {max_new}, the default of lmms-eval's HF models")
    until = gk.pop("until", None)
    stop = [until] if isinstance(until, str) else [str(s) for s in until or []]
    temperature = float(gk.pop("temperature", 0.0) or 0.0)
    if gk.pop("do_sample", None) is False:
        temperature = 0.0
    top_p = gk.pop("top_p", None)
    beams = int(gk.pop("num_beams", 1) or 1)
    if beams != 1:
        raise UsageError(f"generation_kwargs num_beams={beams}: evalkit backends decode greedily or by sampling")
    if gk:
        notes.append(f"generation_kwargs not applied by evalkit backends: {', '.join(sorted(gk))}")
    settings = GenerationSettings(max_new_tokens=max_new, stop=tuple(s for s in stop if s),
                                  temperature=temperature, top_p=1.0 if top_p is None else float(top_p))
    return settings, notes


# -- values stored in result files -----------------------------------------------------------------

def _is_media(value: Any) -> bool:
    from PIL import Image

    if isinstance(value, (Image.Image, bytes, bytearray, memoryview)):
        return True
    return isinstance(value, dict) and (set(value) == {"bytes", "path"} or {"array", "sampling_rate"} <= set(value))


def jsonable(value: Any) -> Json:
    """``value`` as JSON (media dropped, numpy/tuples/dates converted, NaN -> None); TypeError otherwise,
    never a silent ``str()``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items() if not _is_media(v)}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value if not _is_media(v)]
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return jsonable(value.tolist())
    raise TypeError(f"a {type(value).__name__} cannot be written to the result files")


@dataclass(frozen=True, eq=False)
class InMemoryImage(ImageRef):
    """An image lmms-eval's ``doc_to_visual`` returned, kept decoded (no re-encoding) until the batch."""

    image: Any = None
    __eq__ = object.__eq__  # identity: the inherited field comparison would find every such image equal
    __hash__ = object.__hash__

    def load(self) -> Any:
        return self.image if self.image.mode == "RGB" else self.image.convert("RGB")

    def digest(self) -> str:
        import hashlib

        h = hashlib.sha256(f"{self.image.mode}:{self.image.size}".encode())
        h.update(self.image.tobytes())
        return h.hexdigest()[:16]


def _image_ref(visual: Any) -> ImageRef:
    from PIL import Image

    if isinstance(visual, Image.Image):
        return InMemoryImage(image=visual)
    if isinstance(visual, str) and Path(visual).suffix.lower() in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"):
        return ImageRef(path=visual)
    raise SampleError("bad_record", f"visual input of type {type(visual).__name__} (video/audio?) is not supported")


@contextlib.contextmanager
def _as_sample_error(category: str) -> Iterator[None]:
    """An exception inside lmms-eval's per-document code fails that sample only."""
    try:
        yield
    except SampleError:
        raise
    except Exception as exc:
        raise SampleError(category, f"{type(exc).__name__}: {exc}") from exc


def _from_messages(messages: Any) -> tuple[str, list[Any], list[Turn]]:
    """lmms-eval chat messages -> (last user text, images in order, earlier turns)."""
    if not isinstance(messages, list) or not messages or messages[-1].get("role") != "user":
        raise SampleError("prompt", "doc_to_messages did not return a conversation ending in a user turn")
    images: list[Any] = []
    turns: list[Turn] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            raise SampleError("prompt", f"{role} messages are not supported by evalkit adapters")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        texts = [str(p.get("text", "")) for p in parts if p.get("type") == "text"]
        images += [p.get("url", p.get("image")) for p in parts if p.get("type") == "image"]
        if any(p.get("type") not in ("text", "image") for p in parts):
            raise SampleError("bad_record", "only text and image message parts are supported")
        turns.append(Turn(role=role, content="\n".join(texts)))
    return turns[-1].content, images, turns[:-1]


# -- lmms-eval's task object on local documents ----------------------------------------------------

class _DocList(list):  # type: ignore[type-arg]
    """Stored documents as the split lmms-eval's task reads (it needs ``features`` and indexing)."""

    def __init__(self, docs: list[dict[str, Any]]):
        super().__init__(docs)
        self.features = {k: None for k in docs[0]}


@functools.lru_cache(maxsize=1)
def _bridged_class() -> type:
    """A subclass of lmms-eval's task whose ``download`` calls ``load_docs(self)`` instead of the hub."""
    api = lmms_api()

    class BridgedTask(api.ConfigurableMessagesTask):  # type: ignore[misc,name-defined]
        def __init__(self, config: dict[str, Any], load_docs: Callable[[Any], None]):
            self._load_docs = load_docs
            super().__init__(config=config, model_name=None)

        def download(self, dataset_kwargs: Any = None) -> None:
            self._load_docs(self)

    return BridgedTask


def _file_docs(builder: str, split: str, files: list[Path]) -> Callable[[Any], None]:
    """lmms-eval's own download code (``datasets`` builder, ``process_docs``, media-free copy) on local files."""
    def load(task: Any) -> None:
        kwargs: dict[str, Any] = {"data_files": {split: [str(f) for f in files]}}
        if builder in ("parquet", "arrow"):
            kwargs["features"] = _features(files[0], builder)
        task.DATASET_PATH, task.DATASET_NAME = builder, None
        original = inspect.unwrap(lmms_api().ConfigurableTask.download)  # without its 5x retry
        original(task, kwargs)

    return load


def _features(file: Path, builder: str) -> Any:
    """The file's features (from the hub's schema metadata), image structs {bytes, path} typed as Image."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    if builder == "parquet":
        schema = pq.read_schema(file)
    else:
        with pa.memory_map(str(file)) as source:
            try:
                schema = pa.ipc.open_stream(source).schema
            except pa.ArrowInvalid:
                schema = pa.ipc.open_file(source).schema
    features = datasets.Features.from_arrow_schema(schema)
    for name, feature in features.items():
        if isinstance(feature, dict) and set(feature) == {"bytes", "path"}:
            features[name] = datasets.Image()
    return features


def _stored_docs(split: str, doc: dict[str, Any]) -> Callable[[Any], None]:
    """A scorer's only document: one stored (already processed, media-free) document."""
    def load(task: Any) -> None:
        task.dataset = {split: _DocList([doc])}
        task.dataset_no_image = task.dataset

    return load


def _build(config: dict[str, Any], load_docs: Callable[[Any], None]) -> Any:
    with _lmms_io(truncated_images=True):  # as lmms-eval: process_docs and its first-document probe decode
        return _bridged_class()(copy.deepcopy(config), load_docs)


def _aggregate(fn: Callable[..., Any], items: list[Any], output_path: str) -> MetricValue | None:
    """One lmms-eval aggregation (``args`` passed when it takes them, as lmms-eval does); None when it gives
    no number. stderr: lmms-eval's, for the ``mean`` aggregation only."""
    from evalkit.metrics import mean_stderr
    from lmms_eval.api.metrics import mean

    takes_args = "args" in inspect.signature(fn).parameters
    value = number(fn(items, args=_AggregationArgs(output_path)) if takes_args else fn(items))
    if value is None:
        return None
    values = [v for v in (number(i) for i in items) if v is not None]
    stderr = mean_stderr(values)[1] if fn is mean and len(values) == len(items) > 1 else None
    return MetricValue(value=value, stderr=stderr, n=len(items))


class _AggregationArgs:
    """The ``args`` lmms-eval passes to aggregations: submission files go to ``output_path``; else None."""

    def __init__(self, output_path: str):
        self.output_path = output_path

    def __getattr__(self, name: str) -> None:
        return None


# -- the evalkit task ------------------------------------------------------------------------------

@dataclass
class LmmsTask(Task):
    """One lmms-eval task run by evalkit (see the module docstring)."""

    lmms_name: str = ""
    config: dict[str, Any] = field(default_factory=dict)  # lmms-eval's config: YAML plus imported hooks
    metric_names: tuple[str, ...] = ()  # evalkit metric names, report order (first: primary)
    notes: list[str] = field(default_factory=list)
    _scorer: Any = field(default=None, init=False, repr=False)
    _files: dict[str, bytes] = field(default_factory=dict, init=False, repr=False)

    @property
    def split(self) -> str:
        return str(self.config.get("test_split") or self.config.get("validation_split"))

    # -- data
    def load(self, ctx: TaskContext) -> TaskData:
        builder, files, info = self._files_of(ctx)
        try:
            task = _build(self.config, _file_docs(builder, self.split, files))
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"lmms-eval task {self.lmms_name} cannot prepare its documents from "
                             f"{info.get('location')}: {type(exc).__name__}: {str(exc)[:300]}") from exc
        docs = task.test_docs() if task.has_test_docs() else task.validation_docs()
        n = limited(len(docs), ctx.limit)
        info["n"] = len(docs)  # after process_docs (e.g. one document per referring expression)
        return TaskData(n=n, dataset=DatasetInfo(**info), samples=self._stream(task, docs, task.eval_docs_no_media, n))

    def _files_of(self, ctx: TaskContext) -> tuple[str, list[Path], dict[str, Any]]:
        from evalkit.core.data import DatasetSpec, open_dataset

        path = str(self.config.get("dataset_path") or "")
        kwargs = self.config.get("dataset_kwargs") or {}
        data_files = kwargs.get("data_files")
        if path in _LOCAL_BUILDERS.values() and data_files:  # a local-file task: data_files names the files
            listed = data_files.get(self.split) if isinstance(data_files, dict) else data_files
            files = [Path(f) for f in ([listed] if isinstance(listed, str) else listed or [])]
            if not files or not all(f.is_file() for f in files):
                raise UsageError(f"lmms-eval task {self.lmms_name}: data_files {listed!r} are not files")
            return path, files, {"id": path, "split": self.split, "location": str(files[0].parent)}
        if isinstance(data_files, dict):
            data_files = data_files.get(self.split)
        glob = data_files if isinstance(data_files, str) else None
        spec = DatasetSpec(path, split=self.split, config=self.config.get("dataset_name"),
                           revision=kwargs.get("revision"), data_files=glob)
        source = open_dataset(spec, data_dir=ctx.data_dir, path=ctx.data_path)
        suffixes = {f.suffix for f in source.files}
        if len(suffixes) != 1 or next(iter(suffixes)) not in _LOCAL_BUILDERS:
            raise UsageError(f"{source.location}: the bridge reads one table format per split, found "
                             f"{sorted(suffixes)}")
        return _LOCAL_BUILDERS[next(iter(suffixes))], list(source.files), source.describe()

    def _stream(self, task: Any, docs: Any, bare_docs: Any, n: int) -> Iterator[Sample]:
        for doc_id in range(n):
            sid = str(doc_id)
            try:
                bare = bare_docs[doc_id]
                meta: dict[str, Json] = {"doc_id": doc_id, "doc": jsonable(bare)}
                target = jsonable(task.doc_to_target(bare))
            except Exception as exc:
                yield Sample(id=sid, question="", load_error=SampleError("bad_record", f"{type(exc).__name__}: {exc}"))
                continue
            try:
                yield self._sample(task, docs, doc_id, target, meta)
            except SampleError as exc:
                yield Sample(id=sid, question="", target=target, metadata=meta, load_error=exc)

    def _sample(self, task: Any, docs: Any, doc_id: int, target: Json, meta: dict[str, Json]) -> Sample:
        with _as_sample_error("image_decode"):
            doc = docs[doc_id]  # decodes its images
        history: list[Turn] = []
        if self.config.get("doc_to_text") is not None:
            with _as_sample_error("prompt"):
                text = task.fewshot_context(doc, 0)
            with _as_sample_error("image_decode"):
                visuals = task.doc_to_visual(doc) if self.config.get("doc_to_visual") is not None else []
        else:
            with _as_sample_error("prompt"):
                messages = task.doc_to_messages(doc)
            text, visuals, history = _from_messages(messages)
        if not isinstance(text, str):
            raise SampleError("prompt", f"doc_to_text returned a {type(text).__name__}, not text")
        flat = [v for item in visuals or [] for v in (item if isinstance(item, list) else [item])]
        return Sample(id=str(doc_id), question=text, images=[_image_ref(v) for v in flat], target=target,
                      metadata=meta, history=history)

    # -- scoring
    def _scorer_for(self, doc: Json) -> Any:
        """lmms-eval's task object that scores: built on one stored document, so that a live run and
        `evalkit score` score the same way."""
        if self._scorer is None:
            if not isinstance(doc, dict) or not doc:
                raise ValueError("the record holds no lmms-eval document (metadata['doc'])")
            self._scorer = _build(self.config, _stored_docs(self.split, copy.deepcopy(doc)))
        return self._scorer

    def parse(self, output: str, metadata: dict[str, Json], ctx: ParseContext) -> Json:
        """As lmms-eval scores a response: its reasoning tags stripped (``reasoning_tags``, else
        ``auto_strip_thinking`` as a first filter), each filter pipeline, then ``process_results`` on the
        stored document. Returns {metric name: value}."""
        from lmms_eval.api.reasoning import parse_reasoning_tags_config, strip_reasoning_tags
        from lmms_eval.filters.transformation import StripThinkingFilter

        doc = metadata.get("doc")
        scorer = self._scorer_for(doc)
        tags = parse_reasoning_tags_config(task_value=self.config.get("reasoning_tags"))
        if tags is not None:
            output = strip_reasoning_tags(output, tags)
        out: dict[str, Json] = {}
        for ensemble in scorer._filters:
            steps = list(ensemble.filters)
            if self.config.get("auto_strip_thinking") and tags is None:
                steps.insert(0, StripThinkingFilter())
            resps: Any = [[output]]
            for step in steps:
                resps = step.apply(resps, [copy.deepcopy(doc)])
            filtered = list(resps)[0]
            for metric, value in scorer.process_results(copy.deepcopy(doc), [filtered]).items():
                key = metric_key(metric, ensemble.name)
                if key in self.metric_names:
                    out[key] = jsonable(value)
        return out

    def score(self, record: SampleRecord) -> dict[str, float | None]:
        return numeric_scores(record.parsed)

    def aggregate(self, records: list[SampleRecord]) -> dict[str, MetricValue]:
        """lmms-eval's aggregation of each metric over the samples that did not fail (unrounded); stderr
        for ``mean`` aggregations, as lmms-eval's. Files aggregations write are kept for ``finalize``."""
        ok = [(r.metadata, r.parsed) for r in records if r.error is None and isinstance(r.parsed, dict)]
        out: dict[str, MetricValue] = {}
        self._files = {}
        if ok:
            aggregations = self._scorer_for(ok[0][0].get("doc")).aggregation()
            with tempfile.TemporaryDirectory() as tmp, _lmms_io():
                for key in self.metric_names:
                    items = [copy.deepcopy(parsed[key]) for _, parsed in ok if key in parsed]
                    fn = aggregations.get(key.partition(",")[0])
                    value = _aggregate(fn, items, tmp) if fn is not None and items else None
                    if value is not None:  # None: e.g. an aggregation that only writes a submission file
                        out[key] = value
                files = (p for p in Path(tmp).rglob("*") if p.is_file())
                self._files = {p.relative_to(tmp).as_posix(): p.read_bytes() for p in files}
        if self.primary_metric not in out:
            out[self.primary_metric] = MetricValue(value=None, stderr=None, n=0)
        return out

    def finalize(self, records: list[SampleRecord], run_dir: Path) -> tuple[dict[str, str], list[str]]:
        """Files lmms-eval's aggregations wrote (submission files) under ``lmms_files/<task>/``, and notes."""
        artifacts: dict[str, str] = {}
        for rel, data in self._files.items():
            path = Path(run_dir) / "lmms_files" / self.lmms_name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            artifacts[rel] = path.relative_to(run_dir).as_posix()
        return artifacts, list(self.notes)


def _check_supported(name: str, cfg: Any) -> None:
    """UsageError for what the bridge cannot run faithfully."""
    problems = []
    if cfg.output_type != "generate_until":
        problems.append(f"output_type {cfg.output_type} (the bridge runs generate_until tasks)")
    if cfg.num_fewshot:
        problems.append(f"num_fewshot {cfg.num_fewshot} (zero-shot only)")
    if (cfg.repeats or 1) != 1:
        problems.append(f"repeats {cfg.repeats}")
    if not cfg.dataset_path:
        problems.append("no dataset_path")
    if not (cfg.test_split or cfg.validation_split):
        problems.append("no test_split or validation_split")
    if cfg.doc_to_text is None and cfg.doc_to_messages is None:
        problems.append("neither doc_to_text nor doc_to_messages")
    extra = sorted(set(cfg.dataset_kwargs or {}) - _DATASET_KWARGS)
    if extra:
        problems.append(f"dataset_kwargs {', '.join(extra)} (video or remote data)")
    if problems:
        raise UsageError(f"lmms-eval task {name} is not supported by the bridge: {'; '.join(problems)}; "
                         "run it with lmms-eval itself")


def lmms_task(name: str) -> LmmsTask:
    """The evalkit task ``lmms:<task>`` (reads the task's config; its data is read by ``load``)."""
    bare = name[len(PREFIX):] if name.startswith(PREFIX) else name
    config = task_config(bare)
    api = lmms_api()
    try:
        with _lmms_io():
            cfg = api.TaskConfig(**copy.deepcopy(config))
    except (TypeError, ValueError, AssertionError) as exc:
        raise UsageError(f"lmms-eval task {bare} has an invalid config: {exc}") from exc
    _check_supported(bare, cfg)
    generation, notes = generation_settings(cfg.generation_kwargs)
    from lmms_eval.api.registry import DEFAULT_METRIC_REGISTRY

    metrics = [str(m["metric"]) for m in cfg.metric_list or []] or list(DEFAULT_METRIC_REGISTRY["generate_until"])
    filters = [str(f["name"]) for f in cfg.filter_list or []] or ["none"]
    names = tuple(metric_key(m, f) for f in filters for m in metrics)
    return LmmsTask(
        name=evalkit_name(bare), kind=KIND, primary_metric=names[0], generation=generation, percent=False,
        description=f"lmms-eval {bare} ({cfg.dataset_path}, {cfg.test_split or cfg.validation_split})",
        lmms_name=bare, config=config, metric_names=names, notes=notes,
    )
