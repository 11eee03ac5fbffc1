"""The sympy helper's verdicts belong to their request: ids on every reply, stale replies
discarded, and an interrupted or overrun comparison never leaves a reply for a later one."""

import json
import math
import signal

import numpy as np
import pytest

from offload_gym.envs.config import EnvConfig
from offload_gym.scoring import symbolic

SAME = ("(x + 1)**2", "x**2 + 2*x + 1")  # True
DIFFERENT = ("(x + 1)**2", "x**2 + 1")  # False


class _Interrupt(Exception):
    pass


def _raise(*_):
    raise _Interrupt


def test_a_stale_reply_is_discarded_not_taken_as_the_next_verdict():
    symbolic._kill()
    proc = symbolic._start()
    # an earlier request whose reply was never read (True), then a new request (False)
    proc.stdin.write(json.dumps([-1, *SAME]) + "\n")
    proc.stdin.flush()
    before = symbolic.stats["stale"]
    assert symbolic.sympy_equivalent(*DIFFERENT, timeout=30) is False
    assert symbolic.stats["stale"] == before + 1
    assert symbolic.sympy_equivalent(*SAME, timeout=30) is True


@pytest.mark.parametrize("timeout", [0, -1.0, math.inf, math.nan])
def test_a_bad_timeout_is_an_error_verdict_not_a_hang(timeout):
    result = symbolic.sympy_equivalent(*SAME, timeout=timeout)
    assert isinstance(result, str) and "finite timeout > 0" in result


@pytest.mark.parametrize("timeout", [0, -2.0, math.inf, math.nan])
def test_the_env_config_refuses_an_unbounded_checker_timeout(timeout):
    with pytest.raises(ValueError, match="checker_timeout must be a finite number"):
        EnvConfig(checker_timeout=timeout)


def test_an_overrun_comparison_does_not_answer_the_next_one():
    # a slow request that overruns its limit, then quick ones: each gets its own verdict
    assert symbolic.sympy_equivalent("9**(9**(9**9))", "9**(9**(9**9))+1", timeout=0.3) is None
    assert symbolic.sympy_equivalent(*DIFFERENT, timeout=30) is False
    assert symbolic.sympy_equivalent(*SAME, timeout=30) is True


def test_comparisons_interrupted_at_random_points_never_mix_verdicts():
    """An exception (as Ctrl-C raises) lands at a random moment of a comparison, 12 times; after
    each, alternating comparisons must still get their own verdicts."""
    rng = np.random.default_rng(0)
    previous = signal.signal(signal.SIGALRM, _raise)
    interrupted = 0
    try:
        for _ in range(12):
            signal.setitimer(signal.ITIMER_REAL, float(rng.uniform(0.0005, 0.05)))
            try:
                for _ in range(200):
                    symbolic.sympy_equivalent(*SAME, timeout=30)
            except _Interrupt:
                interrupted += 1
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            for pair, expected in ((DIFFERENT, False), (SAME, True), (DIFFERENT, False)):
                assert symbolic.sympy_equivalent(*pair, timeout=30) is expected
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert interrupted == 12
