"""Prefill each image once in the transformers backend.

For families whose prompt is ``[text prefix][image tokens][question]`` (LLaVA-1.5: ``<s>USER: <image>...<image>``
then ``\\n{question} ASSISTANT:``), every question on one image shares the prompt up to and including the last image
token. That prefix (576 of ~600 tokens for LLaVA-1.5 at 336 px) is run through the model once; its KV cache is
copied to the rows of the image's questions, and ``generate`` continues from it with only the questions.

The batch is laid out as ``[left padding][prefix][padding][question]`` with an attention mask that is 0 on both
paddings. Positions come from the mask (``cumsum - 1``, as ``generate`` computes them for left-padded batches), so
every real token has the same position, sees the same keys and yields the same logits as on the plain path, where
a row is ``[left padding][prefix][question]``. The last stored prefix is kept for the next call, so batch size 1 (one
question per call) also prefills each image once when the runner hands over an image's questions in a row.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# config.json model_types whose prompt layout is known to be [text][image tokens][question] with one image tensor per
# prompt and no other image inputs (LLaVA-NeXT's image_sizes/anyres tiles are not covered).
REUSE_MODEL_TYPES = ("llava",)
# Model inputs the reused path understands; any other processor output means the plain path.
_KNOWN_INPUTS = {"input_ids", "attention_mask", "pixel_values"}


def image_key(image: Any) -> str:
    """Identity of a PIL image's pixels (equal pixels give equal pixel_values, hence an equal prefix cache)."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class _SharedImages:
    """Wraps a processor's image processor: each distinct image of a call is processed once and its pixel values
    repeated for the image's other prompts (CLIP resizing costs ~10 ms of CPU per image; VQAv2 has 5.3
    questions per image). Equal images give equal pixel values, so the result is the same as processing each."""

    def __init__(self, inner: Any):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, images: Any, **kwargs: Any) -> Any:
        if not isinstance(images, list) or not all(hasattr(im, "tobytes") for im in images):
            return self.inner(images, **kwargs)
        keys = [image_key(im) for im in images]
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        out = self.inner([images[i] for i in first.values()], **kwargs)
        if len(first) == len(images) or set(out.keys()) != {"pixel_values"}:
            return out if len(first) == len(images) else self.inner(images, **kwargs)
        slot = {key: j for j, key in enumerate(first)}
        index = [slot[key] for key in keys]
        pixels = out["pixel_values"]
        out["pixel_values"] = pixels[index] if hasattr(pixels, "shape") else [pixels[i] for i in index]
        return out


@contextmanager
def shared_image_processing(processor: Any) -> Iterator[None]:
    """Within the block, ``processor`` processes each distinct image once (see ``_SharedImages``)."""
    inner = getattr(processor, "image_processor", None)
    if inner is None:
        yield
        return
    processor.image_processor = _SharedImages(inner)
    try:
        yield
    finally:
        processor.image_processor = inner


@dataclass
class Group:
    """The prompts of one batch that share an image and the text before it."""

    key: tuple[Any, ...]
    prefix: list[int]
    rows: list[int] = field(default_factory=list)


@dataclass
class Plan:
    ids: list[list[int]]  # each row's unpadded prompt ids
    row_group: list[int]  # row -> index into groups
    groups: list[Group]

    def prefix_len(self, row: int) -> int:
        return len(self.groups[self.row_group[row]].prefix)


def plan(prompts: list[Any], inputs: dict[str, Any], image_token_id: int) -> Plan | None:
    """Group the rows of a processed batch by (image, prefix ids); None when a row does not fit the layout."""
    if set(inputs) - _KNOWN_INPUTS or "pixel_values" not in inputs:
        return None
    if any(len(p.images) != 1 for p in prompts) or inputs["pixel_values"].shape[0] != len(prompts):
        return None
    ids_all = inputs["input_ids"].tolist()
    mask_all = inputs["attention_mask"].tolist()
    out = Plan(ids=[], row_group=[], groups=[])
    index: dict[tuple[Any, ...], int] = {}
    for row, (prompt, ids, mask) in enumerate(zip(prompts, ids_all, mask_all)):
        ids = [t for t, m in zip(ids, mask) if m]
        last = max((i for i, t in enumerate(ids) if t == image_token_id), default=-1)
        if last < 0 or last + 1 >= len(ids):  # no image token, or nothing after the image to continue from
            return None
        prefix = ids[: last + 1]
        key = (image_key(prompt.images[0]), tuple(prefix))
        if key not in index:
            index[key] = len(out.groups)
            out.groups.append(Group(key=key, prefix=prefix))
        out.groups[index[key]].rows.append(row)
        out.ids.append(ids)
        out.row_group.append(index[key])
    return out


class PrefixStore:
    """Prefix KV caches by group key: per layer (keys, values) of shape (1, heads, prefix_len, head_dim).

    Holds at most ``capacity`` prefixes (the most recently used): the runner hands over an image's questions in a
    row, so the one that may continue into the next call is the last one.
    """

    def __init__(self, capacity: int = 1):
        self.capacity = capacity
        self.entries: OrderedDict[tuple[Any, ...], list[tuple[Any, Any]]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> list[tuple[Any, Any]] | None:
        if key in self.entries:
            self.entries.move_to_end(key)
        return self.entries.get(key)

    def put(self, key: tuple[Any, ...], layers: list[tuple[Any, Any]]) -> None:
        self.entries[key] = layers
        self.entries.move_to_end(key)
        while len(self.entries) > self.capacity:
            self.entries.popitem(last=False)

    def keep(self, key: tuple[Any, ...]) -> None:
        """Forget every prefix but ``key``'s (the last row's group)."""
        for other in [k for k in self.entries if k != key]:
            del self.entries[other]

    def clear(self) -> None:
        self.entries.clear()


def left_pad(rows: list[list[int]], pad_id: int, width: int | None = None) -> tuple[list[list[int]], list[list[int]]]:
    """Rows padded on the left to ``width`` (default: the longest row) and their attention masks."""
    width = max(len(r) for r in rows) if width is None else width
    return ([[pad_id] * (width - len(r)) + r for r in rows], [[0] * (width - len(r)) + [1] * len(r) for r in rows])


def positions(mask: Any) -> Any:
    """Position ids of a padded batch as ``generate`` derives them: cumsum of the mask - 1, 0 on padding."""
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 0)


def prefill(model: Any, groups: list[Group], pixel_values: Any, pad_id: int, device: str) -> list[list[tuple[Any, Any]]]:
    """Run the groups' prefixes (one image each) through ``model`` in one left-padded batch; per group its layers'
    unpadded (keys, values). Raises TypeError when the model's cache is not a plain per-layer dynamic cache."""
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    ids, mask = left_pad([g.prefix for g in groups], pad_id)
    input_ids = torch.tensor(ids, device=device)
    attention_mask = torch.tensor(mask, device=device)
    cache = DynamicCache(config=model.config)
    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        raise TypeError("sliding-window or hybrid cache layers: prefix reuse not supported")
    model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions(attention_mask),
          pixel_values=pixel_values, past_key_values=cache, use_cache=True, logits_to_keep=1)
    width = input_ids.shape[1]
    return [[(layer.keys[g : g + 1, :, width - len(group.prefix):], layer.values[g : g + 1, :, width - len(group.prefix):])
             for layer in cache.layers] for g, group in enumerate(groups)]


def batch_inputs(plan_: Plan, prefixes: list[list[tuple[Any, Any]]], pad_id: int, config: Any,
                 device: str) -> dict[str, Any]:
    """``generate`` inputs for the whole batch: ids and mask laid out [pad][prefix][pad][question] and a
    DynamicCache holding each row's prefix (its group's, zeros on the left padding)."""
    import torch
    from transformers import DynamicCache

    n = len(plan_.ids)
    width = max(len(g.prefix) for g in plan_.groups)
    suffixes = [ids[plan_.prefix_len(r):] for r, ids in enumerate(plan_.ids)]
    pre_ids, pre_mask = left_pad([plan_.groups[g].prefix for g in plan_.row_group], pad_id, width)
    suf_ids, suf_mask = left_pad(suffixes, pad_id)
    input_ids = torch.tensor([a + b for a, b in zip(pre_ids, suf_ids)], device=device)
    attention_mask = torch.tensor([a + b for a, b in zip(pre_mask, suf_mask)], device=device)
    layers = []
    for layer in range(len(prefixes[0])):
        k0, v0 = prefixes[0][layer]
        keys = k0.new_zeros((n, k0.shape[1], width, k0.shape[3]))
        values = v0.new_zeros((n, v0.shape[1], width, v0.shape[3]))
        for row, g in enumerate(plan_.row_group):
            k, v = prefixes[g][layer]
            keys[row, :, width - k.shape[2]:] = k[0]
            values[row, :, width - v.shape[2]:] = v[0]
        layers.append((keys, values))
    cache = DynamicCache(ddp_cache_data=layers, config=config)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "past_key_values": cache}
