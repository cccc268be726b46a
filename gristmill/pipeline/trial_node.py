"""`gristmill trial-node`: a node of a one-machine trial Ray cluster, every listener on 127.0.0.1.

Ray keeps a node on loopback only under RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0. With it on (Linux's
default), `ray start` turns 127.0.0.1 into the machine's outward address and its servers (GCS,
raylet, workers, agents, metrics) listen on every interface; with it off, `ray start --address`
refuses to start a worker node. A trial node is `ray start` with the setting off and that refusal
alone lifted. Each node also gets:
- a temp dir of its own: two nodes sharing one remove each other's job working directories (a
  submitted run's driver then loses its cwd mid-run);
- free ports for the per-node servers Ray would otherwise fix (dashboard agent, client server);
- a process group of its own, recorded in its temp dir, so `--stop DIR` stops that node alone
  (`ray stop` stops every Ray process on the machine, other users' included).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gristmill.core.config import ConfigError

ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
PGID_FILE = "gristmill-node.pgid"

# `ray start` with Ray's "no multi-node cluster here" check lifted and nothing else changed: the
# loopback address resolution (services.get_node_ip_address) still reads the real setting.
_RAY_START = """
import sys, types
import ray._private.ray_constants as constants
import ray.scripts.scripts as scripts
scripts.ray_constants = types.SimpleNamespace(**{**vars(constants), "ENABLE_RAY_CLUSTER": True})
sys.argv[0] = "ray"
scripts.main()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start_command(temp_dir: str, num_cpus: int | None, head_port: int | None = None,
                      dashboard_port: int | None = None, address: str | None = None) -> list[str]:
    """The argv of a trial node's `ray start`: a head (`head_port`) or a worker joining `address`."""
    if (head_port is None) == (address is None):
        raise ValueError("a trial node is a head (head_port) or a worker (address), not both")
    argv = [sys.executable, "-c", _RAY_START, "start", "--node-ip-address=127.0.0.1", f"--temp-dir={temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"]
    if head_port is not None:
        argv += ["--head", f"--port={head_port}", "--dashboard-host=127.0.0.1",
                 f"--dashboard-port={dashboard_port or 8265}", f"--ray-client-server-port={free_port()}"]
    else:
        argv.append(f"--address={address}")
    return argv + ([f"--num-cpus={num_cpus}"] if num_cpus is not None else [])


def trial_env() -> dict[str, str]:
    env = {**os.environ, **ENV}
    env.pop("RAY_ADDRESS", None)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # the job's `python` is this one
    return env


def start(args: argparse.Namespace) -> int:
    if args.address is not None and not args.address.startswith(("127.0.0.1:", "localhost:")):
        raise ConfigError(f"--address {args.address}: a trial node joins a head on this machine "
                          "(127.0.0.1:PORT); on a real cluster use `ray start` (deploy/README.md)")
    temp_dir = args.temp_dir or tempfile.mkdtemp(prefix="gm-ray-", dir="/tmp")  # short: socket paths
    argv = ray_start_command(temp_dir, args.num_cpus, None if args.address else args.port,
                             args.dashboard_port, args.address)
    proc = subprocess.Popen(argv, env=trial_env(), start_new_session=True)
    if proc.wait() != 0:
        _stop_group(proc.pid)
        print(f"gristmill: ray start failed (exit {proc.returncode}); see its output above", file=sys.stderr)
        return 1
    (Path(temp_dir) / PGID_FILE).write_text(f"{proc.pid}\n")
    print(f"trial node up, its files in {temp_dir}; stop it (and only it) with: "
          f"gristmill trial-node --stop {temp_dir}")
    return 0


def stop(temp_dir: str) -> int:
    try:
        pgid = int((Path(temp_dir) / PGID_FILE).read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{temp_dir}: not a trial node's temp dir (no {PGID_FILE})") from None
    _stop_group(pgid)
    (Path(temp_dir) / PGID_FILE).unlink()
    print(f"trial node of {temp_dir} stopped")
    return 0


def _stop_group(pgid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + grace_s
        while time.time() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)


def cmd_trial_node(args: argparse.Namespace) -> int:
    return stop(args.stop) if args.stop else start(args)


def add_trial_node_command(sub: argparse._SubParsersAction) -> None:
    sp = sub.add_parser("trial-node", help="a Ray node of a one-machine trial cluster, all on 127.0.0.1")
    role = sp.add_mutually_exclusive_group(required=True)
    role.add_argument("--head", action="store_true", help="start the head node")
    role.add_argument("--address", help="start a worker node joining this head (127.0.0.1:PORT)")
    role.add_argument("--stop", metavar="TEMP_DIR", help="stop the trial node whose temp dir this is")
    sp.add_argument("--port", type=int, default=6380, help="the head's GCS port (default 6380)")
    sp.add_argument("--dashboard-port", type=int, default=8265, help="the head's dashboard/job API port")
    sp.add_argument("--num-cpus", type=int)
    sp.add_argument("--temp-dir", help="the node's own temp dir (default: a new one under /tmp)")
    sp.set_defaults(fn=cmd_trial_node)
