"""The runner layer: run options (options), `--model` resolution (models), the streaming pipeline (pipeline),
the run folder's bookkeeping (run_folder), rescoring a finished run (rescore), score verification (verify)."""

from evalkit.runner.options import RunOptions
from evalkit.runner.pipeline import Interrupted, Runner, cpu_overlap_pays
from evalkit.runner.rescore import rescore

__all__ = ["Interrupted", "RunOptions", "Runner", "cpu_overlap_pays", "rescore"]
