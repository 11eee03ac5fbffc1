"""The documentation site builds with no warnings (broken links, missing references) and its
pages carry their headings and plots."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if shutil.which("mkdocs") is None:
        pytest.skip("mkdocs is in the dev extra")
    site = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return site


def test_mkdocs_build_strict(site):
    index = (site / "index.html").read_text()
    assert "offload-gym" in index and "A first rollout" in index
    results = (site / "results" / "index.html").read_text()
    assert "Routing baselines" in results
    for img in ("router-math/accuracy_vs_usage.png", "router-stream/group_accuracy.png"):
        assert (site / "results" / img).exists(), img
    api = (site / "api" / "offload_gym" / "index.html").read_text()
    assert "BudgetLedger" in api and "OffloadRouterEnv" in api


PAGES = {
    "": "offload-gym",
    "environments/": "Environments",
    "models/": "Models and backends",
    "agents/": "Agents, baselines and evaluation",
    "dagrpo/": "DA-GRPO and the GRPO family",
    "coplms/": "Co-PLMs",
    "metrics/": "Metrics",
    "results/": "Results",
    "benchmarks/": "Benchmarks",
    "faq/": "FAQ",
    "teaching/": None,  # checked for a heading of any text
}


def test_site_renders_in_headless_chromium(site):
    """Serve the built site and load its main pages in headless Chromium, as a reader would:
    each renders its heading and navigation, and every image on it decodes."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from tests.browser import Browser, find_chromium

    exe = find_chromium()
    if exe is None:
        if os.environ.get("OFFLOAD_GYM_REQUIRE_BROWSER"):
            pytest.fail("OFFLOAD_GYM_REQUIRE_BROWSER is set but no Chromium is installed")
        pytest.skip("no Chromium (Debian: apt-get install chromium)")
    pytest.importorskip("websocket", reason="websocket-client is in the dev extra")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/"
    browser = Browser(exe)
    try:
        pages = {path: browser.render(base + path) for path in PAGES}
    finally:
        browser.close()
        httpd.shutdown()
        httpd.server_close()
    for path, heading in PAGES.items():
        page = pages[path]
        assert page["h1"], f"/{path}: no heading rendered"
        if heading is not None:
            assert page["h1"][0].startswith(heading), (path, page["h1"])
        assert page["nav"] > 10, f"/{path}: navigation missing"
        broken = [img["src"] for img in page["images"] if not img["ok"]]
        assert not broken, f"/{path}: images that did not load: {broken}"
    assert len(pages["results/"]["images"]) >= 5  # the results plots
