"""docs/protocols.md's table is generated from the family records and must match them."""

from __future__ import annotations

from pathlib import Path

from evalkit.adapters import all_adapters
from evalkit.adapters.protocols import markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs"
BEGIN = "<!-- BEGIN GENERATED: evalkit.adapters.protocols.markdown_table -->\n"
END = "<!-- END GENERATED -->"


def test_protocols_table_is_up_to_date() -> None:
    text = (DOCS / "protocols.md").read_text(encoding="utf-8")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block == markdown_table(), "regenerate: python -c 'from evalkit.adapters.protocols import markdown_table'"


def test_models_doc_lists_every_family_and_why_one_is_not_runnable() -> None:
    text = (DOCS / "models.md").read_text(encoding="utf-8")
    for adapter in all_adapters():
        if adapter.family != "openai":
            assert f"`{adapter.family}`" in text, adapter.family
        if adapter.not_runnable:
            assert f"`{adapter.family}` is not runnable" in text


def test_models_doc_status_table_matches_the_family_records() -> None:
    """docs/models.md's status table: each family's model_types, and "yes" under hf/vllm exactly where the
    record lists that backend."""
    rows = [line for line in (DOCS / "models.md").read_text(encoding="utf-8").splitlines()
            if line.startswith("| `") and line.count("|") >= 6]
    for adapter in all_adapters():
        if adapter.family == "openai":
            continue
        row = next(r for r in rows if r.split("|")[1].strip().startswith(f"`{adapter.family}`")
                   or f"`{adapter.family}`" in r.split("|")[1])
        cells = [c.strip() for c in row.split("|")[1:-1]]
        assert all(mt in cells[1] for mt in adapter.model_types), (adapter.family, cells[1])
        assert cells[2].startswith("yes") == ("hf" in adapter.backends), (adapter.family, cells[2])
        assert cells[3].startswith("yes") == ("vllm" in adapter.backends), (adapter.family, cells[3])
