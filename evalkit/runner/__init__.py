"""The runner layer: `--model` resolution (models) and the streaming pipeline (pipeline)."""

from evalkit.runner.options import RunOptions
from evalkit.runner.pipeline import Interrupted, Runner, cpu_overlap_pays, rescore

__all__ = ["Interrupted", "RunOptions", "Runner", "cpu_overlap_pays", "rescore"]
