"""A real cloud: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, Ollama,
llama.cpp server, or ``offload-gym serve``).

Calls time out, are retried a bounded number of times with exponential backoff (a 429's
``Retry-After`` is honoured), run in parallel up to a concurrency limit, and are billed from the
response's token usage with a price table. After the retries a call raises `CloudError` naming
the endpoint and the cause; the environments either stop with it or count the task as a failed
offload (``cloud_failure="local"``). The API key is read from the environment (or given) and
never appears in reprs, logs, errors or results.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from offload_gym.models._errors import error_body, retry_after, root_cause
from offload_gym.models.base import CloudError, CloudResponse, pair_partials
from offload_gym.models.chat import PARTIAL_PREFIX, SYSTEM_PROMPTS, PriceTable, task_payload
from offload_gym.tasks.base import Task
from offload_gym.validation import require_int

MAX_RESPONSE_BYTES = 4 << 20
"""Largest response body `OpenAICloud` reads (4 MiB: a 512-token answer is a few kB); a
larger one is a malformed response."""


class _TooLarge(ValueError):
    """A response body past `MAX_RESPONSE_BYTES`."""


def _check_args(*, model: str, timeout: float, call_timeout: float | None, max_retries: int,
                concurrency: int, max_tokens: int, backoff_s: float, max_backoff_s: float,
                temperature: float, send_task: Any) -> None:  # fmt: skip
    """`OpenAICloud`'s arguments, each refused with what was expected."""
    if not model:
        raise ValueError("model must name the served model")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if call_timeout is not None and not call_timeout > 0:
        raise ValueError(f"call_timeout must be None or > 0 seconds, got {call_timeout!r}")
    require_int("max_retries", max_retries, minimum=0)
    require_int("concurrency", concurrency)
    require_int("max_tokens", max_tokens)
    if backoff_s < 0 or max_backoff_s < 0:
        raise ValueError("backoff_s and max_backoff_s must be >= 0")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if send_task not in (True, False, "auto"):
        raise ValueError(f"send_task must be True, False or 'auto', got {send_task!r}")


ABSURD_USAGE = 10
"""Reported usage beyond this many times the call's bound is an error, not a bill."""


class _ImpossibleUsage(Exception):
    """A response whose reported usage cannot be true (the call was made: possibly billed)."""


class _Abandoned(Exception):
    """An attempt that outran its deadline (the request may still complete server-side)."""


class OpenAICloud:
    """A `CloudModel` behind an OpenAI-compatible chat-completions API.

    Args:
        model: The served model's name.
        base_url: The API root (e.g. ``http://127.0.0.1:8000/v1``); None for OpenAI itself.
        api_key: The key; by default read from the environment variable ``api_key_env``.
            Servers that need none (vLLM, Ollama, ``offload-gym serve``) get a placeholder.
        api_key_env: Where to read the key from.
        timeout: Seconds one attempt may take in all (connect, headers and the whole body: a
            server that trickles its answer is cut off at this deadline too); then it is
            abandoned and retried. An abandoned attempt may still be completed and billed by
            the provider: it is counted (``unconfirmed_attempts``) and the ledger reports it
            in its upper bound of real spend.
        call_timeout: Seconds one call may take with all its retries and waits (default: every
            attempt's ``timeout`` plus the back-off waits); retries happen within it.
        max_retries: Retries after the first attempt (timeouts, 429, 5xx, broken or malformed
            responses, empty answers); other 4xx errors are not retried.
        backoff_s: First wait between attempts, doubled each time, capped by ``max_backoff_s``;
            a 429's ``Retry-After`` replaces it (also capped).
        max_backoff_s: Longest wait between attempts.
        concurrency: Requests in flight at once (`answer_many` runs a batch in parallel).
        prices: A `PriceTable` (or a dict of its fields) for the cost of a call.
        max_tokens: Longest completion.
        temperature: Sampling temperature (0: greedy where the server supports it).
        system_prompts: System prompt by task domain (None: no system message).
        send_task: Also send the task itself (``offload_task`` in the request body), which a
            simulated cloud behind ``offload-gym serve`` needs; real servers reject or ignore it.
            ``"auto"``: send it only to a server whose ``/v1/models`` lists the model with
            ``offload_needs_task`` (``offload-gym serve --model simulated``), asked once, before
            the first call; never to the default OpenAI endpoint.
    """

    deterministic = False  # a network service: the environments flag their spec accordingly

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        call_timeout: float | None = None,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        concurrency: int = 8,
        prices: PriceTable | Mapping[str, float] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        system_prompts: Mapping[str, str] | None = SYSTEM_PROMPTS,
        send_task: bool | str = False,
    ) -> None:
        import openai

        _check_args(model=model, timeout=timeout, call_timeout=call_timeout,
                    max_retries=max_retries, concurrency=concurrency, max_tokens=max_tokens,
                    backoff_s=backoff_s, max_backoff_s=max_backoff_s, temperature=temperature,
                    send_task=send_task)  # fmt: skip
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise ValueError(
                    f"no API key: set the environment variable {api_key_env} or pass api_key"
                )
            key = "no-key"  # local servers need none; the client insists on a value
        self.model = model
        self.base_url = base_url
        self.endpoint = f"{(base_url or 'https://api.openai.com/v1').rstrip('/')} ({model})"
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.backoff_s, self.max_backoff_s = float(backoff_s), float(max_backoff_s)
        waits = sum(min(self.max_backoff_s, self.backoff_s * 2**a) for a in range(max_retries))
        self.call_timeout = (float(call_timeout) if call_timeout is not None
                             else self.timeout * (max_retries + 1) + waits)  # fmt: skip
        self.unconfirmed_attempts = 0
        self.concurrency = concurrency
        self.prices = prices if isinstance(prices, PriceTable) else PriceTable(**(prices or {}))
        self.max_tokens = max_tokens
        self.temperature = float(temperature)
        self.system_prompts = dict(system_prompts) if system_prompts else {}
        self.send_task = send_task
        self._auto_task: bool | None = None
        self.api_key_env = api_key_env
        self.requests = 0
        self.failures = 0
        self._key = key
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._client = openai.OpenAI(
            api_key=key, base_url=base_url, timeout=self.timeout, max_retries=0
        )

    def __repr__(self) -> str:  # never the key
        return (
            f"OpenAICloud(model={self.model!r}, base_url={self.base_url!r}, "
            f"max_tokens={self.max_tokens}, temperature={self.temperature})"
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> OpenAICloud:
        return self  # a handle on a remote service: copies share it (Gymnasium copies specs)

    def __getstate__(self) -> dict[str, Any]:
        # Pickles (checkpoints of environments) never hold the key: it is read again from
        # ``api_key_env`` on load.
        state = self.__dict__.copy()
        for name in ("_key", "_client", "_slots", "_lock"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import openai

        self.__dict__.update(state)
        self._key = os.environ.get(self.api_key_env) or "no-key"
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._lock = threading.Lock()
        self._client = openai.OpenAI(
            api_key=self._key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    # ------------------------------------------------------------------ requests
    def messages(self, task: Task, partial: str | None = None) -> list[dict[str, str]]:
        """The chat messages for a task (and a local partial response)."""
        msgs = []
        system = self.system_prompts.get(task.domain, self.system_prompts.get("math"))
        if system:
            msgs.append({"role": "system", "content": system})
        user = task.prompt
        if partial:
            user += "\n\n" + PARTIAL_PREFIX + partial
        msgs.append({"role": "user", "content": user})
        return msgs

    def cache_key(self, task: Task, partial: str | None = None) -> str:
        """Endpoint, model, messages and sampling parameters (not the API key): two servers
        that serve the same model name never share an answer."""
        raw = json.dumps([self.endpoint, self.model, self.messages(task, partial),
                          self.max_tokens, self.temperature], sort_keys=True)  # fmt: skip
        return "openai:" + hashlib.sha256(raw.encode()).hexdigest()

    def quote(self, task: Task, partial: str | None = None) -> float:
        """An upper bound of the call's cost: a token per UTF-8 byte of the messages (BPE
        tokens are at least a byte) plus 8 per message for the chat format, and
        ``max_tokens`` of completion."""
        msgs = self.messages(task, partial)
        prompt = sum(len(m["content"].encode()) + 8 for m in msgs)
        return self.prices.cost(prompt, self.max_tokens)

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        with self._slots:
            return self._answer(task, partial)

    def answer_many(
        self, tasks: Sequence[Task], partials: Sequence[str | None] | None = None
    ) -> list[CloudResponse]:
        """A batch of calls, ``concurrency`` in flight at once; results in order."""
        pairs = pair_partials(tasks, partials)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda pair: self.answer(*pair), pairs))

    def _answer(self, task: Task, partial: str | None) -> CloudResponse:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "messages": self.messages(task, partial),
                                  "max_tokens": self.max_tokens,
                                  "temperature": self.temperature}  # fmt: skip
        if self._sends_task():
            kwargs["extra_body"] = {"offload_task": task_payload(task)}
        cause = "no attempt"
        deadline = time.monotonic() + self.call_timeout
        unconfirmed = made = 0
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            limit = min(self.timeout, deadline - time.monotonic())
            if limit <= 0:
                cause = f"no answer within the call's {self.call_timeout:g} s"
                break
            with self._lock:
                self.requests += 1
            made += 1
            start = time.perf_counter()
            try:
                resp = self._attempt(kwargs, limit)
                answer = self._response(resp, kwargs["messages"], time.perf_counter() - start,
                                        unconfirmed)  # fmt: skip
                if answer is not None:
                    return answer
                cause = "empty answer"
            except openai.RateLimitError as exc:
                cause = "429 rate limited"
                after = retry_after(exc.response)
                if after is not None:
                    wait = min(self.max_backoff_s, after)
            except (openai.APITimeoutError, _Abandoned):
                cause = f"no complete answer within {limit:.3g} s"
                unconfirmed += 1  # sent, not answered: the provider may still bill it
                with self._lock:
                    self.unconfirmed_attempts += 1
            except openai.APIConnectionError as exc:
                cause = f"connection failed ({root_cause(exc)})"
            except openai.APIStatusError as exc:
                cause = f"HTTP {exc.status_code}"
                if exc.status_code < 500 and exc.status_code not in (408, 409):
                    self._fail()
                    raise CloudError(self.endpoint, self._scrub(f"{cause}: {error_body(exc)}"),
                                     unconfirmed_attempts=unconfirmed) from None  # fmt: skip
            except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError,
                    AttributeError, IndexError, TypeError) as exc:  # fmt: skip
                what = exc if isinstance(exc, _TooLarge) else type(exc).__name__
                cause = f"malformed response ({what})"
            if attempt < self.max_retries:
                time.sleep(max(0.0, min(wait, deadline - time.monotonic())))
        self._fail()
        raise CloudError(self.endpoint, self._scrub(f"{cause} (after {made} attempts)"),
                         unconfirmed_attempts=unconfirmed)  # fmt: skip

    def _response(self, resp: Any, messages: list[dict[str, str]], latency: float,
                  unconfirmed: int) -> CloudResponse | None:  # fmt: skip
        """The answer in a reply (None when it is empty). Impossible usage is a CloudError,
        not retried: the server did answer, so the attempt is counted as possibly billed."""
        text = resp.choices[0].message.content if resp.choices else None
        if not text or not text.strip():
            return None
        try:
            prompt_t, completion_t = self._billed_tokens(resp.usage, messages)
        except _ImpossibleUsage as exc:
            self._fail()
            with self._lock:
                self.unconfirmed_attempts += 1
            raise CloudError(self.endpoint, self._scrub(str(exc)),
                             unconfirmed_attempts=unconfirmed + 1) from None  # fmt: skip
        return CloudResponse(text, prompt_t, completion_t, self.prices.cost(prompt_t, completion_t),
                             latency, unconfirmed_attempts=unconfirmed)  # fmt: skip

    def _billed_tokens(self, usage: Any, messages: list[dict[str, str]]) -> tuple[int, int]:
        """Prompt and completion tokens to bill: the reported usage, capped by the quote's
        bound (a chat template may add a few tokens beyond it); omitted usage bills the bound.
        Usage that cannot be true (negative, not a count, or more than `ABSURD_USAGE` times
        the bound: a server reporting 1e12 tokens) raises `_ImpossibleUsage`: a clear error,
        never a crash or an absurd cost in a reward."""
        bound_p = sum(len(m["content"].encode()) + 8 for m in messages)
        counts = None if usage is None else (usage.prompt_tokens, usage.completion_tokens)
        if counts is None:
            return bound_p, self.max_tokens
        valid = all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts)
        if (
            not valid
            or counts[0] > ABSURD_USAGE * bound_p
            or counts[1] > ABSURD_USAGE * (self.max_tokens)
        ):
            raise _ImpossibleUsage(f"impossible usage reported: {counts[0]!r} prompt and "
                                   f"{counts[1]!r} completion tokens (the call's bound: "
                                   f"{bound_p} and {self.max_tokens})")  # fmt: skip
        return min(counts[0], bound_p), min(counts[1], self.max_tokens)

    def _attempt(self, kwargs: dict[str, Any], limit: float) -> Any:
        """One request that returns within ``limit`` seconds in all, or raises `_Abandoned`.
        The client's own timeouts are per read (a server trickling its body one byte at a time
        would hold a call for as long as it likes), so the request runs in a daemon thread
        and is abandoned at the deadline; the thread ends when the server does."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["response"] = self._capped_create(kwargs, limit)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=run, name="openai-cloud-attempt", daemon=True).start()
        if not done.wait(limit):
            raise _Abandoned
        if "error" in box:
            raise box["error"]
        return box["response"]

    def _capped_create(self, kwargs: dict[str, Any], limit: float) -> Any:
        """The chat completion, its body read in pieces and refused past `MAX_RESPONSE_BYTES`
        (a ValueError: a malformed response), so a server cannot fill the client's memory."""
        from openai.types.chat import ChatCompletion

        create = self._client.chat.completions.with_streaming_response.create
        with create(**kwargs, timeout=limit) as raw:
            data = bytearray()
            for piece in raw.iter_bytes():
                data += piece
                if len(data) > MAX_RESPONSE_BYTES:
                    raise _TooLarge(f"response body over {MAX_RESPONSE_BYTES:,} bytes")
        return ChatCompletion.model_validate(json.loads(bytes(data)))

    def _sends_task(self) -> bool:
        """``send_task``, with ``"auto"`` resolved once from the server's model list (a server
        that cannot be asked, or does not say, gets no task)."""
        if self.send_task != "auto":
            return bool(self.send_task)
        with self._lock:
            if self._auto_task is None and self.base_url is None:
                self._auto_task = False
            if self._auto_task is None:
                try:
                    models = self._client.models.list().data
                except Exception:  # the server could not be asked: no task now, ask again later
                    return False
                self._auto_task = any(
                    m.id == self.model and (getattr(m, "model_extra", None) or {}).get(
                        "offload_needs_task") for m in models)  # fmt: skip
            return self._auto_task

    def _fail(self) -> None:
        with self._lock:
            self.failures += 1

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text
