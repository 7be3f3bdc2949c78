"""The Makefile's Java handling: `make install` adds a headless JRE where it can (else one line), and `make demo`
leaves the captioning task out, saying so, where no Java is on PATH (instead of failing on it)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")


def dry_run(target: str, path: str) -> str:
    out = subprocess.run([MAKE, "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PATH": path})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_demo_without_java_leaves_out_captioning_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "make").symlink_to(MAKE)  # a PATH with make and no java
    out = dry_run("demo", str(tmp_path))
    run = next(line for line in out.splitlines() if "evalkit run" in line)
    assert "--tasks shapes_vqa,shapes_grounding,shapes_pairs " in run
    assert "no java on PATH: the demo leaves out shapes_caption" in out


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java on PATH")
def test_demo_with_java_runs_every_shapes_task() -> None:
    run = next(line for line in dry_run("demo", os.environ["PATH"]).splitlines() if "evalkit run" in line)
    assert "--tasks shapes " in run


def test_install_includes_the_java_target() -> None:
    out = dry_run("java", os.environ["PATH"])
    assert "default-jre-headless" in out and "java not installed" in out
    assert "java" in subprocess.run([MAKE, "-pn", "install"], cwd=ROOT, capture_output=True, text=True,
                                    timeout=60).stdout.split("\ninstall:", 1)[1].splitlines()[0]
