"""Mixture: peak memory per task and speed against corpus size, and how exact the proportions are.

    python bench/bench_mix.py [--copies 1 4 16] [--out bench/results/mix.json]

The corpus is the sample run (`make pipeline` first: out/sample) replicated k times as one run
(new ids, the same token shards: each copy is one more set of parts). The mixture is
configs/sample-mix.yaml's sources, uncapped, with a budget of twice the corpus' tokens (every
source up-sampled, a fractional epoch drawn), 1M-token output shards. Every task runs in a fresh process
on one of 2 long-lived workers whose peak RSS is reset before each task (Linux clear_refs), and
the highest per step is kept; the no-op row is a worker that only imported the code. Against it, the in-memory way (nanoGPT's
`prepare.py` style: every chosen document's tokens gathered in one process, permuted, written),
whose peak RSS is measured the same way, in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import gristmill.core.env  # noqa: F401
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import FreshProcesses, machine_notes, markdown_table, measured, write_json  # noqa: E402
from gristmill.stages.mix import build_mixture  # noqa: E402
from gristmill.stages.mix.config import parse_mix  # noqa: E402

SAMPLE = ROOT / "out" / "sample"


def replicate(copies: int, out: Path) -> Path:
    """The sample run `copies` times over, as one finished run."""
    run = out / f"sample-x{copies}"
    shards = sorted(SAMPLE.glob("tokens/*/shard-*.json"))
    n = len(shards)
    for c in range(copies):
        for meta_path in shards:
            p = int(meta_path.stem.split("-")[1])
            q = c * n + p
            table = pq.read_table(SAMPLE / "docs" / f"part-{p:05d}.parquet")
            table = table.set_column(0, "id", pc.binary_join_element_wise(f"x{c:03d}-", table["id"], ""))
            (run / "docs").mkdir(parents=True, exist_ok=True)
            pq.write_table(table, run / "docs" / f"part-{q:05d}.parquet")
            dest = run / "tokens" / meta_path.parent.name / f"shard-{q:05d}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            for ext in (".bin", ".idx", ".json"):
                shutil.copyfile(str(meta_path)[:-5] + ext, str(dest) + ext)
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "run": run.name}))
    return run


def spec_for(run: Path, out: Path) -> object:
    raw = yaml.safe_load((ROOT / "configs" / "sample-mix.yaml").read_text())["mixture"]
    tokens = sum(json.loads(p.read_text())["n_tokens"] for p in run.glob("tokens/*/shard-*.json"))
    for s in raw["sources"]:
        s["max_epochs"] = None  # uncapped: every source up-sampled as far as the budget needs
    raw.update(runs=[str(run)], output=str(out), budget=2 * tokens, shard_tokens=1_000_000)
    return parse_mix({"mixture": raw}).mixture


def in_memory_mix(run: str, budget: int, seed: int) -> int:
    """The whole corpus in memory: every document's tokens, repeated to the budget, permuted."""
    rng = np.random.default_rng(seed)
    docs = []
    for meta in sorted(Path(run).glob("tokens/*/shard-*.json")):
        tokens = np.fromfile(str(meta)[:-5] + ".bin", dtype=np.uint16)
        idx = np.fromfile(str(meta)[:-5] + ".idx", dtype=np.int64)
        docs += [tokens[idx[i]:idx[i + 1]] for i in range(len(idx) - 1)]
    total = sum(len(d) for d in docs)
    chosen = [docs[i % len(docs)] for i in range(int(len(docs) * budget / total))]
    out = np.concatenate([chosen[i] for i in rng.permutation(len(chosen))])
    return int(out.nbytes)


def one(copies: int) -> dict:
    tmp = Path(tempfile.mkdtemp())
    run = replicate(copies, tmp)
    spec = spec_for(run, tmp / "mixes")
    execute = FreshProcesses(workers=2, reuse=True)
    with FreshProcesses(workers=1).pool as pool:
        task_baseline = pool.submit(measured, _noop, ()).result()[1]
    t0 = time.perf_counter()
    m = build_mixture(spec, execute)
    wall = time.perf_counter() - t0
    execute.pool.shutdown()
    with FreshProcesses(workers=1).pool as pool:
        t1 = time.perf_counter()
        naive_bytes, naive_rss = pool.submit(measured, in_memory_mix, (str(run), spec.budget, 0)).result()
        naive_wall = time.perf_counter() - t1
    weights = np.array([s.weight for s in spec.sources]) / sum(s.weight for s in spec.sources)
    shares = np.array([s["realised"]["share"] for s in m["sources"]])
    row = {
        "copies": copies,
        "input_parts": len(list(run.glob("docs/*.parquet"))),
        "input_tokens": sum(s["available"]["tokens"] + s["validation"]["tokens"] for s in m["sources"]),
        "budget": spec.budget,
        "train_tokens": m["train"]["tokens"],
        "train_shards": len(m["train"]["shards"]),
        "budget_error_pct": round(100 * abs(m["train"]["tokens"] - spec.budget) / spec.budget, 4),
        "max_share_error_pct": round(100 * float(np.abs(shares - weights).max()), 4),
        "wall_s_2_workers": round(wall, 1),
        "train_tokens_per_s": round(m["train"]["tokens"] / wall),
        "task_baseline_rss_mb": task_baseline,
        "peak_rss_mb": dict(execute.peaks),
        "in_memory_peak_rss_mb": naive_rss,
        "in_memory_wall_s_1_process": round(naive_wall, 1),
        "in_memory_output_mb": round(naive_bytes / 2**20, 1),
    }
    shutil.rmtree(tmp)
    print(row, flush=True)
    return row


def _noop() -> None:
    import gristmill.stages.mix  # noqa: F401  (what a task imports)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mix.json"))
    args = ap.parse_args()
    if not (SAMPLE / "manifest.json").exists():
        sys.exit("bench_mix: run `make pipeline` first (it writes out/sample)")
    rows = [one(c) for c in args.copies]
    print(markdown_table(
        ["copies", "parts", "input tokens", "train tokens", "wall (2 workers)", "peak RSS per task: scan / fill / spill / shards",
         "in-memory peak RSS", "budget error", "max share error"],
        [[r["copies"], r["input_parts"], f"{r['input_tokens']:,}", f"{r['train_tokens']:,}", f"{r['wall_s_2_workers']} s",
          " / ".join(f"{r['peak_rss_mb'].get(k, 0)} MiB" for k in ("scan", "fill", "spill", "shards")),
          f"{r['in_memory_peak_rss_mb']} MiB", f"{r['budget_error_pct']}%", f"{r['max_share_error_pct']}%"]
         for r in rows]))
    write_json(args.out, {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "machine": machine_notes(["numpy", "pyarrow"]), "rows": rows})


if __name__ == "__main__":
    main()
