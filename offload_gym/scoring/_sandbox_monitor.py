"""The sandbox's test monitor: ``python -I -S .../offload_gym/scoring/_sandbox_monitor.py``.

It runs as a script, isolated from the environment and from site-packages, and imports only the
standard library and its two sibling modules (`_wire`, `_sandbox_kernel`): neither the package
nor anything the package imports (numpy, ``ctypes``, ``subprocess``) is ever in the memory that
candidates are forked from.

Reads one JSON request a line on stdin and answers one JSON verdict a line on stdout. For each
request it forks a *judge process*, which forks a *candidate process* that runs the untrusted
program and nothing else, and then (only then) receives the trusted tests and runs them against
a proxy of the candidate's function: every call crosses a socket as plain data
(`offload_gym.scoring._wire`). The verdict is decided in the judge, so nothing the candidate
prints, returns, redefines or exits with can forge it, and the tests never enter this monitor's
memory, so no later candidate (forked from it, through a fresh judge) can find an earlier
check's tests.

The candidate process runs in its own session and working directory, with an empty environment,
stdio on /dev/null, resource limits, and, when this monitor runs as root, an unprivileged uid of
its own. See `offload_gym.scoring.sandbox` for the layers around the monitor.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from typing import Any

if __package__:
    from offload_gym.scoring import _sandbox_kernel, _wire
else:  # run as a script: the standard library and these two siblings only
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _sandbox_kernel  # type: ignore[import-not-found, no-redef]
    import _wire  # type: ignore[import-not-found, no-redef]

    del sys.path[0]

MAX_REPLY_BYTES = 4 << 20

PRELOAD = (
    "abc array ast base64 binascii bisect calendar cmath codecs collections collections.abc "
    "contextlib copy csv dataclasses datetime decimal difflib encodings.idna enum fractions "
    "functools glob hashlib heapq hmac io itertools json keyword locale math numbers operator "
    "os pathlib pprint queue random re shlex statistics string struct sys textwrap threading "
    "time timeit types typing unicodedata uuid warnings weakref zlib"
).split()
"""The standard modules a candidate may import, imported before any candidate is forked. With
the modules they import themselves (`allowed_modules`), they are the only entries left in a
candidate's ``sys.modules``; under a dropped uid the candidate is also chrooted into its work dir,
so nothing else can be loaded from disk."""

ALLOWED: frozenset[str] = frozenset(os.environ.get("OFFLOAD_SANDBOX_MODULES", "").split())
"""The modules a candidate keeps (set by the host: `PRELOAD` and what importing it loads)."""

UNSAFE_EXTRA = tuple(os.environ.get("OFFLOAD_SANDBOX_UNSAFE_MODULES", "").split())
"""Test-only: modules (``ctypes``) handed to candidates on purpose, so that the kernel-level
isolation can be tested against a candidate that can make any system call."""


class CandidateError(Exception):
    """The candidate raised, returned something that cannot leave the sandbox, or died."""


class CandidateTimeout(BaseException):
    """The request's wall-clock deadline passed (a BaseException: tests cannot swallow it)."""


# ----------------------------------------------------------------------------- candidate side
def _limit(which: int, value: int) -> None:
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY and value > hard:
            resource.setrlimit(which, (hard, hard))


def _candidate_main(
    sock: socket.socket, req: dict[str, Any], workdir: str, uid: int | None
) -> None:
    """Runs in the forked candidate process; never returns."""
    try:
        _isolate(sock, req["limits"], workdir, uid)
    except BaseException:
        os._exit(70)
    _serve_candidate(sock, req)


def _isolate(sock: socket.socket, limits: dict[str, Any], workdir: str, uid: int | None) -> None:
    """The candidate's confinement, before any of its code runs: its own session, no
    inherited descriptors but its socket, resource limits, and (with a uid) the work dir as
    its whole filesystem under a uid of its own; an empty environment."""
    os.setsid()
    keep = sock.fileno()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    os.chdir(workdir)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_CPU, int(limits["cpu_seconds"]))
    _limit(resource.RLIMIT_AS, int(limits["memory_mb"]) << 20)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_size_mb"]) << 20)
    _limit(resource.RLIMIT_NOFILE, int(limits["open_files"]))
    if uid is not None:
        # The work dir becomes the candidate's whole filesystem: no host file (the
        # project's, an installed package's data such as a benchmark's tests) and no
        # filesystem socket is reachable. Only modules already imported (PRELOAD) work.
        os.chroot(workdir)
        os.chdir("/")
        workdir = "/"
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        # Counted per uid: this uid is this candidate's alone.
        _limit(resource.RLIMIT_NPROC, int(limits["processes"]))
    os.environ.clear()
    os.environ["HOME"] = workdir
    sys.argv = ["candidate"]
    _confine_imports()


class _NoImports:
    """The last step of the candidate's import system: refuses every module not already loaded.
    Under a dropped uid the candidate is chrooted and nothing could be loaded from disk anyway;
    without one (the weaker modes, docs/sandbox.md) this is a guard, not a boundary."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        raise ModuleNotFoundError(f"No module named {name!r} in the sandbox", name=name)


def _confine_imports() -> None:
    """Leave the candidate only the allowed modules: every other entry of ``sys.modules`` (the
    monitor's own, its helpers') is dropped, and nothing new can be imported."""
    import types

    keep = (ALLOWED or frozenset(PRELOAD) | frozenset(sys.builtin_module_names)) | _UNSAFE_LOADED
    for name in [n for n in sys.modules if n not in keep]:
        del sys.modules[name]
    sys.modules["__main__"] = types.ModuleType("__main__")
    sys.path.clear()
    sys.path_importer_cache.clear()
    sys.meta_path.insert(0, _NoImports())


def _serve_candidate(sock: socket.socket, req: dict[str, Any]) -> None:
    """Load the candidate's program, then answer the monitor's calls of its function until the
    socket closes; never returns."""
    send = sock.sendall
    recv_file = sock.makefile("rb")
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        exec(compile(req["program"], "<candidate>", "exec"), namespace)
        fn = namespace[req["entry_point"]]
        if not callable(fn):
            raise TypeError(f"{req['entry_point']} is not callable")
        send(b'{"ready":true}\n')
    except BaseException as exc:
        try:
            send(json.dumps({"ready": False, "error": type(exc).__name__}).encode() + b"\n")
        finally:
            os._exit(0)
    while True:
        line = recv_file.readline()
        if not line:
            os._exit(0)
        try:
            args, kwargs = _wire.loads(line)
            result = fn(*args, **kwargs)
            reply = b'{"ok":' + _wire.dumps(result).rstrip(b"\n") + b"}\n"
        except BaseException as exc:
            reply = json.dumps({"raised": type(exc).__name__}).encode() + b"\n"
        send(reply)


# ----------------------------------------------------------------------------- monitor side
class _Proxy:
    """Stands in for the candidate's function inside the trusted tests."""

    def __init__(self, sock: socket.socket, deadline: float, name: str) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._deadline = deadline
        self.__name__ = name
        self.calls = 0

    def _readline(self) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise CandidateTimeout()
        self._sock.settimeout(remaining)
        try:
            line = self._file.readline(MAX_REPLY_BYTES)
        except TimeoutError:
            raise CandidateTimeout() from None
        except OSError as exc:
            raise CandidateError(f"connection lost: {exc}") from None
        if not line:
            raise CandidateError("the candidate process exited")
        if not line.endswith(b"\n"):
            raise CandidateError("reply too large")
        return line

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            self._sock.sendall(_wire.dumps([list(args), kwargs]))
        except OSError as exc:
            raise CandidateError(f"the candidate process is gone: {exc}") from None
        reply = json.loads(self._readline())
        if "raised" in reply:
            raise CandidateError(f"the candidate raised {reply['raised']}")
        return _wire.decode(reply["ok"])


def _run_tests(req: dict[str, Any], tests: str, proxy: _Proxy) -> None:
    """The trusted tests (and their context) against the proxy of the candidate's function;
    raises on a failure."""
    namespace: dict[str, Any] = {"__name__": "__tests__"}
    if req.get("context"):
        exec(compile(req["context"], "<context>", "exec"), namespace)
    namespace[req["entry_point"]] = proxy
    namespace["candidate"] = proxy
    exec(compile(tests, "<tests>", "exec"), namespace)
    check = namespace.get("check")
    if callable(check) and req.get("call_check", True):
        check(proxy)


_UNSAFE_LOADED: set[str] = set()


def _load_unsafe_extras() -> None:
    """Test-only (`UNSAFE_EXTRA`): import these in this monitor, before any candidate is forked
    (nothing at all without the test-only switch)."""
    import importlib

    before = set(sys.modules)
    for name in UNSAFE_EXTRA:
        importlib.import_module(name)
    _UNSAFE_LOADED.update(set(sys.modules) - before, UNSAFE_EXTRA)


def _run_request(
    req: dict[str, Any], uid: int | None, tmp_root: str, read_tests: Any
) -> dict[str, Any]:
    """Fork the candidate, then (only then) receive and run the tests: the candidate's copy of
    this process's memory never holds them."""
    start = time.monotonic()
    deadline = start + float(req["timeout"])
    workdir = tempfile.mkdtemp(prefix="cand-", dir=tmp_root)
    if uid is not None:
        os.chown(workdir, uid, uid)
    os.chmod(workdir, 0o700)
    parent, child = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # candidate process
        parent.close()
        _candidate_main(child, req, workdir, uid)
        os._exit(0)  # pragma: no cover
    child.close()
    # The candidate exists: from here on the judge may import what the trusted tests need.
    sys.path.extend(
        p for p in os.environ.get("OFFLOAD_SANDBOX_TESTS_PATH", "").split(os.pathsep) if p
    )
    status, detail = "error", ""
    proxy = _Proxy(parent, deadline, req["entry_point"])
    try:
        tests = read_tests()
        ready = json.loads(proxy._readline())
        if not ready.get("ready"):
            status, detail = "load_error", ready.get("error", "")
        else:
            _run_tests(req, tests, proxy)
            status = "passed"
    except CandidateTimeout:
        status, detail = "timeout", f"over {req['timeout']} s"
    except AssertionError:
        status, detail = "failed", "a test assertion failed"
    except CandidateError as exc:
        status, detail = "error", str(exc)
    except Exception as exc:
        status, detail = "error", f"{type(exc).__name__} in the tests"
    finally:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        parent.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if status == "passed" and proxy.calls == 0 and req.get("require_calls", True):
        status, detail = "error", "the tests never called the candidate"
    return {
        "status": status,
        "passed": status == "passed",
        "detail": detail,
        "seconds": time.monotonic() - start,
        "calls": proxy.calls,
    }


def _judge(req: dict[str, Any], uid: int | None, tmp_root: str, read_tests: Any) -> dict[str, Any]:
    """`_run_request` in a fresh child process (the judge), whose verdict comes back over a
    pipe. The tests only ever enter a judge's memory, never this long-lived monitor's: every
    candidate is forked from a process no test has been in (an earlier check's namespace, its
    ``check`` function and expected values cannot linger as garbage for the next candidate to
    find with ``gc.get_objects()``)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the judge
        os.close(r)
        try:
            reply = _run_request(req, uid, tmp_root, read_tests)
        except BaseException as exc:
            reply = _sandbox_error(exc)
        with contextlib.suppress(BaseException), os.fdopen(w, "wb") as fh:
            fh.write(json.dumps(reply).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as fh:
        data = fh.read()
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    try:
        return dict(json.loads(data))
    except (ValueError, TypeError):
        return {"status": "error", "passed": False, "detail": "the judge process died",
                "seconds": 0.0, "calls": 0}  # fmt: skip


def _sandbox_error(exc: BaseException) -> dict[str, Any]:
    return {
        "status": "sandbox_error",
        "passed": False,
        "detail": f"{type(exc).__name__}: {exc}"[:300],
        "seconds": 0.0,
        "calls": 0,
        "trace": traceback.format_exc()[-800:],
    }


PRIVATE_MOUNTS: list[str] = []
"""The world-writable directories this monitor mounted a private tmpfs over (inside its own
mount namespace); only these are ever wiped."""


def _private_tmp(private: bool) -> tuple[str, str | None]:
    """Inside a mount namespace, mount fresh tmpfs over the world-writable directories so that
    nothing a candidate writes there is seen outside, and this IPC namespace's mqueue filesystem;
    return the directory for work dirs and the mqueue mount (None if not mounted)."""
    if private:
        for path in ("/tmp", "/var/tmp", "/dev/shm"):
            if os.path.isdir(path):
                cmd = f"mount -t tmpfs -o size=512m,mode=1777 tmpfs {path} 2>/dev/null"
                if os.system(cmd) == 0:
                    PRIVATE_MOUNTS.append(path)
    root = tempfile.mkdtemp(prefix="offload-sandbox-")
    os.chmod(root, 0o711)
    mqueue = None
    if private:
        mqueue = os.path.join(root, ".mqueue")
        os.mkdir(mqueue, 0o700)
        if os.system(f"mount -t mqueue mqueue {mqueue} 2>/dev/null") != 0:
            mqueue = None
    return root, mqueue


def _wipe_private_tmp(keep: str) -> None:
    """Empty the private tmpfs mounts after a check (all but the work-dir root ``keep``): what
    one candidate leaves in /tmp, /var/tmp or /dev/shm is neither a channel to the next nor
    memory pinned until the worker closes."""
    for path in PRIVATE_MOUNTS:
        with contextlib.suppress(OSError), os.scandir(path) as entries:
            for entry in entries:
                if entry.path == keep:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _preload() -> None:
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def main() -> None:
    _preload()
    _load_unsafe_extras()
    uid_env = os.environ.get("OFFLOAD_SANDBOX_UID")
    uid = int(uid_env) if uid_env and os.geteuid() == 0 else None
    private = os.environ.get("OFFLOAD_SANDBOX_PRIVATE_TMP") == "1"
    tmp_root, mqueue = _private_tmp(private)
    _sandbox_kernel.private_session_keyring()
    kernel = _sandbox_kernel.KernelState(uid, private, mqueue)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    out = sys.stdout
    out.write('{"ready":true}\n')
    out.flush()
    stdin = sys.stdin.buffer

    def read_tests() -> str:
        out.write('{"forked":true}\n')
        out.flush()
        return str(json.loads(stdin.readline())["tests"])

    while True:
        line = stdin.readline()
        if not line:
            break
        try:
            req = json.loads(line)
            reply = _judge(req, uid, tmp_root, read_tests)
        except Exception as exc:
            reply = _sandbox_error(exc)
        _wipe_private_tmp(tmp_root)
        kernel.after_check()
        out.write(json.dumps(reply) + "\n")
        out.flush()
    shutil.rmtree(tmp_root, ignore_errors=True)


if __name__ == "__main__":
    main()
