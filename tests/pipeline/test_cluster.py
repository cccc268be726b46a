"""Ray clusters on 127.0.0.1: `gristmill submit` runs on the cluster; a run without an address keeps
to a private Ray even when a cluster is recorded on the machine; signals stop a run promptly and
a rerun resumes. Every cluster here is stopped by its own process group (tests/ray_cluster.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, WARC, make_config, require
from tests.ray_cluster import group_members, ray_head

pytestmark = pytest.mark.slow

DOLMA = str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz"))  # 22 pages kept


@pytest.fixture(scope="module")
def head():
    with ray_head(port=6391, dashboard_port=8291) as h:
        yield h


def write_config(tmp_path: Path, name: str, inputs: dict[str, list[str]], **execution) -> Path:
    raw = make_config(tmp_path, inputs, name=name)
    raw["execution"].update(execution)
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    return config


def test_submit_runs_the_job_on_the_cluster(tmp_path, head):
    config = write_config(tmp_path, "submitted", {"cc": [DOLMA]})
    r = subprocess.run([sys.executable, "-m", "gristmill", "submit", str(config), "--address", head.dashboard],
                       cwd=ROOT, env=head.env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout.strip().splitlines()[-1])
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(head.dashboard)
    deadline = time.time() + 240
    while (status := client.get_job_status(job["job_id"])) not in {JobStatus.SUCCEEDED, JobStatus.FAILED,
                                                                    JobStatus.STOPPED}:
        assert time.time() < deadline, "job did not finish"
        time.sleep(1)
    logs = client.get_job_logs(job["job_id"])
    assert status == JobStatus.SUCCEEDED, logs
    assert "Ray: cluster at auto" in logs  # on the cluster, not in a private Ray inside the job
    manifest = json.loads((tmp_path / "out" / "submitted" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["documents"] == 22
    local = subprocess.run([sys.executable, "-m", "gristmill", "--version"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60).stdout.split()[-1]
    assert manifest["code_version"] == local and "+g" in local  # the git sha, though the job has no .git
    assert "documents kept" in logs


def test_a_run_without_address_keeps_to_a_private_ray(tmp_path, head):
    """The head is recorded in RAY_TMPDIR's ray_current_cluster and a stray RAY_ADDRESS names it:
    `ray.init()` would join it (and refuse num_cpus); the run must start its own."""
    from ray.util.state import list_jobs

    before = len(list_jobs(address=head.dashboard))
    config = write_config(tmp_path, "private", {"cc": [DOLMA]}, num_cpus=2)
    env = {**head.env, "RAY_ADDRESS": head.gcs_address}
    r = subprocess.run([sys.executable, "-m", "gristmill", "run", str(config)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Ray: private, on 127.0.0.1 (2 CPUs)" in r.stdout
    assert json.loads((tmp_path / "out" / "private" / "manifest.json").read_text())["documents"] == 22
    assert len(list_jobs(address=head.dashboard)) == before  # no driver of ours ever joined the cluster


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_promptly_and_a_rerun_resumes(tmp_path, signum):
    inputs = {"cc": [DOLMA, *sorted(map(str, (WARC / "edge-cases").glob("*.warc*")))],
              "news": [str(WARC / "packed" / "scrapinghub_pages.warc.gz")]}
    config = write_config(tmp_path, "stopped", inputs, num_cpus=1, max_in_flight=1)
    run_dir = tmp_path / "out" / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "gristmill", "run", str(config)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.time() + 300
        while not list((run_dir / "stats").glob("part-*.json")):
            assert proc.poll() is None and time.time() < deadline, "run ended before it could be stopped"
            time.sleep(0.2)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=300)  # a bound, not a speed: Ray's wait wakes every second
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err
    deadline = time.time() + 120
    while group_members(proc.pid) and time.time() < deadline:  # the private Ray went with it
        time.sleep(0.5)
    assert not group_members(proc.pid)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["error"].startswith("Interrupted")
    finished = len(list((run_dir / "stats").glob("part-*.json")))
    assert 1 <= finished < manifest["parts"]

    r = subprocess.run([sys.executable, "-m", "gristmill", "run", str(config)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["parts_skipped_as_done"] >= finished
