"""The bundled reference checkpoint (a tiny LLaVA trained on the shapes suite); see scripts/train_reference.py."""

from pathlib import Path

PATH = Path(__file__).resolve().parent
