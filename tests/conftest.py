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

from pipeline import env  # noqa: F401  (Ray on 127.0.0.1, offline hubs: before anything imports ray)

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
    then the rest of its process group (its private Ray), and wait until none of it is left.

    Even so, work the driver handed out may still land for a while (a request a killed worker sent
    that a server finishes): a test counts what is done after this returns and lets a rerun find
    more done than that (`already_done`), never an exact number."""
    from tests.ray_cluster import group_members

    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + timeout_s
        while not ready():
            assert proc.poll() is None, "run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(poll_s)
        os.kill(proc.pid, signal.SIGKILL)  # the driver, mid-run
        proc.wait()
    finally:
        deadline = time.time() + 120
        while group_members(proc.pid) and time.time() < deadline:  # then what it left behind
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.5)


def already_done(stdout: str) -> int:
    """How many shards a rerun found finished ("N shards, K already done, M to run")."""
    found = re.search(r"(\d+) already done", stdout)
    assert found, stdout
    return int(found.group(1))
