"""A minimal headless-Chromium driver over the DevTools protocol, for checking the built site as
a reader's browser renders it (headings present, images decoded)."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUMS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    for name in CHROMIUMS:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser:
    """Start headless Chromium; `render(url)` loads a page and returns what JS sees."""

    def __init__(self, executable: str, *, timeout: float = 60.0) -> None:
        import websocket  # websocket-client

        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="offload-gym-chromium-")
        self._proc = subprocess.Popen(
            [executable, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("headless Chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split("\n")[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t["type"] == "page"]
        self._ws = websocket.create_connection(
            pages[0]["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True
        )
        self._ids = itertools.count(1)
        self._send("Page.enable")

    def _send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self._ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _wait_event(self, name: str) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if json.loads(self._ws.recv()).get("method") == name:
                return
        raise TimeoutError(name)

    def render(self, url: str) -> dict[str, Any]:
        """Load ``url``; return its title, h1/h2 texts and every image with whether it decoded."""
        self._send("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired")
        script = """JSON.stringify({
            title: document.title,
            h1: [...document.querySelectorAll('article h1')].map(e => e.textContent.trim()),
            h2: [...document.querySelectorAll('article h2')].map(e => e.textContent.trim()),
            images: [...document.querySelectorAll('article img')].map(
                i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0})),
            nav: document.querySelectorAll('nav a').length,
        })"""
        result = self._send("Runtime.evaluate", expression=script, returnByValue=True)
        return json.loads(result["result"]["value"])

    def close(self) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            ws.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)
