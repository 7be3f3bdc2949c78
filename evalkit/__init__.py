"""evalkit: trusted, fast evaluation of multimodal LLMs.

``evalkit.evaluate(model=..., tasks=[...], **options)`` is the Python API (evalkit.api); it is imported on first
use, so ``import evalkit`` stays light.
"""

from typing import Any

__version__ = "0.1.0"
RESULT_SCHEMA_VERSION = "1.0"

__all__ = ["__version__", "RESULT_SCHEMA_VERSION", "evaluate", "Evaluation"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "Evaluation"):
        from evalkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")
