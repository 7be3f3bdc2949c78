"""Evaluation protocols: what a family is sent per task kind, and where that text comes from.

A protocol (``--protocol``) decides, per (family, task kind): the instruction text and its layout, the system
prompt, the option layout of multiple-choice questions, extra answer clean-up and generation limits.

- ``evalkit`` (the default): the task's own wording, the same for every chat family, and each fixed-format
  family's prompt format (BLIP-2's "Question: ... Short answer:", PaliGemma's "answer en ..."). One wording
  for every family keeps families comparable with each other and keeps the committed baselines valid.
- ``paper``: each family's own published evaluation code (sources in the family module and docs/protocols.md).
- ``lmms-eval``: what lmms-eval 0.7.3 sends for the task (its task yaml/utils) through its model wrapper for
  the family (system prompt), so that lmms-eval numbers can be reproduced.

An ``Entry`` whose ``source`` is empty has no official format: it is the ``evalkit`` text, said so in the docs.
Family modules declare ``protocols={"paper": {...}, "lmms-eval": {...}}``: task kind -> Entry, where a key
``"kind@model_type"`` applies to that config.json model_type only (e.g. Qwen2.5-VL's grounding prompt).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Callable

PROTOCOLS: dict[str, str] = {
    "evalkit": "the task's own wording for every chat family, each fixed-format family's own prompt format",
    "paper": "each family's own published evaluation code (docs/protocols.md names the file)",
    "lmms-eval": "what lmms-eval 0.7.3 sends: its task prompts and its model wrapper's system prompt",
}
DEFAULT_PROTOCOL = "evalkit"


def _letters(options: list[str]) -> str:
    return "\n".join(f"{chr(ord('A') + i)}. {o}" for i, o in enumerate(options))


def _paren(options: list[str]) -> str:
    return " ".join(f"({chr(ord('a') + i)}) {o}" for i, o in enumerate(options))


def _tab(options: list[str]) -> str:
    return " \t ".join(options)


# How ``{options}`` is written: "letters" = "A. X\nB. Y" (lmms-eval, InternVL's and LLaVA's MMBench scripts),
# "paren" = "(a) X (b) Y" (the MMVP repository's scripts/evaluate_mllm.py), "tab" = "X \t Y" (big_vision).
OPTION_LAYOUTS: dict[str, Callable[[list[str]], str]] = {"letters": _letters, "paren": _paren, "tab": _tab}


@dataclass(frozen=True)
class Entry:
    """One protocol's prompt for one (family, task kind)."""

    # Template over PromptFields ({prompt}, {question}, {expression}, {options}); None: the evalkit text.
    text: str | None = None
    system: str | None = None  # a system turn (chat families only)
    options: str = "letters"  # layout of {options} (OPTION_LAYOUTS)
    max_new_tokens: int | None = None  # None: the task's own limit
    clean: tuple[str, ...] = ()  # regular expressions removed from the output before the task parses it
    source: str = ""  # repository + file (or model card) the text comes from; "" = no official format

    def __post_init__(self) -> None:
        if self.options not in OPTION_LAYOUTS:
            raise ValueError(f"unknown option layout {self.options!r}; known: {', '.join(OPTION_LAYOUTS)}")

    def describe(self) -> dict[str, object]:
        return asdict(self)


GENERIC = Entry()  # the evalkit text: no system turn, task limits


def check_protocol(name: str) -> str:
    from evalkit.core.errors import UsageError

    if name not in PROTOCOLS:
        raise UsageError(f"--protocol {name!r}: unknown; choose one of: {', '.join(PROTOCOLS)} "
                         "(docs/protocols.md)")
    return name


def resolve(table: dict[str, dict[str, Entry]], protocol: str, kind: str | None,
            model_type: str | None) -> Entry:
    """The entry of ``protocol`` for ``kind`` (model_type-specific first); GENERIC where there is none."""
    if protocol == DEFAULT_PROTOCOL:
        return GENERIC
    entries = table.get(protocol, {})
    for key in (f"{kind}@{model_type}", str(kind), f"default@{model_type}", "default"):
        if key in entries:
            return entries[key]
    return GENERIC


def entries_hash(described: list[dict[str, object]]) -> str:
    """A short hash of rendered protocol entries (recorded in run.json, compared by compare/leaderboard)."""
    blob = json.dumps(described, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


# ---- shared entries -------------------------------------------------------------------------------------------

LMMS = "EvolvingLMMs-Lab/lmms-eval v0.7.3"
CHOICE_SUFFIX = "\nAnswer with the option's letter from the given choices directly."
SHORT_ANSWER = "\nAnswer the question using a single word or phrase."


def lmms_eval_chat(system: str | None = None, wrapper: str = "") -> dict[str, Entry]:
    """lmms-eval's task prompts (family-neutral) with its model wrapper's system prompt ``system``."""
    where = f"; system prompt: lmms_eval/models/simple/{wrapper}" if wrapper else ""
    return {
        "vqa": Entry("{question}" + SHORT_ANSWER, system, max_new_tokens=16,
                     source=f"{LMMS} lmms_eval/tasks/vqav2/vqav2.yaml, gqa/gqa.yaml, textvqa (ocr: false){where}"),
        "caption": Entry("Provide a one-sentence caption for the provided image.", system, max_new_tokens=64,
                         source=f"{LMMS} lmms_eval/tasks/coco_cap/utils.py coco_doc_to_text{where}"),
        "grounding": Entry(
            "Bounding box coordinates are specified in the format (top-left x, top-left y, bottom-right x, "
            "bottom-right y). All values are floating point numbers bounded between 0 and 1. Please provide the "
            "bounding box coordinate of the region this sentence describes: {expression}", system,
            source=f"{LMMS} lmms_eval/tasks/refcoco/utils_rec.py refcoco_bbox_rec_doc_to_text{where}"),
        "choice": Entry("{question}\n{options}" + CHOICE_SUFFIX, system, "letters", max_new_tokens=16,
                        source=f"{LMMS} lmms_eval/tasks/mmvp/utils.py mmvp_doc_to_text, mmvp/_default_template_yaml"
                               f"{where}"),
    }


# ---- docs/protocols.md's table, generated from the family records ------------------------------------------

DOC_KINDS = ("vqa", "caption", "grounding", "choice", "open")
NO_FORMAT = "no official format: the evalkit text"


def _cell(text: str | None) -> str:
    if text is None:
        return "—"
    shown = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("|", "\\|")
    return f"`{shown}`" if shown.strip() else "`''`"


def markdown_table() -> str:
    """One row per (protocol, family, task kind, model_types with the same entry): the exact text, the system
    prompt, option layout, token limit and source. docs/protocols.md holds this between its markers."""
    from evalkit.adapters import all_adapters

    lines = ["| protocol | family | model types | task kind | system prompt | text | options | max new tokens | source |",
             "|---|---|---|---|---|---|---|---|---|"]
    for protocol in (p for p in PROTOCOLS if p != DEFAULT_PROTOCOL):
        for adapter in all_adapters():
            if adapter.encoder or not adapter.backends or adapter.family == "openai":  # nothing to prompt
                continue
            for kind in DOC_KINDS:
                groups: dict[Entry, list[str]] = {}
                for model_type in adapter.model_types:
                    groups.setdefault(resolve(adapter.protocols, protocol, kind, model_type), []).append(model_type)
                for entry, types in groups.items():
                    scope = "all" if len(types) == len(adapter.model_types) else ", ".join(types)
                    generic = entry.text is None
                    lines.append("| " + " | ".join([
                        protocol, f"`{adapter.family}`", scope, kind, _cell(entry.system),
                        f"— ({NO_FORMAT})" if generic else _cell(entry.text),
                        entry.options if "{options}" in (entry.text or "") else "—",
                        str(entry.max_new_tokens or "task's"),
                        entry.source.replace("|", "\\|").replace("<", "&lt;") or NO_FORMAT,
                    ]) + " |")
    return "\n".join(lines) + "\n"
