"""Engines. Each is imported only when a run selects it (torch and vLLM imports are slow)."""

from evalkit.core.registry import Registry

from .base import Backend, BackendConfig

BACKENDS: Registry[type[Backend]] = Registry("backend", entry_point_group="evalkit.backends")
BACKENDS.register("hf", "evalkit.backends.hf:HfBackend")
BACKENDS.register("vllm", "evalkit.backends.vllm:VllmBackend")
BACKENDS.register("openai", "evalkit.backends.openai:OpenAIBackend")

__all__ = ["BACKENDS", "Backend", "BackendConfig"]
