import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offload_gym.budget import BudgetLedger

rates = st.floats(0.0, 1.0, allow_nan=False)
sizes = st.integers(1, 300)
quotes = st.floats(0.0, 0.05, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(rates, sizes, st.lists(st.tuples(st.booleans(), quotes), max_size=300))
def test_hard_mode_never_exceeds_the_call_budget(rate, n, actions):
    ledger = BudgetLedger(rate, n, mode="hard")
    for step, (offload, quote) in enumerate(actions[:n]):
        if offload:
            entry = ledger.request(step, quote)
            if entry.granted:
                ledger.charge(entry, quote / 2)
        assert ledger.calls_used <= ledger.calls_allowed <= rate * n + 1e-6
    assert ledger.calls_used + ledger.refused == sum(a for a, _ in actions[:n])


@settings(max_examples=300, deadline=None)
@given(rates, sizes, st.floats(0.0, 0.2), st.lists(st.tuples(st.booleans(), quotes), max_size=200))
def test_hard_mode_never_exceeds_the_cost_budget(rate, n, cost_budget, actions):
    ledger = BudgetLedger(rate, n, cost_budget=cost_budget, mode="hard")
    for step, (offload, quote) in enumerate(actions):
        if offload:
            entry = ledger.request(step, quote)
            if entry.granted:
                ledger.charge(entry, quote)
        assert ledger.cost_used <= cost_budget + 1e-9
        assert ledger.calls_used <= ledger.calls_allowed
        assert 0.0 <= ledger.fraction_left <= 1.0


@settings(max_examples=100, deadline=None)
@given(rates, sizes, st.lists(st.booleans(), max_size=300))
def test_soft_mode_grants_everything_and_reports_overruns(rate, n, actions):
    ledger = BudgetLedger(rate, n, mode="soft")
    for step, offload in enumerate(actions):
        if offload:
            assert ledger.request(step).granted
    calls = sum(actions)
    assert ledger.calls_used == calls
    assert ledger.overruns == max(0, calls - ledger.calls_allowed)
    assert sum(e.over_budget for e in ledger.log) == ledger.overruns


@pytest.mark.parametrize(
    ("rate", "n", "allowed"), [(0.3, 10, 3), (0.29, 100, 29), (0.7, 10, 7), (0.0, 5, 0), (1, 4, 4)]
)
def test_calls_allowed_is_floor_of_rate_times_tasks(rate, n, allowed):
    assert BudgetLedger(rate, n).calls_allowed == allowed


def test_log_and_charge():
    ledger = BudgetLedger(0.5, 4, cost_budget=1.0)
    e = ledger.request(0, quote=0.4)
    fixed = ledger.charge(e, 0.1)
    assert ledger.log == [fixed] and math.isclose(ledger.cost_used, 0.1)
    with pytest.raises(ValueError, match="exceeds the quote"):
        ledger.charge(ledger.request(1, quote=0.1), 0.2)
    refused = ledger.request(2, quote=0.0)
    assert not refused.granted and refused.over_budget
    with pytest.raises(ValueError, match="refused"):
        ledger.charge(refused, 0.0)
    ledger.reset()
    assert ledger.calls_used == 0 and ledger.log == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rate": 1.5, "num_tasks": 3}, "rate"),
        ({"rate": 0.3, "num_tasks": 0}, "num_tasks"),
        ({"rate": 0.3, "num_tasks": 3, "cost_budget": -1}, "cost_budget"),
        ({"rate": 0.3, "num_tasks": 3, "mode": "medium"}, "mode"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BudgetLedger(**kwargs)


def test_bad_quote():
    with pytest.raises(ValueError, match="quote"):
        BudgetLedger(0.5, 4).request(0, quote=float("nan"))


def test_each_granted_request_is_settled_once():
    ledger = BudgetLedger(rate=0.5, num_tasks=4, cost_budget=10.0)
    a, b = ledger.request(0, quote=1.0), ledger.request(1, quote=1.0)
    charged = ledger.charge(a, 0.5)
    for settle in (
        lambda: ledger.charge(a, 0.5),
        lambda: ledger.cancel(a),
        lambda: ledger.charge(charged, 0.1),
        lambda: ledger.cancel(charged),
    ):
        with pytest.raises(ValueError, match="already charged or cancelled"):
            settle()
    ledger.cancel(b)
    with pytest.raises(ValueError, match="already charged or cancelled"):
        ledger.cancel(b)
    with pytest.raises(ValueError, match="already charged or cancelled"):
        ledger.charge(b, 0.0)
    assert (ledger.calls_used, ledger.cost_used) == (1, 0.5)
    other = BudgetLedger(rate=0.5, num_tasks=4).request(0, quote=1.0)
    with pytest.raises(ValueError, match="not an open request of this ledger"):
        ledger.charge(other, 0.1)


def test_an_open_request_survives_a_pickle_round_trip():
    import pickle

    ledger = BudgetLedger(rate=1.0, num_tasks=2)
    ledger.request(0, quote=1.0)
    restored = pickle.loads(pickle.dumps(ledger))
    restored.charge(restored.log[0], 0.5)
    assert restored.cost_used == 0.5


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["request", "charge", "cancel"]),
                          st.integers(0, 20), st.floats(0, 1)), max_size=40))  # fmt: skip
def test_no_sequence_of_settlements_overdraws_or_goes_negative(ops):
    ledger = BudgetLedger(rate=0.5, num_tasks=10, cost_budget=3.0)
    entries = []
    for op, k, x in ops:
        if op == "request":
            entries.append(ledger.request(len(entries), quote=x))
            continue
        if not entries:
            continue
        entry = entries[k % len(entries)]
        try:
            if op == "charge":
                entries[k % len(entries)] = ledger.charge(entry, entry.cost * x)
            else:
                entries[k % len(entries)] = ledger.cancel(entry)
        except ValueError:
            pass
        assert 0 <= ledger.calls_used <= ledger.calls_allowed
        assert -1e-9 <= ledger.cost_used <= 3.0 + 1e-9


def test_unconfirmed_attempts_raise_the_upper_bound_of_spend_not_the_charge():
    ledger = BudgetLedger(0.5, 4)
    entry = ledger.request(0, quote=2.0)
    ledger.charge(entry, 1.5)
    ledger.note_unconfirmed(2, 2.0)
    s = ledger.summary()
    assert s["cost_used"] == 1.5 and s["unconfirmed_attempts"] == 2
    assert s["spend_upper_bound"] == 5.5
    for bad in ((-1, 1.0), (1, float("nan")), (True, 1.0), (1, -2.0)):
        with pytest.raises(ValueError):
            ledger.note_unconfirmed(*bad)
    ledger.reset()
    assert ledger.summary()["spend_upper_bound"] == 0.0
