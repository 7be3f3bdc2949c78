"""The openai backend against a real local HTTP server (tests/openai_server.py): concurrency bound,
retries, timeouts, per-sample failures, image bytes, token usage, and the API key staying out of files."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, last_user_text
from PIL import Image

from evalkit.adapters import get_adapter
from evalkit.backends import BACKENDS, BackendConfig
from evalkit.backends.openai import ChatProcessor, EndpointConfig, OpenAIBackend, request_messages
from evalkit.core.errors import UsageError
from evalkit.runner.models import ModelSpec
from evalkit.core.types import GenerationSettings, ImageRef, Sample, Turn

SECRET = "sk-test-0123456789-never-write-me"
FAST = {"retry_base_s": 0.01, "retry_max_s": 0.05}


def make_backend(url: str, **args: object) -> OpenAIBackend:
    spec = ModelSpec("openai:served-model", "openai", "served-model", "served-model")
    backend = OpenAIBackend(spec, get_adapter("openai"), BackendConfig(extra={"base_url": url, **FAST, **args}))
    backend.load()
    return backend


def prompts_for(backend: OpenAIBackend, samples: list[Sample]) -> list:
    adapter = get_adapter("openai")
    return [adapter.build_prompt(s, [ref.load() for ref in s.images], backend.processor) for s in samples]


def image_bytes(fmt: str, color: tuple[int, int, int] = (200, 30, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buf, format=fmt)
    return buf.getvalue()


def test_registered_and_resolves_by_family() -> None:
    assert BACKENDS.get("openai") is OpenAIBackend
    adapter = get_adapter("openai")
    assert adapter.backends == ("openai",) and adapter.default_checkpoint == "gpt-4o"


def test_concurrency_bound_is_respected_and_order_kept() -> None:
    with FakeOpenAI(delay_s=0.05) as server:
        backend = make_backend(server.url, max_concurrency=3)
        samples = [Sample(id=str(i), question=f"question number {i}") for i in range(12)]
        gens = backend.generate(prompts_for(backend, samples), GenerationSettings(max_new_tokens=7))
    assert server.max_in_flight == 3  # concurrent, and never more than the bound
    assert [g.text for g in gens] == [f"answer to: question number {i}" for i in range(12)]
    body = server.requests[0]
    assert body["model"] == "served-model" and body["max_tokens"] == 7 and body["temperature"] == 0.0


def test_429_and_500_are_retried_then_succeed() -> None:
    with FakeOpenAI() as server:
        server.script(429, 500, 503)
        backend = make_backend(server.url, max_retries=3)
        [gen] = backend.generate(prompts_for(backend, [Sample(id="a", question="hello there")]), GenerationSettings())
    assert gen.error is None and gen.text == "answer to: hello there"
    assert len(server.requests) == 4


def test_timeout_is_retried() -> None:
    with FakeOpenAI() as server:
        server.script(("sleep", 0.8))
        backend = make_backend(server.url, timeout_s=0.2, max_retries=2)
        [gen] = backend.generate(prompts_for(backend, [Sample(id="a", question="slow")]), GenerationSettings())
    assert gen.error is None and gen.text == "answer to: slow"
    assert len(server.requests) == 2


def test_permanent_failure_is_that_samples_generation_error() -> None:
    with FakeOpenAI() as server:
        server.fail_when(lambda body: "POISON" in last_user_text(body), 500)
        backend = make_backend(server.url, max_retries=2)
        samples = [Sample(id="1", question="fine"), Sample(id="2", question="POISON"), Sample(id="3", question="ok")]
        gens = backend.generate(prompts_for(backend, samples), GenerationSettings())
    assert [g.error is None for g in gens] == [True, False, True]
    assert gens[1].error.category == "generation"
    assert "HTTP 500" in gens[1].error.message and "gave up after 3 attempts" in gens[1].error.message
    assert sum("POISON" in last_user_text(b) for b in server.requests) == 3  # 1 + max_retries


def test_bad_request_is_not_retried_and_garbage_is() -> None:
    with FakeOpenAI() as server:
        server.script(400)
        backend = make_backend(server.url)
        [gen] = backend.generate(prompts_for(backend, [Sample(id="a", question="q")]), GenerationSettings())
        assert gen.error is not None and "HTTP 400" in gen.error.message and len(server.requests) == 1
        server.script("garbage")
        [gen] = backend.generate(prompts_for(backend, [Sample(id="a", question="q")]), GenerationSettings())
        assert gen.error is None and len(server.requests) == 3


def test_rejected_key_stops_the_run() -> None:
    with FakeOpenAI() as server:
        server.script(401)
        backend = make_backend(server.url, max_concurrency=2)
        samples = [Sample(id=str(i), question="q") for i in range(4)]
        with pytest.raises(UsageError, match="rejected the API key"):
            backend.generate(prompts_for(backend, samples), GenerationSettings())


def test_usage_and_stop_strings() -> None:
    with FakeOpenAI(reply=lambda body: "one two three END four") as server:
        backend = make_backend(server.url)
        [gen] = backend.generate(prompts_for(backend, [Sample(id="a", question="count the words here")]),
                                 GenerationSettings(stop=("END",)))
    assert gen.text == "one two three " and gen.finish_reason == "stop"
    assert (gen.n_prompt_tokens, gen.n_generated_tokens) == (4, 5)  # the server's word counts
    assert server.requests[0]["stop"] == ["END"]


def test_jpeg_passes_through_byte_for_byte_others_become_png(tmp_path: Path) -> None:
    jpeg, bmp = image_bytes("JPEG"), image_bytes("BMP", (10, 200, 30))
    (tmp_path / "a.jpg").write_bytes(jpeg)
    samples = [Sample(id="j", question="q", images=[ImageRef(path=str(tmp_path / "a.jpg"))]),
               Sample(id="b", question="q", images=[ImageRef(data=bmp)])]
    with FakeOpenAI() as server:
        backend = make_backend(server.url, max_concurrency=1)
        backend.generate(prompts_for(backend, samples), GenerationSettings())
    (mime_j, sent_j), (mime_b, sent_b) = server.images
    assert (mime_j, sent_j) == ("image/jpeg", jpeg)
    assert mime_b == "image/png" and sent_b[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(sent_b)).convert("RGB").getpixel((3, 3)) == (10, 200, 30)


def test_recorded_prompt_is_the_request_without_image_bytes() -> None:
    sample = Sample(id="t", question="And now?", images=[ImageRef(data=image_bytes("PNG"))],
                    history=[Turn("user", "What is it?"), Turn("assistant", "A red box.")])
    adapter = get_adapter("openai")
    prompt = adapter.build_prompt(sample, [ref.load() for ref in sample.images], ChatProcessor())
    assert json.loads(prompt.text) == [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "evalkit-image:0"}},
                                     {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": "A red box."},
        {"role": "user", "content": "And now?"},
    ]
    sent = request_messages(prompt.text, prompt.encoded)
    assert sent[0]["content"][0]["image_url"]["url"].startswith("data:image/png;base64,iVBOR")


@pytest.mark.parametrize("args, message", [
    ({"api_key": SECRET}, "never pass the API key"),
    ({"api_key_env": SECRET}, "NAME of an environment variable"),
    ({"api_key_env": "MY_UNSET_KEY_VAR"}, "MY_UNSET_KEY_VAR: that environment variable is not set"),
    ({"base_url": f"http://user:{SECRET}@host/v1"}, "must not carry credentials"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"concurrency": 4}, "unknown option concurrency"),
])
def test_bad_backend_args_fail_without_echoing_secrets(args: dict, message: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_UNSET_KEY_VAR", raising=False)
    with pytest.raises(UsageError, match=message) as info:
        EndpointConfig.from_args(args).api_key()
    assert SECRET not in str(info.value)


def test_key_from_env_is_sent_and_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    from evalkit.cli import main
    from evalkit.testing.owleval_fixture import write_owleval

    write_owleval(tmp_path / "data")
    monkeypatch.setenv("MY_KEY", SECRET)
    monkeypatch.setenv("EVALKIT_JUDGE_CACHE", str(tmp_path / "cache"))
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(reply=lambda body: "8 7\nfine" if "[System]" in json.dumps(body) else "a shape") as server:
        monkeypatch.setenv("EVALKIT_JUDGE_MODEL", "judge-model")
        monkeypatch.setenv("EVALKIT_JUDGE_URL", server.url)
        monkeypatch.setenv("EVALKIT_JUDGE_API_KEY_ENV", "MY_KEY")
        code = main(["run", "--model", "openai", "--backend", "openai", "--tasks", "owleval", "--no-progress",
                     "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "out"),
                     "--backend-args", f"base_url={server.url},api_key_env=MY_KEY,max_concurrency=2"])
    assert code == 0
    assert server.headers and all(h["authorization"] == f"Bearer {SECRET}" for h in server.headers)
    assert any("[System]" in json.dumps(b) for b in server.requests)  # the judge was asked too
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in written) and any(p.parent.parent.name == "cache" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
