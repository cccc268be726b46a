"""Downstream evaluation throughput: requests (choices) scored per second, packed against one
request per row.

    python bench/bench_eval.py [--sizes tiny 125m] [--tasks …] [--limit 40] [--tokens-per-batch 4096 …]
                               [--device cpu|cuda] [--tokenizer PATH]

- **Tasks**: by default the OLMES suite 0-shot and 5-shot (`olmes:rc_0shot`, `olmes:rc_5shot`:
  eleven tasks each), a fixed sample of `--limit` questions per task, tokenized by the sample run's tokenizer
  (`out/sample/tokenizer.json`, 8,192 tokens: `make pipeline`).
- **Models**: each size at random initialisation (speed does not depend on the weights), window
  256 for `tiny` (its training length in configs/train-sample.yaml) and 1,024 for `125m`.
- **Packed** (gristmill's scoring, evals/scoring.py): a question's choices share one copy of their
  context under a tree mask; groups fill rows of the window; `--tokens-per-batch` per forward
  pass (default 4,096, the evaluation's default).
- **Baseline, one request per row** (olmo_eval's layout): every choice is its own row, context +
  continuation[:-1] padded to the batch's longest (rounded up to 128, as olmo_eval does), the
  same rows per batch; measured in the same run.
- Timings: the fastest of `--repeats` passes; one process, torch on one thread per process
  (`torch.set_num_threads(1)`) pinned to one core on CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `bench` when run as a script
from bench.common import machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402
from gristmill.trainer.evals.config import EvalConfig  # noqa: E402
from gristmill.trainer.evals.evaluator import Evaluator, load_tokenizer  # noqa: E402
from gristmill.trainer.evals.scoring import Group, pack  # noqa: E402
from gristmill.trainer.model import Transformer, model_config  # noqa: E402
from gristmill.trainer.parallel import World  # noqa: E402

WINDOWS = {"tiny": 256, "125m": 1024}
TASKS = ["olmes:rc_0shot", "olmes:rc_5shot"]


def one_request_per_row(evaluator: Evaluator, window: int):
    """The same requests, each choice its own group: a row each (olmo_eval's layout)."""
    singles = []
    for t, offset in zip(evaluator.tasks, evaluator.offsets):
        for g in t.groups:
            for branch, choice in zip(g.branches, g.choices):
                singles.append(Group(g.context, [branch], [(choice[0] + offset, choice[1])]))
    return [pack([g], window) for g in singles]


def time_packed(evaluator: Evaluator, model, world: World, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluator.loglikelihoods(model, world)
        if world.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def time_single_rows(evaluator: Evaluator, model, world: World, repeats: int) -> tuple[float, float]:
    """(seconds, tokens per forward pass) with one request per row, padded per batch as olmo_eval pads."""
    from gristmill.trainer.evals.scoring import score_rows

    window = model.config.max_seq_len
    singles = one_request_per_row(evaluator, window)
    singles.sort(key=lambda p: -int((p.group[0] >= 0).sum()))
    lengths = [int((p.group[0] >= 0).sum()) for p in singles]
    per_batch = evaluator.rows_per_batch
    best, padded = float("inf"), 0
    for _ in range(repeats):
        t0, padded = time.perf_counter(), 0
        for i in range(0, len(singles), per_batch):
            chunk = singles[i:i + per_batch]
            width = min(window, 128 * -(-max(lengths[i:i + per_batch]) // 128))
            batch = _stack(chunk, width)
            padded += width * len(chunk)
            score_rows(model, batch, list(range(len(chunk))), evaluator.n_choices, world.device)
        if world.device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, padded


def _stack(packs, width: int):
    from gristmill.trainer.evals.scoring import Packed

    out = Packed(*(np.concatenate([getattr(p, f)[:, :width] for p in packs]) for f in
                   ("tokens", "group", "branch", "positions")))
    for p in packs:  # each pack is one row
        out.predictor.append(p.predictor[0])
        out.target.append(p.target[0])
        out.choice.append(p.choice[0])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", default=["tiny", "125m"])
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--limit", type=int, default=40)
    p.add_argument("--tokens-per-batch", type=int, nargs="+", default=[4096],
                   help="packed tokens per forward pass; each value is timed (the baseline at the first)")
    p.add_argument("--no-baseline", action="store_true", help="skip the one-request-per-row baseline")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--tokenizer", default=str(ROOT / "out" / "sample" / "tokenizer.json"))
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval.json")
    args = p.parse_args()
    if args.device == "cpu":
        pin_to_core()
        torch.set_num_threads(1)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    world = World(0, 1, device, dtype, False)
    results, rows = {"machine": machine_notes(["torch"]), "device": str(device), "sizes": {}}, []
    for size in args.sizes:
        window = WINDOWS[size]
        model = None
        for tpb in args.tokens_per_batch:
            t0 = time.perf_counter()
            evaluator = Evaluator(EvalConfig(tasks=args.tasks, limit=args.limit, tokens_per_batch=tpb),
                                  load_tokenizer(args.tokenizer), window)
            prepare = time.perf_counter() - t0
            if model is None:
                model = Transformer(model_config(size, vocab_size=evaluator.vocab_size, max_seq_len=window))
                model.init_weights(seed=0)
                model.to(device=device, dtype=dtype).eval()
            requests = evaluator.n_choices
            questions = sum(len(t.questions) for t in evaluator.tasks)
            filled = int((evaluator.packed.group >= 0).sum())
            packed_s = time_packed(evaluator, model, world, args.repeats)
            entry = {"window": window, "tokens_per_batch": tpb, "questions": questions, "requests": requests,
                     "prepare_s": prepare,
                     "packed": {"seconds": packed_s, "requests_per_s": requests / packed_s,
                                "rows": evaluator.n_rows, "tokens": evaluator.n_rows * window, "filled": filled}}
            baseline = ["", "", ""]
            if tpb == args.tokens_per_batch[0] and not args.no_baseline:
                single_s, single_tokens = time_single_rows(evaluator, model, world, args.repeats)
                entry.update(one_request_per_row={"seconds": single_s, "requests_per_s": requests / single_s,
                                                  "tokens": single_tokens}, speedup=single_s / packed_s)
                baseline = [f"{requests / single_s:,.1f}", f"{single_s / packed_s:.2f}x", f"{single_tokens:,}"]
            results["sizes"].setdefault(size, []).append(entry)
            rows.append([size, window, tpb, questions, requests, f"{requests / packed_s:,.1f}", baseline[0],
                         baseline[1], f"{evaluator.n_rows * window:,} ({filled / (evaluator.n_rows * window):.0%} filled)",
                         baseline[2], f"{prepare:.1f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["size", "window", "tokens per batch", "questions", "requests", "packed req/s",
                          "one per row req/s", "speed-up", "packed tokens", "one-per-row tokens", "prepare s"], rows))
    write_json(args.out, results)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
