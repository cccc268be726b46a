"""Checkpoints with torch.distributed.checkpoint (DCP): model and optimizer as (sharded) state
dicts, plus the step, the LR schedule, the loader's position and the metrics written so far.

    <run>/checkpoints/step-000100/   DCP files (every rank writes its shards) + train_state.json
    <run>/checkpoints/latest         the newest complete checkpoint's name, written last

A checkpoint counts only once `latest` names it, so a kill during a save resumes from the one
before. Resuming reshards: a run may come back with another number of processes.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.optim import Optimizer

from stages.write import open_atomic
from trainer.parallel import World, barrier

KEEP = 2  # checkpoints kept on disk


class Checkpointer:
    def __init__(self, run_dir: str, world: World):
        self.root = Path(run_dir) / "checkpoints"
        self.world = world

    def latest(self) -> Path | None:
        pointer = self.root / "latest"
        return self.root / pointer.read_text().strip() if pointer.exists() else None

    def save(self, step: int, model: nn.Module, optimizer: Optimizer, train_state: dict) -> Path:
        path = self.root / f"step-{step:06d}"
        model_sd, optim_sd = get_state_dict(model, optimizer)
        with warnings.catch_warnings():  # one process without a process group is a supported case
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
        barrier(self.world)
        if self.world.main:
            with open_atomic(str(path / "train_state.json"), "w") as f:
                json.dump({"step": step, **train_state}, f)
            with open_atomic(str(self.root / "latest"), "w") as f:
                f.write(path.name)
            for old in sorted(self.root.glob("step-*"))[:-KEEP]:
                shutil.rmtree(old, ignore_errors=True)
        barrier(self.world)
        return path

    def load(self, model: nn.Module, optimizer: Optimizer) -> dict | None:
        """Restore model and optimizer in place from the latest checkpoint; its train_state."""
        path = self.latest()
        if path is None:
            return None
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="torch.distributed is disabled")
            dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
        return json.loads((path / "train_state.json").read_text())
