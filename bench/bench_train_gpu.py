"""The runner on one GPU: tokens/s and MFU of the 125m and 350m models at sequence length 2048,
bf16 (FSDP2 mixed precision, as `gristmill train` runs), with and without torch.compile, with and
without document masking, flash against cuDNN attention.

    python3 bench/bench_train_gpu.py --out results.json          # on the GPU machine (~6 min)
    python bench/bench_train_gpu.py --device cpu --sizes tiny --seq-len 128 --steps 2 --warmup 1   # smoke

Only torch and trainer/{model,attention,parallel}.py are needed (the GPU image has no pydantic).
Each variant: a fresh model on random tokens with documents of realistic lengths (exponential,
mean 800 tokens, as packed web text), `warmup` steps (compilation included) then `steps` timed
steps between CUDA synchronisations. MFU = flops_per_token (6N + 12·L·H·Q·T) × tokens/s ÷ the
GPU's dense bf16 peak, looked up by its name (trainer/parallel.py PEAK_BF16_TFLOPS: H100 SXM 989,
NVL 835, PCIe 756, ...; `--peak-tflops` to override).
Document masking on the GPU goes through FlexAttention block masks (the runner's `attention:
flex`); without masking, SDPA is causal and its kernel is chosen by name (flash or cuDNN). Each
variant compiles afresh (dynamo does not guard on the SDPA backend, so a graph traced under one
backend would serve the next), under its backend, so a backend that cannot run fails compiled as
it does eagerly; one profiled step then names the attention kernel that ran (column "kernel"),
and a row whose kernel is not the one asked for is an error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gristmill.trainer.attention import sdpa_backends  # noqa: E402
from gristmill.trainer.model import Transformer, model_config  # noqa: E402
from gristmill.trainer.parallel import World, device_peak_tflops, parallelize  # noqa: E402

BATCH = {"tiny": 4, "125m": 16, "350m": 8}  # sequences per step: 32k / 16k tokens at 2048


def doc_ids(batch: int, seq_len: int, mean: float, gen: torch.Generator) -> torch.Tensor:
    lengths = torch.empty(batch * seq_len).exponential_(1 / mean, generator=gen).clamp(min=16).long()
    ids = torch.repeat_interleave(torch.arange(len(lengths)), lengths)[: batch * seq_len]
    return ids.view(batch, seq_len)


# aten op (CPU side) or kernel name fragments -> the attention backend that ran
KERNELS = (("cudnn_attention", "cudnn"), ("flash_attention", "flash"), ("efficient_attention", "efficient"),
           ("attention_math", "math"), ("flex", "flex"))


def attention_kernels(step: Callable[[], object], cuda: bool) -> str:
    """The attention backend(s) one call of `step` runs, from the profiler's event names."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize()
    names = {e.name.lower() for e in prof.events()}
    found = {backend for fragment, backend in KERNELS if any(fragment in n for n in names)}
    return "+".join(sorted(found)) or "?"


def run_variant(size: str, seq_len: int, compile_blocks: bool, masking: bool, backend: str, steps: int,
                warmup: int, world: World, vocab: int, peak: float | None) -> dict:
    torch._dynamo.reset()  # no graph traced for an earlier variant (under another backend) is reused
    torch.manual_seed(0)
    cfg = model_config(size, vocab_size=vocab, max_seq_len=seq_len, doc_masking=masking,
                       attention="flex" if masking and world.device.type == "cuda" else "sdpa")
    with torch.device(world.device):
        model = Transformer(cfg)
    model.init_weights(seed=0)
    flops = model.flops_per_token(seq_len)
    parallelize(model, world, compile_blocks, checkpoint_blocks=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=world.device.type == "cuda")
    gen = torch.Generator().manual_seed(0)
    b = BATCH.get(size, 8)
    tokens = torch.randint(0, vocab, (b, seq_len + 1), generator=gen).to(world.device)
    docs = doc_ids(b, seq_len, 800.0, gen).to(world.device) if masking else None
    sync = torch.cuda.synchronize if world.device.type == "cuda" else (lambda: None)

    def step() -> float:
        with sdpa_backends(backend):
            logits = model(tokens[:, :-1], docs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), tokens[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm_s = time.perf_counter() - t0
    if world.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    elapsed = time.perf_counter() - t0
    tps = steps * b * seq_len / elapsed
    memory = round(torch.cuda.max_memory_allocated() / 2**30, 2) if world.device.type == "cuda" else None
    kernel = attention_kernels(step, world.device.type == "cuda")
    return {"size": size, "params": model.num_params(), "seq_len": seq_len, "batch": b, "compile": compile_blocks,
            "doc_masking": masking, "attention": cfg.attention, "sdpa_backend": backend, "kernel": kernel,
            "tokens_per_s": round(tps), "step_ms": round(1000 * elapsed / steps, 1),
            "mfu": round(flops * tps / (peak * 1e12), 4) if peak else None, "warmup_s": round(warm_s, 1),
            "memory_gb": memory,
            "final_loss": round(float(loss), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["125m", "350m"])
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--out", default="bench/results/train_gpu.json")
    args = ap.parse_args()
    os.environ.update(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=os.environ.get("MASTER_PORT", "29517"))
    cuda = args.device == "cuda"
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(0)
    torch.distributed.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
    world = World(0, 1, device, torch.bfloat16 if cuda else torch.float32, True)
    name = torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu"
    peak, peak_source = args.peak_tflops, "--peak-tflops"
    if peak is None and cuda:
        peak, peak_source = device_peak_tflops(name), f"{name!r} in trainer/parallel.py PEAK_BF16_TFLOPS"
    elif peak is None:
        peak_source = "none on cpu"
    variants = [(c, False, k) for c in (False, True) for k in ("flash", "cudnn")] + \
               [(c, True, "auto") for c in (False, True)]
    rows = []
    for size in args.sizes:
        for compile_blocks, masking, backend in variants:
            try:
                row = run_variant(size, args.seq_len, compile_blocks, masking, backend, args.steps, args.warmup,
                                  world, args.vocab, peak)
                if backend != "auto" and row["kernel"] != backend:
                    row["error"] = f"asked for {backend}, ran {row['kernel']}"
            except Exception as e:  # a kernel this GPU/torch does not offer: recorded, not fatal
                row = {"size": size, "compile": compile_blocks, "doc_masking": masking, "sdpa_backend": backend,
                       "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if cuda:
                torch.cuda.empty_cache()
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": name,
           "torch": torch.__version__, "python": platform.python_version(), "peak_tflops": peak,
           "peak_tflops_source": peak_source,
           "command": " ".join(sys.argv), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"peak: {peak} TFLOP/s ({peak_source})")
    print("| size | compile | doc masking | attention | kernel | tokens/s | MFU | step | memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['size']} | {r['compile']} | {r['doc_masking']} | {r['sdpa_backend']} | "
                  f"{r.get('kernel', '')} | {r['error']} | | | |")
        else:
            mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "—"
            print(f"| {r['size']} | {r['compile']} | {r['doc_masking']} | {r['attention']}/{r['sdpa_backend']} | "
                  f"{r['kernel']} | {r['tokens_per_s']:,} | {mfu} | {r['step_ms']} ms | {r['memory_gb']} GB |")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
