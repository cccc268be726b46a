"""Processes, devices and FSDP2, as torchtitan applies them: activation checkpointing, then
per-block torch.compile, then `fully_shard` per transformer block and at the root.

Every run is FSDP2, so every run computes in the configured dtype: FSDP2's `MixedPrecisionPolicy`
casts the parameters to it for forward and backward, and keeps fp32 master weights, optimizer
state and gradient reduction. On a GPU: bf16 by default, NCCL; on CPU: fp32 by default, gloo.
Under torchrun the process group is torchrun's; one process without torchrun (debugging) gets a
group of one on an in-process store, so it runs what `torchrun --nproc-per-node 1` runs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:  # (the GPU benchmark imports this module where pydantic is not installed)
    from gristmill.trainer.config import ParallelSection


@dataclass
class World:
    rank: int
    size: int
    device: torch.device
    dtype: torch.dtype  # parameters' dtype in compute (FSDP2 casts to it)
    distributed: bool  # a process group exists: FSDP2 wraps the model

    @property
    def precision(self) -> str:
        """What computes in which dtype, as `parallelize` sets it up (for the console)."""
        name = str(self.dtype).removeprefix("torch.")
        if not self.distributed:
            return f"{name} parameters, no mixed precision"
        if self.dtype == torch.float32:
            return "float32"
        return f"{name} compute, float32 master weights, optimizer state and gradient reduction (FSDP2)"

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(cfg: ParallelSection) -> World:
    """The process group (torchrun's, or one of this process alone) and this process's device and
    compute dtype."""
    cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    under_torchrun = "RANK" in os.environ
    rank, size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        backend, device_id = ("nccl", device) if cuda else ("gloo", None)
        if under_torchrun:
            dist.init_process_group(backend, device_id=device_id)
        else:
            store = dist.HashStore()  # in-process: a group of one needs no rendezvous
            dist.init_process_group(backend, store=store, rank=0, world_size=1, device_id=device_id)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}.get(cfg.dtype,
                                                                        torch.bfloat16 if cuda else torch.float32)
    return World(rank, size, device, dtype, True)


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


# Dense bf16 tensor-core peaks in TFLOP/s (NVIDIA's datasheets; their "with sparsity" figures halved).
# The first entry whose key the device's name contains wins, so a part comes before its family:
# "NVIDIA H100 80GB HBM3" is the SXM part; GH200 and GB200 are named as such.
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("H100 NVL", 835.0), ("H100 PCIe", 756.0), ("H100", 989.0),
    ("H200 NVL", 835.0), ("H200", 989.0),
    ("GB200", 2500.0), ("B200", 2250.0),
    ("A100", 312.0), ("L40S", 362.0),
)


def device_peak_tflops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU named as torch.cuda.get_device_name() names it; None if unknown."""
    name = device_name.lower()
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key.lower() in name), None)


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
