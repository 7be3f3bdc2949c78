"""evalkit: trusted, fast evaluation of multimodal LLMs."""

__version__ = "0.1.0"
RESULT_SCHEMA_VERSION = "1.0"
