"""Shared test fixtures: the real data in ../shared/data and small run configs over it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gristmill.core import env  # noqa: F401  (Ray on 127.0.0.1, offline hubs: before anything imports ray)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
WARC = DATA / "warc"


def require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"test data missing: {path} (CI runs with ../shared beside the clone)")
    return path


def make_config(tmp_path: Path, inputs: dict[str, list[str]], name: str = "t", **stages) -> dict:
    """A raw config dict (as YAML would load it) writing under tmp_path."""
    raw_stages = {"ingest": {}, "extract": {"timeout_s": 30.0}, "lid": {}, "write": {}}
    raw_stages.update(stages)
    return {
        "run": {"name": name, "output": str(tmp_path / "out")},
        "inputs": [{"name": n, "paths": p} for n, p in inputs.items()],
        "execution": {"num_cpus": 2, "progress": False},
        "stages": raw_stages,
    }


def kill_run_midway(config: Path, ready: Callable[[], bool], env: dict | None = None, timeout_s: float = 300,
                    poll_s: float = 0.05) -> None:
    """Start `gristmill run config` in a session of its own, SIGKILL its driver once `ready()`,
    then every process of its private Ray (its process group, and the Ray workers, which sit in
    groups of their own), and wait until none of them is left.

    Even so, work the driver handed out may still land for a while (a request a killed worker sent
    that a server finishes): a test counts what is done after this returns and lets a rerun find
    more done than that (`already_done`), never an exact number."""
    from tests.ray_cluster import node_processes

    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    started: dict[int, str] = {}
    try:
        deadline = time.time() + timeout_s
        while not ready():
            assert proc.poll() is None, "run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(poll_s)
        started = _start_times(node_processes({proc.pid}))  # its Ray too, workers in groups of their own
        os.kill(proc.pid, signal.SIGKILL)  # the driver, mid-run
        proc.wait()
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its process group (raylet, GCS, …)
        except ProcessLookupError:
            pass
        deadline = time.time() + 120
        while (left := [p for p, t in _start_times(started).items() if t == started[p]]) and time.time() < deadline:
            for pid in left:  # the rest, by pid and start time: never a reused pid
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)


def _start_times(pids) -> dict[int, str]:
    """pid → start time (/proc stat field 22) of those of `pids` still running (not zombies)."""
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            times[pid] = fields[19]
    return times


def already_done(stdout: str) -> int:
    """How many shards a rerun found finished ("N shards, K already done, M to run")."""
    found = re.search(r"(\d+) already done", stdout)
    assert found, stdout
    return int(found.group(1))
