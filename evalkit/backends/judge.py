"""LLM judges over an OpenAI-compatible endpoint: LLaVA-Bench-style pairwise reviews.

A :class:`PairwiseReview` shows the judge a question (with optional context and the image) and two
answers, Assistant 1 and Assistant 2 (LLaVA-Bench puts the reference answer first). The judge
replies with one line holding the two scores (1-10) and then its explanation. A reply whose first
line does not hold exactly two scores in 1-10 is asked again (``parse_retries`` times); if it
still cannot be read, the :class:`Judgement` carries an ``error`` and no scores: callers count it
as a judge failure and leave it out of every mean (it is never averaged in as -1).

Judgements are cached on disk, one JSON file per prompt hash (the hash covers the judge model,
its decoding settings, the messages and the images' bytes), so re-scoring a run, or judging an
identical answer again, costs no request. Only readable judgements are cached.

Configuration comes from a :class:`JudgeConfig`, built by the CLI or from the environment:
``EVALKIT_JUDGE_MODEL`` (required to judge at all), ``EVALKIT_JUDGE_URL`` (default: OpenAI),
``EVALKIT_JUDGE_API_KEY_ENV`` (the NAME of the variable holding the key; default OPENAI_API_KEY),
``EVALKIT_JUDGE_MAX_CONCURRENCY`` (default 4), ``EVALKIT_JUDGE_IMAGES`` (0 for a text-only judge),
``EVALKIT_JUDGE_CACHE`` (cache folder; default ~/.cache/evalkit/judge, "off" disables it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evalkit.backends.openai import ChatClient, EncodedImage, EndpointConfig, request_messages
from evalkit.core.errors import UsageError
from evalkit.core.types import Json

log = logging.getLogger(__name__)

ENV_MODEL = "EVALKIT_JUDGE_MODEL"
ENV_URL = "EVALKIT_JUDGE_URL"
ENV_KEY_ENV = "EVALKIT_JUDGE_API_KEY_ENV"
ENV_CONCURRENCY = "EVALKIT_JUDGE_MAX_CONCURRENCY"
ENV_IMAGES = "EVALKIT_JUDGE_IMAGES"
ENV_CACHE = "EVALKIT_JUDGE_CACHE"

SYSTEM_PROMPT = "You are an impartial and careful reviewer of the answers that AI assistants give to users."
RULE = (
    "Please review how well the two AI assistants answered the user question above. The user asked it while "
    "looking at an image{image_note}. Rate each response for its helpfulness, relevance, accuracy and level of "
    "detail, and give each assistant one overall score from 1 to 10, where a higher score means a better "
    "response.\n"
    "On the first line, write only the two scores, for Assistant 1 and Assistant 2 in that order, separated by "
    "a space.\n"
    "From the next line on, explain your review. Be impartial: the order in which the responses are shown must "
    "not affect your judgement."
)


@dataclass(frozen=True)
class JudgeConfig:
    """Which judge model to ask, where, and how (decoding, retries of unreadable replies, cache, images)."""

    model: str
    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    temperature: float = 0.2
    max_tokens: int = 1024
    parse_retries: int = 2
    with_images: bool = True
    cache_dir: Path | None = None  # None: no cache

    @classmethod
    def from_options(cls, model: str, url: str | None = None, args: Mapping[str, Any] | None = None,
                     environ: Mapping[str, str] | None = None) -> "JudgeConfig":
        """From the CLI (``--judge MODEL --judge-url URL --judge-args k=v,...``). ``args`` takes the endpoint's
        options (api_key_env, max_concurrency, timeout_s, max_retries, ...) plus ``images`` (false: text only),
        ``temperature``, ``max_tokens`` and ``parse_retries``."""
        if not model or not model.strip():
            raise UsageError("--judge is empty; name the judge model (e.g. --judge gpt-4o)")
        options = dict(args or {})
        judging = {k: options.pop(k) for k in ("images", "temperature", "max_tokens", "parse_retries") if k in options}
        options.setdefault("max_concurrency", 4)
        options["base_url"] = url or "https://api.openai.com/v1"
        images = judging.pop("images", True)
        if isinstance(images, str):
            images = images.strip().lower() not in ("0", "false", "no", "off")
        try:
            return cls(model=model.strip(), endpoint=EndpointConfig.from_args(options, where="judge"),
                       with_images=bool(images), cache_dir=default_cache_dir(environ),
                       **{k: type(getattr(cls, k))(v) for k, v in judging.items()})
        except (TypeError, ValueError) as exc:
            raise UsageError(f"judge options: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "JudgeConfig | None":
        """The judge named by the EVALKIT_JUDGE_* variables; None when EVALKIT_JUDGE_MODEL is unset."""
        env = os.environ if environ is None else environ
        model = env.get(ENV_MODEL, "").strip()
        if not model:
            return None
        args: dict[str, Any] = {}
        if env.get(ENV_KEY_ENV, "").strip():
            args["api_key_env"] = env[ENV_KEY_ENV].strip()
        if env.get(ENV_CONCURRENCY, "").strip():
            try:
                args["max_concurrency"] = int(env[ENV_CONCURRENCY])
            except ValueError:
                raise UsageError(f"{ENV_CONCURRENCY}={env[ENV_CONCURRENCY]!r} is not a whole number") from None
        args["images"] = env.get(ENV_IMAGES, "1")
        return cls.from_options(model, env.get(ENV_URL, "").strip() or None, args, environ=env)

    def describe(self) -> str:
        images = "with images" if self.with_images else "text only"
        return f"{self.model} at {self.endpoint.host} (temperature {self.temperature:g}, {images})"


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if environ is None else environ
    value = env.get(ENV_CACHE, "").strip()
    if value.lower() in ("off", "none", "0"):
        return None
    if value:
        return Path(value).expanduser()
    return Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "evalkit" / "judge"


@dataclass(frozen=True)
class PairwiseReview:
    """What one review shows the judge: the question, optional context, two answers and the images."""

    question: str
    answer_1: str  # Assistant 1: the reference answer, as in LLaVA-Bench
    answer_2: str  # Assistant 2: the answer under evaluation
    context: str = ""
    images: tuple[EncodedImage, ...] = ()

    def messages(self, with_images: bool) -> list[dict[str, Any]]:
        """The request messages; images are ``evalkit-image:<i>`` placeholders (see evalkit.backends.openai)."""
        attach = with_images and bool(self.images)
        sections = [f"[Context]\n{self.context}\n\n" if self.context else "",
                    f"[Question]\n{self.question}\n\n",
                    f"[Assistant 1]\n{self.answer_1}\n\n[End of Assistant 1]\n\n",
                    f"[Assistant 2]\n{self.answer_2}\n\n[End of Assistant 2]\n\n",
                    "[System]\n" + RULE.format(image_note=", which is attached" if attach else "") + "\n\n"]
        text = "".join(sections)
        if attach:
            parts: Any = [{"type": "image_url", "image_url": {"url": f"evalkit-image:{i}"}}
                          for i in range(len(self.images))]
            parts.append({"type": "text", "text": text})
        else:
            parts = text
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": parts}]


@dataclass
class Judgement:
    """A judge's verdict on one review: the scores (Assistant 1, Assistant 2) or why there are none."""

    prompt_hash: str
    model: str
    raw: str | None = None  # the last reply received
    scores: tuple[float, float] | None = None
    error: str | None = None
    requests: int = 0  # replies asked for (0: from the cache)
    cached: bool = False

    def to_json(self) -> dict[str, Json]:
        return {"model": self.model, "prompt_hash": self.prompt_hash, "raw": self.raw,
                "scores": list(self.scores) if self.scores else None, "error": self.error,
                "requests": self.requests, "cached": self.cached}


_LABEL = re.compile(r"assistant\s*[12]\s*[:=]?", re.IGNORECASE)
_OUT_OF_TEN = re.compile(r"/\s*10(?![\d.])")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def parse_scores(text: str | None) -> tuple[float, float] | None:
    """The two scores on the reply's first non-empty line, or None.

    Accepted: "8 7", "8, 7", "8.5 7", "**8 7**", "Assistant 1: 8, Assistant 2: 7", "8/10 7/10".
    Refused: one or three numbers, a score outside 1-10, scores on separate lines.
    """
    if not text:
        return None
    first = next((line for line in text.splitlines() if line.strip()), "")
    cleaned = _OUT_OF_TEN.sub(" ", _LABEL.sub(" ", first)).replace(",", " ")
    numbers = [float(n) for n in _NUMBER.findall(cleaned)]
    if len(numbers) != 2 or not all(1.0 <= n <= 10.0 for n in numbers):
        return None
    return numbers[0], numbers[1]


class JudgeCache:
    """Readable judgements on disk: ``<folder>/<hash[:2]>/<hash>.json``, written atomically."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("judge cache entry %s is unreadable; asking again", path)
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)


class Judge:
    """Runs pairwise reviews concurrently against the configured endpoint, with retries and a cache."""

    def __init__(self, config: JudgeConfig):
        self.config = config
        self.client = ChatClient(config.endpoint)
        self.cache = JudgeCache(config.cache_dir) if config.cache_dir is not None else None

    def payload(self, review: PairwiseReview) -> dict[str, Any]:
        cfg = self.config
        images = list(review.images) if cfg.with_images else []
        return {"model": cfg.model, "messages": request_messages(json.dumps(review.messages(cfg.with_images)), images),
                "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}

    def prompt_hash(self, review: PairwiseReview) -> str:
        """sha256 (16 hex) of everything that determines the reply: model, decoding, messages, image bytes."""
        cfg = self.config
        images = [hashlib.sha256(im.data).hexdigest() for im in review.images] if cfg.with_images else []
        key = {"model": cfg.model, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens,
               "messages": review.messages(cfg.with_images), "images": images}
        return hashlib.sha256(json.dumps(key, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]

    def review(self, reviews: list[PairwiseReview]) -> list[Judgement]:
        """One Judgement per review, in order. Raises UsageError when the endpoint rejects the key or model."""
        out: list[Judgement] = []
        pending: dict[str, list[int]] = {}  # prompt hash -> indices (identical reviews are asked once)
        for i, review in enumerate(reviews):
            key = self.prompt_hash(review)
            judgement = Judgement(prompt_hash=key, model=self.config.model)
            hit = self.cache.get(key) if self.cache else None
            scores = parse_scores(hit.get("raw")) if hit else None
            if hit and scores:
                judgement.raw, judgement.scores, judgement.cached = hit["raw"], scores, True
            else:
                pending.setdefault(key, []).append(i)
            out.append(judgement)
        for _ in range(1 + self.config.parse_retries):
            if not pending:
                break
            keys = list(pending)
            results = self.client.complete([self.payload(reviews[pending[k][0]]) for k in keys])
            retry: dict[str, list[int]] = {}
            for key, result in zip(keys, results):
                first = out[pending[key][0]]
                first.requests += 1
                if result.error is not None:  # the client already retried the request itself
                    first.error = f"judge request failed: {result.error}"
                    continue
                first.raw, first.scores = result.text, parse_scores(result.text)
                if first.scores is None:
                    snippet = " ".join((result.text or "").split())[:80]
                    first.error = f"unreadable judgement (no first line with two scores in 1-10): {snippet!r}"
                    retry[key] = pending[key]
                    continue
                first.error = None
                if self.cache:
                    self.cache.put(key, {"prompt_hash": key, "model": self.config.model, "raw": result.text,
                                         "scores": list(first.scores)})
            for indices in pending.values():
                for i in indices[1:]:
                    out[i] = replace(out[indices[0]])
            pending = retry
        return out
