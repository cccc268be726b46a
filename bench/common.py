"""What every benchmark script shares: core pinning, machine notes, reporting."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from importlib.metadata import version
from pathlib import Path

BENCH_CORE = 0  # every measured process runs on this one core
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def pin_to_core(core: int = BENCH_CORE) -> None:
    """Pin this process (and every process it starts afterwards) to one core."""
    os.sched_setaffinity(0, {core})


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its children that have been waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def machine_notes(packages: Sequence[str]) -> dict:
    """CPU model, core counts, Python and package versions, for the results file."""
    return {
        "cpu": _cpu_model(),
        "cores_online": os.cpu_count(),
        "pinned_to_core": BENCH_CORE,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: version(name) for name in packages},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        return platform.processor() or "?"


def fastest_of_each(runs: list, kinds: int, seconds: Callable = lambda run: run.seconds) -> list[tuple]:
    """Runs made round by round, `kinds` per round → (the fastest run, every round's seconds) of
    each kind."""
    out = []
    for i in range(kinds):
        tries = runs[i::kinds]
        out.append((min(tries, key=seconds), [round(seconds(t), 2) for t in tries]))
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | os.PathLike, payload: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=2, ensure_ascii=False)
        f.write("\n")


def measured(fn: Callable, args: tuple) -> tuple:
    """(fn(*args), this process's peak RSS in MiB): for a task run in a fresh process."""
    result = fn(*args)
    return result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def measured_from_now(fn: Callable, args: tuple) -> tuple:
    """(fn(*args), the peak RSS in MiB while it ran): Linux resets the peak on request, so a
    reused worker process measures each task on its own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    result = fn(*args)
    with open("/proc/self/status") as f:
        peak_kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    return result, peak_kb // 1024


class FreshProcesses:
    """An `Execute` (stages/dedup, stages/mix) that keeps each step's peak RSS per task
    (`step(desc)` names the step a task belongs to): every task in its own process, or with
    `reuse`, in long-lived workers whose peak is reset before each task (much faster)."""

    def __init__(self, workers: int = 2, step: Callable[[str], str] = lambda desc: desc.split()[1],
                 reuse: bool = False):
        self.peaks: dict[str, int] = {}
        self.step = step
        self.measure = measured_from_now if reuse else measured
        self.pool = ProcessPoolExecutor(workers, mp_context=get_context("forkserver"),
                                        max_tasks_per_child=None if reuse else 1)

    def __call__(self, fn, args, desc):
        step = self.step(desc)
        outs = list(self.pool.map(self.measure, [fn] * len(args), args))
        self.peaks[step] = max([self.peaks.get(step, 0), *(rss for _, rss in outs)])
        return [r for r, _ in outs], []
