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
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gristmill.pipeline.trial_node import free_port, ray_start_command, trial_env  # noqa: F401 (free_port: for tests)


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


def live_processes() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every live (not zombie) process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z":
            table[int(entry)] = (int(stat[1]), int(stat[2]))
    return table


def group_members(pgid: int) -> list[int]:
    """PIDs of the live (not zombie) processes in process group `pgid`."""
    return [pid for pid, (_, group) in live_processes().items() if group == pgid]


def node_processes(pgids: set[int]) -> set[int]:
    """The live processes of these process groups and every descendant of them: Ray puts each
    worker process (and a job's driver) in a process group of its own, under the raylet."""
    table = live_processes()
    found = {pid for pid, (_, group) in table.items() if group in pgids}
    while grown := {pid for pid, (ppid, _) in table.items() if ppid in found} - found:
        found |= grown
    return found


def running_task(pgid: int, name: str) -> bool:
    """Whether a worker process of the node whose group is `pgid` runs task `name` now (Ray titles
    a worker `ray::<task>` while it runs one): read from /proc, without the state API's delay."""
    for pid in node_processes({pgid}):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(f"ray::{name}".encode()):
                return True
        except OSError:
            continue
    return False


def listeners(pgids: set[int]) -> list[tuple[str, int]]:
    """(local address, pid) of every listening TCP socket owned by a process of these groups or
    their descendants (`ss`)."""
    ours = node_processes(pgids)
    out = subprocess.run(["ss", "-Htlnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        local, procs = line.split()[3], line.split("users:", 1)[-1]
        found += [(local, pid) for pid in map(int, re.findall(r"pid=(\d+)", procs)) if pid in ours]
    return found


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
    """A head node on 127.0.0.1 (`gristmill trial-node`'s `ray start`); its record lands in a private
    temp dir (short: socket paths)."""
    tmp = tempfile.mkdtemp(prefix="gm-ray-", dir="/tmp")
    env = {**trial_env(), "RAY_TMPDIR": tmp}
    starter = subprocess.Popen(ray_start_command(tmp, num_cpus, head_port=port, dashboard_port=dashboard_port),
                               env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
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


def alive_nodes(head: RayHead) -> set[str]:
    """The ids of the cluster's live nodes (the state API, over the dashboard)."""
    from ray.util.state import list_nodes

    return {n.node_id for n in list_nodes(address=head.dashboard, raise_on_missing_output=False)
            if n.state == "ALIVE"}  # (a filter on state counts as "truncation" and raises)


@contextmanager
def ray_worker(head: RayHead, num_cpus: int = 1, timeout_s: float = 120) -> Iterator[RayWorker]:
    """A second node joined to `head` (same machine and environment), in a session of its own: `kill()`
    loses it abruptly; on exit whatever is left of it is stopped. It has a temp dir of its own, as a
    node on another machine would (pipeline/trial_node.py says why)."""
    before = alive_nodes(head)
    tmp = tempfile.mkdtemp(prefix="gm-rayw-", dir="/tmp")
    starter = subprocess.Popen(ray_start_command(tmp, num_cpus, address=head.gcs_address), env=head.env,
                               start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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
