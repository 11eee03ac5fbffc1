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

Hardening, as an OpenAI endpoint behaves: an optional API key (``api_key``; a request without
``Authorization: Bearer <key>`` gets 401 ``invalid_api_key``); bodies above ``max_body_bytes``
get 413 (unread, and the connection is closed); a body that is not a JSON object, or is nested
too deeply to parse, gets 400 with a JSON error body; a model name other than the served one
gets 404 ``model_not_found``; ``"stream": true`` is answered as server-sent events
(``chat.completion.chunk`` objects, then ``data: [DONE]``), which the openai client reads;
reads of headers and bodies time out after ``read_timeout`` seconds, and at most
``max_connections`` connections are served at once (the rest get 503).

``faults`` makes the server misbehave on purpose, one fault per request in order, to test
clients: ``"slow:S"`` (answer after S seconds), ``"429:S"`` (rate limited, ``Retry-After: S``),
``"400"`` (a bad request, which clients must not retry), ``"500"``, ``"malformed"`` (a body
that is not JSON), ``"close"`` (drop the connection without a response), ``"empty"`` (an
answer with no content), ``"usage:N"`` (an answer that reports N prompt and N completion
tokens, e.g. -5 or 1e12), ``"trickle:S"`` (a good answer sent one byte every S seconds: each
read is quick, the whole body slow).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
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
MAX_BODY_BYTES = 1 << 20
"""Default largest request body (1 MiB: a chat request with a long prompt is a few kB)."""
API_KEY_ENV = "OFFLOAD_GYM_API_KEY"
"""The environment variable ``offload-gym serve`` reads its API key from (``--api-key``
overrides it)."""


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
        api_key: When set, every request must carry ``Authorization: Bearer <api_key>``.
        max_body_bytes: Largest request body accepted.
        read_timeout: Seconds a connection may take to send a request's headers or body (and
            may stay idle between requests).
        max_connections: Connections served at once.
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
        api_key: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
        read_timeout: float = 30.0,
        max_connections: int = 64,
    ) -> None:
        if not isinstance(cloud, CloudModel):
            raise TypeError(f"cloud must implement CloudModel (quote, answer), got {cloud!r}")
        _check_limits(api_key, max_body_bytes, read_timeout, max_connections)
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.read_timeout = read_timeout
        self.cloud = cloud
        self.model_name = model_name
        self.faults = deque(_parse_fault(f) for f in faults)
        self.verbose = verbose
        self.known = {t.prompt.strip(): t for t in known_tasks}
        self.stats = {"requests": 0, "completions": 0, "errors": 0, "faults_injected": 0,
                      "recognised": 0}  # fmt: skip
        self._lock = threading.Lock()
        self._httpd = _BoundedServer((host, port), self._handler_class(), max_connections)
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
        return type("Handler", (_Handler,), {"cloud_server": self, "timeout": self.read_timeout})

    def authorised(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the server's key (always, without one)."""
        if self.api_key is None:
            return True
        scheme, _, token = (header or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )


def _check_limits(
    api_key: str | None, max_body_bytes: int, read_timeout: float, max_connections: int
) -> None:
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip()):
        raise ValueError("api_key must be a non-empty string (or None: no key required)")
    for name, value in (("max_body_bytes", max_body_bytes), ("max_connections", max_connections)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    if not (isinstance(read_timeout, int | float) and math.isfinite(read_timeout)
            and read_timeout > 0):  # fmt: skip
        raise ValueError(f"read_timeout must be a finite number of seconds > 0, got "
                         f"{read_timeout!r}")  # fmt: skip


class _BoundedServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most ``max_connections`` connections at once;
    one more is answered 503 and closed at once."""

    daemon_threads = True

    def __init__(self, address: Any, handler: Any, max_connections: int) -> None:
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            body = json.dumps({"error": {"message": "too many connections", "type":
                                         "server_error", "code": 503}}).encode()  # fmt: skip
            head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
            with contextlib.suppress(OSError):
                request.sendall(head.encode() + body)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


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

    def _send_events(self, result: dict[str, Any], body: dict[str, Any]) -> None:
        """A completion as server-sent events, as OpenAI streams one: a chunk with the role,
        one with the content, one with the finish reason (and, with ``stream_options``
        ``include_usage``, one with the usage), then ``data: [DONE]``."""
        base = {"id": result["id"], "object": "chat.completion.chunk",
                "created": result["created"], "model": result["model"]}  # fmt: skip
        choice = result["choices"][0]
        deltas = [{"role": "assistant", "content": ""},
                  {"content": choice["message"]["content"]}, {}]  # fmt: skip
        chunks = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason":
                                        None if d else choice["finish_reason"]}]}
                  for d in deltas]  # fmt: skip
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage") is True:
            chunks.append({**base, "choices": [], "usage": result["usage"]})
        data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
        data += b"data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Content-Length", str(len(data)))
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
               headers: dict[str, str] | None = None, code: Any = None) -> None:  # fmt: skip
        self.cloud_server._count("errors")
        error = {"message": message, "type": kind, "param": None,
                 "code": status if code is None else code}  # fmt: skip
        self._send(status, {"error": error}, headers)

    def _unauthorised(self) -> bool:
        """Answer 401 (as OpenAI does) when the request lacks the server's key."""
        if self.cloud_server.authorised(self.headers.get("Authorization")):
            return False
        self._error(401, "Incorrect API key provided. Send it as 'Authorization: Bearer <key>' "
                    "(the openai client's api_key).", "invalid_request_error",
                    code="invalid_api_key")  # fmt: skip
        return True

    def do_GET(self) -> None:
        server = self.cloud_server
        if self._unauthorised():
            return
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": server.model_name, "object": "model", "owned_by": "offload-gym",
                     "offload_needs_task": server.needs_task}  # fmt: skip
            self._send(200, {"object": "list", "data": [model]})
        elif self.path.rstrip("/") == "/stats":
            with server._lock:
                self._send(200, dict(server.stats))
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def _read_raw(self) -> bytes | None:
        """The request's body, or None after answering 400, 411 or 413 and closing the
        connection (a body left unread would be read as the next request)."""
        limit = self.cloud_server.max_body_bytes
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        problem = None
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            problem = (411, "send the body with a Content-Length (chunked bodies are not read)")
        elif length < 0:
            problem = (400, "Content-Length is not a number >= 0")
        elif length > limit:
            problem = (413, f"the request body is {length:,} bytes; the limit is {limit:,}")
        if problem is not None:
            self.close_connection = True
            self._error(problem[0], problem[1], "invalid_request_error")
            return None
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the client stopped sending (or the read timed out)
            self.close_connection = True
            return None
        return raw

    def _read_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after answering 401, 404, 400 or 413. The body
        is read before any answer, so a refused request leaves the connection usable."""
        try:
            raw = self._read_raw()
        except TimeoutError:
            self.close_connection = True
            return None
        if raw is None or self._unauthorised():
            return None
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {self.path} (this server answers "
                        "/v1/chat/completions)", "not_found")  # fmt: skip
            return None
        self.cloud_server._count("requests")
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise _BadRequest("the body must be a JSON object")
        except RecursionError:
            self._error(400, "bad request body: JSON nested too deeply", "invalid_request_error")
            return None
        except (ValueError, json.JSONDecodeError) as exc:
            self._error(400, f"bad request body: {exc}", "invalid_request_error")
            return None
        name = self.cloud_server.model_name
        if body.get("model") != name:
            self._error(404, f"The model `{body.get('model')}` does not exist or you do not have "
                        f"access to it. This server serves `{name}`.", "invalid_request_error",
                        code="model_not_found")  # fmt: skip
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
            elif body.get("stream") is True:
                self._send_events(result, body)
            else:
                self._send(200, result)
        except _BadRequest as exc:
            self._error(400, str(exc), "invalid_request_error")
        except CloudError as exc:
            self._error(502, str(exc), "upstream_error")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. timed out); nothing to answer
