"""An OpenAI-compatible chat-completions server over any `CloudModel` (``offload-gym serve``).

A lab can put its cloud (the simulated one, or a Hugging Face model) behind HTTP, and
`OpenAICloud` is tested against a real server on the loopback interface. Endpoints:

- ``POST /v1/chat/completions``: the last user message is the task's prompt (text after
  `PARTIAL_PREFIX` is the local model's partial response). A simulated cloud needs the task
  itself (it simulates from the reference answer): clients send it as ``offload_task`` in the
  body (`OpenAICloud(send_task=True)`, or ``"auto"``, which reads ``/v1/models``). A plain
  OpenAI client sends only the text: the server recognises a prompt of the tasks it was given
  (``known_tasks``; ``offload-gym serve`` indexes every registered environment's episodes for
  seeds 0-9 by default, see `episode_tasks_of`) and answers it as that task; any other prompt
  gets a 200 answer that says the task is needed.
- ``GET /v1/models``: the served model, with ``offload_needs_task``.
- ``GET /stats``: the server's own counts (requests, completions, errors, faults injected).

``faults`` makes the server misbehave on purpose, one fault per request in order, to test
clients: ``"slow:S"`` (answer after S seconds), ``"429:S"`` (rate limited, ``Retry-After: S``),
``"400"`` (a bad request, which clients must not retry), ``"500"``, ``"malformed"`` (a body
that is not JSON), ``"close"`` (drop the connection without a response), ``"empty"`` (an
answer with no content), ``"usage:N"`` (an answer that reports N prompt and N completion
tokens, e.g. -5 or 1e12), ``"trickle:S"`` (a good answer sent one byte every S seconds: each
read is quick, the whole body slow).
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from offload_gym.models.base import CloudError, CloudModel, CloudResponse
from offload_gym.models.openai_cloud import PARTIAL_PREFIX
from offload_gym.tasks.base import Task

FAULTS = ("slow", "429", "400", "500", "malformed", "close", "empty", "usage", "trickle")


class _BadRequest(ValueError):
    pass


def episode_tasks_of(env_ids: Iterable[str], seeds: Iterable[int]) -> tuple[list[Task], list[str]]:
    """The tasks of every episode that each environment id starts with each seed (what a user
    who types ``env.reset(seed=s)`` is shown), for a server to recognise their prompts.
    Returns the tasks and the ids that could not be made without arguments (skipped)."""
    import gymnasium as gym

    from offload_gym.envs import offload_env

    tasks: list[Task] = []
    skipped: list[str] = []
    seeds = list(seeds)
    for env_id in env_ids:
        try:
            env = gym.make(env_id)
        except (TypeError, ValueError, ImportError, OSError):
            skipped.append(env_id)
            continue
        try:
            for seed in seeds:
                env.reset(seed=seed)
                tasks += offload_env(env).episode_tasks
        finally:
            env.close()
    return tasks, skipped


def _parse_fault(spec: str) -> tuple[str, float]:
    kind, _, arg = spec.partition(":")
    if kind not in FAULTS:
        raise ValueError(f"unknown fault {spec!r}; expected one of {FAULTS} (slow:S, 429:S)")
    try:
        value = float(arg) if arg else 0.0
    except ValueError:
        raise ValueError(f"fault {spec!r}: {arg!r} is not a number of seconds") from None
    return kind, value


class CloudServer:
    """Serve ``cloud`` on ``http://host:port/v1`` from a background thread.

    Args:
        cloud: Any `CloudModel`.
        host: Interface to bind (loopback by default).
        port: Port (0 picks a free one; see `url`).
        model_name: The name reported in responses and ``/v1/models``.
        faults: Faults to inject, one per chat request, in order (see the module docstring).
        verbose: Log each request line to stderr.
        known_tasks: Tasks whose prompts the server recognises in a request without
            ``offload_task`` (a plain client's), answered as those tasks.
    """

    def __init__(
        self,
        cloud: CloudModel,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        model_name: str = "offload-gym",
        faults: Sequence[str] = (),
        verbose: bool = False,
        known_tasks: Iterable[Task] = (),
    ) -> None:
        if not isinstance(cloud, CloudModel):
            raise TypeError(f"cloud must implement CloudModel (quote, answer), got {cloud!r}")
        self.cloud = cloud
        self.model_name = model_name
        self.faults = deque(_parse_fault(f) for f in faults)
        self.verbose = verbose
        self.known = {t.prompt.strip(): t for t in known_tasks}
        self.stats = {"requests": 0, "completions": 0, "errors": 0, "faults_injected": 0,
                      "recognised": 0}  # fmt: skip
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/v1"

    def start(self) -> CloudServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> CloudServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _next_fault(self) -> tuple[str, float] | None:
        with self._lock:
            if not self.faults:
                return None
            self.stats["faults_injected"] += 1
            return self.faults.popleft()

    # ------------------------------------------------------------------ requests
    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """A chat-completion response for a request body (raises `_BadRequest`)."""
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest("'messages' must be a non-empty list")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        if not users or not isinstance(users[-1].get("content"), str):
            raise _BadRequest("a user message with string content is required")
        content = users[-1]["content"]
        prompt, sep, partial = content.partition("\n\n" + PARTIAL_PREFIX)
        known = self.known.get(prompt.strip()) if body.get("offload_task") is None else None
        if known is not None:
            self._count("recognised")
            response = self.cloud.answer(known, partial if sep else None)
        elif self.needs_task and body.get("offload_task") is None:
            text = self._plain()
            response = CloudResponse(text, len(content.encode()), len(text.encode()), 0.0, 0.0)
        else:
            response = self.cloud.answer(self._task(body, prompt), partial if sep else None)
        return {
            "id": f"chatcmpl-{self.stats['requests']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": response.text}}],
            "usage": {"prompt_tokens": response.prompt_tokens,
                      "completion_tokens": response.completion_tokens,
                      "total_tokens": response.prompt_tokens + response.completion_tokens},
        }  # fmt: skip

    def _task(self, body: dict[str, Any], prompt: str) -> Task:
        payload = body.get("offload_task")
        if payload is not None:
            try:
                return Task(**payload)
            except (TypeError, ValueError) as exc:
                raise _BadRequest(f"'offload_task' is not a task: {exc}") from None
        digest = hashlib.sha256(prompt.encode()).hexdigest()[:16]
        return Task(id=f"prompt/{digest}", domain="text", prompt=prompt, answer="")

    @property
    def needs_task(self) -> bool:
        """Whether the served cloud simulates from a task's reference (advertised in
        ``/v1/models`` as ``offload_needs_task``, which `OpenAICloud(send_task="auto")` reads)."""
        return bool(getattr(self.cloud, "needs_task", False))

    def _plain(self) -> str:
        """The answer to a prompt that came without its task, from a cloud that needs one."""
        return (
            f"(offload-gym serve: {type(self.cloud).__name__} simulates answers from a task's "
            "reference, and this request carried none. Send the task as 'offload_task' in the "
            "body, as OpenAICloud(send_task=True or 'auto') does, to have it answered.)"
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"cloud_server": self})


_ERRORS = {"429": (429, "rate limited (injected)", "rate_limit_error"),
           "400": (400, "bad request (injected)", "invalid_request_error"),
           "500": (500, "internal error (injected)", "server_error")}  # fmt: skip
"""The injected faults that answer with an HTTP error at once."""


class _Handler(BaseHTTPRequestHandler):
    """The HTTP side of a `CloudServer` (its subclass per server sets ``cloud_server``)."""

    protocol_version = "HTTP/1.1"
    cloud_server: CloudServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.cloud_server.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              raw: bytes | None = None) -> None:  # fmt: skip
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _trickle(self, payload: Any, delay: float) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        for k in range(len(data)):
            self.wfile.write(data[k : k + 1])
            self.wfile.flush()
            time.sleep(delay)

    def _error(self, status: int, message: str, kind: str,
               headers: dict[str, str] | None = None) -> None:  # fmt: skip
        self.cloud_server._count("errors")
        self._send(status, {"error": {"message": message, "type": kind, "code": status}},
                   headers)  # fmt: skip

    def do_GET(self) -> None:
        server = self.cloud_server
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": server.model_name, "object": "model", "owned_by": "offload-gym",
                     "offload_needs_task": server.needs_task}  # fmt: skip
            self._send(200, {"object": "list", "data": [model]})
        elif self.path.rstrip("/") == "/stats":
            with server._lock:
                self._send(200, dict(server.stats))
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def _read_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after answering 404 or 400. The body is read
        before any answer, so a refused request leaves the connection usable."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path} (this server answers "
                        "/v1/chat/completions)", "not_found")  # fmt: skip
            return None
        self.cloud_server._count("requests")
        try:
            if length < 0:
                raise _BadRequest("Content-Length is not a number")
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise _BadRequest("the body must be a JSON object")
        except (ValueError, json.JSONDecodeError) as exc:
            self._error(400, f"bad request body: {exc}", "invalid_request_error")
            return None
        return body

    def do_POST(self) -> None:
        body = self._read_body()
        if body is None:
            return
        server = self.cloud_server
        kind, arg = server._next_fault() or ("", 0.0)
        try:
            if kind == "slow":
                time.sleep(arg)
            elif kind in _ERRORS:
                status, message, error = _ERRORS[kind]
                extra = {"Retry-After": f"{arg:g}"} if kind == "429" else None
                self._error(status, message, error, extra)
                return
            elif kind == "malformed":
                self._send(200, None, raw=b'{"id": "chatcmpl-x", "choices": [')
                return
            elif kind == "close":
                self.close_connection = True
                return
            result = server.complete(body)
            if kind == "empty":
                result["choices"][0]["message"]["content"] = ""
            if kind == "usage":
                n = int(arg)
                result["usage"] = {"prompt_tokens": n, "completion_tokens": n,
                                   "total_tokens": 2 * n}  # fmt: skip
            server._count("completions")
            if kind == "trickle":
                self._trickle(result, arg)
            else:
                self._send(200, result)
        except _BadRequest as exc:
            self._error(400, str(exc), "invalid_request_error")
        except CloudError as exc:
            self._error(502, str(exc), "upstream_error")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out); nothing to answer
