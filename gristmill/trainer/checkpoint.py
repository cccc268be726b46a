"""Checkpoints with torch.distributed.checkpoint (DCP): model and optimizer as (sharded) state
dicts, plus the step, the LR schedule, the loader's position and the metrics written so far.

    <run>/checkpoints/step-000100/   DCP files (every rank writes its shards) + train_state.json
    <run>/checkpoints/latest         the newest complete checkpoint's name, written last
    <run>/model.json                 the model's config and the mixture's tokenizer (for `gristmill
                                     eval` and `gristmill export`, which load one checkpoint alone)

A checkpoint counts only once `latest` names it, so a kill during a save resumes from the one
before. A run may come back with another number of processes W': DCP reshards model and optimizer
to any W', and the loader continues at its global row position (rows consumed by all processes),
which W' processes continue exactly only when W' divides it (trainer/data.py);
trainer/train.py:resume_state refuses any other W' before a process group or weights exist. The
step and the LR schedule go on from the checkpoint's; a new global batch (processes × batch_size)
is allowed and changes the tokens per step from there on.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.optim import Optimizer

from gristmill.core.config import ConfigError
from gristmill.core.io import open_atomic
from gristmill.trainer.model import ModelConfig, Transformer
from gristmill.trainer.parallel import World, barrier

KEEP = 2  # checkpoints kept on disk


def latest_checkpoint(run_dir: str) -> Path | None:
    """The newest complete checkpoint of a run, if any."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    return pointer.parent / pointer.read_text().strip() if pointer.exists() else None


def write_model_card(run_dir: str, config: ModelConfig, mixture: str, tokenizer: dict) -> None:
    """<run>/model.json: what a checkpoint of this run is (the main process writes it)."""
    card = {"model": dataclasses.asdict(config), "mixture": str(Path(mixture).resolve()), "tokenizer": tokenizer}
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    with open_atomic(str(Path(run_dir) / "model.json"), "w") as f:
        json.dump(card, f, indent=1)


def find_checkpoint(path: str) -> Path:
    """A checkpoint directory from a run directory (its latest) or a checkpoint's own; ConfigError
    (one line) when there is none."""
    p = Path(path)
    if (p / "train_state.json").exists():
        return p
    latest = latest_checkpoint(str(p))
    if latest is None:
        raise ConfigError(f"{path}: neither a checkpoint (no train_state.json) nor a run with one "
                          f"(no checkpoints/latest)")
    return latest


def load_model(checkpoint: Path) -> tuple[Transformer, dict]:
    """The model of one checkpoint, on CPU in float32, in this process alone (no process group),
    and its run's model card (model.json)."""
    card_path = checkpoint.parent.parent / "model.json"
    if not card_path.exists():
        raise ConfigError(f"{card_path}: missing (the run predates model cards, or this is not a run)")
    card = json.loads(card_path.read_text())
    with torch.device("meta"):  # no initialisation: every weight comes from the checkpoint
        model = Transformer(ModelConfig(**card["model"]))
    model.to_empty(device="cpu")
    model.tie_embeddings()
    model.init_rope()
    state = {"model": model.state_dict()}
    with warnings.catch_warnings():  # "torch.distributed is disabled …": one process is the intent
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(checkpoint))
    model.load_state_dict(state["model"])
    return model.eval(), card


def read_train_state(path: Path) -> dict:
    """A checkpoint's step, schedule, loader position and tokens per source (no weights)."""
    return json.loads((path / "train_state.json").read_text())


class Checkpointer:
    def __init__(self, run_dir: str, world: World):
        self.run_dir, self.root = run_dir, Path(run_dir) / "checkpoints"
        self.world = world

    def latest(self) -> Path | None:
        return latest_checkpoint(self.run_dir)

    def save(self, step: int, model: nn.Module, optimizer: Optimizer, train_state: dict) -> Path:
        path = self.root / f"step-{step:06d}"
        model_sd, optim_sd = get_state_dict(model, optimizer)
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

    def load(self, path: Path, model: nn.Module, optimizer: Optimizer) -> None:
        """Restore model and optimizer in place from the checkpoint at `path`, resharded to this world."""
        model_sd, optim_sd = get_state_dict(model, optimizer)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(path))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
