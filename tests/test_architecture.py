"""The layers of docs/architecture.md hold: imports go one way, test builders stay out of the product,
plug-ins registered through entry points show up in `evalkit list`."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Folder on disk -> import name of the package it holds (pyproject's package-dir).
PACKAGE_DIRS = {"evalkit": "evalkit", "tasks": "evalkit.tasks", "model_adapters": "evalkit.adapters"}

# Layer of each top package, lowest first. A module may import its own layer and the layers below it.
LAYERS: dict[str, int] = {
    "evalkit.core": 0, "evalkit.metrics": 0, "evalkit.grounding": 0,
    "evalkit.tasks": 1, "evalkit.adapters": 1, "evalkit.backends": 1, "evalkit.synthetic": 1,
    "evalkit.reference_model": 1, "evalkit.mining": 1,
    "evalkit.runner": 2,
    "evalkit.interop": 3,
    "evalkit.commands": 4, "evalkit.cli": 4, "evalkit.__main__": 4, "evalkit.api": 4,
}
LAYER_NAMES = ["core", "components (tasks, adapters, backends)", "runner", "interop", "commands"]
TESTING = "evalkit.testing"  # imported by tests, scripts and itself only


def _modules() -> list[tuple[str, Path]]:
    out = []
    for folder, package in PACKAGE_DIRS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join([package, *parts]), path))
    return out


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((name, node.lineno))
    return [(name, line) for name, line in found if name == "evalkit" or name.startswith("evalkit.")]


def _layer(module: str) -> int | None:
    for prefix in sorted(LAYERS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return LAYERS[prefix]
    return None


def test_every_module_has_a_layer() -> None:
    missing = [m for m, _ in _modules() if m != "evalkit" and not m.startswith(TESTING) and _layer(m) is None]
    assert not missing, f"add these modules' packages to LAYERS (and docs/architecture.md): {missing}"


def test_imports_go_down_the_layers_only() -> None:
    bad = []
    for module, path in _modules():
        if module == "evalkit" or module.startswith(TESTING):  # the root package is the lazy facade
            continue
        mine = _layer(module)
        for name, line in _imports(module, path):
            if name == "evalkit":  # `from evalkit import __version__`
                continue
            if name.startswith(TESTING):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name} (test builders are not product code)")
                continue
            theirs = _layer(name)
            if theirs is not None and mine is not None and theirs > mine:
                bad.append(f"{path.relative_to(ROOT)}:{line} ({LAYER_NAMES[mine]}) imports {name} "
                           f"({LAYER_NAMES[theirs]})")
    assert not bad, "imports against the layer order:\n" + "\n".join(bad)


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    """The check above is not vacuous: a core module importing the runner is reported."""
    fake = tmp_path / "store.py"
    fake.write_text("from evalkit.runner import Runner\nfrom . import types\n")
    names = [name for name, _ in _imports("evalkit.core.store", fake)]
    assert names == ["evalkit.runner", "evalkit.core"]
    assert _layer(names[0]) > _layer("evalkit.core.store")


def test_no_circular_package_imports_between_leaderboard_modules() -> None:
    """leaderboard_html renders what leaderboard builds; it must not import the command module back."""
    path = ROOT / "evalkit/commands/leaderboard_html.py"
    names = [n for n, _ in _imports("evalkit.commands.leaderboard_html", path)]
    assert "evalkit.commands.leaderboard" not in names


PLUGIN = '''
from dataclasses import replace

from evalkit.adapters import get_adapter
from evalkit.tasks.shapes import shapes_vqa


def plugin_task():
    task = shapes_vqa()
    task.name = "plugin_shapes"
    return task


ADAPTER = replace(get_adapter("llava"), family="plugin_family")
'''


@pytest.fixture()
def plugin_path(tmp_path: Path) -> Path:
    """A plug-in package made visible the way pip installs one: the module plus a dist-info with entry points."""
    (tmp_path / "evalkit_demo_plugin.py").write_text(textwrap.dedent(PLUGIN))
    dist = tmp_path / "evalkit_demo_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evalkit-demo-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[evalkit.tasks]\nplugin_shapes = evalkit_demo_plugin:plugin_task\n\n"
        "[evalkit.adapters]\nplugin_family = evalkit_demo_plugin:ADAPTER\n")
    return tmp_path


def _evalkit(args: list[str], pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([sys.executable, "-m", "evalkit", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_entry_point_plugins_show_up_in_list(plugin_path: Path) -> None:
    tasks = _evalkit(["list", "tasks", "--json"], plugin_path)
    assert tasks.returncode == 0, tasks.stderr
    row = next(r for r in json.loads(tasks.stdout) if r["name"] == "plugin_shapes")
    assert row["kind"] == "vqa" and row["primary_metric"] == "accuracy"
    models = _evalkit(["list", "models", "--json"], plugin_path)
    assert models.returncode == 0, models.stderr
    assert "plugin_family" in {r["name"] for r in json.loads(models.stdout)}


def test_without_the_plugin_the_names_are_unknown(tmp_path: Path) -> None:
    tasks = _evalkit(["list", "tasks", "--json"], tmp_path)
    assert tasks.returncode == 0
    assert "plugin_shapes" not in {r["name"] for r in json.loads(tasks.stdout)}
