"""Everyday conventions (issue 22): --gen-kwargs, --model-args, python -m evalkit, --json on run, EVALKIT_DATA_DIR,
tables that read in a CI log (stdout piped) and fold on a terminal."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.core.errors import UsageError
from evalkit.core.results import read_run
from evalkit.runner.options import RunOptions

EVALKIT = [sys.executable, "-m", "evalkit"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI with stdout piped (not a terminal), as in a CI log or `| tee`."""
    return subprocess.run(EVALKIT + list(args), capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small run of the reference model with --gen_kwargs (lmms-eval's spelling) and --json."""
    out = tmp_path_factory.mktemp("runs")
    proc = _cli("run", "--model", "reference", "--tasks", "shapes_grounding,shapes_vqa", "--limit", "3",
                "--output", str(out), "--no-progress", "--json",
                "--gen_kwargs", 'max_new_tokens=24,stop=["\\n\\n", "###"],temperature=0')
    assert proc.returncode == 0, proc.stderr
    blocks = json.loads(proc.stdout)  # --json: stdout is run.json's tasks block, nothing else
    assert set(blocks) == {"shapes_grounding", "shapes_vqa"}
    (run,) = out.iterdir()
    assert blocks == read_run(run).model_dump(mode="json")["tasks"]
    return run


def test_gen_kwargs_are_the_effective_settings_and_recorded(run_dir: Path) -> None:
    record = read_run(run_dir)
    assert record.config.gen_kwargs == {"max_new_tokens": 24, "stop": ["\n\n", "###"], "temperature": 0.0}
    for task in record.tasks.values():
        assert task.generation["max_new_tokens"] == 24 and task.generation["stop"] == ["\n\n", "###"]
        assert task.n_errors == 0
    lines = (run_dir / "samples" / "shapes_grounding.jsonl").read_text().splitlines()
    assert all(json.loads(line)["n_generated_tokens"] <= 24 for line in lines)


def test_gen_kwargs_are_part_of_the_resume_key(tmp_path: Path) -> None:
    from evalkit.runner import Runner

    base = dict(model="reference", tasks=["shapes_vqa"], limit=2, output=tmp_path, progress=False)
    Runner(RunOptions(**base, gen_kwargs={"max_new_tokens": 4})).start()  # an unfinished run (status running)
    with pytest.raises(UsageError, match="differs in gen_kwargs"):
        Runner(RunOptions(**base, gen_kwargs={"max_new_tokens": 5}, resume=True)).start()
    _, same = Runner(RunOptions(**base, gen_kwargs={"max_new_tokens": 4}, resume=True)).start()
    assert same.parent == tmp_path and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("value, fragment", [
    ("max_tokens=5", "unknown key 'max_tokens'; allowed: max_new_tokens, temperature, top_p, num_beams, stop"),
    ("max_new_tokens=0", "whole number of at least 1"),
    ("top_p=1.5", "(0, 1]"),
    ("stop=[1,2]", "list of strings"),
])
def test_bad_gen_kwargs_are_one_line_exit_2(value: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "reference", "--tasks", "shapes_vqa", "--gen-kwargs", value]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1


def test_until_is_lmms_evals_name_for_stop() -> None:
    assert RunOptions(model="m", tasks=[], gen_kwargs={"until": "Q:"}).gen_kwargs == {"stop": ["Q:"]}


def test_num_beams_runs_on_hf_and_is_refused_elsewhere(tmp_path: Path) -> None:
    from evalkit.runner import Runner

    opts = dict(model="reference", tasks=["shapes_vqa"], limit=2, output=tmp_path, progress=False,
                gen_kwargs={"num_beams": 2, "max_new_tokens": 6})
    record, _ = Runner(RunOptions(**opts)).run()
    task = record.tasks["shapes_vqa"]
    assert task.generation["num_beams"] == 2 and task.n_errors == 0 and task.metrics["accuracy"].value == 100.0
    with pytest.raises(UsageError, match="beam search runs on --backend hf only"):
        Runner(RunOptions(**opts, backend="vllm"))


def test_model_args_merge_with_backend_args_and_conflicts_are_usage_errors() -> None:
    from evalkit.cli import build_parser
    from evalkit.commands.run import options_from_args

    args = build_parser().parse_args(["run", "--model", "reference", "--tasks", "shapes_vqa",
                                      "--model-args", "max_model_len=2048,enforce_eager=true",
                                      "--backend-args", "max_num_seqs=4,enforce_eager=true"])
    opts = options_from_args(args)
    assert opts.backend_args == {"max_num_seqs": 4, "enforce_eager": True, "max_model_len": 2048}
    assert opts.model_args == {}  # merged: backend_args is what run.json records and resume compares
    with pytest.raises(UsageError, match="--model-args a=1 conflicts with --backend-args a=2"):
        RunOptions(model="m", tasks=[], model_args={"a": 1}, backend_args={"a": 2})


def test_python_dash_m_evalkit_is_the_cli() -> None:
    proc = _cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("evalkit ")
    proc = _cli("run", "--model", "reference", "--tasks", "shapes_vqa", "--limit", "0")
    assert proc.returncode == 2 and "--limit" in proc.stderr and "Traceback" not in proc.stderr


def test_evalkit_data_dir_is_the_default_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(tmp_path))
    assert RunOptions(model="m", tasks=[]).data_dir == tmp_path
    other = tmp_path / "other"
    other.mkdir()
    assert RunOptions(model="m", tasks=[], data_dir=other).data_dir == other  # the flag wins
    monkeypatch.setenv("EVALKIT_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(UsageError, match="EVALKIT_DATA_DIR=.*no such folder"):
        RunOptions(model="m", tasks=[])


# -- tables ----------------------------------------------------------------------------------------------------

def _assert_full(text: str, *cells: str) -> None:
    assert "…" not in text, text
    for cell in cells:
        assert cell in text, (cell, text)


def test_piped_tables_print_every_cell_in_full(run_dir: Path) -> None:
    listing = _cli("list", "tasks")
    assert listing.returncode == 0
    _assert_full(listing.stdout, "shapes_grounding", "primary_metric", "coco_karpathy_test", "refcoco+_testA")
    assert "\x1b[" not in listing.stdout  # no colour codes in a log
    models = _cli("list", "models")
    _assert_full(models.stdout, "reference", "llava-hf/llava-1.5-7b-hf")

    summary = _cli("run", "--model", "reference", "--tasks", "shapes_grounding", "--limit", "1",
                   "--output", str(run_dir.parent / "summary"), "--no-progress")
    assert summary.returncode == 0, summary.stderr
    _assert_full(summary.stdout, "shapes_grounding", "reference (hf)", "acc@0.5", "peak RSS MB", "samples/s")

    board = _cli("leaderboard", str(run_dir.parent))
    assert board.returncode == 0, board.stderr
    _assert_full(board.stdout, "shapes_grounding", "reference")
    cmp = _cli("compare", str(run_dir), str(run_dir))
    assert cmp.returncode == 0, cmp.stderr
    _assert_full(cmp.stdout, "shapes_grounding", "candidate", "verdict")


def test_terminal_tables_fold_long_names_instead_of_cutting_them() -> None:
    from rich.console import Console

    from evalkit.commands.tables import Col, print_table

    console = Console(file=io.StringIO(), width=40, force_terminal=True, color_system=None)
    print_table(["task", Col("value", numeric=True)] + [f"column {i}" for i in range(4)],
                [["shapes_grounding_long_name", "12.50", "a", "b", "c", "d"]], console=console)
    text = console.file.getvalue()
    assert "…" not in text and "┃" in text  # a rich table, folded
    joined = "".join(line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│"))
    assert "shapes_grounding_long_name" in joined


# -- task patterns ---------------------------------------------------------------------------------------------

def test_task_patterns_match_names_groups_and_aliases() -> None:
    from evalkit.tasks import GROUPS, expand_tasks

    assert set(expand_tasks("refcoco*")) == set(GROUPS["grounding"])
    assert expand_tasks("shapes_*,vqav2") == ["shapes_caption", "shapes_grounding", "shapes_pairs", "shapes_vqa",
                                              "vqav2_val"]
    assert expand_tasks("*TESTA") == ["refcoco+_testA", "refcoco_testA"]  # case-insensitive
    assert expand_tasks("vqav?") == ["vqav2_val"]  # an alias stands for its task
    assert expand_tasks("captioning*") == list(GROUPS["captioning"])  # a group for its members


def test_a_pattern_matching_nothing_lists_near_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "reference", "--tasks", "refcocoo*"]) == 2
    err = capsys.readouterr().err
    assert "'refcocoo*' matches no task, group or alias; near: refcoco, refcoco+, refcocog" in err
    assert len(err.strip().splitlines()) == 1


def test_gen_kwargs_reach_both_engines_alike() -> None:
    """The same overrides become transformers' GenerationConfig and vLLM's SamplingParams."""
    pytest.importorskip("vllm")
    from types import SimpleNamespace

    from evalkit.backends.base import BackendConfig
    from evalkit.backends.hf import HfBackend
    from evalkit.backends.vllm import VllmBackend
    from evalkit.core.types import GenerationSettings
    from evalkit.runner.options import apply_generation, generation_overrides

    overrides = generation_overrides({"max_new_tokens": 5, "stop": ["###"], "temperature": 0.5, "top_p": 0.9})
    settings = apply_generation(GenerationSettings(max_new_tokens=16), overrides)
    vllm = VllmBackend(None, None, BackendConfig()).effective_settings(settings)  # type: ignore[arg-type]
    assert (vllm["max_new_tokens"], vllm["stop"], vllm["temperature"], vllm["top_p"]) == (5, ["###"], 0.5, 0.9)
    hf = HfBackend(None, None, BackendConfig())  # type: ignore[arg-type]
    hf.eos_ids, hf.tokenizer = {2}, SimpleNamespace(pad_token_id=0)
    cfg = hf._generation_config(apply_generation(settings, {"num_beams": 3}))
    assert (cfg.max_new_tokens, cfg.stop_strings, cfg.temperature, cfg.top_p, cfg.num_beams, cfg.do_sample) == \
        (5, ["###"], 0.5, 0.9, 3, True)


def test_model_args_are_from_pretrained_options_on_hf(tmp_path: Path) -> None:
    from evalkit.runner import Runner

    base = dict(model="reference", tasks=["shapes_vqa"], limit=1, output=tmp_path, progress=False)
    runner = Runner(RunOptions(**base, model_args={"attn_implementation": "eager"}))
    runner.backend.load()
    assert runner.backend.model.config._attn_implementation == "eager"
    with pytest.raises(UsageError, match="--model-args dtype: use --dtype"):
        Runner(RunOptions(**base, model_args={"dtype": "float16"})).backend.load()
