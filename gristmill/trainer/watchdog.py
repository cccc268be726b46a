"""A training process stops when the process that launched it is gone.

`gristmill train` starts torchrun, which starts one worker per process. A SIGKILL of either leaves
the rest running to the end of the run (an orphan is reparented and carries on), and a resume
started meanwhile finds the run already done. So each worker watches, from a daemon thread:
- under torchrun, its parent (torchrun's agent): a new parent pid means the agent is gone;
- the process named by GRISTMILL_LAUNCHER_PID (set by the launcher to its own pid), by pid and
  start time, so that a reused pid does not count; a zombie counts as gone;
and exits (status 1) once either is gone; torchrun then stops the other workers, if it still can.
`python -m gristmill.trainer.train` on its own watches only GRISTMILL_LAUNCHER_PID, if set: a process left
to itself (nohup) keeps running. The launcher is watched through /proc (Linux; elsewhere only the
parent is). PR_SET_PDEATHSIG is not used: it fires when the parent *thread* that started the
worker ends, which need not be the parent's death.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

LAUNCHER_ENV = "GRISTMILL_LAUNCHER_PID"


def start_time(pid: int) -> int | None:
    """A live process's start time (clock ticks after boot, /proc/<pid>/stat field 22); None once
    it has exited (zombies included)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return None if fields[0] in ("Z", "X") else int(fields[19])


def gone_process(parent: int | None, launcher: int | None, launcher_start: int | None) -> str | None:
    """Which watched process is gone, or None while all are there."""
    if parent is not None and os.getppid() != parent:
        return f"torchrun's agent (pid {parent})"
    if launcher is not None and start_time(launcher) != launcher_start:
        return f"the launcher (pid {launcher}, {LAUNCHER_ENV})"
    return None


def watch_launcher(interval_s: float = 1.0) -> threading.Thread | None:
    """Start watching this process's launcher (see the module doc); None when there is nothing to
    watch. A launcher already gone at the start stops this process at once."""
    parent = os.getppid() if "TORCHELASTIC_RUN_ID" in os.environ else None
    launcher = int(os.environ[LAUNCHER_ENV]) if os.environ.get(LAUNCHER_ENV) else None
    if not Path("/proc/self/stat").exists():
        launcher = None
    if parent is None and launcher is None:
        return None
    launcher_start = start_time(launcher) if launcher is not None else None
    if launcher is not None and launcher_start is None:
        stop(f"the launcher (pid {launcher}, {LAUNCHER_ENV})")

    def watch() -> None:
        while (gone := gone_process(parent, launcher, launcher_start)) is None:
            time.sleep(interval_s)
        stop(gone)

    thread = threading.Thread(target=watch, name="launcher-watchdog", daemon=True)
    thread.start()
    return thread


def stop(gone: str) -> None:
    print(f"trainer (pid {os.getpid()}): {gone} is gone; stopping", file=sys.stderr, flush=True)
    os._exit(1)
