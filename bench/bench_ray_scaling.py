"""Does `gristmill run` on Ray keep the in-process per-core rate?

    python bench/bench_ray_scaling.py [--copies 10] [--cpus 2] [--rounds 2] [--before-tree DIR]
                                      [--out bench/results/ray_scaling.json]

1. **Corpus**: the sample's inputs (`configs/sample.yaml`: warc/real, warc/edge-cases,
   warc/packed) linked `--copies` times into a temporary directory (symlinks: the data is not
   copied). The copies are exact duplicates, which costs the per-document stages the same.
2. **In process, one pinned core**: `process_shard` over every shard the run plans (the same
   record ranges), one after the other: documents read per second. This is the per-core rate.
3. **On Ray, `--cpus` cores**: `gristmill run` of the same config in a subprocess (a private
   Ray on 127.0.0.1), wall clock from start to exit, Ray start-up included; per-document stages
   only (dedup and tokenize off). 2 and 3 alternate for `--rounds`: the fastest of each counts,
   and each round's own ratio is reported too. Round 1 also runs `--cpus` plain processes, one
   pinned per core, without Ray: the machine's own scaling.
4. **The whole config** (dedup, tokenizer, tokenize) on Ray, once.
5. **The sample run** (`gristmill run configs/sample.yaml`, every stage) on `--cpus` cores:
   wall time in this tree, and in `--before-tree` (a checkout of an earlier commit) if given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCES = {"commoncrawl": "real/*.warc.gz", "edge_cases": "edge-cases/*", "benchmark_pages": "packed/*.warc.gz"}


def link_corpus(data: Path, dest: Path, copies: int) -> dict[str, list[str]]:
    """`copies` symlinked copies of the sample's inputs; source → glob patterns."""
    patterns: dict[str, list[str]] = {s: [] for s in SOURCES}
    for i in range(copies):
        for source, pattern in SOURCES.items():
            folder = dest / f"copy{i:02d}" / source
            folder.mkdir(parents=True)
            for f in sorted(data.joinpath("warc").glob(pattern)):
                (folder / f.name).symlink_to(f)
            patterns[source].append(f"{folder}/*")
    return patterns


def write_config(path: Path, patterns: dict[str, list[str]], output: Path, name: str, cpus: int,
                 global_steps: bool, tree: Path = ROOT) -> Path:
    """`tree`'s configs/sample.yaml over other inputs (an earlier tree knows only its own keys)."""
    raw = yaml.safe_load((tree / "configs" / "sample.yaml").read_text())
    raw["run"].update(name=name, output=str(output))
    raw["inputs"] = [{"name": s, "paths": p} for s, p in patterns.items()]
    raw["execution"].update(num_cpus=cpus, progress=False)
    if not global_steps:
        raw["stages"]["dedup"] = False
        raw["stages"]["tokenize"] = False
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def in_process(config: str, k: int = 0, n: int = 1) -> dict:
    """Every n-th planned shard from the k-th through `process_shard`, in this process pinned to
    core k: with n = 1 the per-core rate, with n = cores the machine's own scaling without Ray."""
    pin_to_core(k)
    from gristmill.pipeline.config import expand_inputs, load_config
    from gristmill.pipeline.runner import plan_shards
    from gristmill.pipeline.shard import process_shard

    cfg = load_config(config)
    shards = plan_shards(expand_inputs(cfg), cfg.stages.ingest.task_bytes, cfg._sizes)[k::n]
    t0 = time.perf_counter()
    docs = sum(process_shard(cfg, s)["stats"]["ingest"]["docs_in"] for s in shards)
    return {"shards": len(shards), "docs": docs, "seconds": round(time.perf_counter() - t0, 2)}


def run_on_ray(config: Path, tree: Path = ROOT) -> dict:
    """`gristmill run CONFIG` in `tree`, as a user runs it; wall clock and the manifest's counts."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gristmill", "run", str(config)], cwd=tree, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"gristmill run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    raw = yaml.safe_load(config.read_text())
    manifest = json.loads(Path(raw["run"]["output"], raw["run"]["name"], "manifest.json").read_text())
    ingest = manifest["totals"]["ingest"]
    return {"shards": manifest["parts"], "docs": ingest["docs_in"], "seconds": round(seconds, 2),
            "run_seconds": manifest["seconds"]}


def in_processes(config: str, n: int) -> dict:
    """`in_process` in n fresh processes at once, one per core. One process times its shards only
    (the per-core rate); several are timed on the wall clock over all of them, start-up included."""
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        t0 = time.perf_counter()
        parts = list(pool.map(in_process, [config] * n, range(n), [n] * n))
        seconds = time.perf_counter() - t0
    if n == 1:
        return parts[0]
    return {"shards": sum(p["shards"] for p in parts), "docs": sum(p["docs"] for p in parts),
            "seconds": round(seconds, 2)}


def rate(r: dict) -> float:
    return r["docs"] / r["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="in-process and Ray runs alternate this often")
    parser.add_argument("--before-tree", type=Path, default=None, help="a checkout of an earlier commit")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "ray_scaling.json"))
    args = parser.parse_args()

    report: dict = {"machine": machine_notes(["ray", "trafilatura"]), "copies": args.copies, "cpus": args.cpus,
                    "rounds": []}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        tmp = Path(tmp)
        patterns = link_corpus(args.data, tmp / "corpus", args.copies)
        out = tmp / "out"
        for i in range(args.rounds):  # alternate, so that a slow spell on the machine hits both
            inproc = write_config(tmp / f"inproc{i}.yaml", patterns, out, f"inproc{i}", 1, False)
            per_doc = write_config(tmp / f"per_doc{i}.yaml", patterns, out, f"per-doc{i}", args.cpus, False)
            one = in_processes(str(inproc), 1)
            ray_run = run_on_ray(per_doc)
            round_ = {"in_process": one, "ray": ray_run,
                      "share": round(rate(ray_run) / (args.cpus * rate(one)), 3)}
            if i == 0:
                plain = write_config(tmp / "plain.yaml", patterns, out, "plain", 1, False)
                round_["plain_processes"] = in_processes(str(plain), args.cpus)
            report["rounds"].append(round_)
            print(f"round {i + 1}: {round_}", flush=True)
        whole = write_config(tmp / "whole.yaml", patterns, out, "whole", args.cpus, True)
        report["ray_whole_config"] = run_on_ray(whole)
        sample = {}
        for label, tree in [("after", ROOT), ("before", args.before_tree)]:
            if tree is None:
                continue
            cfg = write_config(tmp / f"sample-{label}.yaml", {s: [str(args.data / "warc" / p)] for s, p in SOURCES.items()},
                               out, f"sample-{label}", args.cpus, True, tree)
            sample[label] = run_on_ray(cfg, tree)
        report["sample_run"] = sample

    rounds = report["rounds"]
    best_one = max((r["in_process"] for r in rounds), key=rate)
    best_ray = max((r["ray"] for r in rounds), key=rate)
    report["share_fastest"] = round(rate(best_ray) / (args.cpus * rate(best_one)), 3)
    n = args.cpus
    rows = [["in process, 1 pinned core", best_one["shards"], best_one["docs"], best_one["seconds"],
             f"{rate(best_one):.1f}", f"{rate(best_one):.1f}", "1.00"]]
    plain = rounds[0]["plain_processes"]
    rows.append([f"{n} plain processes, one pinned per core, no Ray (round 1)", "", plain["docs"], plain["seconds"],
                 f"{rate(plain):.1f}", f"{rate(plain) / n:.1f}", f"{rate(plain) / (n * rate(rounds[0]['in_process'])):.2f}"])
    rows.append([f"gristmill run, per-document stages, {n} cores", best_ray["shards"], best_ray["docs"],
                 best_ray["seconds"], f"{rate(best_ray):.1f}", f"{rate(best_ray) / n:.1f}", f"{report['share_fastest']:.2f}"])
    whole = report["ray_whole_config"]
    rows.append([f"gristmill run, whole config (dedup, tokenize), {n} cores", whole["shards"], whole["docs"],
                 whole["seconds"], f"{rate(whole):.1f}", f"{rate(whole) / n:.1f}", f"{rate(whole) / (n * rate(best_one)):.2f}"])
    write_json(args.out, report)
    print(markdown_table(["", "shards", "docs", "s", "docs/s", "docs/s/core", f"÷ ({n} × in-process)"], rows))
    print("per round (Ray ÷ n × in-process of the same round): " + ", ".join(str(r["share"]) for r in rounds))
    for label, r in report["sample_run"].items():
        print(f"sample run, {label}: {r['seconds']} s wall ({r['shards']} shards, {r['docs']} docs)")
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
