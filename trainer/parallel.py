"""Processes, devices and FSDP2, as torchtitan applies them: activation checkpointing, then
per-block torch.compile, then `fully_shard` per transformer block and at the root.

On a GPU: bf16 parameters, fp32 gradient reduction (`MixedPrecisionPolicy`), NCCL. On CPU:
fp32 and gloo (what the tests run). One process without torchrun needs no process group and is
not sharded; under torchrun every process is, even a world of one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:  # (the GPU benchmark imports this module where pydantic is not installed)
    from trainer.config import ParallelSection


@dataclass
class World:
    rank: int
    size: int
    device: torch.device
    dtype: torch.dtype  # parameters' dtype in compute (FSDP2 casts to it)
    distributed: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: ParallelSection) -> World:
    """The process group (under torchrun) and this process's device and compute dtype."""
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    distributed = "RANK" in os.environ
    rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(cfg.dtype,
                                                                        torch.bfloat16 if cuda else torch.float32)
    return World(rank, size, device, dtype, distributed)


def parallelize(model: nn.Module, world: World, compile_blocks: bool, checkpoint_blocks: bool) -> nn.Module:
    """Wrap the model's blocks in place, after `init_weights` (every process initialises the whole
    model from the seed, then keeps its shard: the same start whatever the world size, and tied
    embeddings stay tied; the meta-device start matters only for models that do not fit a device)."""
    layers = model.layers
    for name, block in list(layers.items()):
        if checkpoint_blocks:
            from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

            block = checkpoint_wrapper(block, preserve_rng_state=False)
        if compile_blocks:
            block = torch.compile(block, fullgraph=False)
        layers[name] = block
    if not world.distributed:
        return model
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=world.dtype, reduce_dtype=torch.float32)
    for i, block in enumerate(layers.values()):
        # the last block stays gathered after forward: backward needs it at once
        fully_shard(block, mp_policy=mp, reshard_after_forward=i < len(layers) - 1)
    fully_shard(model, mp_policy=mp)
    return model


def all_reduce_sum(t: torch.Tensor, world: World) -> torch.Tensor:
    if world.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def teardown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
