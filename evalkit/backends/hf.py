"""transformers backend: the reference engine. Batched ``generate`` with left padding; image-text encoders
(CLIP, SigLIP) through ``similarity``."""

from __future__ import annotations

import json
import logging
from typing import Any

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


class HfBackend(Backend):
    name = "hf"

    def load(self) -> None:
        try:
            import torch
            import transformers
        except ImportError as exc:  # pragma: no cover - torch is a core dependency
            raise MissingDependency("torch/transformers", "hf") from exc
        if not log.isEnabledFor(logging.INFO):
            transformers.utils.logging.disable_progress_bar()
            transformers.utils.logging.set_verbosity_error()
        self.device = pick_device(self.config.device)
        self.dtype = pick_dtype(self.config.dtype, self.device)
        torch.manual_seed(self.config.seed)
        self.adapter.check_load_options(self.config.trust_remote_code)
        kwargs: dict[str, Any] = {"revision": self.spec.revision, "trust_remote_code": self.config.trust_remote_code}
        model_cls = getattr(transformers, self.adapter.hf_model_class)
        try:
            self.processor = transformers.AutoProcessor.from_pretrained(self.spec.local_path, **kwargs)
            self.model = model_cls.from_pretrained(self.spec.local_path, dtype=self.dtype, **kwargs)
        except OSError as exc:
            raise UsageError(f"cannot load model {self.spec.checkpoint!r}: {str(exc).splitlines()[0]}") from exc
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

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        return len(self.tokenizer(prompt.text, add_special_tokens=False)["input_ids"])

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
            num_beams=1,
            eos_token_id=sorted(self.eos_ids) or None,
            pad_token_id=self.tokenizer.pad_token_id,
            stop_strings=list(settings.stop) or None,
        )

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        import torch

        limit = self.adapter.hf_max_batch_size
        if limit is not None and len(prompts) > limit:
            return [g for i in range(0, len(prompts), limit) for g in self.generate(prompts[i : i + limit], settings)]
        inputs = self._inputs(self.processor(**self.adapter.processor_inputs(prompts), return_tensors="pt",
                                             padding=True))
        if settings.temperature > 0:
            torch.manual_seed(settings.seed)
        with torch.inference_mode():
            out = self.model.generate(
                **inputs, generation_config=self._generation_config(settings), tokenizer=self.tokenizer
            )
        prompt_len = self.adapter.output_offset(self.model, inputs["input_ids"].shape[1])
        n_prompt = inputs["attention_mask"].sum(dim=1).tolist()
        return [self._finish(row[prompt_len:].tolist(), int(n), settings) for row, n in zip(out, n_prompt)]

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
