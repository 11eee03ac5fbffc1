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

import hashlib
import hmac
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from offload_gym._serve_http import _BadRequest, _BoundedServer, _check_limits, _Handler
from offload_gym.models.base import CloudModel, CloudResponse
from offload_gym.models.chat import PARTIAL_PREFIX
from offload_gym.tasks.base import Task

FAULTS = ("slow", "429", "400", "500", "malformed", "close", "empty", "usage", "trickle")
MAX_BODY_BYTES = 1 << 20
"""Default largest request body (1 MiB: a chat request with a long prompt is a few kB)."""
API_KEY_ENV = "OFFLOAD_GYM_API_KEY"
"""The environment variable ``offload-gym serve`` reads its API key from (``--api-key``
overrides it)."""


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
