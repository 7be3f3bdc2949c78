"""OpenAI-compatible backend: served models (GPT-4o, a ``vllm serve`` endpoint) and LLM judges.

``evalkit run --model openai:gpt-4o --backend openai --backend-args base_url=http://host:8000/v1,max_concurrency=8``

How a prompt travels. The runner builds prompts with ``adapter.build_prompt(sample, images,
backend.processor)``; this backend's ``processor`` is a :class:`ChatProcessor` whose
``apply_chat_template`` returns the OpenAI ``messages`` list as JSON text, each image part pointing
at ``evalkit-image:<i>`` instead of carrying its bytes. That JSON is ``Prompt.text``, so
``SampleRecord.prompt`` records the exact request messages (small: no base64), and the prompt hash
covers the image bytes through the images' digests. The openai adapter returns a :class:`ChatPrompt`
that also carries each image's encoded bytes (:class:`EncodedImage`): a JPEG or PNG source is sent
unchanged, anything else is encoded once as PNG, never a JPEG re-encoded. Only when a request is
sent are the placeholders replaced by ``data:`` URLs.

Requests run concurrently (asyncio + httpx) with at most ``max_concurrency`` in flight; 429 and
5xx answers, timeouts and connection errors are retried with exponential backoff (honouring
``Retry-After``); a request that still fails becomes that sample's ``generation`` error. A rejected
key, a missing model or a wrong URL (401/403/404) stops the run with a UsageError.

The API key is read ONLY from the environment (``OPENAI_API_KEY`` or the variable named by
``api_key_env``); it is sent in the Authorization header and nowhere else, and scrubbed from any
error text a server returns.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import io
import json
import logging
import os
import random
import re
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from evalkit.backends.base import Backend, BackendConfig
from evalkit.core.errors import MissingDependency, UsageError
from evalkit.core.types import Generation, GenerationSettings, ImageRef, Prompt, SampleError

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image

    from evalkit.adapters.base import Adapter
    from evalkit.core.types import ModelSpec

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
IMAGE_REF = "evalkit-image:"  # image_url placeholder in recorded prompts: evalkit-image:<index>
FATAL_STATUS = {401: "the server rejected the API key", 403: "the server refused access",
                404: "no such model or endpoint"}
MAX_STOP = 4  # OpenAI accepts at most four stop strings; the rest are applied locally
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# ---------------------------------------------------------------------------------------------
# Endpoint settings and the API key


@dataclass(frozen=True)
class EndpointConfig:
    """Where an OpenAI-compatible server is and how to talk to it (shared by the backend and judges).

    ``base_url`` includes the API prefix (``http://host:8000/v1``), as for the ``openai`` client.
    ``api_key_env`` names the environment variable holding the key; the key itself is never a setting.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = DEFAULT_KEY_ENV
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    retry_base_s: float = 1.0
    retry_max_s: float = 30.0

    @classmethod
    def from_args(cls, args: dict[str, Any], where: str = "--backend-args") -> "EndpointConfig":
        """Validated settings from key=value options; ``base_url`` defaults to $OPENAI_BASE_URL, then OpenAI."""
        if "api_key" in args:
            raise UsageError(f"{where}: never pass the API key as an option (it would be written to run.json); "
                             f"export it as {DEFAULT_KEY_ENV} or name its variable with api_key_env=NAME")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise UsageError(f"{where}: unknown option {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {"base_url": os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL}
        values.update(args)
        cfg = cls(**values)
        cfg.check(where)
        return cfg

    def check(self, where: str) -> None:
        parts = urlsplit(str(self.base_url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{where}: base_url must be an http(s) URL such as http://localhost:8000/v1")
        if parts.username or parts.password or parts.query:
            raise UsageError(f"{where}: base_url must not carry credentials or a query string "
                             "(it is recorded in run.json); put the key in the environment")
        if not isinstance(self.api_key_env, str) or not _ENV_NAME.match(self.api_key_env):
            raise UsageError(f"{where}: api_key_env takes the NAME of an environment variable "
                             "(letters, digits, _), not the key itself")
        for name in ("max_concurrency", "max_retries"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "max_concurrency" else 0):
                raise UsageError(f"{where}: {name}={value!r} must be a whole number "
                                 f"{'>= 1' if name == 'max_concurrency' else '>= 0'}")
        for name in ("timeout_s", "retry_base_s", "retry_max_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise UsageError(f"{where}: {name}={value!r} must be a positive number of seconds")

    @property
    def chat_url(self) -> str:
        return str(self.base_url).rstrip("/") + "/chat/completions"

    @property
    def host(self) -> str:
        """scheme://host[:port] only, for logs and run.json."""
        parts = urlsplit(str(self.base_url))
        return f"{parts.scheme}://{parts.netloc}"

    def api_key(self) -> str | None:
        """The key from the environment; None when the default variable is unset (local servers need none)."""
        key = os.environ.get(self.api_key_env, "").strip()
        if key:
            return key
        if self.api_key_env != DEFAULT_KEY_ENV:
            raise UsageError(f"api_key_env={self.api_key_env}: that environment variable is not set; export it first")
        return None


# ---------------------------------------------------------------------------------------------
# Prompts: messages as JSON text, images as placeholders plus their encoded bytes


@dataclass(frozen=True)
class EncodedImage:
    """An image as sent: its MIME type and bytes (the source's own bytes for JPEG and PNG)."""

    mime: str
    data: bytes

    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def sniff_mime(data: bytes) -> str | None:
    """image/jpeg or image/png from the file's magic bytes; None for other formats."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def encode_image(ref: ImageRef | None, image: "Image | None") -> EncodedImage:
    """The bytes to send for one image: the source bytes when they are JPEG or PNG, else a PNG encoding."""
    source: bytes | None = None
    if ref is not None:
        if ref.data is not None:
            source = ref.data
        elif ref.path is not None:
            try:
                with open(ref.file(), "rb") as fh:  # confined to the dataset folder
                    source = fh.read()
            except OSError as exc:
                raise SampleError("image_decode", f"cannot read {ref.path}: {exc}") from exc
    mime = sniff_mime(source) if source is not None else None
    if source is not None and mime is not None:
        return EncodedImage(mime, source)
    if image is None:
        image = ref.load() if ref is not None else None
    if image is None:
        raise SampleError("image_decode", "no image to encode")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return EncodedImage("image/png", buf.getvalue())


@dataclass
class ChatPrompt(Prompt):
    """A Prompt whose ``text`` is the JSON messages list and which carries the images' encoded bytes."""

    encoded: list[EncodedImage] = field(default_factory=list)


class ChatProcessor:
    """The openai backend's stand-in for a transformers processor.

    ``apply_chat_template`` turns HF-style messages (content parts ``{"type": "text"}`` and
    ``{"type": "image"}``) into OpenAI messages, JSON-encoded: text-only content becomes a plain
    string, the i-th image becomes ``{"type": "image_url", "image_url": {"url": "evalkit-image:i"}}``.
    """

    def apply_chat_template(self, messages: list[dict[str, Any]], add_generation_prompt: bool = True,
                            tokenize: bool = False, **_: Any) -> str:
        out: list[dict[str, Any]] = []
        n_images = 0
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                out.append({"role": message["role"], "content": content})
                continue
            parts: list[dict[str, Any]] = []
            for part in content or []:
                if part.get("type") == "image":
                    parts.append({"type": "image_url", "image_url": {"url": f"{IMAGE_REF}{n_images}"}})
                    n_images += 1
                elif part.get("type") == "text":
                    parts.append({"type": "text", "text": part.get("text", "")})
                else:
                    raise ValueError(f"unsupported message part {part.get('type')!r}")
            if all(p["type"] == "text" for p in parts):
                out.append({"role": message["role"], "content": "".join(p["text"] for p in parts)})
            else:
                out.append({"role": message["role"], "content": parts})
        return json.dumps(out, ensure_ascii=False)


def request_messages(text: str, images: list[EncodedImage]) -> list[dict[str, Any]]:
    """The messages of a recorded prompt with each ``evalkit-image:<i>`` placeholder replaced by a data URL."""
    messages = json.loads(text)
    for message in messages:
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for part in content:
            url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
            if url.startswith(IMAGE_REF):
                index = int(url[len(IMAGE_REF):])
                if index >= len(images):
                    raise ValueError(f"prompt refers to image {index} but has {len(images)} images")
                part["image_url"] = {**part["image_url"], "url": images[index].data_url()}
    return messages


# ---------------------------------------------------------------------------------------------
# The client: bounded concurrency, retries with backoff


@dataclass
class ChatResult:
    """One request's outcome: the reply text and token usage, or ``error`` after the retries ran out."""

    text: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    error: str | None = None
    attempts: int = 0


class _Fatal(Exception):
    """A status that no retry fixes (bad key, unknown model): the whole run stops."""


class ChatClient:
    """Sends chat-completion payloads to one endpoint, at most ``max_concurrency`` at a time.

    ``complete`` is synchronous (it runs its own event loop) and returns one ChatResult per payload, in
    order. The key is read from the environment when the client is made and kept out of reprs and errors.
    """

    def __init__(self, config: EndpointConfig):
        self.config = config
        self._key = config.api_key()

    def __repr__(self) -> str:
        return f"ChatClient({self.config.host}, max_concurrency={self.config.max_concurrency})"

    def scrub(self, text: str) -> str:
        """``text`` with the API key, should a server echo it, replaced by ***."""
        return text.replace(self._key, "***") if self._key else text

    def complete(self, payloads: list[dict[str, Any]]) -> list[ChatResult]:
        if not payloads:
            return []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._complete_all(payloads))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop (notebooks)
            return pool.submit(asyncio.run, self._complete_all(payloads)).result()

    async def _complete_all(self, payloads: list[dict[str, Any]]) -> list[ChatResult]:
        try:
            import httpx
        except ImportError as exc:
            raise MissingDependency("httpx", "openai") from exc
        cfg = self.config
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        limits = httpx.Limits(max_connections=cfg.max_concurrency, max_keepalive_connections=cfg.max_concurrency)
        gate = asyncio.Semaphore(cfg.max_concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(cfg.timeout_s), limits=limits) as client:
            try:
                async with asyncio.TaskGroup() as group:  # a fatal answer cancels the requests still running
                    tasks = [group.create_task(self._one(client, gate, p)) for p in payloads]
            except* _Fatal as fatal:
                raise UsageError(str(fatal.exceptions[0])) from None
        return [t.result() for t in tasks]

    async def _one(self, client: Any, gate: asyncio.Semaphore, payload: dict[str, Any]) -> ChatResult:
        import httpx

        cfg = self.config
        error, wait_hint = "no attempt made", 0.0
        for attempt in range(cfg.max_retries + 1):
            async with gate:
                try:
                    response = await client.post(cfg.chat_url, json=payload)
                except httpx.TimeoutException:
                    error, wait_hint = f"timed out after {cfg.timeout_s:g}s", 0.0
                except httpx.TransportError as exc:
                    error, wait_hint = f"connection error to {cfg.host} ({type(exc).__name__})", 0.0
                else:
                    status = response.status_code
                    if status == 200:
                        result = self._parse(response)
                        result.attempts = attempt + 1
                        if result.error is None:
                            return result
                        error, wait_hint = result.error, 0.0
                    else:
                        message = self.scrub(_error_message(response))
                        if status in FATAL_STATUS:
                            raise _Fatal(f"{cfg.host}: {FATAL_STATUS[status]} (HTTP {status}: {message}); check "
                                         f"base_url, the model name and ${cfg.api_key_env}")
                        if status != 429 and status < 500:  # a bad request does not get better when repeated
                            return ChatResult(error=f"HTTP {status}: {message}", attempts=attempt + 1)
                        error, wait_hint = f"HTTP {status}: {message}", _retry_after(response)
            if attempt < cfg.max_retries:
                await asyncio.sleep(self._backoff(attempt, wait_hint))
        return ChatResult(error=f"{error} (gave up after {cfg.max_retries + 1} attempts)",
                          attempts=cfg.max_retries + 1)

    def _backoff(self, attempt: int, hint: float) -> float:
        cfg = self.config
        delay = min(cfg.retry_max_s, cfg.retry_base_s * 2**attempt) * random.uniform(0.5, 1.0)
        return min(cfg.retry_max_s, max(delay, hint))

    def _parse(self, response: Any) -> ChatResult:
        try:
            body = response.json()
            choice = body["choices"][0]
            text = choice["message"].get("content") or ""
            usage = body.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return ChatResult(error="malformed response (no choices[0].message)")
        return ChatResult(text=text, finish_reason=choice.get("finish_reason"),
                          prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))


def _error_message(response: Any) -> str:
    try:
        body = response.json()
        message = body.get("error", {}).get("message") if isinstance(body.get("error"), dict) else body.get("error")
        text = str(message or body)
    except (ValueError, AttributeError):
        text = response.text
    return " ".join(text.split())[:300]


def _retry_after(response: Any) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", 0)))
    except ValueError:
        return 0.0


# ---------------------------------------------------------------------------------------------
# The backend

class OpenAIBackend(Backend):
    """Generates through an OpenAI-compatible chat-completions endpoint. The model is ``spec.checkpoint``."""

    name = "openai"
    schedules_itself = True  # requests are scheduled here (bounded concurrency), not in fixed batches

    def __init__(self, spec: "ModelSpec", adapter: "Adapter", config: BackendConfig):
        super().__init__(spec, adapter, config)
        extra = dict(config.extra)
        self.max_tokens_param = str(extra.pop("max_tokens_param", "max_tokens"))
        # The served model's context in tokens, when the user knows it (context_length=N): prompts estimated at
        # 4 characters a token that exceed it fail as prompt_too_long instead of being sent.
        context = extra.pop("context_length", None)
        if context is not None and (not isinstance(context, int) or isinstance(context, bool) or context < 1):
            raise UsageError(f"--backend-args context_length={context!r} must be a whole number of tokens")
        self.context = context
        if self.max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise UsageError("--backend-args max_tokens_param must be max_tokens or max_completion_tokens")
        self.endpoint = EndpointConfig.from_args(extra)
        self.client = ChatClient(self.endpoint)  # reads the key now: a missing variable fails before the run starts
        self.processor = ChatProcessor()

    def load(self) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError as exc:
            raise MissingDependency("httpx", "openai") from exc
        log.info("openai backend: %s at %s", self.spec.checkpoint, self.endpoint.host)

    def device_name(self) -> str:
        return f"remote ({self.endpoint.host})"

    def count_prompt_tokens(self, prompt: Prompt) -> int | None:
        return -(-len(prompt.text) // 4) if self.context is not None else None  # the server's tokenizer is unknown

    def context_length(self) -> int | None:
        return self.context

    def effective_settings(self, settings: GenerationSettings) -> dict[str, Any]:
        out = settings.to_json()
        out["max_concurrency"] = self.endpoint.max_concurrency
        return out

    def payload(self, prompt: Prompt, settings: GenerationSettings) -> dict[str, Any]:
        """The request body for one prompt."""
        images = prompt.encoded if isinstance(prompt, ChatPrompt) else [encode_image(None, im) for im in prompt.images]
        body: dict[str, Any] = {
            "model": self.spec.checkpoint,
            "messages": request_messages(prompt.text, images),
            self.max_tokens_param: settings.max_new_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
        }
        if settings.stop:
            body["stop"] = list(settings.stop[:MAX_STOP])
        return body

    def generate(self, prompts: list[Prompt], settings: GenerationSettings) -> list[Generation]:
        payloads: list[dict[str, Any] | None] = []
        failed: dict[int, SampleError] = {}
        for i, prompt in enumerate(prompts):
            try:
                payloads.append(self.payload(prompt, settings))
            except (ValueError, KeyError, TypeError, SampleError) as exc:
                payloads.append(None)
                failed[i] = exc if isinstance(exc, SampleError) else SampleError(
                    "prompt", f"{type(exc).__name__}: {exc}")
        results = iter(self.client.complete([p for p in payloads if p is not None]))
        out = []
        for i, payload in enumerate(payloads):
            if payload is None:
                out.append(Generation(text="", error=failed[i]))
                continue
            out.append(self._generation(next(results), settings))
        return out

    @staticmethod
    def _generation(result: ChatResult, settings: GenerationSettings) -> Generation:
        if result.error is not None:
            return Generation(text="", error=SampleError("generation", result.error))
        text, finish = result.text or "", result.finish_reason or "stop"
        for stop in settings.stop:  # stop strings beyond the server's limit, and servers that keep them
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(text=text, n_prompt_tokens=result.prompt_tokens or 0,
                          n_generated_tokens=result.completion_tokens or 0,
                          finish_reason="length" if finish == "length" else finish)
