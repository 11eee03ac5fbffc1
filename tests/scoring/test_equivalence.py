import itertools
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload_gym.scoring import compare, is_equivalent
from offload_gym.scoring.equivalence import split_candidates
from offload_gym.scoring.numbers import parse_number
from tests.scoring.procs import exits_within

from .checker_table import TABLE


def test_table_is_large_enough():
    assert len(TABLE) >= 80
    assert sum(p.expected for p in TABLE) >= 30 and sum(not p.expected for p in TABLE) >= 30


@pytest.mark.parametrize("pair", TABLE, ids=lambda p: f"{p.pred!r}~{p.gold!r}")
def test_checker_table(pair):
    assert is_equivalent(pair.pred, pair.gold) is pair.expected


@pytest.mark.parametrize("pair", [p for p in TABLE if p.mv], ids=lambda p: f"{p.pred!r}~{p.gold!r}")
def test_agrees_with_math_verify_where_it_is_right(pair):
    math_verify = pytest.importorskip("math_verify")
    mv = math_verify.verify(
        math_verify.parse(f"${pair.gold}$"), math_verify.parse(f"${pair.pred}$")
    )
    assert mv is pair.expected


@pytest.mark.parametrize("pair", [p for p in TABLE if not p.mv])
def test_deliberate_differences_are_explained(pair):
    assert pair.why, f"{pair} differs from math-verify without a reason"


def test_list_answers_get_no_partial_credit():
    for pred in ("4, 5", "4 or 5", "4; 5", "\\{4, 5\\}", "4 and 5"):
        assert not is_equivalent(pred, "4"), pred


def test_parse_number_forms():
    assert parse_number("$1,234.50").value * 2 == 2469
    assert parse_number("-\\frac{3}{4}").value == parse_number("-0.75").value
    assert parse_number("3 or 5") is None
    assert parse_number("x") is None
    assert split_candidates("1,234") is None
    assert split_candidates("1, 234") == (["1", "234"], False)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_never_raises_on_garbage(pred, gold):
    verdict = compare(pred, gold, timeout=0.5)
    assert isinstance(verdict.equivalent, bool)


@settings(max_examples=100, deadline=None)
@given(st.integers(-(10**12), 10**12))
def test_integers_in_any_format(n):
    assert is_equivalent(f"{n:,}", str(n))
    assert is_equivalent(f"{n}.0", str(n))
    assert not is_equivalent(str(n + 1), str(n))


def test_adversarial_input_returns_within_the_time_limit():
    # Huge towers defeat the fast evaluator and go to sympy, which gets a time limit.
    start = time.monotonic()
    verdict = compare("9^{9^{9^{9}}}", "9^{9^{9^{9}}} + 1", timeout=1.0)
    elapsed = time.monotonic() - start
    assert verdict.equivalent is False
    assert verdict.method in ("timeout", "symbolic", "error")
    assert elapsed < 1.0 + 60.0  # plus, once, the helper's start (importing sympy)
    start = time.monotonic()
    compare("9^{9^{9^{9}}}", "9^{9^{9^{9}}} + 2", timeout=1.0)
    assert time.monotonic() - start < 5.0
    assert is_equivalent("2", "2")  # and the checker still works afterwards
    assert is_equivalent("\\sqrt{-1}", "i", timeout=5.0)


def test_long_answers_are_not_parsed():
    long = "1+" * 5000 + "1"
    assert compare(long, "5001").method == "unparsed"
    assert compare(long, long).equivalent


def test_gold_must_be_a_string():
    with pytest.raises(TypeError, match="gold"):
        compare("1", 1)  # type: ignore[arg-type]
    assert compare(None, "1").method == "empty"


def test_the_time_limit_bounds_the_whole_comparison_not_each_sympy_call(monkeypatch):
    """A list answer whose items each need sympy: every call draws on one deadline, so a
    6-item set (up to 36 calls) cannot take 36 times the limit."""
    from offload_gym.scoring import symbolic

    calls, seen_limits = [], []

    def slow(pred, gold, *, timeout):
        seen_limits.append(timeout)
        time.sleep(min(0.3, timeout))
        calls.append(1)
        return None if timeout < 0.3 else False  # a call cut by its limit reports a time-out

    monkeypatch.setattr(symbolic, "sympy_equivalent", slow)
    items = [f"x^{{{100_000 + k}}}" for k in range(6)]  # powers beyond the fast evaluator
    start = time.monotonic()
    verdict = compare(", ".join(items), ", ".join(reversed([*items[:-1], "y"])), timeout=1.0)
    elapsed = time.monotonic() - start
    assert not verdict.equivalent and elapsed < 1.6, elapsed
    assert len(calls) <= 5 and all(t <= 1.0 for t in seen_limits)
    assert all(b < a for a, b in itertools.pairwise(seen_limits))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_the_sympy_helper_dies_with_its_host():
    """kill -9 of the host during a long sympy computation: the helper exits within seconds
    instead of keeping a core busy for nobody."""
    import signal
    import subprocess
    import sys

    host = subprocess.Popen(
        [sys.executable, "-c",
         "from offload_gym.scoring import symbolic\n"
         "print(symbolic._start().pid, flush=True)\n"
         "symbolic.sympy_equivalent('9**(9**(9**9))', '9**(9**(9**9))+1', timeout=600)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    helper = int(host.stdout.readline())
    time.sleep(1.0)  # the slow request is in the helper now
    os.kill(host.pid, signal.SIGKILL)
    host.wait(timeout=10)

    assert exits_within(helper, 10)


def test_a_short_lived_caller_thread_does_not_take_the_helper_down():
    import threading

    from offload_gym.scoring import symbolic

    symbolic._kill()
    t = threading.Thread(target=lambda: compare("x^{100000}", "x^{100001}/x", timeout=30.0))
    t.start()
    t.join()  # the thread that first needed the helper is gone
    time.sleep(0.5)
    restarts = symbolic.stats["restarts"]
    assert compare("x^{100000}", "x^{100001}/x", timeout=30.0).equivalent
    assert symbolic.stats["restarts"] == restarts  # the same helper answered
