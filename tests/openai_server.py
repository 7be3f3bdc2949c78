"""A minimal OpenAI-compatible chat-completions server for tests, on 127.0.0.1 with an ephemeral port.

    with FakeOpenAI(reply=lambda body: "a cat") as server:
        server.url                      # http://127.0.0.1:<port>/v1
        server.script(429, 500)         # the next two requests fail with these statuses, then normal replies
        server.script(("sleep", 0.5))   # the next request is answered only after 0.5 s (client timeouts)
        server.fail_when(lambda body: "POISON" in str(body["messages"]), 500)  # a permanent failure
        server.requests                 # every request body received (JSON), in arrival order
        server.images                   # the decoded bytes of every image data URL received
        server.max_in_flight            # the most requests handled at the same time

It validates what a real server would reject (no model, no messages, an image URL that is not a
base64 data URL: HTTP 400) and reports token usage: prompt_tokens = words of all text parts,
completion_tokens = words of the reply.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[dict[str, Any]], str]


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of a request body."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def echo(body: dict[str, Any]) -> str:
    return "answer to: " + last_user_text(body)


class FakeOpenAI:
    def __init__(self, reply: Reply = echo, delay_s: float = 0.0):
        self.reply = reply
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.images: list[tuple[str, bytes]] = []  # (mime, bytes)
        self.max_in_flight = 0
        self._in_flight = 0
        self._script: deque[Any] = deque()
        self._rules: list[tuple[Callable[[dict[str, Any]], bool], int]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------------
    def script(self, *actions: Any) -> None:
        """Actions for the next requests, in arrival order: an HTTP status, ("sleep", s) or "garbage" (bad JSON)."""
        with self._lock:
            self._script.extend(actions)

    def fail_when(self, predicate: Callable[[dict[str, Any]], bool], status: int) -> None:
        self._rules.append((predicate, status))

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-openai", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    # -- serving ---------------------------------------------------------------------------------
    def _handle(self, body: dict[str, Any],
                headers: dict[str, str]) -> tuple[int, dict[str, Any] | str, dict[str, str]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            action = self._script.popleft() if self._script else None
        if isinstance(action, tuple) and action[0] == "sleep":
            time.sleep(action[1])
        elif isinstance(action, int):
            return action, {"error": {"message": f"scripted {action}", "type": "test"}}, {"Retry-After": "0"}
        if action == "garbage":
            return 200, "this is not json", {}
        for predicate, status in self._rules:
            if predicate(body):
                return status, {"error": {"message": f"rule {status}", "type": "test"}}, {}
        problem = self._validate(body)
        if problem:
            return 400, {"error": {"message": problem, "type": "invalid_request_error"}}, {}
        if self.delay_s:
            time.sleep(self.delay_s)
        text = self.reply(body)
        contents = [m["content"] if isinstance(m["content"], list) else [m["content"]] for m in body["messages"]]
        parts = [p for content in contents for p in content]
        words = sum(len(p.get("text", "").split()) if isinstance(p, dict) else len(str(p).split()) for p in parts)
        return 200, {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": words, "completion_tokens": len(text.split()),
                      "total_tokens": words + len(text.split())},
        }, {}

    def _validate(self, body: dict[str, Any]) -> str | None:
        if not body.get("model"):
            return "model is required"
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return "messages must be a non-empty list"
        for message in body["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part.get("type") != "image_url":
                    continue
                url = part.get("image_url", {}).get("url", "")
                head, sep, data = url.partition(";base64,")
                if not head.startswith("data:image/") or not sep:
                    return f"image_url is not a base64 data URL: {url[:40]!r}"
                try:
                    raw = base64.b64decode(data, validate=True)
                except ValueError:
                    return "image data is not valid base64"
                with self._lock:
                    self.images.append((head[len("data:"):], raw))
        return None

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}}, {})
                    return
                with fake._lock:
                    fake._in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
                try:
                    try:
                        body = json.loads(raw)
                    except json.JSONDecodeError:
                        self._send(400, {"error": {"message": "body is not JSON"}}, {})
                        return
                    status, payload, headers = fake._handle(body, {k.lower(): v for k, v in self.headers.items()})
                    self._send(status, payload, headers)
                finally:
                    with fake._lock:
                        fake._in_flight -= 1

            def _send(self, status: int, payload: dict[str, Any] | str, headers: dict[str, str]) -> None:
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        return Handler
