"""Two mixtures, two seeds each, judged against seed noise: `gristmill eval --compare` on CPU.

    python bench/bench_eval_compare.py [--steps 300] [--seeds 0 1] [--limit 200]   (after `make pipeline`)

- Mixture A is `configs/sample-mix.yaml` (`out/sample-mix`: crawl 5%, english 45%, german 30%,
  other 20%); mixture B the same documents with English at 60% and German at 15% (crawl 5%,
  other 20%; English cannot take more: its documents would pass 4 epochs), built into
  `out/bench-mix-english`.
- Each is trained with `configs/train-sample.yaml` (the `tiny` model, 300 steps) once per seed
  (`schedule.seed`: initialisation and data order), then scored alone by `gristmill eval` on
  `olmes:rc_0shot` with `--limit` questions per task.
- `gristmill eval --compare A=… B=…` writes `bench/results/eval_compare.json` and prints the
  table: per task and per source, each arm's mean and seed range, and B's difference from A
  marked better / worse (the seed ranges do not overlap) or inside them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_B = {"crawl": 0.05, "english": 0.60, "german": 0.15, "other": 0.20}


def gristmill(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "eval_compare.json")
    args = p.parse_args()
    t0 = time.perf_counter()
    mix = yaml.safe_load((ROOT / "configs" / "sample-mix.yaml").read_text())
    mix["mixture"].update(name="bench-mix-english", output=str(ROOT / "out"), runs=[str(ROOT / "out" / "sample")])
    for source in mix["mixture"]["sources"]:
        source["weight"] = WEIGHTS_B[source["name"]]
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "mix-english.yaml"
        spec.write_text(yaml.safe_dump(mix))
        if not (ROOT / "out" / "bench-mix-english" / "mix.json").exists():
            gristmill("mix", str(spec), "--no-progress")
    arms = {"A": ROOT / "out" / "sample-mix", "B": ROOT / "out" / "bench-mix-english"}
    runs: dict[str, list[str]] = {}
    for arm, mixture in arms.items():
        for seed in args.seeds:
            name = f"bench-compare-{arm}-seed{seed}"
            gristmill("train", "configs/train-sample.yaml", "--set", f"run.name={name}",
                      "--set", f"run.mixture={mixture}", "--set", f"schedule.seed={seed}",
                      "--set", f"schedule.steps={args.steps}", "--set", "eval.tasks=[]")
            run = str(ROOT / "out" / "train" / name)
            gristmill("eval", run, "--tasks", "olmes:rc_0shot", "--limit", str(args.limit))
            runs.setdefault(arm, []).append(run)
    gristmill("eval", "--compare", *(f"{arm}={','.join(r)}" for arm, r in runs.items()), "--out", str(args.out))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
