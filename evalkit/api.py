"""The Python API: ``evalkit.evaluate``, the code path of ``evalkit run`` (RunOptions + Runner) without a shell.

    import evalkit

    result = evalkit.evaluate(model="reference", tasks=["shapes_vqa"], limit=8, output="results")
    result.scores            # {"shapes_vqa": 100.0}: each task's primary metric
    result.run_dir           # the run folder (run.json, samples/<task>.jsonl), as `evalkit run` writes it
    result.tasks["shapes_vqa"].metrics   # the rest of run.json, typed (``result`` is a RunRecord)

In a training loop, pass the model object itself (a transformers ``PreTrainedModel``) and its processor: the
current weights are evaluated where they are (same device and dtype), nothing is saved or reloaded, and the
model's train/eval mode, the tokenizer's padding side, the RNG state and the SIGTERM handler are restored after::

    result = evalkit.evaluate(model=model, processor=processor, tasks="shapes", limit=32, progress=False)

Keyword options are the fields of ``evalkit.runner.options.RunOptions`` (the flags of ``evalkit run``):
``backend``, ``batch_size``, ``limit``, ``data_dir``, ``output``, ``resume``, ``seed``, ``device``, ``dtype``,
``revision``, ``backend_args``/``model_args``/``gen_kwargs`` (a dict or "k=v,..."), ``max_error_rate``,
``trust_remote_code``, ``progress``. A task whose error rate exceeds ``max_error_rate`` does not raise (the CLI
exits 1): read ``n_errors`` in the result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from evalkit.core.errors import UsageError
from evalkit.core.results import RunRecord

_NOT_OPTIONS = {"model", "tasks", "preloaded"}  # given as evaluate()'s own arguments


class Evaluation(RunRecord):
    """What ``evaluate`` returns: the run's RunRecord (run.json), plus where it was written."""

    _run_dir: Path = PrivateAttr(default=Path("."))

    @property
    def run_dir(self) -> Path:
        return self._run_dir

    @property
    def scores(self) -> dict[str, float | None]:
        """Each task's primary metric (None when not computable)."""
        out: dict[str, float | None] = {}
        for name, task in self.tasks.items():
            metric = task.metrics.get(task.primary_metric)
            out[name] = metric.value if metric else None
        return out


def evaluate(model: Any, tasks: str | Sequence[str], *, processor: Any = None, name: str | None = None,
             **options: Any) -> Evaluation:
    """Evaluate ``model`` on ``tasks`` and return the run record (with ``.run_dir`` and ``.scores``).

    ``model``: what ``--model`` takes (a family, ``"reference"``, a folder, a hub id), or a transformers model
    object in memory (then ``processor`` is its processor; ``name`` labels the run, default the config's
    ``_name_or_path``). ``tasks``: names, groups, aliases or patterns, as a list or a comma string.
    """
    from evalkit.runner import Runner
    from evalkit.runner.options import RunOptions
    from evalkit.tasks import expand_tasks

    values = _options(options)
    task_spec = tasks if isinstance(tasks, str) else ",".join(tasks)
    if isinstance(model, (str, Path)):
        if processor is not None or name is not None:
            raise UsageError("processor= and name= go with a model object in memory; a model named by string "
                             "loads its own and is named by it")
        opts = RunOptions(model=str(model), tasks=expand_tasks(task_spec), **values)
        with _sigterm_kept():
            record, run_dir = Runner(opts).run()
        return _evaluation(record, run_dir)
    if values.get("dtype", "auto") != "auto":
        raise UsageError(f"dtype={values['dtype']!r}: a model in memory runs in its own dtype; cast it first")
    processor = processor if processor is not None else _processor_of(model)
    label = name or Path(str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")).name \
        or type(model).__name__
    opts = RunOptions(model=label, tasks=expand_tasks(task_spec), preloaded=(model, processor), **values)
    with _sigterm_kept(), _restored(model, processor):
        record, run_dir = Runner(opts).run()
    return _evaluation(record, run_dir)


def _evaluation(record: RunRecord, run_dir: Path) -> Evaluation:
    out = Evaluation.model_validate(record.model_dump())
    out._run_dir = Path(run_dir)
    return out


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword options checked against RunOptions' fields, given the types the CLI would give them."""
    from evalkit.commands.options import key_values
    from evalkit.runner.options import RunOptions

    known = {f.name: f for f in fields(RunOptions) if f.name not in _NOT_OPTIONS}
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"evaluate(): unknown option(s) {', '.join(unknown)}; options: {', '.join(known)}")
    out: dict[str, Any] = {}
    for key, value in options.items():
        kind = known[key].metadata["kind"]
        if kind == "path" and value is not None:
            value = Path(value)
        elif kind == "key_values" and isinstance(value, str):
            try:
                value = key_values(value)
            except Exception as exc:  # argparse.ArgumentTypeError: the same message the CLI gives
                raise UsageError(f"evaluate({key}={value!r}): {exc}") from None
        elif kind == "key_values" and value is None:
            value = {}
        out[key] = value
    return out


def _processor_of(model: Any) -> Any:
    """The processor saved next to the model's weights, when the model was loaded from a folder."""
    source = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    if not source or not Path(source).is_dir():
        raise UsageError("evaluate(model=<object>): pass processor= (the model's AutoProcessor); "
                         "it cannot be found from the model alone")
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(source)


@contextmanager
def _sigterm_kept() -> Iterator[None]:
    """The runner turns SIGTERM into an interrupt (a scheduler stopping a CLI job); a caller's handler comes back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


@contextmanager
def _restored(model: Any, processor: Any) -> Iterator[None]:
    """Leave the caller's model as it was: train/eval mode, device (``device=`` may move it), tokenizer padding side
    and pad token, and the torch RNG (the backend seeds it)."""
    import torch

    tokenizer = getattr(processor, "tokenizer", processor)
    saved = (getattr(model, "training", None), getattr(tokenizer, "padding_side", None),
             getattr(tokenizer, "pad_token", None))
    device = getattr(model, "device", None)
    cuda = [device.index or 0] if getattr(device, "type", None) == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        if saved[0] is not None:
            model.train(saved[0])
        if device is not None and getattr(model, "device", None) != device:
            model.to(device)
        if saved[1] is not None:
            tokenizer.padding_side = saved[1]
        if saved[2] is None and getattr(tokenizer, "pad_token", None) is not None:
            tokenizer.pad_token = None
