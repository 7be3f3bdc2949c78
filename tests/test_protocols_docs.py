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
