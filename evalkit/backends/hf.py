"""transformers backend: the reference engine. Batched ``generate`` with left padding; image-text encoders
(CLIP, SigLIP) through ``similarity``."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from evalkit.backends import hf_prefix
from evalkit.backends.base import Backend
from evalkit.core.errors import MissingDependency, UsageError
from evalkit.core.types import Generation, GenerationSettings, Prompt

log = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "float16": "float16", "fp16": "float16",
           "bfloat16": "bfloat16", "bf16": "bfloat16"}


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {requested}: no CUDA device is visible; use --device cpu")
    return requested


def pick_dtype(requested: str, device: str) -> Any:
    import torch

    if requested == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if requested not in _DTYPES:
        raise UsageError(f"--dtype {requested!r}: use one of auto, float32, float16, bfloat16")
    return getattr(torch, _DTYPES[requested])


_OWN_FLAGS = {"dtype": "--dtype", "torch_dtype": "--dtype", "revision": "--revision",
              "trust_remote_code": "--trust-remote-code", "device": "--device"}


def _from_pretrained_options(extra: dict[str, Any], preloaded: bool) -> dict[str, Any]:
    """--backend-args/--model-args on hf: keyword options of the model's from_pretrained (attn_implementation,
    low_cpu_mem_usage, ...); those with an evalkit flag of their own are refused, naming the flag."""
    for key in extra:
        if key in _OWN_FLAGS:
            raise UsageError(f"--model-args {key}: use {_OWN_FLAGS[key]} (recorded in run.json)")
    if extra and preloaded:
        raise UsageError(f"--model-args {', '.join(extra)}: a model object in memory is already loaded")
    return dict(extra)


class HfBackend(Backend):
    name = "hf"
    beam_search = True

    def load(self) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:  # pragma: no cover - torch is a core dependency
            raise MissingDependency("torch/transformers", "hf") from exc
        if not log.isEnabledFor(logging.INFO):
            transformers.utils.logging.disable_progress_bar()
            transformers.utils.logging.set_verbosity_error()
        preloaded = self.config.preloaded  # (model, processor) from evalkit.evaluate: kept where they are
        self.device = (str(preloaded[0].device) if preloaded is not None and self.config.device == "auto"
                       else pick_device(self.config.device))
        self.dtype = preloaded[0].dtype if preloaded is not None else pick_dtype(self.config.dtype, self.device)
        torch.manual_seed(self.config.seed)
        self.adapter.check_load_options(self.config.trust_remote_code)
        kwargs: dict[str, Any] = {"revision": self.spec.revision, "trust_remote_code": self.config.trust_remote_code}
        if preloaded is None and not self.spec.is_local:
            from evalkit.core.data import hub_unreachable

            if hub_unreachable() is not None:  # offline: the hub cache answers at once (no retries), or it fails
                kwargs["local_files_only"] = True
        model_cls = getattr(transformers, self.adapter.hf_model_class)
        model_kwargs = _from_pretrained_options(self.config.extra, preloaded is not None)
        try:
            if preloaded is not None:
                self.model, self.processor = preloaded
            else:
                self.processor = transformers.AutoProcessor.from_pretrained(self.spec.local_path, **kwargs)
                self.model = model_cls.from_pretrained(self.spec.local_path, dtype=self.dtype, **kwargs,
                                                       **model_kwargs)
        except OSError as exc:
            raise UsageError(f"cannot load model {self.spec.checkpoint!r}: {str(exc).splitlines()[0]}") from exc
        except ValueError as exc:  # remote code without the flag, an unknown config class: the user's to fix
            if "trust_remote_code" in str(exc):
                raise UsageError(f"{self.spec.checkpoint!r} runs its own Python code to load; rerun with "
                                 "--trust-remote-code if you trust that checkpoint") from exc
            raise UsageError(f"cannot load model {self.spec.checkpoint!r}: {str(exc).strip().splitlines()[0]}") from exc
        self.model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = self.adapter.padding_side(self.model)
        if self.adapter.encoder:  # an image-text encoder generates nothing: no pad/eos set-up
            return
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        gen_cfg = self.model.generation_config
        eos = gen_cfg.eos_token_id if gen_cfg.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        self._setup_prefix_reuse()

    def _setup_prefix_reuse(self) -> None:
        """Reuse image prefixes (hf_prefix) where the family's layout is known and --no-prefix-reuse is not given."""
        from evalkit.backends.hf_prefix import REUSE_MODEL_TYPES, PrefixStore

        config = self.model.config
        self.image_token_id = getattr(config, "image_token_id", None)
        if self.image_token_id is None:
            self.image_token_id = getattr(config, "image_token_index", None)
        self.reuse = (self.config.prefix_reuse and getattr(config, "model_type", None) in REUSE_MODEL_TYPES
                      and self.image_token_id is not None and self.tokenizer.padding_side == "left"
                      and self.adapter.hf_max_batch_size is None and not self.adapter.is_encoder_decoder(self.model))
        self.prefix_store = PrefixStore()
        self.prompt_tokens = self.prompt_tokens_reused = 0

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        return len(self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"])

    def context_length(self) -> int | None:
        """The text model's max_position_embeddings (else the tokenizer's model_max_length, when it is real)."""
        config = self.model.config
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        value = getattr(text, "max_position_embeddings", None)
        if not value:
            value = getattr(self.tokenizer, "model_max_length", None)
            value = value if value and value < 10**7 else None  # transformers' "no limit" is a huge int
        return int(value) if value else None

    def device_name(self) -> str:
        import torch

        if self.device.startswith("cuda"):
            return torch.cuda.get_device_name(torch.device(self.device))
        return "cpu"

    def peak_gpu_memory_mb(self) -> float | None:
        import torch

        if getattr(self, "device", "cpu").startswith("cuda"):
            return torch.cuda.max_memory_allocated() / 2**20
        return None

    def _generation_config(self, settings: GenerationSettings) -> Any:
        from transformers import GenerationConfig

        greedy = settings.temperature <= 0
        return GenerationConfig(
            max_new_tokens=settings.max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else settings.temperature,
            top_p=None if greedy else settings.top_p,
            top_k=None,
            num_beams=settings.num_beams,
            eos_token_id=sorted(self.eos_ids) or None,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(settings.stop) or None,
        )

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        import torch

        limit = self.adapter.hf_max_batch_size
        if limit is not None and len(prompts) > limit:
            return [g for i in range(0, len(prompts), limit) for g in self.generate(prompts[i : i + limit], settings)]
        reuse = self.reuse and settings.num_beams == 1
        with hf_prefix.shared_image_processing(self.processor) if reuse else contextlib.nullcontext():
            inputs = self._inputs(self.processor(**self.adapter.processor_inputs(prompts), return_tensors="pt",
                                                 padding=True))
        if settings.temperature > 0:
            torch.manual_seed(settings.seed)
        n_prompt = inputs["attention_mask"].sum(dim=1).tolist()
        self.prompt_tokens += int(sum(n_prompt))
        with torch.inference_mode():
            reused = self._reused_inputs(prompts, inputs) if reuse else None
            out = self.model.generate(
                **(reused or inputs), generation_config=self._generation_config(settings), tokenizer=self.tokenizer
            )
        width = (reused or inputs)["input_ids"].shape[1]
        prompt_len = self.adapter.output_offset(self.model, width)
        return [self._finish(row[prompt_len:].tolist(), int(n), settings) for row, n in zip(out, n_prompt)]

    def _reused_inputs(self, prompts: list[Prompt], inputs: dict[str, Any]) -> dict[str, Any] | None:
        """``generate`` inputs that continue from each image's prefix cache (evalkit.backends.hf_prefix), prefilling
        only the prefixes not already stored; None where the batch does not fit the layout (plain path)."""
        plan = hf_prefix.plan(prompts, inputs, self.image_token_id)
        if plan is None:
            return None
        prefixes = [self.prefix_store.get(g.key) for g in plan.groups]
        missing = [i for i, p in enumerate(prefixes) if p is None]
        if missing:
            first_rows = [plan.groups[i].rows[0] for i in missing]
            try:
                computed = hf_prefix.prefill(self.model, [plan.groups[i] for i in missing],
                                             inputs["pixel_values"][first_rows], self.tokenizer.pad_token_id,
                                             self.device)
            except TypeError:
                log.info("prefix reuse off: %s", "the model's cache layout is not supported", exc_info=True)
                self.reuse = False
                return None
            for i, layers in zip(missing, computed):
                prefixes[i] = layers
                self.prefix_store.put(plan.groups[i].key, layers)
        self.prefix_store.keep(plan.groups[plan.row_group[-1]].key)
        reused = sum(plan.prefix_len(r) for r in range(len(plan.ids)))
        self.prompt_tokens_reused += reused - sum(len(plan.groups[i].prefix) for i in missing)
        return hf_prefix.batch_inputs(plan, prefixes, self.tokenizer.pad_token_id, self.model.config, self.device)

    def prefix_cache_counts(self) -> tuple[int, int] | None:
        return (self.prompt_tokens, self.prompt_tokens_reused) if getattr(self, "reuse", False) else None

    def _inputs(self, inputs: Any) -> dict[str, Any]:
        """Processor outputs on the model's device, pixel values in the model's dtype."""
        inputs = {k: (v.to(self.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if "pixel_values" in inputs and inputs["pixel_values"].is_floating_point():
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def similarity(self, prompts: list[Prompt]) -> list[Generation]:
        """One forward pass over all texts and images of the batch; each prompt keeps its own block of
        ``logits_per_text`` (texts x images), so a prompt's logits do not depend on the rest of the batch."""
        import torch

        inputs = self._inputs(self.processor(**self.adapter.processor_inputs(prompts), return_tensors="pt"))
        mask = inputs.get("attention_mask")
        n_tokens = (mask if mask is not None else torch.ones_like(inputs["input_ids"])).sum(dim=1).tolist()
        with torch.inference_mode():
            logits = self.model(**self.adapter.model_inputs(inputs)).logits_per_text.float().cpu()
        out, t, i = [], 0, 0
        for p in prompts:
            nt, ni = len(p.texts), len(p.images)
            block = logits[t : t + nt, i : i + ni].tolist()
            out.append(Generation(text=json.dumps(block), n_prompt_tokens=int(sum(n_tokens[t : t + nt]))))
            t, i = t + nt, i + ni
        return out

    def _finish(self, ids: list[int], n_prompt: int, settings: GenerationSettings) -> Generation:
        """Cut at the first end-of-sequence token and at the first stop string (padding follows either)."""
        finish = "length"
        for i, tok in enumerate(ids):
            if tok in self.eos_ids:
                ids, finish = ids[: i + 1], "eos"
                break
        skip = self.adapter.skip_special_tokens
        text = self.tokenizer.decode(ids, skip_special_tokens=skip)
        cuts = [(text.find(stop), stop) for stop in settings.stop if stop and stop in text]
        if cuts:
            cut, stop = min(cuts)
            text, finish = text[:cut], "stop"
            # Keep the tokens up to the one that completed the stop string (as vLLM counts them).
            for end in range(1, len(ids) + 1):
                if stop in self.tokenizer.decode(ids[:end], skip_special_tokens=skip):
                    ids = ids[:end]
                    break
        return Generation(text=text, token_ids=ids, n_prompt_tokens=n_prompt, n_generated_tokens=len(ids),
                          finish_reason=finish)

    def close(self) -> None:
        self.model = None
        if hasattr(self, "prefix_store"):
            self.prefix_store.clear()
