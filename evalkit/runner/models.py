"""Turning what a user typed after ``--model`` into a ``ModelSpec``.

    reference                 -> the bundled checkpoint (evalkit/reference_model), family llava, recorded in
                                 run.json as "evalkit:reference_model" plus its weights' fingerprint, so a run
                                 (and the committed baseline) reads the same on every machine
    llava                     -> the family's default checkpoint (a hub id)
    llava-1.5-13b             -> a named checkpoint of a family (a hub id)
    ./ckpt/step-5000          -> a local folder; family detected from its config.json
    org/name                  -> a hub id; family from the known checkpoints, else from its config.json
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from evalkit.core.errors import UsageError
from evalkit.core.types import ModelSpec

REFERENCE = "reference"
REFERENCE_CHECKPOINT = "evalkit:reference_model"  # run.json's checkpoint of the bundled model: no machine's path


def reference_path() -> Path:
    from evalkit.reference_model import PATH

    return PATH


def _read_config(folder: Path) -> dict:
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise UsageError(f"{folder} has no config.json; pass a folder saved with save_pretrained")
    try:
        return json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{cfg} is not valid JSON: {exc}") from exc


def detect_family(config: dict, where: str) -> str:
    """Family from config.json's model_type (then architectures)."""
    from evalkit.adapters import ADAPTERS, all_adapters

    model_type = str(config.get("model_type", ""))
    for adapter in all_adapters():
        if model_type in adapter.model_types:
            return adapter.family
    archs = " ".join(config.get("architectures") or [])
    for adapter in all_adapters():
        if any(mt and mt.replace("_", "") in archs.lower() for mt in adapter.model_types):
            return adapter.family
    raise UsageError(
        f"cannot tell the model family of {where} (model_type {model_type!r}); "
        f"supported families: {', '.join(ADAPTERS.names())}"
    )


def resolve_model(name: str, revision: str | None = None) -> ModelSpec:
    from evalkit.adapters import ADAPTERS, all_adapters

    if not name or not name.strip():
        raise UsageError("--model is empty; give a family (llava), a local folder or a hub id")
    name = name.strip()
    if name == REFERENCE:
        path = reference_path()
        if not (path / "config.json").is_file():
            raise UsageError(f"the bundled reference model is missing at {path}; run `make reference-model`")
        return ModelSpec(REFERENCE, "llava", REFERENCE_CHECKPOINT, str(path), model_type="llava")
    family, sep, served = name.partition(":")
    if sep and family == "openai":  # a served model: "openai:<the name the server knows it by>"
        if not served.strip():
            raise UsageError(f"--model {name!r}: name the served model after 'openai:' (e.g. openai:gpt-4o)")
        return ModelSpec(name, "openai", served.strip(), served.strip(), revision)
    # Family aliases and named checkpoints carry their config.json model_type, as a local copy would (box format
    # and protocol entries depend on it: Qwen2.5-VL's pixel boxes, LLaVA-NeXT's frame).
    if name in ADAPTERS:
        adapter = ADAPTERS.get(name)
        hub_id = adapter.default_checkpoint
        return ModelSpec(name, adapter.family, hub_id, hub_id, revision, adapter.model_type_of(hub_id))
    for adapter in all_adapters():
        if name in adapter.checkpoints:
            ckpt = adapter.checkpoints[name]
            return ModelSpec(name, adapter.family, ckpt.hub_id, ckpt.hub_id, revision, ckpt.model_type)
    path = Path(os.path.expanduser(name))
    if path.is_dir():
        config = _read_config(path)
        family = detect_family(config, str(path))
        return ModelSpec(name, family, str(path.resolve()), str(path.resolve()), revision, config.get("model_type"))
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") != 1 or path.exists()
    if looks_like_path:
        raise UsageError(
            f"--model {name!r}: no such folder, family or checkpoint; "
            f"families: {', '.join(ADAPTERS.names())} (see `evalkit list models`)"
        )
    for adapter in all_adapters():
        if adapter.model_type_of(name) is not None or name == adapter.default_checkpoint:
            return ModelSpec(name, adapter.family, name, name, revision, adapter.model_type_of(name))
    return _resolve_hub_id(name, revision)


def _resolve_hub_id(hub_id: str, revision: str | None) -> ModelSpec:
    """An unknown hub id: fetch its config.json (needs the hub) to detect the family."""
    from evalkit.core.data import hub_unreachable

    try:
        from huggingface_hub import hf_hub_download

        try:  # the local hub cache first: no network needed when the model was downloaded before
            cfg_path = hf_hub_download(hub_id, "config.json", revision=revision, local_files_only=True)
        except Exception:
            offline = hub_unreachable()  # fail at once offline, not after the hub client's retries
            if offline is not None:
                raise UsageError(f"--model {hub_id!r} is not in the local hub cache and the hub cannot be "
                                 f"reached ({offline}); download it and pass the local folder instead") from None
            cfg_path = hf_hub_download(hub_id, "config.json", revision=revision)
    except UsageError:
        raise
    except Exception as exc:  # not found, gated: all end the same way for the user
        raise UsageError(
            f"--model {hub_id!r}: cannot read its config.json from the hub ({type(exc).__name__}); "
            "download it and pass the local folder instead"
        ) from exc
    config = json.loads(Path(cfg_path).read_text(encoding="utf-8"))
    family = detect_family(config, hub_id)
    return ModelSpec(hub_id, family, hub_id, hub_id, revision, config.get("model_type"))


def preloaded_spec(name: str, model: Any) -> ModelSpec:
    """The spec of a transformers model object already in memory (``evalkit.evaluate(model=<PreTrainedModel>)``):
    family from its config's model_type, fingerprint the hash of its current weights (so a training loop's
    step-N weights are told apart, and --resume continues only the same weights)."""
    config = getattr(model, "config", None)
    if config is None or not hasattr(config, "to_dict"):
        raise UsageError(f"model {type(model).__name__} has no transformers config; pass a PreTrainedModel, "
                         "or a family, folder or hub id as a string")
    cfg = config.to_dict()
    family = detect_family(cfg, f"the {type(model).__name__} object")
    source = str(getattr(config, "_name_or_path", "") or type(model).__name__)
    return ModelSpec(name, family, f"in-memory:{source}", "", model_type=cfg.get("model_type"),
                     weights_digest=weights_digest(model))


def weights_digest(model: Any) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes) in name order; the same weights give the same
    digest wherever they live (CPU or GPU)."""
    import torch

    h = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1).contiguous().cpu()
        h.update(f"{key}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        h.update(flat.view(torch.uint8).numpy())
    return h.hexdigest()[:16]
