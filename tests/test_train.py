"""The training runner on CPU: FSDP2 over 2 gloo processes matches one process, a killed run
resumes to the same loss curve step for step, losses per source are exact, configs fail early."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.conftest import ROOT
from tests.test_data import write_tiny_mix
from trainer.metrics import SourceLoss
from trainer.parallel import World

pytestmark = pytest.mark.slow
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic in every run: comparable to the bit


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    mix_dir = tmp_path_factory.mktemp("mix")
    write_tiny_mix(mix_dir, [300, 200, 100], val_docs=[40, 40, 40])
    return mix_dir


def config(tmp_path: Path, mix: Path, name: str, **schedule) -> Path:
    raw = {"run": {"name": name, "output": str(tmp_path / "train"), "mixture": str(mix)},
           "model": {"size": "tiny", "seq_len": 64},
           "optim": {"lr": 0.01, "warmup_steps": 2},
           "schedule": {"steps": 8, "batch_size": 8, "log_every": 1, "eval_every": 4, "eval_batches": 2,
                        "checkpoint_every": 4, **schedule}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def records(tmp_path: Path, name: str, kind: str = "train") -> list[dict]:
    lines = (tmp_path / "train" / name / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def one_process(cfg: Path, *sets: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer.train", str(cfg), *[f"--set={s}" for s in sets]],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


def test_fsdp_on_two_gloo_processes_matches_one_process(tmp_path, mix):
    """Two processes of 4 sequences see the rows one process of 8 sees; FSDP2 averages their
    gradients. Losses agree to 1e-5 (float32 sums in another order), step for step."""
    r = one_process(config(tmp_path, mix, "single"))
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "pipeline", "train", str(config(tmp_path, mix, "fsdp")), "--nproc", "2",
                        "--set", "schedule.batch_size=4"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 process(es) on cpu" in r.stdout
    single, fsdp = records(tmp_path, "single"), records(tmp_path, "fsdp")
    assert [x["step"] for x in single] == [x["step"] for x in fsdp] == list(range(1, 9))
    for a, b in zip(single, fsdp):
        assert a["tokens_by_source"] == b["tokens_by_source"]
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    assert single[-1]["loss"] < single[0]["loss"] - 0.3  # and it learns (random tokens: the floor is ln 100)
    # (validation is not compared: each process takes an equal share of a split's rows, so 2
    # processes leave out a split's odd last row, which one process reads)


def test_a_killed_run_resumes_to_the_same_loss_curve(tmp_path, mix):
    reference = config(tmp_path, mix, "reference", steps=16)
    assert one_process(reference).returncode == 0
    killed = config(tmp_path, mix, "killed", steps=16)
    metrics = tmp_path / "train" / "killed" / "metrics.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "trainer.train", str(killed)], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and any(json.loads(x)["step"] >= 10 for x in metrics.read_text().splitlines()):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / "train" / "killed" / "checkpoints" / "latest").exists()
    r = one_process(killed)
    assert r.returncode == 0 and "resumed from step" in r.stdout, r.stdout + r.stderr
    for kind in ("train", "validation"):
        got, want = records(tmp_path, "killed", kind), records(tmp_path, "reference", kind)
        assert [x["step"] for x in got] == [x["step"] for x in want]
        assert [x["loss"] for x in got] == [x["loss"] for x in want]  # to the bit
        assert [x["loss_by_source"] for x in got] == [x["loss_by_source"] for x in want]


def test_loss_per_source_is_exact():
    world = World(0, 1, torch.device("cpu"), torch.float32, False)
    losses = SourceLoss(3, world.device)
    token_loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    sources = torch.tensor([[0, 0, 2], [2, 2, 0]])
    losses.add(token_loss, sources)
    mean, per_source, counts = losses.reduce(world)
    assert per_source == [pytest.approx((1 + 2 + 6) / 3), None, pytest.approx((3 + 4 + 5) / 3)]
    assert counts == [3, 0, 3] and mean == pytest.approx(21 / 6)


def test_records_hold_what_a_trainer_reads(tmp_path, mix):
    assert one_process(config(tmp_path, mix, "records", steps=4)).returncode == 0
    last = records(tmp_path, "records")[-1]
    assert set(last["loss_by_source"]) == {"s0", "s1", "s2"} and last["tokens"] == 4 * 8 * 64
    assert last["tokens_per_s"] > 0 and last["mfu"] is None and last["memory_gb"] > 0  # no MFU on CPU
    total = sum(last["tokens_by_source"].values())
    assert total == last["tokens"]
    val = records(tmp_path, "records", "validation")[-1]
    assert all(v is not None for v in val["loss_by_source"].values())


@pytest.mark.parametrize("sets,message", [
    (["model.size=2b"], "model.size: '2b' is not one of tiny, 125m, 350m, 1b"),
    (["schedule.checkpoint_every=5", "schedule.log_every=2"], "schedule.checkpoint_every: 5 is not a multiple"),
    (["schedule.batch_sise=4"], "schedule.batch_sise: unknown key"),
    (["run.mixture=/nonexistent"], "run.mixture: '/nonexistent' has no mix.json"),
])
def test_bad_configs_fail_before_starting_naming_the_key(tmp_path, mix, sets, message):
    r = subprocess.run([sys.executable, "-m", "pipeline", "train", str(config(tmp_path, mix, "bad")),
                        *[f"--set={s}" for s in sets]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_activation_checkpointing_changes_memory_not_the_losses(tmp_path, mix):
    plain = config(tmp_path, mix, "plain", steps=3, eval_every=3)
    assert one_process(plain).returncode == 0
    r = one_process(config(tmp_path, mix, "recompute", steps=3, eval_every=3), "model.activation_checkpointing=true")
    assert r.returncode == 0, r.stderr
    got, want = records(tmp_path, "recompute"), records(tmp_path, "plain")
    assert [x["loss"] for x in got] == pytest.approx([x["loss"] for x in want], abs=1e-6)
