"""Run untrusted code against trusted tests, in isolation, on a bounded pool of workers.

Layers, outermost first:

1. **Monitor processes** (`offload_gym.scoring._sandbox_monitor`, run as a standard-library-only
   script), one per worker, started with a stripped environment and, where the OS allows it
   (``unshare``), in their own PID, network, mount and IPC namespaces: candidates cannot see or
   signal the host's processes, have no network interface but a down loopback, write to private
   tmpfs copies of ``/tmp``, ``/var/tmp`` and ``/dev/shm``, and find no IPC object or key an
   earlier check left (`offload_gym.scoring._sandbox_kernel`). A monitor that dies (a candidate
   killed it) is restarted; the host is unaffected.
2. **A candidate process per check**, forked by the monitor: its own session (the whole process
   group is killed at the end), its own temporary working directory (removed at the end), an empty
   environment, stdio on ``/dev/null`` (huge output costs nothing), and resource limits on CPU time,
   address space, file size, open files and processes. When the monitor runs as root, the
   candidate also drops to an unprivileged uid of its own, so it cannot fork at all
   (``RLIMIT_NPROC`` = 1 for that uid), signal anything else, or write outside its directory.
   It keeps only the documented standard modules (`allowed_modules`).
3. **The verdict is decided by the monitor**, which runs the trusted tests against a proxy of the
   candidate's function. Arguments and return values cross a socket as plain data of exact builtin
   types (`offload_gym.scoring._wire`): the candidate cannot redefine the tests, ``assert`` or
   builtins for them, cannot exit early with success, cannot print a verdict, and cannot return an
   object that equals everything.

What the OS cannot block is listed in ``docs/sandbox.md``.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from offload_gym.validation import require_ints

_START_TIMEOUT_S = 60.0
_REPLY_MARGIN_S = 5.0
_UID_BASE = 61000


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one candidate process.

    Attributes:
        timeout_s: Wall-clock limit of a whole check (loading the program and every test call).
        cpu_seconds: ``RLIMIT_CPU``.
        memory_mb: ``RLIMIT_AS`` (address space).
        file_size_mb: ``RLIMIT_FSIZE``: the largest file the candidate may write.
        open_files: ``RLIMIT_NOFILE``.
        processes: ``RLIMIT_NPROC`` for the candidate's own uid (enforced when running as root).
    """

    timeout_s: float = 3.0
    cpu_seconds: int = 3
    memory_mb: int = 1024
    file_size_mb: int = 16
    open_files: int = 64
    processes: int = 1

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        require_ints(self, ("cpu_seconds", "memory_mb", "file_size_mb", "open_files", "processes"))


class CodeCheck(NamedTuple):
    """One check: run ``program`` (untrusted) and test ``entry_point`` with ``tests`` (trusted).

    Attributes:
        program: The candidate's source: it must define ``entry_point``.
        entry_point: Name of the function under test.
        tests: Trusted test source. It sees the candidate's function under ``entry_point`` and
            ``candidate``; if it defines ``check(candidate)``, that is called (HumanEval style);
            plain ``assert`` statements (MBPP style) work too.
        context: Trusted source run before the tests (e.g. HumanEval's prompt, whose helper
            functions some tests call).
    """

    program: str
    entry_point: str
    tests: str
    context: str = ""


class SandboxResult(NamedTuple):
    """Outcome of one check.

    Attributes:
        passed: Whether every test passed.
        status: ``"passed"``, ``"failed"`` (an assertion), ``"error"`` (the candidate raised,
            returned a value that cannot leave the sandbox, or died), ``"load_error"`` (the
            program did not load or define the entry point, ``sys.exit`` included),
            ``"timeout"``, or ``"sandbox_error"`` (the sandbox itself failed; counted, never
            hidden).
        detail: A short explanation.
        seconds: Wall-clock seconds of the check.
    """

    passed: bool
    status: str
    detail: str
    seconds: float


@lru_cache(maxsize=1)
def isolation_mode() -> str:
    """``"namespaces+uid"`` (root: namespaces and a dropped uid), ``"namespaces"`` (user
    namespaces, no uid drop), or ``"plain"`` (resource limits and sessions only)."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return "plain"
    base = ["unshare", *_NAMESPACES]
    cmd = base if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", *base[1:]]
    try:
        ok = subprocess.run([*cmd, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if not ok:
        return "plain"
    return "namespaces+uid" if os.geteuid() == 0 else "namespaces"


_NAMESPACES = ("--pid", "--net", "--mount", "--ipc", "--fork", "--kill-child", "--mount-proc")
_MONITOR = str(Path(__file__).with_name("_sandbox_monitor.py"))


@lru_cache(maxsize=1)
def allowed_modules() -> tuple[str, ...]:
    """Every module a candidate keeps: the monitor's ``PRELOAD`` list and what importing it
    loads, measured in an interpreter started as the monitor is (``-I -S``)."""
    from offload_gym.scoring._sandbox_monitor import PRELOAD

    code = (
        "import sys, importlib\n"
        f"for n in {list(PRELOAD)!r}:\n"
        "    try:\n"
        "        importlib.import_module(n)\n"
        "    except ImportError:\n"
        "        pass\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
            timeout=60, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        out = ""  # the monitor then keeps PRELOAD's names and the interpreter's built-ins
    return tuple(n for n in out.split() if n != "__main__")


class _Monitor:
    def __init__(self, index: int, unsafe_modules: tuple[str, ...] = ()) -> None:
        self.index = index
        self.unsafe_modules = unsafe_modules
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        mode = isolation_mode()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        env["OFFLOAD_SANDBOX_TESTS_PATH"] = os.pathsep.join(p for p in sys.path if p)
        env["OFFLOAD_SANDBOX_MODULES"] = " ".join(allowed_modules())
        if self.unsafe_modules:
            env["OFFLOAD_SANDBOX_UNSAFE_MODULES"] = " ".join(self.unsafe_modules)
        # Isolated (-I) and without site-packages (-S): the monitor, which every candidate is
        # forked from, holds the standard library and nothing of the package's.
        cmd = [sys.executable, "-I", "-S", _MONITOR]
        if mode != "plain":
            user = [] if mode == "namespaces+uid" else ["--user", "--map-root-user"]
            cmd = ["unshare", *user, *_NAMESPACES, *cmd]
            env["OFFLOAD_SANDBOX_PRIVATE_TMP"] = "1"
        if mode == "namespaces+uid" or (mode == "plain" and os.geteuid() == 0):
            env["OFFLOAD_SANDBOX_UID"] = str(_UID_BASE + self.index)
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            start_new_session=True,
        )
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _START_TIMEOUT_S)
        if not ready or not proc.stdout.readline().startswith(b'{"ready"'):
            proc.kill()
            raise RuntimeError("the sandbox monitor did not start")
        self.proc = proc
        return proc

    @staticmethod
    def _readline(proc: subprocess.Popen[bytes], wait: float) -> bytes:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], wait)
        return proc.stdout.readline() if ready else b""

    def stop(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.proc = None

    def run(self, check: CodeCheck, limits: SandboxLimits) -> SandboxResult:
        proc = self.proc if self.proc is not None and self.proc.poll() is None else None
        try:
            proc = proc or self._start()
        except (OSError, RuntimeError) as exc:
            self.stop()
            return SandboxResult(False, "sandbox_error", str(exc), 0.0)
        assert proc.stdin is not None and proc.stdout is not None
        header = {
            "program": check.program,
            "entry_point": check.entry_point,
            "context": check.context,
            "timeout": limits.timeout_s,
            "limits": asdict(limits),
        }
        wait = limits.timeout_s + _REPLY_MARGIN_S
        try:
            # The tests are sent only once the candidate process exists (see the monitor).
            proc.stdin.write(json.dumps(header).encode() + b"\n")
            proc.stdin.flush()
            line = self._readline(proc, wait)
            if line.startswith(b'{"forked"'):
                proc.stdin.write(json.dumps({"tests": check.tests}).encode() + b"\n")
                proc.stdin.flush()
                line = self._readline(proc, wait)
        except OSError:
            line = b""
        if not line:
            # The monitor died (a candidate killed it) or hung: replace it.
            self.stop()
            return SandboxResult(False, "error", "the check killed or stalled its monitor", 0.0)
        try:
            reply = json.loads(line)
            return SandboxResult(
                bool(reply["passed"]), str(reply["status"]), str(reply["detail"]),
                float(reply["seconds"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            self.stop()
            return SandboxResult(False, "sandbox_error", "unreadable reply from the monitor", 0.0)


class Sandbox:
    """A bounded pool of sandbox workers.

    >>> box = Sandbox(workers=1)
    >>> box.run(CodeCheck("def f(x):\\n    return x + 1\\n", "f", "assert f(1) == 2")).status
    'passed'
    >>> box.close()
    """

    def __init__(
        self,
        workers: int | None = None,
        limits: SandboxLimits | None = None,
        *,
        _unsafe_candidate_modules: tuple[str, ...] = (),
    ) -> None:
        if workers is None:
            workers = max(1, min(8, os.cpu_count() or 1))
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        self.workers = workers
        self.limits = limits or SandboxLimits()
        self._idle: queue.Queue[_Monitor] = queue.Queue()
        for i in range(workers):
            self._idle.put(_Monitor(i, _unsafe_candidate_modules))
        self._all = list(self._idle.queue)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self.stats = {"checks": 0, "sandbox_errors": 0}
        self._lock = threading.Lock()

    def run(self, check: CodeCheck, limits: SandboxLimits | None = None) -> SandboxResult:
        """Run one check (blocks until a worker is free)."""
        if not isinstance(check, CodeCheck):
            raise TypeError(f"expected a CodeCheck, got {type(check).__name__}")
        monitor = self._idle.get()
        try:
            result = monitor.run(check, limits or self.limits)
        finally:
            self._idle.put(monitor)
        with self._lock:
            self.stats["checks"] += 1
            self.stats["sandbox_errors"] += result.status == "sandbox_error"
        return result

    def run_many(
        self, checks: Iterable[CodeCheck], limits: SandboxLimits | None = None
    ) -> list[SandboxResult]:
        """Run checks concurrently on the pool; results in input order."""
        return list(self._pool.map(lambda c: self.run(c, limits), list(checks)))

    def close(self) -> None:
        for m in self._all:
            m.stop()
        self._pool.shutdown(wait=False)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox the environments use (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
            atexit.register(_default.close)
        return _default


def run_checks(
    checks: Sequence[CodeCheck], limits: SandboxLimits | None = None
) -> list[SandboxResult]:
    """Run checks on the default sandbox."""
    return default_sandbox().run_many(checks, limits)
