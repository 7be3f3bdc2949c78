"""Benchmarks. Each entry is a factory "module:function" returning a Task, imported on first use.

Names: benchmark first, split last (``vqav2_val``). A bare benchmark name means its default split
(ALIASES); a group name expands to its members (GROUPS).
"""

from __future__ import annotations

import re

from evalkit.core.errors import UsageError
from evalkit.core.registry import Registry, load_attr

from .base import Task, TaskContext

TASKS: Registry = Registry("task", entry_point_group="evalkit.tasks")
# Task names with a prefix come from another tool, resolved by plug-in functions named here as strings (no import
# of the layer above): prefix -> ("module:expand", "module:make_task").
PREFIXED_SOURCES: dict[str, tuple[str, str]] = {
    "lmms:": ("evalkit.interop.lmms_bridge:expand", "evalkit.interop.lmms_bridge:lmms_task"),  # installed lmms-eval
}


def _prefix_of(name: str) -> str | None:
    return next((p for p in PREFIXED_SOURCES if name.startswith(p)), None)
TASKS.register("vqav2_val", "evalkit.tasks.vqa:vqav2_val")
TASKS.register("vqav2_testdev", "evalkit.tasks.vqa:vqav2_testdev")
TASKS.register("shapes_vqa", "evalkit.tasks.shapes:shapes_vqa")
TASKS.register("shapes_caption", "evalkit.tasks.shapes:shapes_caption")
TASKS.register("shapes_grounding", "evalkit.tasks.shapes:shapes_grounding")
TASKS.register("shapes_pairs", "evalkit.tasks.shapes:shapes_pairs")
for _name in ("okvqa_val", "textvqa_val", "gqa_testdev"):
    TASKS.register(_name, f"evalkit.tasks.vqa:{_name}")
for _name in ("coco_karpathy_test", "nocaps_val", "flickr30k_test"):
    TASKS.register(_name, f"evalkit.tasks.captioning:{_name}")
_REFCOCO = ("refcoco_val", "refcoco_testA", "refcoco_testB", "refcoco+_val", "refcoco+_testA", "refcoco+_testB",
            "refcocog_val", "refcocog_test")
for _name in _REFCOCO:  # "+" cannot be in a function name: refcoco+_val -> refcoco_plus_val
    TASKS.register(_name, f"evalkit.tasks.refcoco:{_name.replace('+', '_plus')}")
TASKS.register("mmvp", "evalkit.tasks.mmvp:mmvp")
TASKS.register("mmvp_original", "evalkit.tasks.mmvp:mmvp_original")
TASKS.register("mmvp_vlm", "evalkit.tasks.mmvp_vlm:mmvp_vlm")  # image-text encoders (clip, siglip)
TASKS.register("owleval", "evalkit.tasks.owleval:owleval")

ALIASES: dict[str, str] = {
    "vqav2": "vqav2_val",
    "okvqa": "okvqa_val",
    "textvqa": "textvqa_val",
    "gqa": "gqa_testdev",
    "coco_karpathy": "coco_karpathy_test",
    "nocaps": "nocaps_val",
    "flickr30k": "flickr30k_test",
}
# A benchmark whose papers report several splits is a group of them (refcoco: val, testA, testB).
GROUPS: dict[str, tuple[str, ...]] = {
    "shapes": ("shapes_vqa", "shapes_caption", "shapes_grounding", "shapes_pairs"),
    "vqa": ("vqav2_val", "okvqa_val", "textvqa_val", "gqa_testdev"),
    "captioning": ("coco_karpathy_test", "nocaps_val", "flickr30k_test"),
    "grounding": _REFCOCO,
    "refcoco": _REFCOCO[0:3],
    "refcoco+": _REFCOCO[3:6],
    "refcocog": _REFCOCO[6:8],
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
        prefix = _prefix_of(part)
        if prefix:  # e.g. an installed lmms-eval task, group or tag
            members = tuple(load_attr(PREFIXED_SOURCES[prefix][0])(part))
        elif any(ch in part for ch in "*?["):  # a pattern: --tasks 'refcoco*'
            members = _matching(part)
        elif part in GROUPS:
            members = GROUPS[part]
        elif part in ALIASES:
            members = (ALIASES[part],)
        else:
            members = (part,)
        for name in members:
            if name not in TASKS and not _prefix_of(name):
                TASKS.meta(name)  # raises UsageError with "did you mean"
            if name not in names:
                names.append(name)
    return names


def _matching(pattern: str) -> tuple[str, ...]:
    """The tasks a shell-style pattern names: fnmatch (case-insensitive) over task names, groups and aliases, each
    group or alias matched standing for its tasks. Nothing matched: a UsageError listing the near names."""
    import difflib
    from fnmatch import fnmatch

    names = TASKS.names()
    out: list[str] = []
    for name in names + sorted(GROUPS) + sorted(ALIASES):
        if fnmatch(name.lower(), pattern.lower()):
            members = GROUPS.get(name) or ((ALIASES[name],) if name in ALIASES else (name,))
            out += [m for m in members if m not in out]
    if out:
        return tuple(out)
    every = names + sorted(GROUPS) + sorted(ALIASES)
    stem = max((chunk for chunk in re.split(r"[*?\[\]]+", pattern.lower()) if chunk), key=len, default="")
    near = [n for n in every if stem[:3] and stem[:3] in n.lower()]
    near += [n for n in difflib.get_close_matches(stem, every, n=5, cutoff=0.5) if n not in near]
    hint = f"; near: {', '.join(sorted(near, key=len)[:8])}" if near else ""
    raise UsageError(f"--tasks {pattern!r} matches no task, group or alias{hint} (see `evalkit list tasks`)")


def get_task(name: str) -> Task:
    prefix = _prefix_of(name)
    if prefix:
        return load_attr(PREFIXED_SOURCES[prefix][1])(name)
    return TASKS.get(name)()


__all__ = ["TASKS", "ALIASES", "GROUPS", "Task", "TaskContext", "expand_tasks", "get_task"]
