"""A `ray start --head` cluster for tests, on 127.0.0.1, that stops only what it started; worker
nodes for it (`ray_worker`), each in a process group of its own, to be stopped or killed alone.

`ray stop` (with or without --force) kills every Ray process on the machine, other tests' and
other users' included. Here `ray start` runs in a session of its own, so every process it starts
(GCS, raylet, dashboard, workers) shares its process group; the cluster is stopped by signalling
that group alone, SIGTERM then SIGKILL, also when the test fails. RAY_TMPDIR keeps its files
(and its `ray_current_cluster` record) in a directory of the test's own. Ports Ray would otherwise
fix (the dashboard agent's 52365, the client server's 10001) are picked free, so that clusters of
concurrent tests, and two nodes on one machine, do not clash.
"""

from __future__ import annotations

import os
import signal
import socket
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


@dataclass
class RayWorker:
    node_id: str
    pgid: int

    def kill(self) -> None:
        """SIGKILL every process of this node (raylet, agents, its workers): a node lost at once."""
        stop_group(self.pgid, grace_s=10.0, signals=(signal.SIGKILL,))


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(pgid: int, grace_s: float = 5.0,
               signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    for sig in signals:
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
         f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}",
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


# `ray start` for a worker node. With RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (pipeline/env.py: addresses
# default to loopback) `ray start --address` refuses to start a worker node, on Linux too; with 1 it
# turns the address 127.0.0.1 into the machine's outward one, where the head does not listen. So: 0,
# with the refusal alone switched off.
_WORKER_START = """
import sys, types
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts
scripts.ray_constants = types.SimpleNamespace(**{**vars(constants), "ENABLE_RAY_CLUSTER": True})
sys.argv[0] = "ray"
scripts.main()
"""


def alive_nodes(head: RayHead) -> set[str]:
    """The ids of the cluster's live nodes (the state API, over the dashboard)."""
    from ray.util.state import list_nodes

    return {n.node_id for n in list_nodes(address=head.dashboard, raise_on_missing_output=False)
            if n.state == "ALIVE"}  # (a filter on state counts as "truncation" and raises)


@contextmanager
def ray_worker(head: RayHead, num_cpus: int = 1, timeout_s: float = 120) -> Iterator[RayWorker]:
    """A second node joined to `head` (same machine and environment), in a session of its own: `kill()`
    loses it abruptly; on exit whatever is left of it is stopped. (`ray start`, run through
    _WORKER_START: see there.) It has a temp dir of its own, as a node on another machine would: with
    the head's, the job's working_dir (the driver's cwd) was gone after this node was killed (seen once)."""
    before = alive_nodes(head)
    tmp = tempfile.mkdtemp(prefix="gm-rayw-", dir="/tmp")
    starter = subprocess.Popen(
        [sys.executable, "-c", _WORKER_START, "start", f"--address={head.gcs_address}",
         "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", f"--temp-dir={tmp}",
         f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"],
        env=head.env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = starter.communicate(timeout=timeout_s)
        if starter.returncode != 0:
            raise RuntimeError(f"ray start (worker) failed:\n{out}")
        deadline = time.time() + timeout_s
        while not (new := alive_nodes(head) - before):
            if time.time() > deadline:
                raise RuntimeError(f"the worker node did not join within {timeout_s:.0f}s:\n{out}")
            time.sleep(0.5)
        yield RayWorker(new.pop(), starter.pid)
    finally:
        if starter.poll() is None:
            starter.kill()
        stop_group(starter.pid)
        subprocess.run(["rm", "-rf", tmp], check=False)
