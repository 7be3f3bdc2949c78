from __future__ import annotations

import pytest

from evalkit.core.errors import UsageError
from evalkit.core.registry import Registry
from evalkit.tasks import expand_tasks


def test_lazy_import_and_did_you_mean() -> None:
    reg: Registry = Registry("task")
    reg.register("vqav2_val", "json:dumps")
    assert reg.get("vqav2_val").__name__ == "dumps"
    with pytest.raises(UsageError, match="did you mean 'vqav2_val'"):
        reg.get("vqav2_vall")
    with pytest.raises(UsageError, match="evalkit list tasks"):
        reg.get("zzz")


def test_conflicting_registration_is_refused() -> None:
    reg: Registry = Registry("model")
    reg.register("a", "x:y")
    reg.register("a", "x:y")  # idempotent
    with pytest.raises(ValueError):
        reg.register("a", "x:z")


def test_expand_tasks_aliases_groups_order_and_duplicates() -> None:
    assert expand_tasks("vqav2") == ["vqav2_val"]
    assert expand_tasks(" vqav2_testdev , vqav2 ") == ["vqav2_testdev", "vqav2_val"]
    assert expand_tasks("shapes,shapes_vqa") == ["shapes_vqa", "shapes_caption", "shapes_grounding", "shapes_pairs"]
    with pytest.raises(UsageError):
        expand_tasks("vqav2,")
