"""Ray job control: `gristmill status|logs|stop JOB` and `submit --follow`, bounded in time.

- Every command reaches the job API (a Ray dashboard, `http://HEAD:8265`) within bounded time: a
  plain TCP connect first (a refused or unreachable port fails at once), then HTTP requests with
  timeouts (Ray's client sets none: a port that accepts and never answers would hang it forever).
- Errors are one line on stderr and exit status 2: nothing listening, not a Ray dashboard, an
  unknown job, the API lost midway.
- Following a job polls its logs (printing only the new text) until the job ends, then exits with
  the job's outcome: SUCCEEDED 0, FAILED 1, STOPPED 143 (128 + SIGTERM: Ray stops a job's driver
  with SIGTERM, and `gristmill run` stopped by SIGTERM exits 143). Ctrl-C stops following only;
  the job goes on (exit 130).
- The default address is GRISTMILL_JOB_ADDRESS, else http://127.0.0.1:8265 (Ray's RAY_ADDRESS is
  not used: it usually names the GCS port, which the job API is not on).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

from gristmill.core import env  # noqa: F401  (Ray settings; must precede `import ray`)
from gristmill.core.io import read_json

LOCAL_ADDRESS = "http://127.0.0.1:8265"
DEFAULT_ADDRESS = os.environ.get("GRISTMILL_JOB_ADDRESS", LOCAL_ADDRESS)
TCP_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0  # per request: connect, then each read (an upload streams within it)
POLL_S = 1.0
STOP_TIMEOUT_S = 60.0
EXIT_CODES = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 143}


class JobError(RuntimeError):
    """The job API is unreachable, is not Ray's, or does not know the job: a one-line message."""


def connect_client(address: str) -> Any:
    """A JobSubmissionClient for `address` whose requests time out; raises JobError."""
    url = address if "://" in address else f"http://{address}"
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 0
    if parts.scheme not in ("http", "https") or not parts.hostname or not port:
        raise JobError(f"the Ray job API address must be http://HOST:PORT (the dashboard), not {address!r}")
    try:
        socket.create_connection((parts.hostname, port), timeout=TCP_TIMEOUT_S).close()
    except OSError as e:
        raise JobError(f"cannot reach the Ray job API at {address}: {e.strerror or e}") from None
    import requests
    from ray.job_submission import JobSubmissionClient

    class _Client(JobSubmissionClient):
        def _do_request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", (TCP_TIMEOUT_S, REQUEST_TIMEOUT_S))
            return super()._do_request(*args, **kwargs)

    try:
        return _Client(url.rstrip("/"))
    except requests.Timeout:
        raise JobError(f"cannot reach the Ray job API at {address}: no answer within "
                       f"{REQUEST_TIMEOUT_S:.0f}s") from None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:  # requests' errors are OSErrors
        raise JobError(f"cannot reach the Ray job API at {address}: not a Ray dashboard "
                       f"({one_line(e)})") from None


def one_line(e: BaseException) -> str:
    """The first line of an error's message (Ray's can run to a traceback), or its type."""
    return _first_line(str(e)) or type(e).__name__


def _call(address: str, job_id: str, fn: Any, *args: Any) -> Any:
    """`fn(*args)` with Ray's and requests' errors turned into JobError."""
    try:
        return fn(*args)
    except RuntimeError as e:  # Ray's client: "Request failed with status code 404: Job … does not exist."
        if "status code 404" in str(e):
            raise JobError(f"no job {job_id!r} at {address}") from None
        raise JobError(f"job {job_id}: {one_line(e)}") from None
    except OSError as e:
        raise JobError(f"lost the Ray job API at {address}: {one_line(e)}") from None


def _status(client: Any, address: str, job_id: str) -> Any:
    return _call(address, job_id, client.get_job_info, job_id)


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


def _ended(job_id: str, info: Any) -> int:
    """Say how the job ended (stderr); its exit code."""
    status = str(info.status)
    note = "" if status == "SUCCEEDED" else f": {_first_line(info.message)}"
    print(f"gristmill: job {job_id} {status}{note}", file=sys.stderr, flush=True)
    return EXIT_CODES[status]


def follow(client: Any, address: str, job_id: str, out: TextIO | None = None) -> int:
    """Print the job's logs as they grow until it ends; its exit code (EXIT_CODES)."""
    out, shown = out or sys.stdout, 0
    try:
        while True:
            info = _status(client, address, job_id)  # before the logs: once ended, they are complete
            text = _call(address, job_id, client.get_job_logs, job_id)
            if len(text) > shown:
                out.write(text[shown:])
                out.flush()
                shown = len(text)
            if info.status.is_terminal():
                return _ended(job_id, info)
            time.sleep(min(10.0, POLL_S + len(text) / 1e6))  # each poll reads the whole log
    except KeyboardInterrupt:
        print(f"gristmill: stopped following job {job_id}; it goes on (gristmill stop {job_id} "
              f"--address {address} stops it)", file=sys.stderr, flush=True)
        return 130


def _when(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="seconds") if ms else "-"


def cmd_status(args: argparse.Namespace) -> int:
    client = connect_client(args.address)
    info = _status(client, args.address, args.job)
    lines = [f"job {args.job}: {info.status}",
             f"  started     {_when(info.start_time)}",
             f"  ended       {_when(info.end_time)}"]
    if info.start_time and info.end_time:
        lines.append(f"  took        {(info.end_time - info.start_time) / 1000:.1f}s")
    lines += [f"  entrypoint  {info.entrypoint}", f"  message     {_first_line(info.message) or '-'}"]
    if info.driver_exit_code is not None:
        lines.append(f"  exit code   {info.driver_exit_code}")
    print("\n".join(lines))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client = connect_client(args.address)
    if args.follow:
        return follow(client, args.address, args.job)
    _status(client, args.address, args.job)  # an unknown job is an error, not empty logs
    sys.stdout.write(_call(args.address, args.job, client.get_job_logs, args.job))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Ask Ray to stop the job (SIGTERM to its driver, SIGKILL later) and wait until it has ended."""
    client = connect_client(args.address)
    info = _status(client, args.address, args.job)
    if info.status.is_terminal():
        print(f"job {args.job}: already {info.status}")
        return 0
    _call(args.address, args.job, client.stop_job, args.job)
    deadline = time.monotonic() + args.timeout
    while not (info := _status(client, args.address, args.job)).status.is_terminal():
        if time.monotonic() > deadline:
            print(f"gristmill: job {args.job} is still {info.status} {args.timeout:.0f}s after the stop "
                  "request", file=sys.stderr)
            return 1
        time.sleep(0.5)
    if str(info.status) == "STOPPED" and _run_status(info.entrypoint) == "done":
        print(f"job {args.job}: STOPPED after its run had finished (its manifest says done; nothing lost)")
        return 0
    print(f"job {args.job}: {info.status}")
    return 0


def _run_status(entrypoint: str | None) -> str | None:
    """The status in the manifest of the run a `gristmill submit` job runs, where this machine can
    read it (its config, `<run dir>/submitted-config.yaml`, is the entrypoint's argument)."""

    words = (entrypoint or "").split()
    if words[:4] != ["python", "-m", "gristmill", "run"] or len(words) < 5:
        return None
    try:
        return read_json(f"{words[4].rsplit('/', 1)[0]}/manifest.json").get("status")
    except Exception:  # elsewhere, unreadable, or gone (any store's error): no claim either way
        return None


def add_address(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--address", default=DEFAULT_ADDRESS,
                    help=f"the Ray dashboard (job API) (default: $GRISTMILL_JOB_ADDRESS or {LOCAL_ADDRESS})")


def add_job_commands(sub: Any) -> None:
    """`status`, `logs` and `stop` for a submitted job."""
    for name, fn, help_ in [("status", cmd_status, "a submitted job's status, times, entrypoint, message"),
                            ("logs", cmd_logs, "a submitted job's logs (--follow: until it ends)"),
                            ("stop", cmd_stop, "stop a submitted job and wait until it has ended")]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("job", metavar="JOB", help="the job id `submit` printed (raysubmit_…)")
        add_address(sp)
        if name == "logs":
            sp.add_argument("--follow", action="store_true", help="print new lines until the job ends; "
                            "exit 0 SUCCEEDED, 1 FAILED, 143 STOPPED")
        if name == "stop":
            sp.add_argument("--timeout", type=float, default=STOP_TIMEOUT_S, help="seconds to wait for "
                            f"the job to end (default {STOP_TIMEOUT_S:.0f}), then exit 1")
        sp.set_defaults(fn=fn)  # a JobError: one line, exit 2 (cli.main)
