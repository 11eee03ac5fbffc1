"""``offload-gym stats``: comparisons recomputed from saved runs, runs joined on identical tasks."""

import json

import pytest

from offload_agents import stats
from offload_agents.cli import main


def _write_run(folder, agents, *, primary=None, tasks="t", layout="steps", seed0=0):
    folder.mkdir(parents=True)
    rows = {name: [{"agent": name, "seed": s, "episode": 0, "step": i, "task_id": f"{tasks}{s}-{i}",
                    "correct": bool(v)} for s, vals in enumerate(values, seed0)
                   for i, v in enumerate(vals)]
            for name, values in agents.items()}  # fmt: skip
    if layout == "steps":
        with (folder / "steps.jsonl").open("w") as fh:
            for recs in rows.values():
                fh.writelines(json.dumps(r) + "\n" for r in recs)
    else:  # compare's logs/<agent>.jsonl
        (folder / "logs").mkdir()
        for name, recs in rows.items():
            (folder / "logs" / f"{name}.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in recs)
            )
    (folder / "results.json").write_text(
        json.dumps({"config": {"primary": primary}, "agents": {n: {} for n in agents}})
    )
    return rows


def test_stats_recomputes_the_comparisons_of_a_run(tmp_path, capsys):
    rows = _write_run(
        tmp_path / "run",
        {
            "da": [[1, 1, 0, 1], [1, 0, 0, 1]],
            "router": [[0, 1, 0, 0], [1, 0, 1, 1]],
            "collab": [[1, 1, 1, 1], [0, 0, 0, 0]],
        },
        primary="da",
    )
    out_json = tmp_path / "cmp.json"
    assert main(["stats", str(tmp_path / "run"), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "| da | router | correct |" in printed and "| da | collab | correct |" in printed
    saved = json.loads(out_json.read_text())["comparisons"]
    expected = stats.compare(rows["da"], rows["router"], "da", "router").to_dict()
    assert saved[0] == json.loads(json.dumps(expected))
    assert main(["stats", str(tmp_path / "run"), "--primary", "router", "--against", "collab"]) == 0
    assert "| router | collab |" in capsys.readouterr().out


def test_stats_joins_runs_on_identical_tasks(tmp_path, capsys):
    _write_run(tmp_path / "a", {"local": [[1, 0, 0]], "da": [[1, 1, 0]]}, primary="da")
    _write_run(tmp_path / "b", {"local": [[1, 0, 0]], "router": [[0, 1, 1]]}, layout="logs")
    assert main(["stats", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    # a name both runs hold is prefixed with its folder; the others keep theirs
    assert f"| da | {tmp_path / 'b'}:local |" in out and "| da | router |" in out
    _write_run(tmp_path / "c", {"router": [[0, 1, 1]]}, tasks="other")
    assert main(["stats", str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    assert "saw different tasks" in capsys.readouterr().err


def test_stats_errors_are_one_line(tmp_path, capsys):
    assert main(["stats", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["stats", str(tmp_path / "empty")]) == 2
    assert "holds no per-task records" in capsys.readouterr().err
    _write_run(tmp_path / "run", {"x": [[1, 0]], "y": [[0, 0]]})
    assert main(["stats", str(tmp_path / "run")]) == 2
    assert "--primary" in capsys.readouterr().err
    with (tmp_path / "run" / "steps.jsonl").open("a") as fh:
        fh.write('{"agent": "x", "seed"')  # a torn last line
    assert main(["stats", str(tmp_path / "run"), "--primary", "x"]) == 2
    err = capsys.readouterr().err
    assert "steps.jsonl:5: invalid JSON" in err


@pytest.mark.parametrize("bad", ["[1, 2]", '"text"'])
def test_stats_refuses_non_object_rows(tmp_path, capsys, bad):
    _write_run(tmp_path / "run", {"x": [[1]], "y": [[0]]})
    with (tmp_path / "run" / "steps.jsonl").open("a") as fh:
        fh.write(bad + "\n")
    assert main(["stats", str(tmp_path / "run"), "--primary", "x"]) == 2
    assert "expected a JSON object" in capsys.readouterr().err


def test_stats_pools_runs_on_disjoint_seeds(tmp_path, capsys):
    a = _write_run(tmp_path / "a", {"da": [[1, 1, 0], [1, 0, 1]], "router": [[0, 1, 0], [1, 0, 0]]},
                   primary="da")  # fmt: skip
    b = _write_run(tmp_path / "b", {"da": [[1, 1, 1], [0, 0, 1]], "router": [[0, 0, 1], [1, 1, 0]]},
                   primary="da", seed0=2)  # fmt: skip
    out_json = tmp_path / "pooled.json"
    args = ["stats", "--pool", str(tmp_path / "a"), str(tmp_path / "b"), "--json", str(out_json)]
    assert main(args) == 0
    saved = json.loads(out_json.read_text())["comparisons"][0]
    want = stats.compare(a["da"] + b["da"], a["router"] + b["router"], "da", "router").to_dict()
    assert saved == json.loads(json.dumps(want)) and saved["n_seeds"] == 4
    _write_run(tmp_path / "c", {"da": [[1, 1, 1]], "router": [[0, 0, 0]]}, seed0=1)
    assert main(["stats", "--pool", str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    assert "must hold disjoint seeds" in capsys.readouterr().err
