"""The training loop: a Llama-style model on a gristmill mixture, loss per source.

    torchrun --standalone --nproc-per-node N -m gristmill.trainer.train CONFIG [--set key=value …]
    gristmill train CONFIG                      (starts torchrun with parallel.nproc processes)
    python -m gristmill.trainer.train CONFIG              (one process, as torchrun's world of one: debugging)

Each step: the next batch of packed sequences → forward (document-masked attention) → per-token
cross-entropy → backward → clip → AdamW → LR schedule (linear warmup, cosine decay). Every token's
loss is added to its source; validation runs on every source's held-out shards. A kill resumes
from the latest checkpoint to the same loss curve, also on another number of processes when it
divides the loader's position (trainer/checkpoint.py). Rank 0 prints a line every log_every steps:
step of total, loss, lr, tokens/s, ETA.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gristmill.core.config import ConfigError
from gristmill.trainer.attention import sdpa_backends
from gristmill.trainer.checkpoint import Checkpointer, latest_checkpoint, read_train_state, write_model_card
from gristmill.trainer.config import TrainConfig, load_train_config
from gristmill.trainer.data import MixtureLoader, validation_loaders
from gristmill.trainer.evals.evaluator import Evaluator, load_tokenizer, write_results
from gristmill.trainer.metrics import MetricsLog, SourceLoss, memory_gb, peak_tflops
from gristmill.trainer.model import Transformer, model_config
from gristmill.trainer.parallel import World, parallelize, setup, teardown
from gristmill.trainer.watchdog import watch_launcher


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Multiplier of the base LR at `step` (1-based): linear warmup, then cosine to min_lr_ratio."""
    o, total = cfg.optim, cfg.schedule.steps
    if step <= o.warmup_steps:
        return step / max(o.warmup_steps, 1)
    progress = (step - o.warmup_steps) / max(total - o.warmup_steps, 1)
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, world: World) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on norms)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    other = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=cfg.optim.betas, fused=world.device.type == "cuda")


@torch.no_grad()
def evaluate(model: torch.nn.Module, loaders: dict[str, MixtureLoader], n_sources: int, world: World,
             backend: str) -> SourceLoss:
    model.eval()
    losses = SourceLoss(n_sources, world.device)
    for loader in loaders.values():
        for batch in loader:
            batch = batch.to(world.device)
            with sdpa_backends(backend):
                logits = model(batch.inputs, batch.doc_ids)
            token_loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten(), reduction="none")
            losses.add(token_loss, batch.sources)
    model.train()
    return losses


def train_loader(cfg: TrainConfig, rank: int, world_size: int) -> MixtureLoader:
    s = cfg.schedule
    return MixtureLoader(cfg.run.mixture, "train", seq_len=cfg.model.seq_len, batch_size=s.batch_size,
                         rank=rank, world_size=world_size, seed=s.seed)


def resume_state(cfg: TrainConfig, world_size: int) -> tuple[Path, dict] | None:
    """The latest checkpoint and its train state, once its loader position is known to continue
    exactly on `world_size` processes (ConfigError if not: one line, before any process group or
    weights); None for a fresh run."""
    path = latest_checkpoint(cfg.run.run_dir)
    if path is None:
        return None
    state = read_train_state(path)
    try:
        train_loader(cfg, 0, world_size).load_state_dict(state["loader"])
    except ValueError as e:
        raise ConfigError(f"cannot resume {path} on {world_size} process(es): {e}") from None
    return path, state


def train(cfg: TrainConfig) -> dict:
    watch_launcher()
    resume = resume_state(cfg, int(os.environ.get("WORLD_SIZE", 1)))  # the world size setup() will have
    world = setup(cfg.parallel)
    s, m = cfg.schedule, cfg.model
    loader = train_loader(cfg, world.rank, world.size)
    valid = validation_loaders(cfg.run.mixture, m.seq_len, 1, world.rank, world.size,  # rows one at a time:
                               s.eval_batches and s.eval_batches * s.batch_size)  # small sources count too
    sources = loader.source_names
    tasks = Evaluator(cfg.eval, load_tokenizer(loader.tokenizer.get("path")), m.seq_len) if cfg.eval.tasks else None
    tasks_every = cfg.eval.every or s.eval_every
    mcfg = model_config(m.size, vocab_size=loader.vocab_size, max_seq_len=m.seq_len, tie_embeddings=m.tie_embeddings,
                        attention=m.attention, doc_masking=m.doc_masking)
    with torch.device(world.device):
        model = Transformer(mcfg)
    model.init_weights(seed=s.seed)
    flops_per_token = model.flops_per_token(m.seq_len)
    peak, peak_source = peak_tflops(world.device, cfg.parallel.peak_tflops)
    if world.main:
        write_model_card(cfg.run.run_dir, mcfg, cfg.run.mixture, loader.tokenizer)
        print(f"{model.describe()}\n{world.size} process(es) on {world.device}; precision: {world.precision}\n"
              f"{loader.tokens_per_epoch:,} training tokens per epoch; MFU peak: "
              f"{f'{peak:g} TFLOP/s' if peak else 'none'} ({peak_source})", flush=True)
        if tasks is not None:
            print(tasks.describe(), flush=True)
    parallelize(model, world, m.compile, m.activation_checkpointing)
    optimizer = build_optimizer(model, cfg, world)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: lr_at(i + 1, cfg))
    checkpoints = Checkpointer(cfg.run.run_dir, world)
    log = MetricsLog(cfg.run.run_dir, world, sources, s.steps)
    seen = [0] * len(sources)  # training tokens per source so far, all processes
    start = 0
    if resume is not None:
        path, state = resume
        loader.load_state_dict(state["loader"])
        checkpoints.load(path, model, optimizer)
        start, seen = state["step"], state["tokens_by_source"]
        schedule.load_state_dict(state["schedule"])
        log.truncate_after(start)
        if world.main:
            before = state["loader"].get("batch_size", 0) * state["loader"]["world_size"]
            after = s.batch_size * world.size
            change = f"; sequences per step: {before} before, {after} now" if before not in (0, after) else ""
            print(f"resumed from step {start}{change}", flush=True)
    window = SourceLoss(len(sources), world.device)
    last: dict = {}
    sync = torch.cuda.synchronize if world.device.type == "cuda" else (lambda: None)
    t0, paused, window_tokens = time.perf_counter(), 0.0, 0  # a window's time is training time only
    run_t0 = t0  # for the ETA: all time since this process started stepping, evaluation included
    for step in range(start + 1, s.steps + 1):
        batch = next(loader).to(world.device)
        with sdpa_backends(m.sdpa_backend):
            logits = model(batch.inputs, batch.doc_ids)
        token_loss = F.cross_entropy(logits.float().flatten(0, 1), batch.targets.flatten(), reduction="none")
        token_loss.mean().backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or math.inf)
        lr = optimizer.param_groups[0]["lr"]  # this step's (the schedule moves on to the next one's below)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.add(token_loss, batch.sources)
        window_tokens += batch.targets.numel()
        if step % s.log_every == 0 or step == s.steps:
            loss, per_source, counts = window.reduce(world)  # (waits for the device)
            now = time.perf_counter()
            elapsed = now - t0 - paused
            seen = [a + b for a, b in zip(seen, counts)]
            tps = window_tokens / elapsed  # per process
            last = {"kind": "train", "step": step, "loss": loss, "loss_by_source": log.by_source(per_source),
                    "tokens_by_source": log.by_source(seen), "tokens": sum(seen),
                    "lr": lr, "grad_norm": float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor")
                                                 else grad_norm),
                    "tokens_per_s": tps * world.size, "tokens_per_s_per_device": tps,
                    "mfu": flops_per_token * tps / (peak * 1e12) if peak else None,
                    "peak_tflops": peak, "peak_tflops_source": peak_source,
                    "dtype": str(world.dtype).removeprefix("torch."),
                    "memory_gb": memory_gb(world.device)}
            log.write(last, eta_s=(now - run_t0) / (step - start) * (s.steps - step))
            t0, paused, window_tokens = time.perf_counter(), 0.0, 0
        evaluate_now = valid and (step % s.eval_every == 0 or step == s.steps)
        tasks_now = tasks is not None and (step % tasks_every == 0 or step == s.steps)
        save_now = step == s.steps or (s.checkpoint_every and step % s.checkpoint_every == 0)
        if evaluate_now or tasks_now or save_now:  # none of them is training time
            sync()
            p0 = time.perf_counter()
            if evaluate_now:
                loss, per_source, counts = evaluate(model, valid, len(sources), world, m.sdpa_backend).reduce(world)
                log.write({"kind": "validation", "step": step, "loss": loss,
                           "loss_by_source": log.by_source(per_source), "tokens_by_source": log.by_source(counts)})
            if tasks_now:
                e0 = time.perf_counter()
                results = tasks.run(model, world)  # (its tree masks rule out flash and cuDNN: torch picks)
                seconds = time.perf_counter() - e0
                log.write({"kind": "eval", "step": step, "tasks": results, "seconds": seconds})
                if world.main:
                    write_results(cfg.run.run_dir, step, results, cfg.eval, in_loop=True, seconds=seconds)
            if save_now:
                checkpoints.save(step, model, optimizer, {"schedule": schedule.state_dict(),
                                                          "loader": loader.state_dict(), "tokens_by_source": seen})
            paused += time.perf_counter() - p0
    if world.main:
        print(f"metrics: {log.path}\ncheckpoint: {checkpoints.latest()}", flush=True)
    teardown(world)
    return last


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gristmill.trainer.train", description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    try:
        train(load_train_config(args.config, args.set))
    except ConfigError as e:  # the user's to fix: one line (from the first process), exit 2
        if int(os.environ.get("RANK", 0)) == 0:
            print(f"gristmill train: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
