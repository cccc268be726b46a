"""`gristmill trial-node` (a one-machine trial cluster on 127.0.0.1) and the driver's lost working
directory: fast checks. The two-node cluster itself is started and its listeners checked in
tests/pipeline/test_jobs.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gristmill.pipeline import cli
from gristmill.pipeline.trial_node import ray_start_command
from tests.conftest import ROOT


def test_head_and_worker_commands_keep_to_loopback_and_their_own_temp_dirs():
    head = ray_start_command("/tmp/h", 1, head_port=6380, dashboard_port=8265)
    worker = ray_start_command("/tmp/w", 2, address="127.0.0.1:6380")
    for argv, temp in ((head, "/tmp/h"), (worker, "/tmp/w")):
        assert "--node-ip-address=127.0.0.1" in argv and f"--temp-dir={temp}" in argv
        assert any(a.startswith("--dashboard-agent-listen-port=") for a in argv)  # two nodes, two agents
    assert {"--head", "--port=6380", "--dashboard-host=127.0.0.1", "--num-cpus=1"} <= set(head)
    assert {"--address=127.0.0.1:6380", "--num-cpus=2"} <= set(worker) and "--head" not in worker
    with pytest.raises(ValueError):
        ray_start_command("/tmp/x", 1, head_port=1, address="127.0.0.1:1")


@pytest.mark.parametrize("args, message", [
    (["--address", "10.0.0.5:6379"], "joins a head on this machine"),
    (["--stop", "/nonexistent"], "not a trial node's temp dir")])
def test_trial_node_user_errors_are_one_line(args, message):
    r = subprocess.run([sys.executable, "-m", "gristmill", "trial-node", *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_a_vanished_working_directory_is_one_sentence(tmp_path, monkeypatch, capsys):
    """A Ray job's driver runs in its working_dir; if that is removed under it, the run ends with a
    sentence saying so, not a traceback."""
    gone = tmp_path / "working_dir"
    gone.mkdir()
    monkeypatch.setattr(cli, "START_DIR", str(gone))
    gone.rmdir()

    def lost_cwd(args):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(cli, "cmd_validate", lost_cwd)
    assert cli.main(["validate", "x.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was removed while it ran" in err and "--temp-dir" in err
