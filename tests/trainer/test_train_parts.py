"""Trainer parts without training: the loader's position across world sizes, the resume check
(before any weights), the MFU peak by GPU name and its override, the ETA format, the watchdog's
view of a process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from gristmill.core.config import ConfigError
from gristmill.trainer.config import load_train_config
from gristmill.trainer.data import MixtureLoader
from gristmill.trainer.metrics import format_duration, peak_tflops
from gristmill.trainer.parallel import device_peak_tflops
from gristmill.trainer.train import resume_state
from gristmill.trainer.watchdog import start_time
from tests.trainer.test_data import rows, take, write_tiny_mix

KW = dict(seq_len=8, seed=3)


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> Path:
    mix_dir = tmp_path_factory.mktemp("mix")
    write_tiny_mix(mix_dir, [60, 40, 20])
    return mix_dir


def ranks(mix: Path, world_size: int, batch_size: int) -> list[MixtureLoader]:
    return [MixtureLoader(str(mix), rank=r, world_size=world_size, batch_size=batch_size, **KW)
            for r in range(world_size)]


def next_rows_in_global_order(loaders: list[MixtureLoader], batches: int) -> list[np.ndarray]:
    """The ranks' next rows, interleaved as the global order has them (rank r holds g % W == r)."""
    per_rank = [rows(take(loader, batches)) for loader in loaders]
    return [row for group in zip(*per_rank, strict=True) for row in group]


@pytest.mark.parametrize("saved,resumed", [(2, 1), (1, 2), (2, 3), (3, 2)])
def test_a_loader_state_resumes_on_another_world_size(mix, saved, resumed):
    """W ranks stop after some batches; W' ranks loading rank 0's state read exactly the rows the W
    ranks would have read next, in the global order, across the epoch boundary too."""
    before = ranks(mix, saved, batch_size=2)
    per_epoch = before[0].rows_per_epoch
    stop = (per_epoch // (2 * saved) - 1) // resumed * resumed  # just before epoch 0 ends
    for loader in before:
        take(loader, stop)
    state = json.loads(json.dumps(before[0].state_dict()))
    assert all(loader.state_dict() == state for loader in before) and state["rows"] == 2 * saved * stop
    n = 3 * math.ceil((per_epoch - state["rows"] + 6) / (3 * resumed))  # rows per resumed rank: into epoch 1
    want = next_rows_in_global_order(before, n * resumed // (2 * saved) + 1)[:n * resumed]
    after = ranks(mix, resumed, batch_size=3)
    for loader in after:
        loader.load_state_dict(state)
    got = next_rows_in_global_order(after, n // 3)
    assert len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))
    assert after[0].epoch == 1


def test_a_position_that_does_not_split_is_refused(mix):
    one = MixtureLoader(str(mix), batch_size=3, **KW)
    take(one, 1)
    state = one.state_dict()  # 3 rows
    with pytest.raises(ValueError, match="global row 3 .* world_size 2 cannot continue exactly"):
        MixtureLoader(str(mix), world_size=2, batch_size=3, **KW).load_state_dict(state)
    MixtureLoader(str(mix), rank=2, world_size=3, batch_size=5, **KW).load_state_dict(state)  # 1 row each


def test_a_state_of_the_old_format_resumes(mix):
    """States written before the global position: rows per rank and the world size."""
    old = {k: v for k, v in MixtureLoader(str(mix), batch_size=2, **KW).state_dict().items() if k != "rows"}
    loader = MixtureLoader(str(mix), batch_size=2, **KW)
    loader.load_state_dict({**old, "row": 4, "world_size": 2})
    reference = MixtureLoader(str(mix), batch_size=8, **KW)
    take(reference, 1)
    assert np.array_equal(rows(take(loader, 1))[0], rows(take(reference, 1))[0])


def test_resume_refuses_a_world_size_before_any_weights(mix, tmp_path):
    """A checkpoint with a train state and no weights at all: the check reads only the state."""
    raw = {"run": {"name": "r", "output": str(tmp_path / "train"), "mixture": str(mix)},
           "model": {"size": "tiny", "seq_len": 8}, "schedule": {"batch_size": 3, "seed": 3}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(raw))
    cfg = load_train_config(tmp_path / "r.yaml")
    assert resume_state(cfg, 2) is None  # a fresh run
    loader = MixtureLoader(str(mix), batch_size=3, **KW)
    take(loader, 1)
    step = tmp_path / "train" / "r" / "checkpoints" / "step-000001"
    step.mkdir(parents=True)
    (step / "train_state.json").write_text(json.dumps({"step": 1, "loader": loader.state_dict()}))
    (step.parent / "latest").write_text(step.name)
    with pytest.raises(ConfigError, match=r"cannot resume .*step-000001 on 2 process\(es\): .*global row 3"):
        resume_state(cfg, 2)
    path, state = resume_state(cfg, 3)
    assert path == step and state["step"] == 1


@pytest.mark.parametrize("name,peak", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 SXM5 80GB", 989.0), ("NVIDIA H100 PCIe", 756.0),
    ("NVIDIA H100 NVL", 835.0), ("NVIDIA H200", 989.0), ("NVIDIA H200 NVL", 835.0),
    ("NVIDIA GH200 480GB", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A100 80GB PCIe", 312.0), ("NVIDIA B200", 2250.0),
    ("NVIDIA L40S", 362.0), ("Tesla T4", None),
])
def test_peak_by_gpu_name(name, peak):
    assert device_peak_tflops(name) == peak


def test_peak_from_the_config_wins_and_every_peak_names_its_source(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H100 PCIe")
    gpu = torch.device("cuda", 0)
    assert peak_tflops(gpu, None) == (756.0, "'NVIDIA H100 PCIe' in trainer/parallel.py PEAK_BF16_TFLOPS")
    assert peak_tflops(gpu, 700.0) == (700.0, "config parallel.peak_tflops")
    assert peak_tflops(torch.device("cpu"), 700.0) == (700.0, "config parallel.peak_tflops")
    assert peak_tflops(torch.device("cpu"), None) == (None, "none for cpu")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla T4")
    assert peak_tflops(gpu, None) == (None, "'Tesla T4' unknown: set parallel.peak_tflops")


def test_eta_format():
    assert [format_duration(s) for s in (0, 0.4, 59.6, 92, 3599, 3600 + 5 * 60 + 59, 50 * 3600)] == \
        ["0s", "0s", "1m00s", "1m32s", "59m59s", "1h05m", "50h00m"]


def test_start_time_of_a_live_process_and_of_an_exited_one():
    assert start_time(os.getpid()) is not None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert start_time(child.pid) is None
    child.wait()
    assert start_time(child.pid) is None
