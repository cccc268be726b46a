"""A function run in a persistent forked child that can be killed: a time limit that holds inside
C code (lxml's parser and tree walks), where SIGALRM only fires at the next Python bytecode.

The child is forked on the first call and serves calls over a pipe (bytes in, a small pickled
result out) until it is closed. On a timeout the parent kills it (SIGKILL) and forks a fresh one
on the next call. It never outlives its parent: it asks the kernel for SIGKILL when the parent
(thread) dies, and exits when the pipe closes.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection

PR_SET_PDEATHSIG = 1


class WorkerTimeout(Exception):
    """The call did not finish in time; the child was killed."""


class WorkerDied(Exception):
    """The child died during the call (a crash in C code, the OOM killer)."""


class WorkerError(Exception):
    """The function raised in the child; the message is the exception's class name."""


def _die_with_parent(parent_pid: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the closed pipe still ends the child
        pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(0)


def _serve(conn: Connection, fn: Callable[[bytes], object]) -> None:
    while True:
        try:
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(payload))
        except Exception as e:  # reported to the parent, which decides; the child carries on
            reply = (False, type(e).__name__)
        conn.send(reply)


class ForkedWorker:
    """`call(payload, timeout_s)` → `fn(payload)`, computed in a forked child that is killed if
    it takes longer than `timeout_s`. `fn` must return something small and picklable."""

    def __init__(self, fn: Callable[[bytes], object]):
        self.fn = fn
        self.pid: int | None = None
        self.conn: Connection | None = None
        self.owner = os.getpid()  # a copy of this object in a forked child must not touch the child

    def _start(self) -> None:
        parent_end, child_end = Pipe()
        parent_pid = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: serve until the pipe closes, never return into the caller's code
            try:
                parent_end.close()
                _die_with_parent(parent_pid)
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, signal.SIG_DFL)
                _serve(child_end, self.fn)
            finally:
                os._exit(0)
        child_end.close()
        self.pid, self.conn, self.owner = pid, parent_end, parent_pid

    def call(self, payload: bytes, timeout_s: float) -> object:
        if self.pid is not None and self._exited():  # killed while idle (OOM killer): not the page's fault
            self.conn.close()
            self.pid, self.conn = None, None
        if self.pid is None:
            self._start()
        try:
            self.conn.send_bytes(payload)
            ready = self.conn.poll(timeout_s)
            if not ready:
                self.close()
                raise WorkerTimeout()
            ok, value = self.conn.recv()
        except (EOFError, OSError) as e:
            self.close()
            raise WorkerDied() from e
        if not ok:
            raise WorkerError(value)
        return value

    def _exited(self) -> bool:
        """Whether the child has died (it is reaped if so)."""
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            return True

    def close(self) -> None:
        """Kill and reap the child (a no-op without one)."""
        if self.pid is None or self.owner != os.getpid():
            return
        self.conn.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):  # already reaped (SIGCHLD ignored)
            pass
        self.pid, self.conn = None, None

    def __del__(self) -> None:
        self.close()
