"""Rows for `evalkit list tasks|models` (imports no torch)."""

from __future__ import annotations

from typing import Any


def list_tasks() -> list[dict[str, Any]]:
    from evalkit.tasks import ALIASES, GROUPS, TASKS, get_task

    rows = []
    for name in TASKS.names():
        task = get_task(name)
        dataset = getattr(task, "dataset", None)
        rows.append({
            "name": name,
            "kind": task.kind,
            "primary_metric": task.primary_metric,
            "dataset": f"{dataset.hub_id}:{dataset.split}" if dataset is not None else "synthetic (built in)",
            "aliases": sorted(a for a, t in ALIASES.items() if t == name),
            "groups": sorted(g for g, members in GROUPS.items() if name in members),
        })
    return rows


def list_models() -> list[dict[str, Any]]:
    from evalkit.adapters import all_adapters
    from evalkit.runner.models import REFERENCE, reference_path

    rows: list[dict[str, Any]] = [{
        "name": REFERENCE, "family": "llava", "kind": "generative", "checkpoint": str(reference_path()),
        "checkpoints": [], "box_format": "norm_xyxy", "backends": ["hf", "vllm"],
        "description": "bundled tiny LLaVA trained on the synthetic shapes suite",
    }]
    for a in all_adapters():
        default_type = a.model_type_of(a.default_checkpoint)  # the alias behaves like its default checkpoint
        rows.append({
            "name": a.family, "family": a.family, "kind": "encoder" if a.encoder else "generative",
            "checkpoint": a.default_checkpoint,
            "checkpoints": sorted(a.checkpoints), "box_format": "" if a.encoder else a.box_format_for(default_type),
            "backends": list(a.backends),
            "description": f"not runnable: {a.not_runnable}" if a.not_runnable else "",
        })
    return rows
