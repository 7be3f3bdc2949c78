"""Benchmarks. Each entry is a factory "module:function" returning a Task, imported on first use.

Names: benchmark first, split last (``vqav2_val``). A bare benchmark name means its default split
(ALIASES); a group name expands to its members (GROUPS).
"""

from __future__ import annotations

from evalkit.errors import UsageError
from evalkit.registry import Registry

from .base import Task, TaskContext

TASKS: Registry = Registry("task")
TASKS.register("vqav2_val", "evalkit.tasks.vqa:vqav2_val")
TASKS.register("vqav2_testdev", "evalkit.tasks.vqa:vqav2_testdev")
TASKS.register("shapes_vqa", "evalkit.tasks.shapes:shapes_vqa")
TASKS.register("shapes_caption", "evalkit.tasks.shapes:shapes_caption")
TASKS.register("shapes_grounding", "evalkit.tasks.shapes:shapes_grounding")
TASKS.register("shapes_pairs", "evalkit.tasks.shapes:shapes_pairs")

ALIASES: dict[str, str] = {"vqav2": "vqav2_val"}
GROUPS: dict[str, tuple[str, ...]] = {
    "shapes": ("shapes_vqa", "shapes_caption", "shapes_grounding", "shapes_pairs"),
    "vqa": ("vqav2_val",),
}


def expand_tasks(spec: str) -> list[str]:
    """'vqav2,shapes' -> ['vqav2_val', 'shapes_vqa', ...]; order kept, duplicates dropped."""
    if not spec or not spec.strip():
        raise UsageError("--tasks is empty; give a comma list such as --tasks vqav2,shapes (see `evalkit list tasks`)")
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise UsageError(f"--tasks {spec!r} has an empty item; write names separated by single commas")
        if part in GROUPS:
            members = GROUPS[part]
        elif part in ALIASES:
            members = (ALIASES[part],)
        else:
            members = (part,)
        for name in members:
            if name not in TASKS:
                TASKS.meta(name)  # raises UsageError with "did you mean"
            if name not in names:
                names.append(name)
    return names


def get_task(name: str) -> Task:
    return TASKS.get(name)()


__all__ = ["TASKS", "ALIASES", "GROUPS", "Task", "TaskContext", "expand_tasks", "get_task"]
