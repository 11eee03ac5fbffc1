"""Kernel state a sandbox check could leave behind for the next one, and its removal.

The sandbox's monitor runs in its own IPC namespace (``unshare --ipc``), so nothing a candidate
creates there reaches the host, and it all dies with the monitor. Within one monitor, one check
follows another; this module makes sure none of them sees what an earlier one left:

- System V shared memory, semaphores and message queues: listed in ``/proc/sysvipc``, removed
  after any check that created one;
- POSIX message queues: the monitor mounts its namespace's ``mqueue`` filesystem and empties it
  after every check (POSIX shared memory and named semaphores live in ``/dev/shm``, a private
  tmpfs the monitor empties too);
- keyrings: the monitor holds a private session keyring that its candidates may view but not
  write; the candidates' uid's user and user-session keyrings are emptied and locked when the
  monitor starts; its persistent keyring (which the kernel lets nobody lock) is emptied after
  any check that changed that uid's keys. A candidate can write only keyrings of its own,
  which die with it.

This module is stdlib-only and never imports ``ctypes`` into the monitor: every system call it
needs runs in a short-lived child process (`_in_child`), so a candidate (forked later from the
monitor, through a judge) finds no foreign-function interface in its memory.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

_SYSCALLS = {"x86_64": 250, "aarch64": 219}
"""``keyctl``'s system-call number per machine (no libc wrapper exists for it)."""

KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5
KEYCTL_CLEAR = 7
KEYCTL_SESSION_TO_PARENT = 18
KEYCTL_GET_PERSISTENT = 22
KEY_SPEC_PROCESS_KEYRING = -2
KEY_SPEC_USER_KEYRING = -4
KEY_SPEC_USER_SESSION_KEYRING = -5
SESSION_KEYRING_PERM = 0x01000000 | 0x08000000
"""The monitor's session keyring: its possessors (every candidate) may view and search it, and
nothing else (no write, link or attribute change); nobody else may do anything."""
LOCKED_PERM = 0x03000000 | 0x00030000
"""A candidate uid's user keyrings: view and read, for possessor and owner alike (no search
either: a candidate cannot even look them up)."""

SYSVIPC = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
IPC_RMID = 0


def _in_child(fn: Callable[..., Any], *args: Any) -> bool:
    """Run ``fn(*args)`` in a forked child and wait for it: whatever it imports (``ctypes``)
    stays out of this process. True when it returned without raising."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fn(*args)
            code = 0
        except BaseException:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _keyctl() -> Callable[..., int]:
    """``keyctl(op, *args)`` through libc's ``syscall`` (child processes only)."""
    import ctypes

    number = _SYSCALLS.get(os.uname().machine)
    if number is None:
        raise OSError("keyctl: unknown system-call number on this machine")
    libc = ctypes.CDLL(None, use_errno=True)

    def keyctl(op: int, *args: int) -> int:
        values = [ctypes.c_long(a) for a in args]
        result = int(libc.syscall(ctypes.c_long(number), ctypes.c_long(op), *values))
        if result < 0:
            raise OSError(ctypes.get_errno(), f"keyctl({op}) failed")
        return result

    return keyctl


def _private_session_keyring() -> None:
    keyctl = _keyctl()
    ring = keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)  # a new anonymous keyring
    keyctl(KEYCTL_SESSION_TO_PARENT)  # becomes the monitor's session keyring
    keyctl(KEYCTL_SETPERM, ring, SESSION_KEYRING_PERM)


def private_session_keyring() -> bool:
    """Give this process a new session keyring that its descendants can view but not write
    (where the kernel offers keyrings; False when it could not)."""
    return _in_child(_private_session_keyring)


def key_user_line(uid: int) -> str | None:
    """This uid's key counts in ``/proc/key-users`` (keys, instantiated keys, quota keys and
    bytes), None when it holds no key. The row's first field, the kernel's reference count of
    the uid's record, moves with every process of that uid and is left out."""
    with contextlib.suppress(OSError), open("/proc/key-users") as fh:
        for line in fh:
            head, _, rest = line.partition(":")
            if head.strip() == str(uid):
                return " ".join(rest.split()[1:])
    return None


def sysv_objects() -> dict[str, list[int]]:
    """The System V IPC objects of this namespace, by kind (``shm``, ``sem``, ``msg``)."""
    found: dict[str, list[int]] = {}
    for kind in SYSVIPC:
        with (
            contextlib.suppress(OSError, ValueError, IndexError),
            open(f"/proc/sysvipc/{kind}") as fh,
        ):
            ids = [int(line.split()[1]) for line in fh.readlines()[1:] if line.strip()]
            if ids:
                found[kind] = ids
    return found


def _remove_sysv(objects: dict[str, list[int]]) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for kind, ids in objects.items():
        call = getattr(libc, SYSVIPC[kind])
        for ident in ids:
            if kind == "sem":
                call(ctypes.c_int(ident), 0, IPC_RMID)
            else:
                call(ctypes.c_int(ident), IPC_RMID, None)


def remove_sysv(objects: dict[str, list[int]]) -> bool:
    """Remove these System V objects (`sysv_objects`), in a child process."""
    return _in_child(_remove_sysv, objects)


def _lock_keyrings(uid: int) -> None:
    keyctl = _keyctl()  # before the uid drop: that uid may not be able to read the stdlib
    if os.geteuid() != uid:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    for spec in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        # Once locked, a keyring can no longer be found (the kernel's lookup searches for it,
        # and it grants no search): these fail with ENOKEY, and there is nothing to do.
        with contextlib.suppress(OSError):
            keyctl(KEYCTL_CLEAR, spec)
            keyctl(KEYCTL_SETPERM, spec, LOCKED_PERM)
    # The persistent keyring cannot be locked (the kernel gives nobody the right to change its
    # permissions) and a candidate can always ask for it: it is emptied instead.
    with contextlib.suppress(OSError):
        keyctl(KEYCTL_CLEAR, keyctl(KEYCTL_GET_PERSISTENT, -1, KEY_SPEC_PROCESS_KEYRING))


def lock_keyrings(uid: int) -> bool:
    """Empty this uid's user and user-session keyrings and lock them for good (view and read
    only: no write, link, search or attribute change, so not even their owner can undo it, and
    without search the kernel's own lookup of them fails from then on), and empty
    its persistent keyring, in a child process: the only keyrings a candidate can write are
    then its own, which die with it, and the persistent one, emptied after any check that
    changed this uid's keys (`KernelState`)."""
    return _in_child(_lock_keyrings, uid)


def settled_key_user_line(uid: int, quiet: float = 0.15, limit: float = 2.0) -> str | None:
    """This uid's `key_user_line` once the kernel has collected the keys of dead processes: the
    row unchanged for ``quiet`` seconds (the collector runs some 70-90 ms after a process's
    keys are released), or as it is after ``limit`` seconds."""
    start = since = time.monotonic()
    line = key_user_line(uid)
    while time.monotonic() - start < limit:
        time.sleep(0.01)
        now, again = time.monotonic(), key_user_line(uid)
        if again != line:
            line, since = again, now
        elif now - since >= quiet:
            break
    return line


def wipe_mqueue(path: str) -> None:
    """Unlink every POSIX message queue of the mqueue filesystem mounted at ``path``."""
    with contextlib.suppress(OSError), os.scandir(path) as entries:
        for entry in entries:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


class KernelState:
    """What the monitor resets between two checks.

    Args:
        uid: The candidates' uid when the monitor drops to one (root), else None (the
            candidates run as the monitor's own uid).
        private: Whether the monitor has namespaces of its own (IPC, and user when not root):
            only then are System V objects, and the keyrings of the monitor's own uid, the
            sandbox's to touch.
        mqueue: Where this namespace's mqueue filesystem is mounted, or None.
    """

    def __init__(self, uid: int | None, private: bool, mqueue: str | None) -> None:
        self.private = private
        self.mqueue = mqueue
        self.keys_of = uid if uid is not None else (os.geteuid() if private else None)
        self._seen: str | None = None
        self._lock()

    def _lock(self) -> None:
        if self.keys_of is not None:
            lock_keyrings(self.keys_of)
            self._seen = settled_key_user_line(self.keys_of)

    def after_check(self) -> None:
        """Remove whatever the check left in the kernel (cheap when it left nothing)."""
        if self.mqueue is not None:
            wipe_mqueue(self.mqueue)
        objects = sysv_objects() if self.private else {}
        if objects:
            remove_sysv(objects)
        # The row is compared once the kernel has collected the dead candidate's own keys (its
        # count only settles then; the baseline was taken settled too): a key that outlives its
        # check adds to it, as nothing that counts can be removed by a candidate but the
        # persistent keyring, whose replacement counts again.
        keys = self.keys_of
        if keys is not None and key_user_line(keys) != self._seen != settled_key_user_line(keys):
            self._lock()
