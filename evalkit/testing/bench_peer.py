"""`make bench`, section "peer": lmms-eval 0.7.3's ``llava_hf`` (batch 1, its only working batch size) against
evalkit (hf batch 16, and vLLM where installed) and a plain transformers script, on the same checkpoint and the
same 64 VQAv2-schema rows (written as an lmms-eval task for lmms-eval), 16 new tokens.

Each runs as its own process, timed from the process's start: whole-process wall, the generation phase
(lmms-eval: its ``generate_until``; evalkit: telemetry ``generate_s``; the script: its generate calls), and where
start-up goes (imports, model load, dataset open, time to the first finished batch).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LMMS_TASK = "evalkit_bench_vqav2"
_UTILS = '''"""doc_to_visual / doc_to_text / process_results for the bench's VQAv2-schema rows (lmms-eval's VQAv2 prompt)."""


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}{doc['question']}{kw.get('post_prompt', '')}"


def process_results(doc, results):
    return {"exact_match": float(results[0].strip().lower() == str(doc["multiple_choice_answer"]).lower())}
'''


def write_lmms_task(folder: Path, data: Path) -> Path:
    """The bench rows as an lmms-eval task (local parquet files, lmms-eval's VQAv2 prompt and 16 new tokens)."""
    folder.mkdir(parents=True, exist_ok=True)
    shards = sorted(str(p) for p in (data / "lmms-lab" / "VQAv2" / "data").glob("validation-*.parquet"))
    files = "\n".join(f"      - {s}" for s in shards)
    (folder / f"{LMMS_TASK}.yaml").write_text(f"""task: {LMMS_TASK}
dataset_path: parquet
dataset_kwargs:
  data_files:
    validation:
{files}
test_split: validation
output_type: generate_until
doc_to_visual: !function utils.doc_to_visual
doc_to_text: !function utils.doc_to_text
doc_to_target: "multiple_choice_answer"
generation_kwargs:
  max_new_tokens: 16
  temperature: 0
  do_sample: false
process_results: !function utils.process_results
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    post_prompt: "\\nAnswer the question using a single word or phrase."
metadata:
  - version: 0.0
""")
    (folder / "utils.py").write_text(_UTILS)
    return folder


def _since_start() -> float:
    import psutil

    return time.time() - psutil.Process().create_time()


def lmms_child(model: str, task_dir: str, out: str, limit: int) -> dict[str, Any]:
    """lmms-eval's own CLI in this process, its model's ``generate_until`` timed."""
    t_start = _since_start()
    import importlib.util
    import types

    if importlib.util.find_spec("decord") is None:  # video reader imported at module level; images never use it
        stub = types.ModuleType("decord")
        stub.VideoReader, stub.cpu = None, None  # type: ignore[attr-defined]
        sys.modules["decord"] = stub
    import lmms_eval.__main__ as lmms_main
    from lmms_eval import models

    t_import = _since_start()
    timing: dict[str, float] = {}
    cls = models.get_model("llava_hf", False)  # what `--model llava_hf` runs (the chat model class)
    original_init, original_generate = cls.__init__, cls.generate_until

    def init(self: Any, *a: Any, **k: Any) -> None:
        timing["load_start"] = _since_start()
        original_init(self, *a, **k)
        timing["load_end"] = _since_start()

    def generate(self: Any, requests: Any) -> Any:
        timing["generate_start"] = _since_start()
        out_ = original_generate(self, requests)
        timing["generate_end"] = _since_start()
        return out_

    cls.__init__, cls.generate_until = init, generate
    lmms_main.make_table = lambda *a, **k: ""  # its results table needs pytablewriter, absent from the lean install
    sys.argv = ["lmms-eval", "--model", "llava_hf", "--model_args", f"pretrained={model},device=cpu,device_map=cpu,dtype=float32",
                "--tasks", LMMS_TASK, "--include_path", task_dir, "--batch_size", "1", "--limit", str(limit),
                "--output_path", out, "--verbosity", "ERROR"]
    lmms_main.cli_evaluate()
    gen = timing["generate_end"] - timing["generate_start"]
    return {"python_start_s": round(t_start, 3), "import_s": round(t_import - t_start, 3),
            "load_s": round(timing["load_end"] - timing["load_start"], 3), "generate_s": round(gen, 3),
            "first_generate_start_s": round(timing["generate_start"], 3), "n": limit,
            "generation_samples_per_s": round(limit / gen, 3)}


def evalkit_child(model: str, data: str, out: str, limit: int, opts: dict[str, Any]) -> dict[str, Any]:
    """evalkit's runner in this process (what `evalkit run` does), with the time its first batch was stored."""
    t_start = _since_start()
    from evalkit.core.store import SampleStore
    from evalkit.runner import RunOptions, Runner

    t_import = _since_start()
    import torch  # noqa: F401  (the runner imports these inside model load; timed apart here)
    import transformers  # noqa: F401

    t_heavy = _since_start()
    first: dict[str, float] = {}
    original = SampleStore.append

    def append(self: Any, task: str, records: Any) -> Any:
        first.setdefault("t", _since_start())
        return original(self, task, records)

    SampleStore.append = append  # type: ignore[method-assign]
    runner = Runner(RunOptions(model=model, tasks=["vqav2_val"], data_dir=Path(data), output=Path(out),
                               limit=limit, progress=False, max_error_rate=1.0, **opts))
    record, _ = runner.run()
    tel = record.tasks["vqav2_val"].telemetry
    return {"python_start_s": round(t_start, 3), "import_s": round(t_heavy - t_start, 3),
            "evalkit_import_s": round(t_import - t_start, 3), "torch_transformers_import_s": round(t_heavy - t_import, 3),
            "load_s": record.telemetry.load_s, "data_open_s": round(runner.phases.get("data"), 3),
            "generate_s": tel.generate_s, "first_batch_s": round(first["t"], 3), "n": limit,
            "generation_samples_per_s": round(limit / tel.generate_s, 3)}


def script_child(model: str, data: str, limit: int, batch_size: int) -> dict[str, Any]:
    """The plain transformers script (bench.hand_loop), timed from the process's start."""
    t_start = _since_start()
    import torch  # noqa: F401  (what the script imports first)
    import transformers  # noqa: F401

    t_import = _since_start()
    from evalkit.testing.bench import hand_loop

    marks: dict[str, float] = {}
    run = hand_loop(Path(model), Path(data), limit, batch_size, 16, marks=marks)
    import psutil

    first_batch = marks["first_batch"] - psutil.Process().create_time()
    return {"python_start_s": round(t_start, 3), "import_s": round(t_import - t_start, 3), "load_s": run["load_s"],
            "generate_s": round(run["generate_s"], 3), "first_batch_s": round(first_batch, 3), "n": limit,
            "generation_samples_per_s": round(limit / run["generate_s"], 3)}


def _child(kind: str, **kwargs: Any) -> dict[str, Any]:
    """Run ``<kind>_child(**kwargs)`` in a fresh interpreter; its whole-process wall measured here."""
    code = ("import json, sys; from evalkit.testing import bench_peer as b; "
            f"print('RESULT ' + json.dumps(b.{kind}_child(**json.loads(sys.argv[1]))))")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    result = json.loads(lines[-1][len("RESULT "):])
    result["process_wall_s"] = round(wall, 3)
    return result


def peer_section(model: Path, data: Path, work: Path, n: int, with_vllm: bool) -> dict[str, Any]:
    import importlib.util

    out: dict[str, Any] = {"n": n}
    out["script_bs16"] = _child("script", model=str(model), data=str(data), limit=n, batch_size=16)
    out["evalkit_hf_bs16"] = _child("evalkit", model=str(model), data=str(data), out=str(work / "peer-ek"), limit=n,
                                    opts={"batch_size": 16})
    if with_vllm:
        out["evalkit_vllm"] = _child("evalkit", model=str(model), data=str(data), out=str(work / "peer-vllm"),
                                     limit=n, opts={"backend": "vllm", "batch_size": 16})
    if importlib.util.find_spec("lmms_eval") is None:
        out["lmms_eval_bs1"] = {"error": "lmms-eval is not installed (make test-extras)"}
    else:
        task_dir = write_lmms_task(work / "lmms-task", data)
        out["lmms_eval_bs1"] = _child("lmms", model=str(model), task_dir=str(task_dir), out=str(work / "lmms-out"),
                                      limit=n)
    return out


def peer_rows(section: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    lm, ek = section.get("lmms_eval_bs1", {}), section.get("evalkit_hf_bs16", {})
    if "error" in lm or "error" in ek:
        return [("peer (lmms-eval llava_hf bs1)", "-", "-", (lm.get("error") or ek.get("error", ""))[:60], "")]
    rows.append((f"peer: evalkit hf bs16 / lmms-eval llava_hf bs1 ({section['n']} rows, process wall)",
                 f"{ek['process_wall_s']:.1f}s", f"{lm['process_wall_s']:.1f}s",
                 f"{lm['process_wall_s'] / ek['process_wall_s']:.2f}x faster", ""))
    rows.append(("  generation phase samples/s (evalkit / lmms-eval)", f"{ek['generation_samples_per_s']:.1f}/s",
                 f"{lm['generation_samples_per_s']:.1f}/s",
                 f"{ek['generation_samples_per_s'] / lm['generation_samples_per_s']:.2f}x", ""))
    vl = section.get("evalkit_vllm")
    if vl and "error" not in vl:
        rows.append(("  evalkit vLLM: process wall; generation samples/s", f"{vl['process_wall_s']:.1f}s",
                     f"{vl['generation_samples_per_s']:.1f}/s", "", ""))
    sc = section.get("script_bs16", {})
    if "error" not in sc:
        for label, r in (("evalkit hf bs16", ek), ("plain script bs16", sc)):
            data = f", data {r['data_open_s']:.2f}s" if "data_open_s" in r else ""
            rows.append((f"  start-up {label}: python+imports, model load, dataset open; first batch done at",
                         f"{r['python_start_s'] + r['import_s']:.1f}s, {r['load_s']:.1f}s{data}",
                         f"{r['first_batch_s']:.1f}s", f"gen {r['generation_samples_per_s']:.1f}/s",
                         "first batch within 1 s of the script" if label.startswith("evalkit") else ""))
    return rows
