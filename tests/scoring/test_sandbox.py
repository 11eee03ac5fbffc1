"""The sandbox attack suite: every attack fails, returns within the time limit plus a margin, and
leaves the host (this process, its files, its network) unaffected."""

from __future__ import annotations

import contextlib
import os
import socket
import textwrap
import threading
import time

import pytest

from offload_gym.scoring.sandbox import (
    CodeCheck,
    Sandbox,
    SandboxLimits,
    SandboxResult,
    isolation_mode,
)
from tests.scoring.procs import exits_within

LIMITS = SandboxLimits(timeout_s=2.0, cpu_seconds=2, memory_mb=512)
MARGIN_S = 3.0
TESTS = "assert add(1, 2) == 3\nassert add(-4, 4) == 0\nassert add(10, 5) == 15\n"
HUMANEVAL_STYLE = (
    "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n"
)
ISOLATED = isolation_mode() != "plain"
# Without namespaces and without root (no uid drop), a candidate runs as the test's own user: it
# could signal this process or write the test's files. Those attacks are only run where the
# sandbox can stop them (docs/sandbox.md lists the guarantees of each mode).
CONTAINED = ISOLATED or os.geteuid() == 0
NEEDS_CONTAINMENT = {"kill its parent", "kill every process it can"}


@pytest.fixture(scope="module")
def box():
    with Sandbox(workers=2, limits=LIMITS) as sandbox:
        yield sandbox


def run(box: Sandbox, program: str, tests: str = TESTS) -> SandboxResult:
    start = time.monotonic()
    result = box.run(CodeCheck(textwrap.dedent(program), "add", tests))
    elapsed = time.monotonic() - start
    assert elapsed < LIMITS.timeout_s + MARGIN_S, f"took {elapsed:.1f} s"
    return result


def test_correct_and_wrong_solutions(box):
    assert run(box, "def add(a, b):\n    return a + b\n").status == "passed"
    assert run(box, "def add(a, b):\n    return a + b\n", HUMANEVAL_STYLE).status == "passed"
    assert run(box, "def add(a, b):\n    return a - b\n").status == "failed"
    assert run(box, "def add(a, b):\n    return a +\n").status == "load_error"
    assert run(box, "def plus(a, b):\n    return a + b\n").status == "load_error"


ATTACKS = {
    "infinite loop at import": "while True:\n    pass\n",
    "infinite loop in the function": "def add(a, b):\n    while True:\n        pass\n",
    "sleep past the deadline": "import time\ndef add(a, b):\n    time.sleep(60)\n",
    "fork bomb": "import os\nwhile True:\n    os.fork()\n",
    "fork bomb in the function": "import os\ndef add(a, b):\n    while 1:\n        os.fork()\n",
    "memory bomb": "x = bytearray(1 << 40)\ndef add(a, b):\n    return a + b\n",
    "growing memory bomb": (
        "def add(a, b):\n    xs = []\n    while 1:\n        xs.append(' ' * 9**7)\n"
    ),
    "deep recursion": "def add(a, b):\n    return add(a, b)\n",
    "recursion past the C stack": (
        "import sys\nsys.setrecursionlimit(10**8)\ndef add(a, b):\n    return add(a, b) + 1\n"
    ),
    "huge output": (
        "import sys\ndef add(a, b):\n    while 1:\n        sys.stdout.write('x' * 10**6)\n"
    ),
    "huge output at import, then wrong": "print('y' * 10**8)\ndef add(a, b):\n    return 0\n",
    "sys.exit(0) before the tests": "import sys\nsys.exit(0)\n",
    "sys.exit(0) inside the tests": "import sys\ndef add(a, b):\n    sys.exit(0)\n",
    "os._exit(0) before the tests": "import os\nos._exit(0)\n",
    "os._exit(0) inside the tests": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "redefine AssertionError": (
        "import builtins\nbuiltins.AssertionError = type('A', (Exception,), {})\n"
        "AssertionError = None\ndef add(a, b):\n    return 0\n"
    ),
    "redefine builtins": (
        "import builtins\nbuiltins.len = lambda x: 0\nbuiltins.abs = lambda x: 0\n"
        "builtins.__dict__['isinstance'] = lambda *a: True\ndef add(a, b):\n    return 0\n"
    ),
    "redefine the test function": (
        "def check(candidate):\n    pass\ncheck.__code__ = (lambda c: None).__code__\n"
        "def add(a, b):\n    return 0\n"
    ),
    "print fake success lines": (
        'import os\nprint(\'passed\')\nprint(\'{"status": "passed", "passed": true}\')\n'
        "os.write(1, b'OK all tests passed\\n')\nos.write(2, b'passed\\n')\n"
        "def add(a, b):\n    return 0\n"
    ),
    "answer the protocol early": (
        "import os, socket\nfor fd in range(3, 20):\n    try:\n"
        '        os.write(fd, b\'{"ok": 3}\\n{"ok": 0}\\n{"ok": 15}\\n\')\n    except OSError:\n'
        "        pass\ndef add(a, b):\n    return 0\n"
    ),
    "object that equals everything": (
        "class Eq:\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Eq()\n"
    ),
    "int subclass that equals everything": (
        "class I(int):\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return I(0)\n"
    ),
    "kill its parent": (
        "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\nexcept OSError:\n"
        "    pass\ndef add(a, b):\n    return 0\n"
    ),
    "kill every process it can": (
        "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n"
        "    pass\ndef add(a, b):\n    return 0\n"
    ),
    "raise BaseException subclasses": ("def add(a, b):\n    raise KeyboardInterrupt\n"),
    "spawn a thread that outlives the call": (
        "import threading, time\ndef add(a, b):\n"
        "    threading.Thread(target=time.sleep, args=(100,)).start()\n    return 0\n"
    ),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_fails_in_time(box, name):
    if name in NEEDS_CONTAINMENT and not CONTAINED:
        pytest.skip("needs namespaces or root (isolation mode 'plain' as a normal user)")
    result = run(box, ATTACKS[name])
    assert not result.passed, f"{name}: {result}"
    assert result.status in ("failed", "error", "load_error", "timeout"), result


@pytest.mark.skipif(not CONTAINED, reason="needs namespaces or root")
def test_host_survives_and_sandbox_recovers(box):
    for name in ("kill its parent", "kill every process it can", "os._exit(0) before the tests"):
        run(box, ATTACKS[name])
    assert os.getpid() > 0  # we are still here
    assert run(box, "def add(a, b):\n    return a + b\n").status == "passed"


def test_reading_the_tests_from_memory_finds_nothing(box):
    spy = """
    import gc, sys
    def add(a, b):
        texts = [repr(o) for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]
        frame = sys._getframe().f_back
        while frame is not None:
            texts.append(repr(frame.f_locals))
            frame = frame.f_back
        marker = ''.join(['hidden', '_expected_', 'value'])  # not a constant of this code
        return 3 if any(marker in t for t in texts) else 0
    """
    tests = "# hidden_expected_value\nassert add(1, 2) == 3\n"
    assert run(box, spy, tests).status == "failed"


@pytest.mark.skipif(not CONTAINED, reason="needs namespaces or root")
def test_environment_secrets_are_not_visible(box, monkeypatch):
    monkeypatch.setenv("OFFLOAD_TEST_SECRET", "s3cr3t-value")
    spy = """
    import os, glob
    def add(a, b):
        if 'OFFLOAD_TEST_SECRET' in os.environ:
            return a + b
        for path in glob.glob('/proc/*/environ'):
            try:
                if b's3cr3t-value' in open(path, 'rb').read():
                    return a + b
            except OSError:
                pass
        return 0
    """
    assert run(box, spy).status == "failed"


@pytest.mark.skipif(not CONTAINED, reason="needs namespaces or root")
def test_files_outside_the_work_dir_are_not_written(box, tmp_path):
    target = tmp_path / "pwned.txt"
    outside = f"""
    def add(a, b):
        for path in [{str(target)!r}, '/tmp/offload-pwned.txt', '/root/offload-pwned.txt',
                     '/etc/offload-pwned.txt', {str(tmp_path / "x.txt")!r}]:
            try:
                with open(path, 'w') as fh:
                    fh.write('pwned')
            except OSError:
                pass
        with open('inside.txt', 'w') as fh:  # its own directory is writable
            fh.write('fine')
        return a + b
    """
    assert run(box, outside).status == "passed"
    assert not target.exists() and not (tmp_path / "x.txt").exists()
    for path in ("/tmp/offload-pwned.txt", "/root/offload-pwned.txt", "/etc/offload-pwned.txt"):
        assert not os.path.exists(path), path


@pytest.mark.skipif(not ISOLATED, reason="network isolation needs namespaces (unshare)")
def test_network_is_closed(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.1)
    port = server.getsockname()[1]
    accepted = []

    def accept():
        with contextlib.suppress(OSError):
            accepted.append(server.accept())

    thread = threading.Thread(target=accept)
    thread.start()
    program = f"""
    import socket
    def add(a, b):
        try:
            socket.create_connection(('127.0.0.1', {port}), timeout=1).close()
            return a + b
        except OSError:
            return 0
    """
    try:
        # A candidate cannot import socket at all (test_sandbox_kernel.py); the network
        # namespace is tested as if it could.
        assert run(box, program).status == "load_error"
        with Sandbox(workers=1, limits=LIMITS, _unsafe_candidate_modules=("socket",)) as unsafe:
            assert run(unsafe, program).status == "failed"
    finally:
        thread.join()
        server.close()
    assert not accepted


def test_limits_are_validated():
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=-1)
    with pytest.raises(ValueError, match="workers"):
        Sandbox(workers=0)
    with pytest.raises(TypeError, match="CodeCheck"):
        Sandbox(workers=1).run("print(1)")  # type: ignore[arg-type]


def test_run_many_keeps_order_and_runs_concurrently(box):
    programs = [f"def add(a, b):\n    return a + b + {k % 2}\n" for k in range(20)]
    results = box.run_many([CodeCheck(p, "add", TESTS) for p in programs])
    assert [r.passed for r in results] == [k % 2 == 0 for k in range(20)]


def test_an_unreadable_monitor_reply_is_a_counted_sandbox_error(monkeypatch):
    from offload_gym.scoring import sandbox as sb

    with Sandbox(workers=1, limits=LIMITS) as fresh:
        monkeypatch.setattr(sb._Monitor, "_readline", staticmethod(lambda proc, wait: b"garbage\n"))
        result = fresh.run(CodeCheck("def add(a, b):\n    return a + b\n", "add", TESTS))
        assert result.status == "sandbox_error" and not result.passed
        assert fresh.stats["sandbox_errors"] == 1


def test_an_earlier_checks_tests_cannot_be_found_by_the_next_candidate():
    """The attack of the grading-trust issue: after one check, walk gc.get_objects() for its
    namespace and ``check`` function. Every check runs in a fresh judge process, so the next
    candidate (on the same worker) finds nothing."""
    earlier = ("SECRET_ANSWER = 'hidden-expected-41'\n"
               "def check(candidate):\n    assert candidate(1, 2) == 3\n")  # fmt: skip
    spy = """
    import gc
    def _leak():
        marker = ''.join(['hidden-', 'expected-41'])
        for o in gc.get_objects():
            if callable(o) and getattr(o, '__name__', '') == 'check':
                return 1
            if isinstance(o, dict) and (o.get('SECRET_ANSWER') == marker
                                        or o.get('__name__') == '__tests__'):
                return 1
        return 0
    FOUND = _leak()
    def add(a, b):
        return FOUND
    """
    with Sandbox(workers=1, limits=LIMITS) as one:
        assert run(one, "def add(a, b):\n    return a + b\n", earlier).status == "passed"
        probe = run(one, spy, "assert add(0, 0) == 0\n")  # passes only if nothing leaked
        assert probe.status == "passed", probe
        found = run(one, spy, "assert add(0, 0) == 1\n")
        assert found.status == "failed"


@pytest.mark.skipif(not ISOLATED, reason="needs mount namespaces (private tmpfs)")
def test_nothing_left_in_tmp_reaches_the_next_candidate():
    writer = """
    import os
    for d in ('/tmp', '/var/tmp', '/dev/shm'):
        try:
            with open(os.path.join(d, 'offload-leak.txt'), 'w') as fh:
                fh.write('x' * 1000)
        except OSError:
            pass
    def add(a, b):
        return a + b
    """
    reader = """
    import os
    FOUND = sum(os.path.exists(os.path.join(d, 'offload-leak.txt'))
                for d in ('/tmp', '/var/tmp', '/dev/shm'))
    def add(a, b):
        return FOUND
    """
    with Sandbox(workers=1, limits=LIMITS) as one:
        assert run(one, writer).status == "passed"
        assert run(one, reader, "assert add(0, 0) == 0\n").status == "passed"
    assert not os.path.exists("/tmp/offload-leak.txt")  # and nothing reached the host's /tmp


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid drop (and the chroot with it) needs root")
def test_host_files_are_out_of_reach():
    """World-readable host files (this project's own, an installed package's data, /etc) cannot
    be read: the candidate's filesystem is its work dir."""
    here = os.path.abspath(__file__)
    reader = f"""
    import os
    FOUND = 0
    for path in ({here!r}, '/etc/passwd', '/etc/hostname', '/proc/1/cmdline'):
        try:
            with open(path, 'rb') as fh:
                FOUND += bool(fh.read(1))
        except OSError:
            pass
    FOUND += len(os.listdir('/')) > 0 and os.path.exists('/usr')
    def add(a, b):
        return FOUND
    """
    with Sandbox(workers=1, limits=LIMITS) as one:
        result = run(one, reader, "assert add(0, 0) == 0\n")
    assert result.status == "passed", result


REPLAY = """
import gc
_seen = {}

class _Rec:
    def __init__(self, key):
        self.key = key
    def __eq__(self, other):
        _seen[self.key] = other
        return True
    __hash__ = None

def _learn():
    for o in gc.get_objects():
        if callable(o) and getattr(o, "__name__", "") == "check":
            try:
                o(lambda *a, **k: _Rec(repr((a, sorted(k.items())))))
            except Exception:
                pass

_learn()

def ENTRY(*a, **k):
    return _seen.get(repr((a, sorted(k.items()))))
"""


def test_the_replay_attack_through_offload_code_earns_nothing():
    """The issue's attack through the public path: a response that finds earlier checks in
    gc, calls them with recording objects and replays the expected values, over repeated
    episodes of the same tasks (reward 1.0 from the third episode on, before the fix), and in
    a GRPO group of eight such responses to one task, graded together."""
    import gymnasium as gym

    from offload_gym.scoring.code import run_code_checks
    from offload_gym.tasks import make_generator

    tasks = [make_generator("code_arithmetic", seed=3)[i] for i in range(3)]
    env = gym.make("OffloadCode-v0", tasks=tasks, budget=0.0)
    rewards = []
    for episode in range(4):
        env.reset(seed=episode)
        for task in tasks:
            attack = "```python\n" + REPLAY.replace("ENTRY", task.entry_point) + "```"
            rewards.append(env.step(attack)[1])
    env.close()
    assert rewards == [0.0] * 12
    group = [REPLAY.replace("ENTRY", tasks[0].entry_point)] * 8
    assert not any(r.passed for r in run_code_checks([tasks[0]] * 8, group))
    # The control: where an earlier check is in memory (a fresh interpreter that ran the
    # tests, then the attack), the same attack passes the tests without an implementation, so
    # the zeros above are the sandbox's doing.
    import subprocess
    import sys

    leak = (f"leaked = {{}}\nexec({tasks[0].tests!r}, leaked)\ncandidate = {{}}\n"
            f"exec({REPLAY.replace('ENTRY', 'f')!r}, candidate)\nleaked['check'](candidate['f'])\n")  # fmt: skip
    subprocess.run([sys.executable, "-c", leak], check=True, timeout=60)


def test_sandbox_monitors_die_with_their_host():
    """kill -9 of the host in the middle of a check: the monitor finishes that check (bounded
    by its timeout), reads end-of-file on its request pipe and exits; nothing is left running
    for nobody."""
    import signal
    import subprocess
    import sys

    host = subprocess.Popen(
        [sys.executable, "-c",
         "import threading\n"
         "from offload_gym.scoring.sandbox import CodeCheck, Sandbox, SandboxLimits\n"
         "box = Sandbox(workers=1, limits=SandboxLimits(timeout_s=3.0))\n"
         "box.run(CodeCheck('def f():\\n    return 1\\n', 'f', 'assert f() == 1'))\n"
         "print(box._all[0].proc.pid, flush=True)\n"
         "box.run(CodeCheck('def f():\\n    while True: pass\\n', 'f', 'f()'))\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    monitor = int(host.stdout.readline())
    time.sleep(0.5)  # the endless candidate is running under the monitor now
    os.kill(host.pid, signal.SIGKILL)
    host.wait(timeout=10)

    assert exits_within(monitor, 15)
