"""Where a dataset's files are: the hub repository mirrored under --data-dir, the Hugging Face caches, and an
offline-aware download of only the split's files. ``evalkit.core.data`` reads what these find."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from evalkit.core.errors import UsageError
from evalkit.core.hf_cache import NotCached, datasets_cache_dir, hub_cache_dir

_FIX = "pass --data-dir pointing at a mirror of the hub repo"


@dataclass(frozen=True)
class DatasetSpec:
    """Which data a task reads: a hub dataset split, optionally a config and a pinned commit."""

    hub_id: str  # "lmms-lab/VQAv2"
    split: str  # "validation"
    revision: str | None = None  # pinned hub commit sha where known
    config: str | None = None  # hub config (subset), e.g. GQA "testdev_balanced_instructions"
    # Glob of table files relative to the repo root, for repos that are not parquet
    # (MMVP: "Questions.csv"). When set, the split name is only a label.
    data_files: str | None = None

    @property
    def org_name(self) -> tuple[str, str]:
        org, sep, name = self.hub_id.partition("/")
        if not sep or not org or not name or "/" in name:
            raise UsageError(f"dataset id {self.hub_id!r} is not of the form 'org/name'")
        return org, name


def _mirror_folder(spec: DatasetSpec, data_dir: Path) -> tuple[Path, str | None]:
    org, name = spec.org_name
    folder = data_dir / org / name
    if folder.is_dir():
        return folder, None
    cache = data_dir / f"datasets--{org}--{name}"
    if (cache / "snapshots").is_dir():
        sha = spec.revision
        if sha is None and (cache / "refs" / "main").is_file():
            sha = (cache / "refs" / "main").read_text().strip()
        if sha and (cache / "snapshots" / sha).is_dir():
            return cache / "snapshots" / sha, sha
        raise UsageError(
            f"the hub cache {cache} has no snapshot {sha or '(no refs/main)'} of {spec.hub_id}; "
            f"download that revision or mirror the repo at {folder}"
        )
    raise UsageError(f"no copy of {spec.hub_id} under {data_dir} (expected {folder}); {_FIX}")


def _split_re(split: str) -> re.Pattern[str]:
    # "test-00000-of-00002.parquet" or "test.parquet"; never "testA-..." or "testdev-...".
    return re.compile(rf"^{re.escape(split)}(-.*)?\.parquet$")


def _find_files(spec: DatasetSpec, root: Path) -> list[Path]:
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; {_FIX}")
    if spec.data_files:
        files = sorted(p for p in root.glob(spec.data_files) if p.is_file())
        if not files:
            raise UsageError(
                f"no file matching {spec.data_files!r} under {root} for {spec.hub_id}; {_FIX}"
            )
        return files
    if (root / "dataset_dict.json").is_file():
        return _saved_dict_files(spec, root)
    if (root / "state.json").is_file():
        return _saved_split_files(spec, root)
    return _parquet_files(spec, root)


def _parquet_bases(spec: DatasetSpec, root: Path) -> list[Path]:
    if spec.config and spec.config != "default":
        bases = [root / spec.config, root / "data" / spec.config]
        if not any(b.is_dir() for b in bases):
            configs = sorted(
                d.name for d in root.iterdir()
                if d.is_dir() and not d.name.startswith(".") and any(d.rglob("*.parquet"))
            )
            raise UsageError(
                f"no config {spec.config!r} under {root} (found: {', '.join(configs) or 'none'}); "
                f"{_FIX}"
            )
        return bases
    return [root / "data", root, root / "default"]


def _parquet_files(spec: DatasetSpec, root: Path) -> list[Path]:
    pattern = _split_re(spec.split)
    found: set[str] = set()
    bases = _parquet_bases(spec, root)
    for base in bases:
        if not base.is_dir():
            continue
        shards = sorted(p for p in base.iterdir() if p.is_file() and pattern.match(p.name))
        nested = base / spec.split
        if nested.is_dir():
            shards += sorted(nested.glob("*.parquet"))
        if shards:
            return shards
        for p in base.iterdir():
            if p.is_file() and p.suffix == ".parquet":
                found.add(p.name.split("-")[0].removesuffix(".parquet"))
            elif p.is_dir() and p not in bases and any(p.glob("*.parquet")):
                found.add(p.name)
    where = root / spec.config if spec.config and spec.config != "default" else root
    raise UsageError(
        f"no {spec.split!r} split under {where} (found: {', '.join(sorted(found)) or 'no parquet files'}); "
        f"{_FIX}"
    )


def _saved_dict_files(spec: DatasetSpec, root: Path) -> list[Path]:
    import json

    try:
        splits = json.loads((root / "dataset_dict.json").read_text())["splits"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{root / 'dataset_dict.json'} is malformed ({exc}); re-save it") from exc
    if spec.split not in splits or not (root / spec.split).is_dir():
        raise UsageError(
            f"no {spec.split!r} split under {root} (found: {', '.join(splits)}); {_FIX}"
        )
    return _saved_split_files(spec, root / spec.split)


def _saved_split_files(spec: DatasetSpec, folder: Path) -> list[Path]:
    import json

    try:
        state = json.loads((folder / "state.json").read_text())
        names = [entry["filename"] for entry in state["_data_files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{folder / 'state.json'} is malformed ({exc}); re-save it") from exc
    saved_split = state.get("_split")
    if saved_split and saved_split != spec.split:
        raise UsageError(
            f"{folder} holds split {saved_split!r}, not {spec.split!r}; pass the folder of the "
            f"{spec.split!r} split"
        )
    files = [folder / n for n in names]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise UsageError(f"{folder} lacks {', '.join(missing)} named in state.json; re-save it")
    return files


def _hub_patterns(spec: DatasetSpec) -> list[str] | None:
    if spec.data_files:
        return None  # small non-parquet repos (MMVP): the tables and their image folders
    s = spec.split
    if spec.config and spec.config != "default":
        c = spec.config
        return [f"{c}/{s}-*.parquet", f"{c}/{s}.parquet", f"{c}/{s}/*.parquet",
                f"data/{c}/{s}-*.parquet", f"data/{c}/{s}/*.parquet"]
    return [f"data/{s}-*.parquet", f"data/{s}.parquet", f"data/{s}/*.parquet",
            f"{s}-*.parquet", f"{s}.parquet", f"default/{s}/*.parquet"]


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached now (HF_HUB_OFFLINE, no DNS, no route), else None.

    One DNS lookup and one TCP connect with a 3 s timeout: an offline machine learns it at once instead of
    through huggingface_hub's retries (about 20 warnings over 23 s).
    """
    import socket
    from urllib.parse import urlsplit

    try:
        from huggingface_hub import constants
    except ImportError:
        return "huggingface_hub is not installed"
    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    parts = urlsplit(constants.ENDPOINT)
    host, port = parts.hostname or "huggingface.co", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{host} cannot be reached ({exc.strerror or type(exc).__name__})"


def _download(spec: DatasetSpec) -> tuple[Path, str]:
    """Fetch only this split's files from the hub (or its local cache when offline)."""
    spec.org_name  # validates the id before any network use
    offline_fix = (
        f"pass --data-dir DIR with a copy at DIR/{spec.hub_id} (or a per-task path), "
        "or run once where the hub is reachable"
    )
    try:
        import huggingface_hub
        from huggingface_hub import errors as hub_errors
    except ImportError as exc:
        raise UsageError(f"huggingface_hub is not installed, so {spec.hub_id} cannot be "
                         f"downloaded; pip install huggingface_hub, or {offline_fix}") from exc
    unreachable = hub_unreachable()
    local_only = unreachable is not None  # offline: the local hub cache answers at once, or fails
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id=spec.hub_id,
            repo_type="dataset",
            revision=spec.revision,
            allow_patterns=_hub_patterns(spec),
            local_files_only=local_only,
        )
    except hub_errors.LocalEntryNotFoundError as exc:
        raise NotCached(
            f"{spec.hub_id} is not in the hub cache ({hub_cache_dir()}) nor prepared in the datasets cache "
            f"({datasets_cache_dir()}), and the hub cannot be reached ({unreachable or 'offline'}); "
            f"{offline_fix}"
        ) from exc
    except hub_errors.RevisionNotFoundError as exc:
        raise UsageError(
            f"revision {spec.revision!r} of {spec.hub_id} does not exist on the hub; "
            "fix the pinned revision"
        ) from exc
    except hub_errors.RepositoryNotFoundError as exc:  # also GatedRepoError
        raise UsageError(
            f"dataset {spec.hub_id} is not on the hub or needs a login (huggingface-cli login); "
            f"{offline_fix}"
        ) from exc
    except (getattr(hub_errors, "HTTPError", hub_errors.HfHubHTTPError), OSError) as exc:
        # HTTPError (huggingface_hub >= 1): every HTTP/transport failure, connection errors too.
        raise UsageError(
            f"cannot download {spec.hub_id}: {_one_line(exc)}; {offline_fix}"
        ) from exc
    root = Path(folder)
    # A cache snapshot folder is named after the commit it holds.
    return root, root.name if root.parent.name == "snapshots" else (spec.revision or "main")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
