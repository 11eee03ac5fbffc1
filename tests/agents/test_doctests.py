"""The doctests of offload_agents, imported by their package name only (pytest's own doctest
collection would import the folder agents/ a second time as a package named `agents`)."""

import doctest
import importlib
import pkgutil
import sys

import pytest

import offload_agents

MODULES = sorted(m.name for m in pkgutil.walk_packages(offload_agents.__path__, "offload_agents.")
                 if not m.name.endswith("__main__"))  # fmt: skip


def test_every_module_is_found():
    assert {"offload_agents.grpo.experiment", "offload_agents.cli._configflags",
            "offload_agents.lm_eval"} <= set(MODULES)  # fmt: skip


def _failures(module, name, report=None):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, name):
        runner.run(test, out=(report if report is not None else []).append)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    report: list[str] = []
    result = _failures(importlib.import_module(name), name, report)
    assert result.failed == 0, "".join(report)


def test_a_wrong_example_is_caught():
    import types

    module = types.ModuleType("fake", ">>> 1 + 1\n3\n")
    assert _failures(module, "fake") == (1, 1)


def test_the_folder_is_never_imported_as_agents():
    assert not [m for m in sys.modules if m == "agents" or m.startswith("agents.")]
