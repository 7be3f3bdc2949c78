"""The Python API (issue 22): evalkit.evaluate, by name and with a model object in memory; the example runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import evalkit
from evalkit.core.errors import UsageError
from evalkit.core.results import read_run

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def reference() -> tuple:
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from evalkit.reference_model import PATH

    return LlavaForConditionalGeneration.from_pretrained(PATH), AutoProcessor.from_pretrained(PATH)


def test_import_evalkit_stays_light() -> None:
    code = "import sys, evalkit; print(json.dumps([m in sys.modules for m in ('torch', 'evalkit.api', 'pydantic')]))"
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False, False]


def test_the_example_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "python_api.py"), "--limit", "3",
                           "--output", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = sorted(tmp_path.iterdir())
    assert len(runs) == 3 and all(read_run(r).status == "completed" for r in runs)
    by_name = {read_run(r).model.name: read_run(r) for r in runs}
    assert by_name["reference"].config.gen_kwargs == {"max_new_tokens": 8}
    step0, step1 = by_name["reference-step0"].model, by_name["reference-step1"].model
    assert step0.fingerprint != step1.fingerprint  # the changed weights are told apart, nothing was saved
    assert step0.checkpoint.startswith("in-memory:") and step0.family == "llava"
    assert "still training: True" in proc.stdout


def test_in_memory_model_is_evaluated_as_is_and_left_as_it_was(reference: tuple, tmp_path: Path) -> None:
    import torch

    model, processor = reference
    model.train()
    handler = signal.getsignal(signal.SIGTERM)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    result = evalkit.evaluate(model=model, processor=processor, tasks=["shapes_grounding"], limit=2,
                              output=tmp_path, progress=False, batch_size=2)
    assert isinstance(result, evalkit.Evaluation) and result.status == "completed"
    assert result.run_dir.parent == tmp_path
    assert read_run(result.run_dir).model_dump() == result.model_dump()  # the record is run.json
    assert result.scores == {"shapes_grounding": result.tasks["shapes_grounding"].metrics["acc@0.5"].value}
    assert result.tasks["shapes_grounding"].n == 2 and result.tasks["shapes_grounding"].n_errors == 0
    assert model.training and signal.getsignal(signal.SIGTERM) == handler
    assert torch.equal(torch.rand(3), expected)  # the training loop's RNG stream is untouched

    by_folder = evalkit.evaluate(model="reference", tasks="shapes_grounding", limit=2, output=tmp_path,
                                 progress=False)
    assert by_folder.scores == result.scores  # same weights, same code path, same score
    assert signal.getsignal(signal.SIGTERM) == handler


def test_fingerprint_follows_the_weights(reference: tuple) -> None:
    import torch

    from evalkit.runner.models import preloaded_spec

    model, _ = reference
    before = preloaded_spec("m", model)
    assert before.family == "llava" and before.model_type == "llava"
    assert preloaded_spec("m", model).fingerprint() == before.fingerprint()
    with torch.no_grad():
        model.lm_head.weight[0, 0] += 1.0
        try:
            assert preloaded_spec("m", model).fingerprint() != before.fingerprint()
        finally:
            model.lm_head.weight[0, 0] -= 1.0


def test_processor_is_found_next_to_a_model_loaded_from_a_folder(reference: tuple, tmp_path: Path) -> None:
    model, _ = reference
    result = evalkit.evaluate(model=model, tasks=["shapes_vqa"], limit=1, output=tmp_path, progress=False)
    assert result.tasks["shapes_vqa"].n_errors == 0


def test_usage_errors(reference: tuple) -> None:
    with pytest.raises(UsageError, match="unknown option.*batchsize.*options: backend, batch_size"):
        evalkit.evaluate(model="reference", tasks=["shapes_vqa"], batchsize=4)
    with pytest.raises(UsageError, match="--gen-kwargs: unknown key 'beams'"):
        evalkit.evaluate(model="reference", tasks=["shapes_vqa"], gen_kwargs="beams=2")
    model, processor = reference
    with pytest.raises(UsageError, match="in memory runs on the hf backend"):
        evalkit.evaluate(model=model, processor=processor, tasks=["shapes_vqa"], backend="vllm")
    with pytest.raises(UsageError, match="runs in its own dtype"):
        evalkit.evaluate(model=model, processor=processor, tasks=["shapes_vqa"], dtype="float16")
    with pytest.raises(UsageError, match="go with a model object in memory"):
        evalkit.evaluate(model="reference", name="x", tasks=["shapes_vqa"])
    with pytest.raises(UsageError, match="has no transformers config"):
        evalkit.evaluate(model=object(), processor=processor, tasks=["shapes_vqa"])
