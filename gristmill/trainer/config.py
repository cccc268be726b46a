"""The training config: one YAML file (configs/train-sample.yaml), one tree of strict models whose
errors name the key, as the run config does. Relative paths are relative to the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from gristmill.core.config import ConfigError, Strict, format_error, read_yaml, resolve_path
from gristmill.trainer.evals.config import EvalConfig


class RunSection(Strict):
    name: str = Field(default="train", pattern=r"^[A-Za-z0-9_.-]+$")
    output: str = "out/train"  # the run writes <output>/<name>/: metrics.jsonl, checkpoints/
    mixture: str  # a mixture directory (gristmill mix): train/ and validation/ token shards, mix.json

    @property
    def run_dir(self) -> str:
        return f"{self.output.rstrip('/')}/{self.name}"


class ModelSection(Strict):
    size: str = "tiny"  # trainer/model.py SIZES: tiny, 125m, 350m, 1b
    seq_len: int = Field(default=256, ge=8)
    tie_embeddings: bool = False
    attention: Literal["sdpa", "flex"] = "sdpa"  # flex: FlexAttention block masks (GPU only)
    doc_masking: bool = True  # attention stays within each packed document
    sdpa_backend: Literal["auto", "flash", "cudnn", "efficient", "math"] = "auto"
    compile: bool = False  # torch.compile per transformer block
    activation_checkpointing: bool = False  # recompute each block in the backward pass


class OptimSection(Strict):
    lr: float = Field(default=3e-3, gt=0)
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)  # cosine decay down to lr × this
    warmup_steps: int = Field(default=20, ge=0)
    weight_decay: float = Field(default=0.1, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = Field(default=1.0, gt=0)


class ScheduleSection(Strict):
    steps: int = Field(default=200, ge=1)
    batch_size: int = Field(default=8, ge=1)  # sequences per process and step
    seed: int = 0
    log_every: int = Field(default=10, ge=1)
    eval_every: int = Field(default=50, ge=1)  # validation loss per source, every this many steps
    eval_batches: int | None = Field(default=8, ge=1)  # per source; None: the whole validation split
    checkpoint_every: int | None = Field(default=100, ge=1)  # and at the end; None: only at the end


class ParallelSection(Strict):
    nproc: int = Field(default=1, ge=1)  # processes `gristmill train` starts (torchrun), one per GPU
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 parameters on GPU, fp32 on CPU
    peak_tflops: float | None = Field(default=None, gt=0)  # dense bf16 peak for MFU; None: by GPU name


class TrainConfig(Strict):
    run: RunSection
    model: ModelSection = ModelSection()
    optim: OptimSection = OptimSection()
    schedule: ScheduleSection = ScheduleSection()
    parallel: ParallelSection = ParallelSection()
    eval: EvalConfig = EvalConfig()  # downstream tasks in the loop (trainer/evals/)


def load_train_config(path: str | os.PathLike, overrides: list[str] = ()) -> TrainConfig:
    raw, base = read_yaml(path, overrides, "training config")
    if isinstance(raw.get("run"), dict):
        raw["run"] = {**raw["run"], **{k: resolve_path(raw["run"][k], base) for k in ("output", "mixture")
                                       if isinstance(raw["run"].get(k), str)}}
    if isinstance(raw.get("optim"), dict) and isinstance(raw["optim"].get("betas"), list):
        raw["optim"]["betas"] = tuple(raw["optim"]["betas"])
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e)) from None
    from gristmill.trainer.model import SIZES

    if cfg.model.size not in SIZES:
        raise ConfigError(f"model.size: {cfg.model.size!r} is not one of {', '.join(SIZES)}")
    s = cfg.schedule
    if s.checkpoint_every is not None and s.checkpoint_every % s.log_every:
        raise ConfigError(f"schedule.checkpoint_every: {s.checkpoint_every} is not a multiple of log_every "
                          f"({s.log_every}), so a resumed run would not log the same windows")
    if cfg.model.attention == "flex" and cfg.parallel.device == "cpu":
        raise ConfigError("model.attention: flex has no backward on CPU (torch 2.13); use sdpa")
    if not Path(cfg.run.mixture, "mix.json").exists():
        raise ConfigError(f"run.mixture: {cfg.run.mixture!r} has no mix.json (build it with `gristmill mix`)")
    if cfg.eval.tasks:
        from gristmill.core.eval_tasks import expand

        try:
            expand(cfg.eval.tasks)
        except ConfigError as e:
            raise ConfigError(f"eval.tasks: {e}") from None
    return cfg
