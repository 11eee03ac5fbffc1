import numpy as np
import pytest

from offload_gym.tasks import Task, TaskGroup, TaskStream, make_generator, math_stream


def _tasks(n, domain="math"):
    return [
        Task(id=f"t{i}", domain=domain, prompt=f"p{i}", answer=str(i), difficulty=1 + (n - i) % 5)
        for i in range(n)
    ]


def test_switch_points_and_groups():
    stream = TaskStream(
        [
            TaskGroup("math", make_generator("arithmetic"), size=6),
            TaskGroup("more-math", _tasks(4), order="given"),
        ]
    )
    assert len(stream) == 10 and stream.switch_points == (6,)
    tasks, groups = stream.draw(np.random.default_rng(0))
    assert groups == [0] * 6 + [1] * 4
    assert [t.id for t in tasks[6:]] == ["t0", "t1", "t2", "t3"]


def test_draw_is_deterministic_by_rng_and_fresh_across_episodes():
    stream = math_stream(20, seed=3)
    a, _ = stream.draw(np.random.default_rng(5))
    b, _ = stream.draw(np.random.default_rng(5))
    c, _ = stream.draw(np.random.default_rng(6))
    assert [t.id for t in a] == [t.id for t in b]
    assert [t.id for t in a] != [t.id for t in c]
    assert len({t.metadata["family"] for t in a}) > 1


def test_orders():
    fixed = _tasks(10)
    rng = np.random.default_rng(0)
    given = TaskGroup("g", fixed, order="given").draw(rng)
    assert given == fixed
    curriculum = TaskGroup("g", fixed, order="difficulty").draw(rng)
    assert [t.difficulty for t in curriculum] == sorted(t.difficulty for t in fixed)
    shuffled = TaskGroup("g", fixed, order="random", size=5).draw(rng)
    assert len(shuffled) == 5 and set(shuffled) <= set(fixed)
    gen_curriculum = math_stream(30, order="difficulty").draw(rng)[0]
    assert [t.difficulty for t in gen_curriculum] == sorted(t.difficulty for t in gen_curriculum)


def test_weights_pick_families():
    gens = [make_generator("arithmetic"), make_generator("fractions")]
    group = TaskGroup("m", gens, size=50, weights=[1.0, 0.0])
    tasks = group.draw(np.random.default_rng(0))
    assert {t.metadata["family"] for t in tasks} == {"arithmetic"}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "", "source": _tasks(2)}, ValueError, "name"),
        ({"name": "g", "source": []}, ValueError, "empty"),
        ({"name": "g", "source": ["not a task"]}, TypeError, "Task objects"),
        ({"name": "g", "source": _tasks(2), "size": 3}, ValueError, "size"),
        ({"name": "g", "source": make_generator("arithmetic")}, ValueError, "size >= 1"),
        ({"name": "g", "source": _tasks(2), "order": "sorted"}, ValueError, "order"),
        (
            {"name": "g", "source": [make_generator("arithmetic")], "size": 2, "weights": [-1]},
            ValueError,
            "weights",
        ),
        ({"name": "g", "source": 42}, TypeError, "source must be"),
    ],
)
def test_group_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        TaskGroup(**kwargs)


def test_stream_errors():
    with pytest.raises(ValueError, match="at least one"):
        TaskStream([])
    g = TaskGroup("a", _tasks(2))
    with pytest.raises(ValueError, match="unique"):
        TaskStream([g, g])
    with pytest.raises(ValueError, match="empty"):
        TaskStream.from_tasks([])


def test_sizes_have_a_documented_maximum_with_a_clear_error():
    """num_tasks=10**9 once hung reset: sizes above the maximum are refused at once."""
    import gymnasium as gym

    import offload_gym  # noqa: F401
    from offload_gym.tasks import TaskGroup, make_generator
    from offload_gym.tasks.stream import MAX_GROUP_SIZE

    with pytest.raises(ValueError, match="num_tasks must be at most 100,000"):
        gym.make("OffloadMath-v0", num_tasks=10**9)
    with pytest.raises(ValueError, match="above the maximum of 100,000 tasks"):
        TaskGroup("math", make_generator("arithmetic"), size=MAX_GROUP_SIZE + 1)
    assert (
        TaskGroup("math", make_generator("arithmetic"), size=MAX_GROUP_SIZE).size == MAX_GROUP_SIZE
    )
