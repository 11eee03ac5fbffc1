"""Nothing a check does is visible to a later check, nor to the host: kernel objects (System V and
POSIX IPC, keyrings) and modules.

The kernel tests hand the candidate ``ctypes`` on purpose (a test-only switch of `Sandbox`): a
real candidate cannot import it (tested below), but each isolation layer is tested as if the
one before it had fallen, against a candidate that can make any system call.
"""

from __future__ import annotations

import os
import platform
import textwrap

import pytest

from offload_gym.scoring._sandbox_monitor import PRELOAD
from offload_gym.scoring.sandbox import CodeCheck, Sandbox, SandboxLimits, isolation_mode

LIMITS = SandboxLimits(timeout_s=5.0, cpu_seconds=5, memory_mb=512)
ROOT_MODE = isolation_mode() == "namespaces+uid"
needs_root_mode = pytest.mark.skipif(
    not ROOT_MODE, reason="the guarantees tested here hold in the namespaces+uid mode (root)"
)
needs_x86_64 = pytest.mark.skipif(
    platform.machine() != "x86_64", reason="the test's system-call numbers are x86_64's"
)

IMPORTER = """
def probe(name):
    try:
        __import__(name)
        return True
    except BaseException:
        return False
"""

FORBIDDEN = (
    "ctypes", "_ctypes", "subprocess", "_posixsubprocess", "multiprocessing", "mmap", "socket",
    "_socket", "resource", "signal", "numpy", "offload_gym", "gymnasium", "torch", "_wire",
    "_sandbox_kernel", "importlib.util", "pickle", "shutil", "tempfile",
)  # fmt: skip


def _probe(box: Sandbox, name: str) -> bool:
    """Whether a candidate can import ``name`` (the verdict says: passed = imported)."""
    return box.run(CodeCheck(IMPORTER, "probe", f"assert probe({name!r})")).passed


@needs_root_mode
def test_a_candidate_imports_only_the_documented_modules():
    with Sandbox(workers=1, limits=LIMITS) as box:
        leaked = [name for name in FORBIDDEN if _probe(box, name)]
        missing = [name for name in PRELOAD if not _probe(box, name)]
    assert leaked == []
    assert missing == []


@needs_root_mode
def test_no_foreign_function_interface_is_in_a_candidates_memory():
    """Not importable is not enough: a module loaded in the monitor would stay reachable through
    ``object.__subclasses__()``. None of ctypes' classes exist in the candidate's interpreter."""
    program = """
    def ffi_classes():
        seen, todo, found = set(), [object], []
        while todo:
            cls = todo.pop()
            for sub in type.__subclasses__(cls):
                if id(sub) not in seen:
                    seen.add(id(sub))
                    todo.append(sub)
                    if "ctypes" in str(getattr(sub, "__module__", "")):
                        found.append(sub.__name__)
        return found
    """
    check = CodeCheck(textwrap.dedent(program), "ffi_classes", "assert ffi_classes() == []")
    with Sandbox(workers=1, limits=LIMITS) as box:
        result = box.run(check)
    assert result.status == "passed", result


# ------------------------------------------------------------------- kernel objects, with ctypes
KERNEL = """
import ctypes, os

libc = ctypes.CDLL(None, use_errno=True)
KEY = 0x0FF10AD
MQ = b"/offload-sandbox-test"
KEYCTL, ADD_KEY = 250, 248  # x86_64
RINGS = {"process": -2, "session": -3, "user": -4, "user-session": -5}


def persistent():
    # KEYCTL_GET_PERSISTENT (22), linked into the process keyring
    return libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(22), ctypes.c_long(-1),
                        ctypes.c_long(-2))


def add(ring):
    return libc.syscall(ctypes.c_long(ADD_KEY), b"user", b"offload-test", b"secret", 6,
                        ctypes.c_long(ring)) >= 0


def search(ring):
    # KEYCTL_SEARCH (10): a key of this type and description in that keyring
    return libc.syscall(ctypes.c_long(KEYCTL), ctypes.c_long(10), ctypes.c_long(ring), b"user",
                        b"offload-test", ctypes.c_long(0)) >= 0


def plant():
    made = {
        "shm": libc.shmget(KEY, 4096, 0o1666) >= 0,
        "msg": libc.msgget(KEY, 0o1666) >= 0,
        "sem": libc.semget(KEY, 1, 0o1666) >= 0,
        "mqueue": libc.mq_open(MQ, os.O_CREAT | os.O_RDWR, 0o666, None) >= 0,
    }
    for name, ring in RINGS.items():
        made["key-" + name] = add(ring)
    ring = persistent()
    made["key-persistent"] = ring >= 0 and add(ring)
    return made


def find():
    found = {
        "shm": libc.shmget(KEY, 0, 0) >= 0,
        "msg": libc.msgget(KEY, 0) >= 0,
        "sem": libc.semget(KEY, 0, 0) >= 0,
        "mqueue": libc.mq_open(MQ, os.O_RDONLY) >= 0,
    }
    for name, ring in RINGS.items():
        found["key-" + name] = search(ring)
    ring = persistent()  # last: it links the persistent keyring into the process keyring
    found["key-persistent"] = ring >= 0 and search(ring)
    return found
"""

KINDS = ("shm", "msg", "sem", "mqueue", "key-process", "key-session", "key-user",
         "key-user-session", "key-persistent")  # fmt: skip


def _report(box: Sandbox, entry: str) -> dict[str, bool]:
    """Run ``entry`` of the kernel program, one check per kind (the verdict is the only thing
    that leaves a check): whether that kind was planted, or found."""
    return {
        kind: box.run(CodeCheck(KERNEL, entry, f"assert {entry}()[{kind!r}] is True")).passed
        for kind in KINDS
    }


@needs_root_mode
@needs_x86_64
def test_kernel_objects_do_not_outlive_their_check():
    with Sandbox(workers=1, limits=LIMITS, _unsafe_candidate_modules=("ctypes",)) as box:
        planted = _report(box, "plant")
        found = _report(box, "find")
    # Within a check the candidate creates IPC objects and keys of its own (so the last
    # assertion is not vacuous), and a key in its persistent keyring (which the kernel lets
    # nobody lock: it is emptied after the check) ...
    writable = ("shm", "msg", "sem", "mqueue", "key-process", "key-persistent")
    assert all(planted[k] for k in writable), planted
    # ... but cannot write the keyrings it shares with the monitor and later checks ...
    assert not any(planted[k] for k in ("key-session", "key-user", "key-user-session"))
    # ... and the next check finds nothing.
    assert found == dict.fromkeys(KINDS, False)


@needs_root_mode
@needs_x86_64
def test_kernel_objects_never_reach_the_host():
    with Sandbox(workers=1, limits=LIMITS, _unsafe_candidate_modules=("ctypes",)) as box:
        check = CodeCheck(KERNEL, "plant", "made = plant()\nassert made['shm'] and made['msg']")
        assert box.run(check).passed
        for kind in ("shm", "msg", "sem"):
            with open(f"/proc/sysvipc/{kind}") as fh:
                assert str(0x0FF10AD) not in fh.read().split()
        assert not os.path.exists("/dev/mqueue/offload-sandbox-test")
