"""The two model protocols the environments talk to, and their response records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from offload_gym.tasks.base import Task


class CloudError(RuntimeError):
    """A cloud call failed for good (after any retries).

    Attributes:
        endpoint: Where the call went (a URL or a model name; never a key).
        cause: What went wrong, in words.
        unconfirmed_attempts: Attempts abandoned after they were sent (timed out): the
            provider may still have completed and billed them.
    """

    def __init__(self, endpoint: str, cause: str, *, unconfirmed_attempts: int = 0) -> None:
        super().__init__(f"cloud call to {endpoint} failed: {cause}")
        self.endpoint, self.cause = endpoint, cause
        self.unconfirmed_attempts = unconfirmed_attempts


class CloudResponse(NamedTuple):
    """A cloud model's answer.

    Attributes:
        text: The response text (its final answer is extracted by the verifier).
        prompt_tokens: Input tokens billed.
        completion_tokens: Output tokens billed.
        cost: Price of the call in the model's currency (e.g. USD).
        latency_s: Wall-clock (or simulated) seconds the call took.
        cached: Whether the answer came from a cache.
        unconfirmed_attempts: Earlier attempts of this call abandoned after they were sent
            (timed out, then retried): the provider may have completed and billed them too.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_s: float
    cached: bool = False
    unconfirmed_attempts: int = 0


class LocalResponse(NamedTuple):
    """A local model's answer for the router view.

    Attributes:
        text: The response text.
        confidence: The model's confidence in its answer, in [0, 1].
        tokens: Tokens generated.
        latency_s: Seconds (real or simulated) the answer took.
    """

    text: str
    confidence: float
    tokens: int
    latency_s: float


@runtime_checkable
class CloudModel(Protocol):
    """Answers a task, optionally continuing a local partial response."""

    def quote(self, task: Task, partial: str | None = None) -> float:
        """An upper bound of the cost of `answer` for these arguments (checked before calling)."""
        ...

    def answer(self, task: Task, partial: str | None = None) -> CloudResponse:
        """The cloud's response; its ``cost`` must not exceed `quote` for the same arguments."""
        ...


@runtime_checkable
class LocalModel(Protocol):
    """Produces the local answer and a confidence for the router view."""

    def answer(self, task: Task) -> LocalResponse: ...


def pair_partials(
    tasks: Sequence[Task], partials: Sequence[str | None] | None
) -> list[tuple[Task, str | None]]:
    """``(task, partial)`` pairs of a batch (no partials: None for each task).

    >>> pair_partials([], None)
    []
    """
    partials = list(partials) if partials is not None else [None] * len(tasks)
    if len(partials) != len(tasks):
        raise ValueError(f"{len(tasks)} tasks but {len(partials)} partials")
    return list(zip(tasks, partials, strict=True))
