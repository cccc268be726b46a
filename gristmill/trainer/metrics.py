"""What a training run reports: loss per source (exact: every token carries its document's source),
tokens per source, throughput, MFU, memory — as JSON lines in <run>/metrics.jsonl and on the console.

MFU = flops_per_token (6N + 12·L·H·Q·T, trainer/model.py) × tokens/s per device ÷ the device's
dense bf16 peak: `parallel.peak_tflops` when set, else looked up by the GPU's name
(trainer/parallel.py PEAK_BF16_TFLOPS: H100 SXM 989, NVL 835, PCIe 756, ...); none on CPU or an
unknown GPU. Each train record carries the peak used and where it came from.
"""

from __future__ import annotations

import json
import math
import resource
from pathlib import Path

import torch

from gristmill.core.io import open_atomic
from gristmill.trainer.parallel import World, all_reduce_sum, device_peak_tflops


def peak_tflops(device: torch.device, configured: float | None) -> tuple[float | None, str]:
    """(dense bf16 peak in TFLOP/s or None, its source): the config's value, else the GPU's by name."""
    if configured is not None:
        return configured, "config parallel.peak_tflops"
    if device.type != "cuda":
        return None, f"none for {device.type}"
    name = torch.cuda.get_device_name(device)
    if (peak := device_peak_tflops(name)) is None:
        return None, f"{name!r} unknown: set parallel.peak_tflops"
    return peak, f"{name!r} in trainer/parallel.py PEAK_BF16_TFLOPS"


def format_duration(seconds: float) -> str:
    """A short duration for the console: 45s, 1m32s, 2h05m."""
    s = max(round(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


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
    """metrics.jsonl (main process only) and a console line per record: a train record's line is
    the run's progress (step of total, loss, lr, tokens/s, ETA)."""

    def __init__(self, run_dir: str, world: World, sources: list[str], total_steps: int):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.world, self.sources, self.total_steps = world, sources, total_steps

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps past the checkpoint (they will be made again)."""
        if not self.world.main or not self.path.exists():
            return
        keep = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= step]
        with open_atomic(str(self.path), "w") as f:
            f.write("".join(line + "\n" for line in keep))

    def write(self, record: dict, eta_s: float | None = None) -> None:
        """Append the record; print its line, with the time left (`eta_s`) when given."""
        if not self.world.main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        eta = f" | eta {format_duration(eta_s)}" if eta_s is not None else ""
        print(self.console(record) + eta, flush=True)

    def console(self, r: dict) -> str:
        step = f"step {r['step']:>{len(str(self.total_steps))}}/{self.total_steps}"
        if r["kind"] == "eval":
            per_task = " | ".join(f"{name} {t['primary_metric']} {_fmt(t['primary'])} bpb {_fmt(t['bpb'])}"
                                  for name, t in r["tasks"].items())
            return f"{step} | eval ({r['seconds']:.1f}s) | {per_task}"
        per = " ".join(f"{k} {v:.3f}" for k, v in r["loss_by_source"].items() if v is not None)
        if r["kind"] == "validation":
            return f"{step} | validation loss {r['loss']:.4f} | {per}"
        mfu = f" | MFU {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
        return (f"{step} | loss {r['loss']:.4f} | {per} | lr {r['lr']:.2e} | "
                f"{r['tokens_per_s']:,.0f} tok/s{mfu} | mem {r['memory_gb']:.2f} GB")

    def by_source(self, values: list) -> dict:
        return dict(zip(self.sources, values))
