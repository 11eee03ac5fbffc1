import numpy as np
import pytest

from offload_gym.models import (
    CachedCloud,
    CloudModel,
    LocalModel,
    SimulatedCloud,
    SimulatedLocal,
)
from offload_gym.scoring import grade_response
from offload_gym.tasks import make_generator, math_stream


@pytest.fixture(scope="module")
def tasks():
    return math_stream(1500, seed=1).draw(np.random.default_rng(0))[0]


def test_protocols():
    assert isinstance(SimulatedLocal(), LocalModel)
    assert isinstance(SimulatedCloud(), CloudModel)
    assert isinstance(CachedCloud(SimulatedCloud()), CloudModel)


def test_deterministic_per_task_regardless_of_order(tasks):
    a, b = SimulatedLocal(seed=3), SimulatedLocal(seed=3)
    first = [a.answer(t) for t in tasks[:50]]
    second = [b.answer(t) for t in reversed(tasks[:50])][::-1]
    assert first == second
    assert [SimulatedLocal(seed=4).answer(t) for t in tasks[:50]] != first
    c = SimulatedCloud(seed=1)
    assert [c.answer(t) for t in tasks[:20]] == [
        SimulatedCloud(seed=1).answer(t) for t in tasks[:20]
    ]


def test_graded_accuracy_matches_the_configured_skill(tasks):
    local, cloud = SimulatedLocal(), SimulatedCloud()
    lc = np.array([grade_response(t, local.answer(t).text).correct for t in tasks])
    cc = np.array([grade_response(t, cloud.answer(t).text).correct for t in tasks])
    lp = np.mean([local.success_probability(t) for t in tasks])
    cp = np.mean([cloud.success_probability(t) for t in tasks])
    # Binomial standard error at n=1500 is about 0.013; allow 4 of them.
    assert abs(lc.mean() - lp) < 0.05
    assert abs(cc.mean() - cp) < 0.05
    assert cc.mean() > lc.mean() + 0.2


@pytest.mark.parametrize("difficulty", [1, 5])
def test_skill_falls_with_difficulty(difficulty):
    gen = make_generator("arithmetic", min_difficulty=difficulty, max_difficulty=difficulty)
    local = SimulatedLocal()
    acc = np.mean([grade_response(t, local.answer(t).text).correct for t in gen.take(400)])
    expected = 0.85 if difficulty == 1 else 0.25
    assert abs(acc - expected) < 0.07


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_confidence_correlation_is_the_parameter(rho):
    gen = make_generator("fractions", min_difficulty=3, max_difficulty=3)
    model = SimulatedLocal(confidence_correlation=rho)
    answers = [model.answer(t) for t in gen.take(2000)]
    p = model.success_probability(gen[0])
    correct = np.array(
        [grade_response(t, a.text).correct for t, a in zip(gen.take(2000), answers, strict=True)]
    )
    conf = np.array([a.confidence for a in answers])
    logit = np.log(conf / (1 - conf)) - np.log(p / (1 - p))  # the latent z
    r = np.corrcoef(logit, correct)[0, 1]
    assert abs(r - rho) < 0.06


def test_wrong_answers_are_plausible_near_misses(tasks):
    local = SimulatedLocal(skill={"math": 0.0}, min_skill=0.0)
    for t in tasks[:200]:
        g = grade_response(t, local.answer(t).text)
        assert not g.correct and g.answer is not None and g.method != "unparsed"


def test_cloud_cost_never_exceeds_quote(tasks):
    cloud = SimulatedCloud()
    for t in tasks[:300]:
        r = cloud.answer(t, partial="some local attempt")
        assert 0 < r.cost <= cloud.quote(t, partial="some local attempt")
        assert r.latency_s > 0 and r.completion_tokens <= cloud.max_completion_tokens


def test_unknown_domain_is_a_clear_error():
    from offload_gym.tasks import Task

    t = Task(id="c", domain="code", prompt="write f", answer="", entry_point="f", tests="assert 1")
    with pytest.raises(ValueError, match="known domains"):
        SimulatedLocal(skill={"math": 0.5}).answer(t)


@pytest.mark.parametrize(
    ("cls", "kwargs", "match"),
    [
        (SimulatedLocal, {"skill": {"math": 1.5}}, "probability"),
        (SimulatedLocal, {"confidence_correlation": -0.1}, "confidence_correlation"),
        (SimulatedLocal, {"difficulty_slope": -1}, "difficulty_slope"),
        (SimulatedCloud, {"accuracy": {}}, "non-empty"),
        (SimulatedCloud, {"price_per_1k_input": -1}, "price_per_1k_input"),
        (SimulatedCloud, {"tokens_per_second": 0}, "tokens_per_second"),
    ],
)
def test_parameter_validation(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_cache_asks_once_and_persists(tmp_path, tasks):
    calls = []

    class Counting(SimulatedCloud):
        def answer(self, task, partial=None):
            calls.append(task.id)
            return super().answer(task, partial)

    path = tmp_path / "cache.jsonl"
    cache = CachedCloud(Counting(), path=path)
    r1 = cache.answer(tasks[0])
    r2 = cache.answer(tasks[0])
    assert calls == [tasks[0].id] and not r1.cached and r2.cached
    assert r2._replace(cached=False) == r1 and cache.quote(tasks[0]) == r1.cost
    reloaded = CachedCloud(Counting(), path=path)
    assert reloaded.answer(tasks[0]).cached and calls == [tasks[0].id]
    small = CachedCloud(SimulatedCloud(), max_entries=2)
    for t in tasks[:5]:
        small.answer(t)
    assert len(small) == 2
    path.write_text("garbage\n")
    with pytest.raises(ValueError, match=r"cache\.jsonl:1"):
        CachedCloud(SimulatedCloud(), path=path)
    with pytest.raises(TypeError, match="CloudModel"):
        CachedCloud(object())  # type: ignore[arg-type]
