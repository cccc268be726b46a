"""Job control on a Ray cluster on 127.0.0.1 (`submit --follow`, `status`, `logs`, `stop`; one-line
errors, fast), and a two-node cluster that loses its worker node mid-run yet writes the same documents
as a single-node run. Every cluster here is stopped by its own process groups (tests/ray_cluster.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT, WARC, make_config, require
from tests.ray_cluster import RayHead, alive_nodes, free_port, listeners, ray_head, ray_worker, running_task

pytestmark = pytest.mark.slow

DOLMA = str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz"))  # 22 pages kept
MANY = {"cc": sorted(map(str, require(WARC / "real").glob("*.warc.gz"))),
        "edge": sorted(map(str, require(WARC / "edge-cases").glob("*")))}
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@pytest.fixture(scope="module")
def head():
    with ray_head(port=6393, dashboard_port=8293) as h:
        yield h


def gristmill(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def write_config(tmp_path: Path, name: str, inputs: dict[str, list[str]], execution: dict | None = None,
                 **stages) -> Path:
    raw = make_config(tmp_path, inputs, name=name, **stages)
    raw["execution"].update(execution or {})
    raw["stages"]["write"] = raw["stages"].pop("write")  # after dedup, if any
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def submit(config: Path, head: RayHead, *extra: str) -> str:
    r = gristmill("submit", str(config), "--address", head.dashboard, *extra, env=head.env, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[0])["job_id"]


def status_of(head: RayHead, job_id: str) -> str:
    from ray.job_submission import JobSubmissionClient

    return str(JobSubmissionClient(head.dashboard).get_job_status(job_id))


def wait_for(head: RayHead, job_id: str, statuses: set[str], timeout_s: float = 600) -> str:
    deadline = time.time() + timeout_s
    while (status := status_of(head, job_id)) not in statuses:
        assert time.time() < deadline, f"job {job_id} still {status} after {timeout_s:.0f}s"
        time.sleep(0.5)
    return status


def test_submit_follow_streams_the_run_and_exits_with_its_status(tmp_path, head):
    config = write_config(tmp_path, "followed", {"cc": [DOLMA]})
    r = gristmill("submit", str(config), "--address", head.dashboard, "--follow", env=head.env)
    assert r.returncode == 0, r.stdout + r.stderr
    first, *logs = r.stdout.splitlines()
    job_id = json.loads(first)["job_id"]
    assert any(line.startswith("Ray: cluster at auto") for line in logs)  # the run's lines, as they came
    assert "run followed: done" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == f"gristmill: job {job_id} SUCCEEDED"

    r = gristmill("status", job_id, "--address", head.dashboard)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"job {job_id}: SUCCEEDED\n") and "python -m gristmill run" in r.stdout
    assert "started " in r.stdout and "exit code   0" in r.stdout
    r = gristmill("logs", job_id, "--address", head.dashboard)
    assert r.returncode == 0 and "22 documents kept" in r.stdout and "outputs:" in r.stdout
    assert r.stdout == "\n".join(logs) + "\n"  # --follow printed the whole log, once


def test_a_failed_job_is_reported_and_followed_to_exit_1(head):
    from ray.job_submission import JobSubmissionClient

    job_id = JobSubmissionClient(head.dashboard).submit_job(
        entrypoint="python -c \"import sys, time; print('working', flush=True); time.sleep(2); "
                   "print('boom', flush=True); sys.exit(3)\"")
    r = gristmill("logs", job_id, "--address", head.dashboard, "--follow", timeout=120)
    assert r.returncode == 1, r.stderr
    lines = r.stdout.splitlines()
    assert lines.index("working") < lines.index("boom")  # after Ray's own lines (runtime env set-up)
    assert r.stderr.startswith(f"gristmill: job {job_id} FAILED: ") and r.stderr.count("\n") == 1
    r = gristmill("status", job_id, "--address", head.dashboard)
    assert r.returncode == 0 and f"job {job_id}: FAILED" in r.stdout and "exit code   3" in r.stdout


def test_stop_ends_a_running_job_cleanly(tmp_path, head):
    # big files as 2 MB record ranges, run biggest first one at a time: when the first part is
    # written, a dozen ranges are still to come, so the stop lands mid-run
    inputs = {"cc": [DOLMA, *MANY["edge"]],
              "news": [str(require(WARC / "packed" / name))
                       for name in ("scrapinghub_pages.warc.gz", "trafilatura_pages.warc.gz")]}
    config = write_config(tmp_path, "stopped", inputs, {"max_in_flight": 1}, ingest={"task_bytes": 2_000_000})
    job_id = submit(config, head)
    run_dir = tmp_path / "out" / "stopped"
    deadline = time.time() + 300
    while not list((run_dir / "stats").glob("part-*.json")):  # the run is under way
        assert time.time() < deadline and status_of(head, job_id) in {"PENDING", "RUNNING"}
        time.sleep(0.5)
    r = gristmill("stop", job_id, "--address", head.dashboard, timeout=300)
    assert r.returncode == 0 and r.stdout == f"job {job_id}: STOPPED\n", r.stdout + r.stderr
    r = gristmill("logs", job_id, "--address", head.dashboard, "--follow", timeout=60)
    assert r.returncode == 143 and f"job {job_id} STOPPED" in r.stderr
    assert "stopped by SIGTERM" in r.stdout  # the run's own clean stop, within RAY_JOB_STOP_WAIT_TIME_S
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    r = gristmill("stop", job_id, "--address", head.dashboard)
    assert r.returncode == 0 and r.stdout == f"job {job_id}: already STOPPED\n"


@pytest.mark.parametrize("command", ["status", "logs", "stop", "logs --follow"])
def test_a_dead_address_is_refused_in_one_line(command):
    nowhere = f"http://127.0.0.1:{free_port()}"
    r = gristmill(*command.split(), "raysubmit_x", "--address", nowhere, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"gristmill: cannot reach the Ray job API at {nowhere}: Connection refused\n"


def test_errors_are_one_line_exit_2(tmp_path, head):
    for command in ("status", "logs", "stop"):
        r = gristmill(command, "raysubmit_nosuchjob", "--address", head.dashboard, timeout=60)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == f"gristmill: no job 'raysubmit_nosuchjob' at {head.dashboard}\n", r.stderr
    gcs = f"http://{head.gcs_address}"  # a Ray port, but not the dashboard's
    r = gristmill("status", "raysubmit_x", "--address", gcs, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith(f"gristmill: cannot reach the Ray job API at {gcs}: not a Ray dashboard")
    r = gristmill("submit", str(write_config(tmp_path, "x", {"cc": [DOLMA]})), "--address", gcs, timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a Ray dashboard" in r.stderr


def documents(run_dir: Path) -> list[tuple[str, str]]:
    rows = [row for part in sorted((run_dir / "docs").glob("part-*.parquet"))
            for row in zip(*pq.read_table(part, columns=["id", "text"]).to_pydict().values())]
    return sorted(rows)


def test_a_lost_worker_node_loses_no_document(tmp_path):
    """Head and worker, one CPU each: the run spreads over both; the worker node is SIGKILLed while a
    shard runs on it. The job either finishes (Ray retries the lost tasks on the head) or fails and a
    resubmission resumes; either way the documents are those of a single-node run, each once."""
    from ray.util.state import list_tasks

    stages = {"dedup": {}}
    reference = write_config(tmp_path, "reference", MANY, {"num_cpus": 2}, **stages)
    r = gristmill("run", str(reference), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    expected = documents(tmp_path / "out" / "reference")
    assert len(expected) > 50 and len({i for i, _ in expected}) == len(expected)

    config = write_config(tmp_path, "two-nodes", MANY, **stages)
    run_dir = tmp_path / "out" / "two-nodes"
    with ray_head(port=6395, dashboard_port=8295, num_cpus=1) as head, ray_worker(head, num_cpus=1) as worker:
        job_id = submit(config, head)
        deadline, checked = time.time() + 300, 0.0
        while not running_task(worker.pgid, "process_shard"):  # /proc: polling the state API missed them all
            assert time.time() < deadline, "no shard ever ran on the worker node"
            if time.time() - checked > 2:
                assert status_of(head, job_id) in {"PENDING", "RUNNING"}, "the job ended first"
                checked = time.time()
            time.sleep(0.05)
        open_ports = listeners({head.pgid, worker.pgid})  # GCS, raylets, agents, the job's driver, workers
        loopback = ("127.0.0.1:", "[::ffff:127.0.0.1]:")
        assert len(open_ports) > 10 and all(a.startswith(loopback) for a, _ in open_ports), open_ports
        worker.kill()
        deadline = time.time() + 120
        while worker.node_id in alive_nodes(head):
            assert time.time() < deadline, "Ray never noticed the lost node"
            time.sleep(1)
        status = wait_for(head, job_id, TERMINAL)
        if status != "SUCCEEDED":  # the lost tasks ran out of retries: a resubmission resumes
            r = gristmill("submit", str(config), "--address", head.dashboard, "--follow", env=head.env,
                          timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
        attempts = [(t.attempt_number, t.node_id == worker.node_id, t.state, t.error_type)
                    for t in list_tasks(address=head.dashboard, filters=[("name", "=", "process_shard")],
                                        detail=True, limit=1000, raise_on_missing_output=False)]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    lost = [a for a in attempts if a[1] and a[3] == "NODE_DIED"]
    print(f"first job {status}; shard attempts lost with the node: {len(lost)}, retried: "
          f"{sum(a[0] > 0 for a in attempts)}; rerun skipped {manifest['parts_skipped_as_done']} parts")
    assert lost, attempts  # the node died under a running shard
    assert manifest["status"] == "done" and not manifest["failed_shards"]
    got = documents(run_dir)
    assert len({i for i, _ in got}) == len(got)  # nothing written twice
    assert got == expected  # nothing lost, nothing changed


def test_a_stop_after_the_run_finished_reads_its_manifest(tmp_path):
    """A stop that lands as the driver exits leaves the job STOPPED; the run's manifest says what happened."""
    from gristmill.pipeline.jobs import _run_status

    run_dir = tmp_path / "out" / "r"
    run_dir.mkdir(parents=True)
    entrypoint = f"python -m gristmill run {run_dir}/submitted-config.yaml --address auto --no-progress"
    assert _run_status(entrypoint) is None  # no manifest: no claim
    (run_dir / "manifest.json").write_text(json.dumps({"status": "done"}))
    assert _run_status(entrypoint) == "done"
    assert _run_status("python other.py") is None
