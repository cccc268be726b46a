"""A `ray start --head` cluster for tests, on 127.0.0.1, that stops only what it started.

`ray stop` (with or without --force) kills every Ray process on the machine, other tests' and
other users' included. Here `ray start` runs in a session of its own, so every process it starts
(GCS, raylet, dashboard, workers) shares its process group; the cluster is stopped by signalling
that group alone, SIGTERM then SIGKILL, also when the test fails. RAY_TMPDIR keeps its files
(and its `ray_current_cluster` record) in a directory of the test's own.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


@dataclass
class RayHead:
    env: dict[str, str]  # the environment its processes run with (and a test's commands should)
    gcs_address: str  # host:port, for ray.init / --address
    dashboard: str  # http://host:port, for the job API
    pgid: int


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes in process group `pgid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pgid and stat[0] != "Z":
            pids.append(int(entry))
    return pids


def stop_group(pgid: int, grace_s: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace_s
        while group_members(pgid) and time.time() < deadline:
            time.sleep(0.2)
        if not group_members(pgid):
            return


@contextmanager
def ray_head(port: int, dashboard_port: int, num_cpus: int = 2, timeout_s: float = 120) -> Iterator[RayHead]:
    """A head node on 127.0.0.1; its record lands in a private RAY_TMPDIR (short: socket paths)."""
    tmp = tempfile.mkdtemp(prefix="gm-ray-", dir="/tmp")
    env = {**os.environ, "RAY_TMPDIR": tmp, "RAY_AUTH_MODE": "disabled",
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    starter = subprocess.Popen(
        [BIN / "ray", "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", f"--num-cpus={num_cpus}",
         "--disable-usage-stats"],
        env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = starter.communicate(timeout=timeout_s)
        if starter.returncode != 0:
            raise RuntimeError(f"ray start failed:\n{out}")
        yield RayHead(env, f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}", starter.pid)
    finally:
        if starter.poll() is None:
            starter.kill()
        stop_group(starter.pid)
        subprocess.run(["rm", "-rf", tmp], check=False)
