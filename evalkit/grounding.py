"""Stable import path for the box formats (``decode_box``, ``encode_box``); they live in evalkit.core.boxes."""

from evalkit.core.boxes import *  # noqa: F401,F403
from evalkit.core.boxes import decode_box, encode_box  # noqa: F401
