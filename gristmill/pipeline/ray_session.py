"""Which Ray a run uses, reaching it within a bounded time, and stopping promptly on a signal.

- No address given → a fresh private Ray on 127.0.0.1 (`address="local"`), whatever else runs on
  the machine: `ray.init()` with no address would join the cluster recorded in
  `/tmp/ray/ray_current_cluster` (written by any `ray start --head`) or named by RAY_ADDRESS.
- An address given on purpose is honoured: `--address`, `execution.address`, and the RAY_ADDRESS
  that Ray sets for a job's driver (`gristmill submit`), recognised by the job-config variable
  Ray sets beside it. A RAY_ADDRESS merely exported in a shell is not a reason to leave the
  private default: pass it with `--address` to use it.
- An explicit address is tried with a plain TCP connect first (a refused or silent port fails in
  seconds with one line), then `ray.init` runs under a watchdog: Ray's own connect loop retries
  for minutes inside C++ code that no signal interrupts.
- SIGINT and SIGTERM raise `Interrupted` in the driver (Ray's `ray.init` installs a SIGTERM
  handler of its own; ours is put back). If the driver is stuck in native code, a second signal,
  or `GRACE_S` after the first, ends the process at once; the private Ray's processes die with
  it (Ray starts them with the kernel's parent-death signal).
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from gristmill.core import env  # noqa: F401  (Ray settings; must precede `import ray`)
import ray

PRIVATE = "local"
JOB_DRIVER_VARIABLE = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by Ray for a submitted job's entrypoint
TCP_TIMEOUT_S = 5.0
GRACE_S = 10.0


class RayUnreachable(RuntimeError):
    """An explicit Ray address that did not answer."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; finished parts stay and a rerun resumes."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def choose_address(cli: str | None, configured: str | None, environ: dict | None = None) -> str:
    """The address a run connects to: `PRIVATE` unless one was given on purpose."""
    environ = os.environ if environ is None else environ
    if cli:
        return cli
    if configured:
        return configured
    if environ.get(JOB_DRIVER_VARIABLE) and environ.get("RAY_ADDRESS"):
        return environ["RAY_ADDRESS"]
    return PRIVATE


def bootstrap_host_port(address: str) -> tuple[str, int]:
    """host and port of a `host:port`, `ray://host:port` or `auto` address (raises RayUnreachable)."""
    if address == "auto":
        from ray._private.services import get_ray_address_from_environment

        try:
            found = get_ray_address_from_environment("auto", None)
        except ConnectionError:
            found = None
        if not found:
            raise RayUnreachable("address auto: no Ray cluster is recorded on this machine (start one "
                                 "with `ray start --head`, or leave the address unset for a private Ray)")
        address = found
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise RayUnreachable(f"Ray address {address!r} is not host:port, ray://host:port or auto")
    return host.strip("[]"), int(port)


def connect(address: str, num_cpus: int | None, timeout_s: float) -> str:
    """Start or join Ray; returns a line saying which. Raises RayUnreachable within ~timeout_s."""
    if ray.is_initialized():
        return "Ray: already initialised in this process"
    previous = signal.getsignal(signal.SIGTERM)
    if address == PRIVATE:
        os.environ.pop("RAY_ADDRESS", None)  # nothing in this process may find its way to another Ray
        ray.init(address=PRIVATE, num_cpus=num_cpus, include_dashboard=False, log_to_driver=True,
                 _node_ip_address="127.0.0.1")
        described = f"Ray: private, on 127.0.0.1 ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    else:
        host, port = bootstrap_host_port(address)
        try:
            socket.create_connection((host, port), timeout=min(TCP_TIMEOUT_S, timeout_s)).close()
        except OSError as e:
            raise RayUnreachable(f"cannot reach Ray at {address} ({host}:{port}): {e.strerror or e}") from None
        with _watchdog(timeout_s, f"gristmill: Ray at {address} did not answer within {timeout_s:.0f}s"):
            ray.init(address=address, log_to_driver=True)
        described = f"Ray: cluster at {address} ({int(ray.cluster_resources().get('CPU', 0))} CPUs)"
    if signal.getsignal(signal.SIGTERM) is not previous and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)  # ray.init put its own there
    return described


@contextmanager
def _watchdog(seconds: float, message: str) -> Iterator[None]:
    """Exit the process (status 2) if the block has not finished within `seconds`."""
    timer = threading.Timer(seconds, _hard_exit, (2, message))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _hard_exit(status: int, message: str) -> None:
    print(message, file=sys.stderr, flush=True)
    os._exit(status)


_received: list[int] = []  # signals seen inside `interruptible()`, for `raise_if_interrupted`


def raise_if_interrupted() -> None:
    """Raise `Interrupted` if a signal arrived; the driver's loops call this between waits."""
    if _received:
        raise Interrupted(_received[0])


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT/SIGTERM end the block with `Interrupted`: raised at once where the driver runs Python,
    and by `raise_if_interrupted` after a wait inside Ray (an exception raised inside Ray's native
    code would come out garbled). A second signal, or GRACE_S without a clean exit, ends the
    process there and then."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _received.clear()

    def handler(signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if _received:  # a second signal: the first one's clean-up is not getting anywhere
            _hard_exit(128 + signum, f"gristmill: {name} again; exiting now")
        _received.append(signum)
        backstop = threading.Timer(GRACE_S, _hard_exit,
                                   (128 + signum, f"gristmill: stopped by {name}; no clean shutdown within {GRACE_S:.0f}s"))
        backstop.daemon = True
        backstop.start()
        if not _inside_ray(frame):
            raise Interrupted(signum)

    saved = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        _received.clear()


def _inside_ray(frame) -> bool:
    """Whether the signal interrupted a call into Ray's package (its Cython core among them)."""
    while frame is not None:
        if "/ray/" in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False
