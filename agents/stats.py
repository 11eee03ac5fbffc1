"""Paired comparisons of methods evaluated on the same tasks: the statistics every report
carries (``results.json["comparisons"]``) and ``offload-gym stats`` recomputes from saved runs.

Two methods evaluated on the same tasks are compared task by task (the pair is matched by
seed, episode and step, and must name the same task). For a comparison ``a`` against ``b``:

* ``diff``: mean of ``a`` minus mean of ``b`` over all paired tasks of all seeds.
* ``ci95``: the 95% confidence interval of ``diff``. With two seeds or more it is the
  t interval over the per-seed differences (sample SD, ddof 1, ``n_seeds - 1`` degrees of
  freedom), so that it holds the seed-to-seed training variance and not only the task draw;
  with one seed it is the paired bootstrap (``ci_method`` says which).
* ``ci95_bootstrap``: the percentile interval of a paired bootstrap that resamples tasks within
  each seed (the task-sampling part of the uncertainty alone).
* ``p``: the exact two-sided McNemar test over the discordant tasks (a binary metric such as
  ``correct``), or the Wilcoxon signed-rank test over tasks for a graded one (Rouge-L);
  ``test`` names it.
* ``mde80``: the smallest true difference the run detects with 80% power at the two-sided
  5% level: ``(t[1 - alpha/2, n-1] + t[power, n-1]) * s / sqrt(n)`` over the ``n`` per-seed
  differences with their sample SD ``s``, floored by the same with normal quantiles over the
  per-task differences (the task-sampling part alone, which every seed carries: a sample SD of
  three seeds can be 0 by chance while tasks still differ); with one seed the task-level value
  alone (``mde_basis`` says which bound it is).

>>> def run(values):
...     return [{"seed": 0, "step": i, "task_id": f"t{i}", "correct": c}
...             for i, c in enumerate(values)]
>>> a, b = run([1, 1, 0, 1]), run([0, 1, 0, 0])
>>> c = compare(a, b, "a", "b")
>>> c.diff, c.discordant, round(c.p, 3), c.n_tasks, c.n_seeds
(0.5, (2, 0), 0.5, 4, 1)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _sp

ALPHA = 0.05
"""Two-sided level of every interval and test here."""
POWER = 0.8
"""Power of ``mde80``."""
BOOTSTRAP_SAMPLES = 2000
"""Resamples of the paired bootstrap."""


@dataclass(frozen=True)
class Comparison:
    """One paired comparison, ``a`` against ``b`` (the fields ``results.json`` carries).

    Attributes:
        a: The method compared (usually the run's primary method).
        b: The method it is compared against.
        metric: The per-task record field compared (``correct``, ``rouge_l``...).
        diff: mean(a) - mean(b) over the paired tasks.
        ci95: 95% CI of ``diff`` ([lo, hi]); see ``ci_method``.
        p: Two-sided p-value of ``test``.
        mde80: Minimum detectable difference at 80% power for this run's size; see
            ``mde_basis``.
        n_tasks: Paired tasks over all seeds.
        n_seeds: Seeds.
        ci_method: ``"t over seeds"`` or ``"bootstrap over tasks"`` (one seed).
        ci95_bootstrap: Paired bootstrap CI over tasks within seeds.
        test: ``"mcnemar-exact"`` (binary metric) or ``"wilcoxon"``.
        discordant: (tasks where only ``a`` is right, tasks where only ``b`` is) for a binary
            metric, else None.
        per_seed_diff: The difference in each seed (in seed order).
        mde_basis: ``"seeds"`` or ``"tasks"`` (the larger bound; with one seed always
            ``"tasks"``, which has no training variance in it).
    """

    a: str
    b: str
    metric: str
    diff: float
    ci95: tuple[float, float]
    p: float
    mde80: float | None
    n_tasks: int
    n_seeds: int
    ci_method: str
    ci95_bootstrap: tuple[float, float]
    test: str
    discordant: tuple[int, int] | None
    per_seed_diff: tuple[float, ...]
    mde_basis: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists, non-finite numbers as None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = [_finite(v) for v in value]
            elif isinstance(value, float):
                out[key] = _finite(value)
        return out


def _finite(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def t_interval(values: Sequence[float], alpha: float = ALPHA) -> tuple[float, float]:
    """The t confidence interval of the mean of ``values`` (sample SD, ddof 1).

    >>> lo, hi = t_interval([0.1, 0.2, 0.3])  # mean 0.2, s = 0.1, t(0.975, 2) = 4.303
    >>> round(lo, 4), round(hi, 4)
    (-0.0484, 0.4484)
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"a t interval needs at least 2 values, got {x.size}")
    half = _sp.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts: twice the binomial(n, 1/2)
    tail of the smaller count, capped at 1 (1.0 when there is no discordant pair).

    >>> mcnemar_exact(5, 0)  # 2 * 0.5**5
    0.0625
    >>> mcnemar_exact(3, 3)
    1.0
    """
    if only_a < 0 or only_b < 0:
        raise ValueError(f"discordant counts must be >= 0, got {only_a}, {only_b}")
    n = only_a + only_b
    if n == 0:
        return 1.0
    return float(min(1.0, 2.0 * _sp.binom.cdf(min(only_a, only_b), n, 0.5)))


def mde(values: Sequence[float], alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable mean difference of a one-sample (paired) t-test on ``values``:
    ``(t[1 - alpha/2, n-1] + t[power, n-1]) * s / sqrt(n)``, ``s`` the sample SD.

    >>> round(mde([0.0, 0.1, 0.2]), 4)  # (4.3027 + 1.0607) * 0.1 / sqrt(3)
    0.3097
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"a detectable difference needs at least 2 values, got {x.size}")
    df = x.size - 1
    quantiles = _sp.t.ppf(1 - alpha / 2, df) + _sp.t.ppf(power, df)
    return float(quantiles * x.std(ddof=1) / math.sqrt(x.size))


def mde_normal(values: Sequence[float], alpha: float = ALPHA, power: float = POWER) -> float:
    """The large-sample `mde` (normal quantiles), for many per-task differences.

    >>> round(mde_normal([0.0, 1.0] * 50), 4)  # (1.96 + 0.8416) * 0.5025 / 10
    0.1408
    """
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        raise ValueError(f"a detectable difference needs at least 2 values, got {x.size}")
    quantiles = _sp.norm.ppf(1 - alpha / 2) + _sp.norm.ppf(power)
    return float(quantiles * x.std(ddof=1) / math.sqrt(x.size))


def paired_bootstrap(
    diffs_by_seed: Sequence[Sequence[float]],
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
    alpha: float = ALPHA,
) -> tuple[float, float]:
    """Percentile interval of the mean per-task difference, resampling tasks with replacement
    within each seed (a stratified bootstrap; every seed keeps its size). Deterministic by
    ``seed``.

    >>> paired_bootstrap([[0.5, 0.5, 0.5]])  # no spread, no width
    (0.5, 0.5)
    """
    groups = [np.asarray(d, dtype=float) for d in diffs_by_seed]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("the bootstrap needs at least one task in every seed")
    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    for g in groups:
        idx = rng.integers(0, g.size, size=(samples, g.size))
        total += g[idx].sum(axis=1)
    means = total / sum(g.size for g in groups)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


Key = tuple[int, int, int]


def _by_key(records: Iterable[Mapping[str, Any]], metric: str, name: str) -> dict[Key, Any]:
    out: dict[Key, Any] = {}
    for r in records:
        if metric not in r or r[metric] is None:
            raise ValueError(f"{name}: a record has no {metric!r} value: {dict(r)}")
        key = (int(r.get("seed", 0)), int(r.get("episode", 0)), int(r.get("step", len(out))))
        if key in out:
            raise ValueError(f"{name}: two records for seed/episode/step {key}")
        out[key] = (r.get("task_id"), float(r[metric]))
    return out


def pair(
    records_a: Iterable[Mapping[str, Any]],
    records_b: Iterable[Mapping[str, Any]],
    metric: str = "correct",
    names: tuple[str, str] = ("a", "b"),
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per seed, the values of ``metric`` of both methods on the same tasks, in step order.

    The records must cover the same (seed, episode, step) positions with the same task ids;
    anything else is a ValueError that says where they differ."""
    a = _by_key(records_a, metric, names[0])
    b = _by_key(records_b, metric, names[1])
    if a.keys() != b.keys():
        only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
        raise ValueError(
            f"{names[0]} and {names[1]} were not evaluated on the same steps: "
            f"{len(only_a)} only in {names[0]} (first {only_a[:3]}), "
            f"{len(only_b)} only in {names[1]} (first {only_b[:3]})"
        )
    if not a:
        raise ValueError(f"{names[0]} and {names[1]} have no records to compare")
    out: dict[int, tuple[list[float], list[float]]] = {}
    for key in sorted(a):
        (task_a, va), (task_b, vb) = a[key], b[key]
        if task_a != task_b:
            raise ValueError(
                f"{names[0]} and {names[1]} saw different tasks at seed/episode/step {key}: "
                f"{task_a!r} vs {task_b!r}"
            )
        xs, ys = out.setdefault(key[0], ([], []))
        xs.append(va)
        ys.append(vb)
    return {s: (np.asarray(x), np.asarray(y)) for s, (x, y) in out.items()}


def _is_binary(*arrays: np.ndarray) -> bool:
    return all(bool(np.isin(x, (0.0, 1.0)).all()) for x in arrays)


def compare(
    records_a: Iterable[Mapping[str, Any]],
    records_b: Iterable[Mapping[str, Any]],
    a: str,
    b: str,
    metric: str = "correct",
    *,
    bootstrap_seed: int = 0,
) -> Comparison:
    """The paired comparison of ``a`` against ``b`` on ``metric`` (see the module doc)."""
    seeds = pair(records_a, records_b, metric, (a, b))
    xs = np.concatenate([x for x, _ in seeds.values()])
    ys = np.concatenate([y for _, y in seeds.values()])
    d = xs - ys
    per_seed = tuple(float((x - y).mean()) for x, y in seeds.values())
    boot = paired_bootstrap([x - y for x, y in seeds.values()], seed=bootstrap_seed)
    by_tasks = mde_normal(d) if d.size >= 2 else None
    mde80, basis = by_tasks, "tasks"
    if len(seeds) >= 2:
        ci, ci_method = t_interval(per_seed), "t over seeds"
        by_seeds = mde(per_seed)
        if by_tasks is None or by_seeds >= by_tasks:
            mde80, basis = by_seeds, "seeds"
    else:
        ci, ci_method = boot, "bootstrap over tasks"
    if _is_binary(xs, ys):
        only_a, only_b = int(((xs == 1) & (ys == 0)).sum()), int(((xs == 0) & (ys == 1)).sum())
        p, test, disc = mcnemar_exact(only_a, only_b), "mcnemar-exact", (only_a, only_b)
    else:
        p = 1.0 if not np.any(d) else float(_sp.wilcoxon(xs, ys, zero_method="zsplit").pvalue)
        test, disc = "wilcoxon", None
    return Comparison(a=a, b=b, metric=metric, diff=float(d.mean()), ci95=ci, p=p, mde80=mde80,
                      n_tasks=int(d.size), n_seeds=len(seeds), ci_method=ci_method,
                      ci95_bootstrap=boot, test=test, discordant=disc, per_seed_diff=per_seed,
                      mde_basis=basis)  # fmt: skip


def compare_all(
    logs: Mapping[str, Sequence[Mapping[str, Any]]],
    primary: str,
    metric: str = "correct",
    *,
    against: Sequence[str] | None = None,
) -> list[Comparison]:
    """``primary`` against every other method of ``logs`` (or those named in ``against``)."""
    if primary not in logs:
        raise ValueError(f"primary method {primary!r} is not in the run; it has {list(logs)}")
    others = [m for m in (against if against is not None else logs) if m != primary]
    missing = [m for m in others if m not in logs]
    if missing:
        raise ValueError(f"methods {missing} are not in the run; it has {list(logs)}")
    return [compare(logs[primary], logs[m], primary, m, metric) for m in others]


def comparisons_table(comparisons: Sequence[Comparison]) -> str:
    """The comparisons as a Markdown table (with a line that says what each column is)."""
    rows = ["| a | b | metric | diff (a - b) | 95% CI | p | mde80 | tasks | seeds |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in comparisons:
        mde80 = "n/a" if c.mde80 is None else f"{c.mde80:.3f}"
        rows.append(f"| {c.a} | {c.b} | {c.metric} | {c.diff:+.3f} | "
                    f"[{c.ci95[0]:+.3f}, {c.ci95[1]:+.3f}] | {c.p:.3g} | {mde80} | "
                    f"{c.n_tasks} | {c.n_seeds} |")  # fmt: skip
    methods = sorted({c.ci_method for c in comparisons})
    tests = sorted({c.test for c in comparisons})
    note = (
        f"\nPaired over the same tasks. 95% CI: {' / '.join(methods)} (t: sample SD, ddof 1, "
        f"over per-seed differences); p: {' / '.join(tests)} over tasks; mde80: the smallest "
        "difference this run detects with 80% power at the 5% level (from the per-seed "
        "differences, floored by the task-level value; from per-task differences alone with one "
        "seed, which leaves out the training variance).\n"
    )
    return "\n".join(rows) + "\n" + note


__all__ = [
    "ALPHA",
    "POWER",
    "Comparison",
    "compare",
    "compare_all",
    "comparisons_table",
    "mcnemar_exact",
    "mde",
    "mde_normal",
    "pair",
    "paired_bootstrap",
    "t_interval",
]


def mean_pm(mean: float, sd: float | None, n_seeds: int) -> str:
    """``"0.500 ± 0.033"`` (the sample SD over seeds), or ``"0.500"`` with one seed, where an SD
    means nothing.

    >>> mean_pm(0.5, 0.0333, 3), mean_pm(0.5, 0.0, 1)
    ('0.500 ± 0.033', '0.500')
    """
    return f"{mean:.3f}" if n_seeds < 2 or sd is None else f"{mean:.3f} ± {sd:.3f}"
