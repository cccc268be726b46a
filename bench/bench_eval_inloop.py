"""What in-loop evaluation costs `make train-sample`: the same training with and without `eval:`.

    python bench/bench_eval_inloop.py [--rounds 1]   (after `make pipeline`)

- `configs/train-sample.yaml` as shipped (the `tiny` model, 300 steps, `eval: {tasks:
  [olmes:rc_0shot], limit: 40}` with validation every 50 steps), and the same with `eval.tasks=[]`,
  one after the other, each in a new run directory (`out/train/bench-inloop-*`).
- Evaluation time: the `seconds` of the run's `kind: eval` records. Training time: each train
  record's tokens over its tokens/s (training only: evaluation, validation and checkpoints are
  not in it). Wall time: the whole `gristmill train` command, start-up included.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `bench` when run as a script
from bench.common import machine_notes, markdown_table, write_json  # noqa: E402


def train(name: str, *sets: str) -> tuple[float, list[dict]]:
    run = ROOT / "out" / "train" / name
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gristmill", "train", "configs/train-sample.yaml",
                    "--set", f"run.name={name}", *(a for s in sets for a in ("--set", s))],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def training_seconds(records: list[dict]) -> float:
    """Each train window's tokens over its tokens/s (the tokens are cumulative)."""
    train, seconds, before = [r for r in records if r["kind"] == "train"], 0.0, 0
    for r in train:
        seconds += (r["tokens"] - before) / r["tokens_per_s"]
        before = r["tokens"]
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_inloop.json")
    args = p.parse_args()
    results, rows = {"machine": machine_notes(["torch"]), "rounds": []}, []
    for i in range(args.rounds):
        with_wall, with_records = train(f"bench-inloop-eval-{i}")
        without_wall, without_records = train(f"bench-inloop-plain-{i}", "eval.tasks=[]")
        evals = [r for r in with_records if r["kind"] == "eval"]
        eval_s, train_s = sum(r["seconds"] for r in evals), training_seconds(with_records)
        entry = {"evaluations": len(evals), "eval_seconds": eval_s, "training_seconds": train_s,
                 "share_of_training": eval_s / train_s, "wall_with_eval": with_wall,
                 "wall_without_eval": without_wall, "wall_ratio": with_wall / without_wall,
                 "training_seconds_without_eval": training_seconds(without_records)}
        results["rounds"].append(entry)
        rows.append([i, len(evals), f"{eval_s:.2f}", f"{train_s:.1f}", f"{eval_s / train_s:.1%}",
                     f"{with_wall:.1f}", f"{without_wall:.1f}", f"{with_wall / without_wall:.3f}"])
    print(markdown_table(["round", "evaluations", "eval s", "training s", "eval / training", "wall with eval s",
                          "wall without s", "ratio"], rows))
    write_json(args.out, results)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
