"""The training runner on CPU: FSDP2 over 2 gloo processes matches one process, a killed run
resumes to the same loss curve step for step (also on another number of processes), losses per
source are exact, the logged lr and dtype are what ran, the console shows progress, workers stop
with their launcher, configs fail early."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_pre_hook

from gristmill.trainer.config import load_train_config
from gristmill.trainer.metrics import SourceLoss
from gristmill.trainer.parallel import World
from gristmill.trainer.train import lr_at, train
from gristmill.trainer.watchdog import start_time
from tests.conftest import ROOT
from tests.trainer.test_data import write_tiny_mix

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
    return subprocess.run([sys.executable, "-m", "gristmill.trainer.train", str(cfg), *[f"--set={s}" for s in sets]],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def single_and_fsdp(tmp_path_factory, mix) -> tuple[Path, str]:
    """One process of 8 sequences and two of 4 (FSDP2 on gloo), 8 steps each; and the first's stdout."""
    tmp_path = tmp_path_factory.mktemp("pair")
    r = one_process(config(tmp_path, mix, "single"))
    assert r.returncode == 0, r.stderr
    single_stdout = r.stdout
    r = subprocess.run([sys.executable, "-m", "gristmill", "train", str(config(tmp_path, mix, "fsdp")), "--nproc", "2",
                        "--set", "schedule.batch_size=4"], cwd=ROOT, env=ENV, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 process(es) on cpu" in r.stdout
    return tmp_path, single_stdout


def test_fsdp_on_two_gloo_processes_matches_one_process(single_and_fsdp):
    """Two processes of 4 sequences see the rows one process of 8 sees; FSDP2 averages their
    gradients. Losses agree to 1e-5 (float32 sums in another order), step for step."""
    tmp_path, _ = single_and_fsdp
    single, fsdp = records(tmp_path, "single"), records(tmp_path, "fsdp")
    assert [x["step"] for x in single] == [x["step"] for x in fsdp] == list(range(1, 9))
    for a, b in zip(single, fsdp):
        assert a["tokens_by_source"] == b["tokens_by_source"]
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5)
    assert single[-1]["loss"] < single[0]["loss"] - 0.3  # and it learns (random tokens: the floor is ln 100)
    # (validation is not compared: each process takes an equal share of a split's rows, so 2
    # processes leave out a split's odd last row, which one process reads)


def test_a_run_of_two_processes_resumes_on_one(single_and_fsdp, mix):
    """The 2-process run, resumed from its step-4 checkpoint by one process of 8 sequences: DCP
    reshards the weights and the loader continues at the same global row, so steps 5-8 read the
    tokens the single run read and reach its losses (to 1e-4: float32 sums in another order, and the
    smallest source's mean over few tokens)."""
    tmp_path, _ = single_and_fsdp
    shutil.copytree(tmp_path / "train" / "fsdp", tmp_path / "train" / "resharded")
    latest = tmp_path / "train" / "resharded" / "checkpoints" / "latest"
    latest.write_text("step-000004")  # as if killed after that checkpoint
    r = one_process(config(tmp_path, mix, "resharded"))
    assert r.returncode == 0 and "resumed from step 4" in r.stdout, r.stdout + r.stderr
    got, want = records(tmp_path, "resharded"), records(tmp_path, "single")
    assert [x["step"] for x in got] == list(range(1, 9))
    for a, b in zip(want[4:], got[4:]):
        assert a["tokens_by_source"] == b["tokens_by_source"]
        assert b["loss_by_source"] == pytest.approx(a["loss_by_source"], abs=1e-4)
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-4)


def test_progress_lines_show_step_of_total_and_eta(single_and_fsdp):
    """Every log_every steps (here 1) rank 0 prints step/total, loss, lr, tokens/s and an ETA."""
    _, stdout = single_and_fsdp
    line = re.compile(r"^step (\d+)/8 \| loss \d+\.\d{4} \| .* \| lr \d\.\d\de-\d\d \| [\d,]+ tok/s \| "
                      r"mem [\d.]+ GB \| eta (\d+h\d\dm|\d+m\d\ds|\d+s)$")
    progress = [m for m in map(line.match, stdout.splitlines()) if m]
    assert [int(m[1]) for m in progress] == list(range(1, 9)), stdout
    assert progress[-1][2] == "0s"


def test_a_killed_run_resumes_to_the_same_loss_curve(tmp_path, mix):
    reference = config(tmp_path, mix, "reference", steps=16)
    assert one_process(reference).returncode == 0
    killed = config(tmp_path, mix, "killed", steps=16)
    metrics = tmp_path / "train" / "killed" / "metrics.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "gristmill.trainer.train", str(killed)], cwd=ROOT, env=ENV,
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
    assert last["peak_tflops"] is None and last["peak_tflops_source"] == "none for cpu"
    assert last["dtype"] == "float32"
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
    r = subprocess.run([sys.executable, "-m", "gristmill", "train", str(config(tmp_path, mix, "bad")),
                        *[f"--set={s}" for s in sets]], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_activation_checkpointing_changes_memory_not_the_losses(tmp_path, mix):
    plain = config(tmp_path, mix, "plain", steps=3, eval_every=3)
    assert one_process(plain).returncode == 0
    r = one_process(config(tmp_path, mix, "recompute", steps=3, eval_every=3), "model.activation_checkpointing=true")
    assert r.returncode == 0, r.stderr
    got, want = records(tmp_path, "recompute"), records(tmp_path, "plain")
    assert [x["loss"] for x in got] == pytest.approx([x["loss"] for x in want], abs=1e-6)


def test_logged_lr_is_the_lr_each_step_trained_at(tmp_path, mix):
    """Warmup over 4 steps then cosine to 0.1 × lr at step 6: each record's lr is that step's, by
    hand, and the one the optimizer held when it stepped."""
    cfg = load_train_config(config(tmp_path, mix, "lr", steps=6, eval_every=6, checkpoint_every=None),
                            ["optim.warmup_steps=4", "optim.lr=0.01"])
    held = []
    hook = register_optimizer_step_pre_hook(
        lambda opt, args, kwargs: held.append([g["lr"] for g in opt.param_groups]))
    try:
        train(cfg)
    finally:
        hook.remove()
    by_hand = [0.0025, 0.005, 0.0075, 0.01, 0.0055, 0.001]  # step 5: 0.1 + 0.9 * (1 + cos(pi / 2)) / 2
    logged = [x["lr"] for x in records(tmp_path, "lr")]
    assert logged == pytest.approx(by_hand, rel=1e-12)
    assert logged == pytest.approx([0.01 * lr_at(step, cfg) for step in range(1, 7)], rel=1e-12)
    assert [lrs[0] for lrs in held] == logged and all(len(set(lrs)) == 1 for lrs in held)


def test_one_process_computes_in_the_configured_dtype(tmp_path, mix, capsys):
    """`python -m gristmill.trainer.train` (no torchrun) with parallel.dtype bfloat16: every matmul's output is
    bf16, as printed and recorded; the configured peak is the MFU's denominator, with its source."""
    cfg = load_train_config(config(tmp_path, mix, "bf16", steps=2, eval_every=2, checkpoint_every=None),
                            ["parallel.dtype=bfloat16", "parallel.peak_tflops=50"])
    dtypes = set()

    def record(module, args, output):
        if isinstance(module, torch.nn.Linear):
            dtypes.add(output.dtype)

    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        train(cfg)
    finally:
        hook.remove()
    assert dtypes == {torch.bfloat16}
    assert "precision: bfloat16 compute, float32 master weights" in capsys.readouterr().out
    last = records(tmp_path, "bf16")[-1]
    assert last["dtype"] == "bfloat16" and last["peak_tflops"] == 50
    assert last["peak_tflops_source"] == "config parallel.peak_tflops" and last["mfu"] > 0


def children_of(pid: int) -> list[int]:
    """The live processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # not a process, or gone
            continue
        if int(stat[stat.rindex(")") + 2:].split()[1]) == pid and start_time(int(entry.name)) is not None:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("victim", ["launcher", "torchrun"])
def test_workers_stop_when_their_launcher_is_killed(tmp_path, mix, victim):
    """`gristmill train` (naming itself in GRISTMILL_LAUNCHER_PID, as trainer/watchdog.py expects) on 2
    processes; SIGKILL of the launcher alone, or of torchrun alone, stops both workers (torchrun
    puts each in a session of its own, so they are followed by pid and start time). The 120 s is a
    bound, not a timing: the workers look once a second."""
    cfg = config(tmp_path, mix, "orphans", steps=100_000, eval_every=100_000, checkpoint_every=None)
    log = tmp_path / "orphans.log"
    with log.open("w") as err:
        script = ('export GRISTMILL_LAUNCHER_PID=$$; '
                  'exec "$0" -m gristmill train "$1" --nproc 2 --set schedule.batch_size=4')
        launcher = subprocess.Popen(["sh", "-c", script, sys.executable, str(cfg)], cwd=ROOT, env=ENV,
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    metrics = tmp_path / "train" / "orphans" / "metrics.jsonl"
    started: dict[int, int] = {}  # torchrun and the workers: pid -> start time
    try:
        deadline = time.time() + 300
        while time.time() < deadline and launcher.poll() is None:
            if metrics.exists() and metrics.stat().st_size:  # both workers are stepping
                break
            time.sleep(0.1)
        (torchrun,) = children_of(launcher.pid)
        workers = children_of(torchrun)
        assert len(workers) == 2, log.read_text()
        started = {pid: start_time(pid) for pid in (torchrun, *workers)}
        os.kill(launcher.pid if victim == "launcher" else torchrun, signal.SIGKILL)
        deadline = time.time() + 120
        while time.time() < deadline and any(start_time(pid) == t for pid, t in started.items()):
            time.sleep(0.2)
        assert all(start_time(pid) != started[pid] for pid in workers), log.read_text()
    finally:
        for pid, t in started.items():  # on failure: only the processes this test started
            if start_time(pid) == t:
                os.kill(pid, signal.SIGKILL)
        if launcher.poll() is None:
            launcher.kill()
        launcher.wait()
    assert "is gone; stopping" in log.read_text()
    assert len(records(tmp_path, "orphans")) < 100_000  # stopped, not finished
