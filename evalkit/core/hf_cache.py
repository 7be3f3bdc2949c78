"""Copies of hub datasets that Hugging Face tools already left on this machine, found where their environment
variables say (read when a dataset is opened, not at import).

- The hub cache: ``HF_HUB_CACHE``, else ``$HF_HOME/hub`` (default ``~/.cache/huggingface/hub``). huggingface_hub's
  ``snapshot_download`` reads and fills it (evalkit.core.data); with ``HF_HUB_OFFLINE=1`` it is only read.
- The datasets cache: ``HF_DATASETS_CACHE``, else ``$HF_HOME/datasets``. What ``datasets.load_dataset`` prepared
  (lmms-eval loads its tasks this way), as Arrow files:
  ``<org>___<name>/<config>/<version>/<hash>/<name>-<split>[-NNNNN-of-NNNNN].arrow``. evalkit reads them when the
  hub cache has no copy and the hub cannot be reached.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from evalkit.core.errors import UsageError


class NotCached(UsageError):
    """The hub cannot be reached and its cache has no copy of a dataset (the datasets cache is tried next)."""


def hf_home() -> Path:
    return Path(os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
                ).expanduser()


def hub_cache_dir() -> Path:
    """The hub cache huggingface_hub uses (its constants, fixed when it was imported)."""
    try:
        from huggingface_hub import constants

        return Path(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - a core dependency
        return Path(os.environ.get("HF_HUB_CACHE") or hf_home() / "hub").expanduser()


def datasets_cache_dir() -> Path:
    return Path(os.environ.get("HF_DATASETS_CACHE") or hf_home() / "datasets").expanduser()


def _norm(name: str) -> str:
    """datasets names its folders in snake case (VQAv2 -> vq_av2): compare without case, '_' and '-'."""
    return re.sub(r"[_\-]", "", name).lower()


def prepared_split(hub_id: str, config: str | None, split: str) -> tuple[Path, list[Path]] | None:
    """The newest prepared copy of ``hub_id``'s ``split`` in the datasets cache: (its folder, its Arrow shards)."""
    org, _, name = hub_id.partition("/")
    root = datasets_cache_dir()
    if not root.is_dir():
        return None
    shard = re.compile(rf".+-{re.escape(split)}(-\d{{5}}-of-\d{{5}})?\.arrow")
    config = config or "default"
    found: list[tuple[float, Path, list[Path]]] = []
    for ds in root.glob(f"{org}___*"):
        if _norm(ds.name[len(org) + 3:]) != _norm(name):
            continue
        for cfg in ds.iterdir():  # "<config>", or "<config>-<hash>" (datasets 2.14-2.15)
            if cfg.name != config and not cfg.name.startswith(config + "-"):
                continue
            for folder in cfg.glob("*/*"):  # <version>/<hash>
                files = sorted(p for p in folder.glob("*.arrow") if shard.fullmatch(p.name))
                if files:
                    found.append((folder.stat().st_mtime, folder, files))
    if not found:
        return None
    _, folder, files = max(found, key=lambda item: item[0])
    return folder, files
