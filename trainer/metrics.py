"""What a training run reports: loss per source (exact: every token carries its document's source),
tokens per source, throughput, MFU, memory — as JSON lines in <run>/metrics.jsonl and on the console.

MFU = flops_per_token (6N + 12·L·H·Q·T, trainer/model.py) × tokens/s per device ÷ the device's
dense bf16 peak (989 TFLOP/s for H100 SXM and H200, as torchtitan counts them); none on CPU.
"""

from __future__ import annotations

import json
import math
import resource
from pathlib import Path

import torch

from stages.write import open_atomic
from trainer.parallel import World, all_reduce_sum

PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0}


def peak_tflops(device: torch.device, configured: float | None) -> float | None:
    if configured is not None:
        return configured
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def memory_gb(device: torch.device) -> float:
    """Peak memory: the GPU's allocator peak, or this process's peak RSS on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class SourceLoss:
    """Sums of per-token loss and token counts by source id, over all processes."""

    def __init__(self, n_sources: int, device: torch.device):
        self.sum = torch.zeros(n_sources, dtype=torch.float64, device=device)
        self.count = torch.zeros(n_sources, dtype=torch.float64, device=device)

    def add(self, token_loss: torch.Tensor, sources: torch.Tensor) -> None:
        self.sum.index_add_(0, sources.flatten(), token_loss.detach().flatten().to(torch.float64))
        self.count.index_add_(0, sources.flatten(), torch.ones_like(self.count[:1]).expand(sources.numel()))

    def reduce(self, world: World) -> tuple[float, list[float | None], list[int]]:
        """(mean loss over every token, mean per source or None, tokens per source); then reset."""
        both = all_reduce_sum(torch.stack([self.sum, self.count]), world).cpu()
        self.sum.zero_()
        self.count.zero_()
        sums, counts = both[0].tolist(), both[1].tolist()
        total = sum(counts)
        mean = sum(sums) / total if total else math.nan
        return mean, [s / c if c else None for s, c in zip(sums, counts)], [int(c) for c in counts]


class MetricsLog:
    """metrics.jsonl (main process only) and a console line per record."""

    def __init__(self, run_dir: str, world: World, sources: list[str]):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.world, self.sources = world, sources

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps past the checkpoint (they will be made again)."""
        if not self.world.main or not self.path.exists():
            return
        keep = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= step]
        with open_atomic(str(self.path), "w") as f:
            f.write("".join(line + "\n" for line in keep))

    def write(self, record: dict) -> None:
        if not self.world.main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(self.console(record), flush=True)

    def console(self, r: dict) -> str:
        per = " ".join(f"{k} {v:.3f}" for k, v in r["loss_by_source"].items() if v is not None)
        if r["kind"] == "validation":
            return f"step {r['step']:>6} | validation loss {r['loss']:.4f} | {per}"
        mfu = f" | MFU {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
        return (f"step {r['step']:>6} | loss {r['loss']:.4f} | {per} | lr {r['lr']:.2e} | "
                f"{r['tokens_per_s']:,.0f} tok/s{mfu} | mem {r['memory_gb']:.2f} GB")

    def by_source(self, values: list) -> dict:
        return dict(zip(self.sources, values))
