"""The HTTP side of `offload_gym.serve.CloudServer`: the request handler (keys, sizes, JSON,
models, streaming, injected faults) and a threading server with a cap on connections."""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from offload_gym.models.base import CloudError

if TYPE_CHECKING:
    from offload_gym.serve import CloudServer


class _BadRequest(ValueError):
    pass


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
