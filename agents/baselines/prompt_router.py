"""A router that reads only what a deployed router can read: the prompt and the local model's
confidence.

Hybrid-LLM (Ding et al., 2024) routes a query by a classifier over the query text that predicts
the quality gap between the small and the large model. Its encoder is a pre-trained DeBERTa; no
pre-trained encoder can be downloaded here, so the text features are TF-IDF weights of character
n-grams (the classic text-classification baseline, which sees digits, operators, keywords and
the length of the numbers), next to the logit of the local model's confidence. A logistic
regression predicts whether the cloud is right where the local model is wrong; the threshold is
set on out-of-fold scores so that the router offloads the target rate.

>>> pairs = [(a, b) for a in range(14) for b in range(14)]
>>> prompts = np.array([f"Compute {a} + {b}." for a, b in pairs])
>>> hard = np.array([max(a, b) >= 10 for a, b in pairs])  # a two-digit term: the SLM fails
>>> fit, new = slice(0, None, 2), slice(1, None, 2)  # calibrate on half, route the other half
>>> conf = np.full(len(prompts), 0.9)
>>> router = PromptRouter(seed=0).fit(prompts[fit], conf[fit], ~hard[fit],
...                                   np.ones(len(prompts) // 2, bool), rate=0.2)
>>> sent = router.route(prompts[new], conf[new], rate=0.2)
>>> int(sent.sum()), bool((hard[new] >= sent).all())  # floor(0.2 * 98) calls, only hard ones
(19, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


class PromptRouter:
    """A Hybrid-LLM-style quality-gap router over the prompt text and the local confidence.

    Args:
        ngram_range: Character n-gram lengths of the text features.
        max_features: Most frequent n-grams kept.
        C: Inverse L2 strength of the logistic regression.
        folds: Folds of the out-of-fold scores the threshold is calibrated on (fewer when a
            class has fewer members; in-sample scores when it has fewer than 2).
        seed: Seeds the fold split.
    """

    def __init__(
        self,
        ngram_range: tuple[int, int] = (1, 4),
        max_features: int = 4096,
        C: float = 1.0,
        folds: int = 5,
        seed: int = 0,
    ) -> None:
        if not 1 <= ngram_range[0] <= ngram_range[1]:
            raise ValueError(f"ngram_range must be (lo, hi) with 1 <= lo <= hi, got {ngram_range}")
        if not C > 0:
            raise ValueError(f"C must be > 0, got {C}")
        self.ngram_range, self.max_features, self.C = ngram_range, max_features, C
        self.folds, self.seed = folds, seed
        self.threshold = np.inf
        self._vectorizer: Any = None
        self._model: Any = None

    def _classifier(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=2000)

    def _features(self, prompts: Sequence[str], confidences: Sequence[float]) -> Any:
        from scipy import sparse

        conf = np.clip(np.asarray(confidences, dtype=np.float64), 1e-4, 1 - 1e-4)
        dense = np.column_stack([np.log(conf / (1 - conf)), conf])
        return sparse.hstack([self._vectorizer.transform(list(prompts)), dense]).tocsr()

    def fit(
        self,
        prompts: Sequence[str],
        confidences: Sequence[float],
        local_correct: Sequence[bool],
        cloud_correct: Sequence[bool],
        rate: float,
    ) -> PromptRouter:
        """Fit on calibration tasks: their prompts, the local model's confidence on each, and
        whether the local model and the cloud answered each right; calibrate the threshold to
        offload ``rate`` of them. Raises ValueError when no task (or every task) gains from the
        cloud: there is nothing to learn."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {rate}")
        n = len(prompts)
        if not n == len(confidences) == len(local_correct) == len(cloud_correct):
            raise ValueError("prompts, confidences and the outcomes must have one entry a task")
        gain = np.asarray(cloud_correct, bool) & ~np.asarray(local_correct, bool)
        if gain.all() or not gain.any():
            raise ValueError("the calibration data has a single class (the cloud gains on all "
                             "or none of its tasks); use more calibration tasks")  # fmt: skip
        self._vectorizer = TfidfVectorizer(analyzer="char", ngram_range=self.ngram_range,
                                           max_features=self.max_features, sublinear_tf=True,
                                           lowercase=False).fit(list(prompts))  # fmt: skip
        x = self._features(prompts, confidences)
        self._model = self._classifier().fit(x, gain)
        folds = min(self.folds, int(gain.sum()), int((~gain).sum()))
        if folds >= 2:
            split = StratifiedKFold(folds, shuffle=True, random_state=self.seed)
            scores = cross_val_predict(self._classifier(), x, gain, cv=split,
                                       method="predict_proba")[:, 1]  # fmt: skip
        else:
            scores = self._model.predict_proba(x)[:, 1]
        self.threshold = float(np.quantile(scores, 1.0 - rate)) if rate > 0 else np.inf
        return self

    def scores(self, prompts: Sequence[str], confidences: Sequence[float]) -> np.ndarray:
        """The predicted probability that the cloud gains on each task."""
        if self._model is None:
            raise RuntimeError("PromptRouter needs fit()")
        return np.asarray(self._model.predict_proba(self._features(prompts, confidences))[:, 1])

    def route(
        self, prompts: Sequence[str], confidences: Sequence[float], rate: float | None = None
    ) -> np.ndarray:
        """Whether to offload each task: its score above the threshold calibrated in `fit`, or,
        with ``rate``, among the ``floor(rate * n)`` highest scores of these tasks (the
        threshold set on the unlabelled queries being routed, which a deployed router can see:
        the offload rate is then exact, and only the ranking is the router's skill)."""
        scores = self.scores(prompts, confidences)
        if rate is None:
            return scores > self.threshold
        return top_share(scores, rate)


def top_share(scores: ArrayLike, rate: float) -> np.ndarray:
    """A mask of the ``floor(rate * n)`` highest ``scores`` (ties broken by position).

    >>> top_share([0.1, 0.9, 0.5, 0.7], 0.5).tolist()
    [False, True, False, True]
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    values = np.asarray(scores, dtype=np.float64)
    k = int(np.floor(rate * len(values) + 1e-9))
    mask = np.zeros(len(values), dtype=bool)
    mask[np.argsort(-values, kind="stable")[:k]] = True
    return mask
