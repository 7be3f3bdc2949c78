"""Shared fixtures: a tiny real-architecture LLaVA and hub-schema datasets, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.fixture(scope="session")
def tiny_llava(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from evalkit.testing.tiny_llava import make_tiny_llava

    folder = tmp_path_factory.mktemp("tiny-llava")
    make_tiny_llava(folder, seed=0)
    return folder


@pytest.fixture(scope="session")
def vqav2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A --data-dir holding lmms-lab/VQAv2 (validation with 2 corrupt images, and testdev)."""
    from evalkit.testing.hub_fixtures import write_fixture

    root = tmp_path_factory.mktemp("data")
    write_fixture("lmms-lab/VQAv2", root, n=24, seed=0, corrupt=2)
    return root
