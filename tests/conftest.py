"""Shared test settings: the user cache directory is a temporary one, so no test writes to the
real one (the CLI caches a network cloud's answers there by default)."""

import pytest


@pytest.fixture(autouse=True)
def _user_cache_dir(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "user-cache"))
