"""The CLI's contract: fast help, listings without torch, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_and_list_do_not_import_heavy_modules() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from evalkit.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['list', 'tasks']); main(['list', 'models', '--json']); main(['schema'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm', 'pycocoevalcap') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_list_models_json_lists_reference_and_families(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert {"name", "family", "checkpoint"} <= set(rows[0])
    assert by_name["llava"]["checkpoint"] == "llava-hf/llava-1.5-7b-hf"
    assert by_name["reference"]["family"] == "llava"
    assert Path(by_name["reference"]["checkpoint"]).name == "reference_model"


def test_list_tasks_json_has_vqav2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "tasks", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["vqav2_val"]["dataset"] == "lmms-lab/VQAv2:validation"
    assert "vqav2" in rows["vqav2_val"]["aliases"]
    assert "shapes" in rows["shapes_vqa"]["groups"]


def test_schema_is_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["schema_version"] == "1.0"
    jsonschema.Draft202012Validator.check_schema(schema["run.json"])
    assert "prompt" in schema["samples/<task>.jsonl line"]["properties"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "--model", "llava", "--tasks", "vqa2"], "did you mean 'vqav2_val'"),
        (["run", "--model", "nosuchmodel", "--tasks", "vqav2"], "no such folder, family or checkpoint"),
        (["run", "--model", "./missing/ckpt", "--tasks", "vqav2"], "no such folder"),
        (["run", "--model", "llava", "--tasks", "vqav2,,mmvp"], "empty item"),
        (["run", "--model", "llava", "--tasks", ""], "--tasks is empty"),
        (["run", "--model", "llava", "--tasks", "vqav2", "--batch-size", "0"], "must be at least 1"),
        (["run", "--model", "llava", "--tasks", "vqav2", "--data-dir", "/no/such/dir"], "no such folder"),
        (["run", "--model", "llava", "--tasks", "vqav2", "--backend", "hff"], "did you mean 'hf'"),
        (["run", "--model", "llava"], "required"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_exit_2(args: list[str], fragment: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert fragment in lines[0]


def test_model_folder_without_config_is_exit_2(tmp_path: Path) -> None:
    out = run_cli("run", "--model", str(tmp_path), "--tasks", "vqav2")
    assert out.returncode == 2
    assert "has no config.json" in out.stderr


def test_data_dir_without_the_dataset_is_exit_2(tmp_path: Path, tiny_llava: Path) -> None:
    (tmp_path / "lmms-lab" / "VQAv2").mkdir(parents=True)
    out = run_cli("run", "--model", str(tiny_llava), "--tasks", "vqav2", "--data-dir", str(tmp_path),
                  "--output", str(tmp_path / "out"), "--no-progress")
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "VQAv2" in out.stderr
