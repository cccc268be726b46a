"""Mixture sampling: finished runs → shuffled train and per-source validation token shards in
exact token proportions, and `mix.json` describing them. Three task steps, each resumable:

1. scan (per input part)    source, split, sample key per document; histograms  select.py
2. fill (per input part)    the documents that may fill a fractional epoch       select.py
3. spill (per input part)   the chosen copies, sorted by output shard           shuffle.py
4. shards (per output)      each shard gathered from every spill, in key order  shuffle.py

After 1 and 2 the driver allocates tokens to sources and picks the fill (allocate.py). Files under `<mix>/`:
`spec.json` (what was asked; a rerun with another spec is refused), `work/` (scan and spill files,
removed at the end), `train/`, `validation/<source>/`, and `mix.json` last.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

import fsspec
import numpy as np

from pipeline.config import ConfigError
from pipeline.mix_config import MixConfig
from pipeline.version import code_version
from stages.mix.allocate import fill, plan
from stages.mix.runs import Runs, check_columns, open_runs
from stages.mix.select import KEY_BITS, scan_part, window_part
from stages.mix.shuffle import ShardPlan, spill_part, write_shard
from stages.write import exists, read_json, write_json_atomic

FORMAT = "gristmill-mix/1"
Execute = Callable[[Callable, list[tuple], str], tuple[list, list[tuple[tuple, str]]]]


class MixFailed(RuntimeError):
    """Tasks failed; finished ones are kept and a rerun resumes."""


def prepare(mix: MixConfig, finishing: str | None = None) -> Runs:
    """Everything checkable before any work: runs, tokenizer, columns; the spec matches a
    previous attempt in the same directory. `finishing`: a run whose last step this mixture is."""
    runs = open_runs(mix, finishing)
    check_columns(mix, runs.columns)
    spec_path = f"{mix.mix_dir}/spec.json"
    spec = {"spec": mix.spec(), "runs": runs.identity}
    if exists(spec_path) and read_json(spec_path) != spec:
        raise ConfigError(f"{mix.mix_dir} holds a mixture made from another spec or other runs; "
                          "set another mixture.name (or delete that directory) to start afresh")
    return runs


def build_mixture(mix: MixConfig, execute: Execute, runs: Runs | None = None) -> dict:
    """Build (or resume, or return the finished) mixture; returns mix.json's content."""
    started = time.time()
    runs = runs or prepare(mix)
    root = mix.mix_dir
    if exists(f"{root}/mix.json"):
        _remove(f"{root}/work")
        return read_json(f"{root}/mix.json")
    dtype = runs.tokenizer["dtype"]
    n_src = len(mix.sources)

    scans = {ref.key: f"{root}/work/scan-{_scan_id(mix, runs)}/{ref.key}.npz" for ref in runs.parts}
    _execute(execute, scan_part, [(ref, mix, dtype, scans[ref.key]) for ref in runs.parts
                                  if not exists(scans[ref.key])], "mix scan")
    counts = np.zeros((n_src, 4), dtype=np.int64)
    tok_hist = np.zeros((n_src, 2**KEY_BITS), dtype=np.int64)
    doc_hist = np.zeros((n_src, 2**KEY_BITS), dtype=np.int64)
    unmatched = np.zeros(2, dtype=np.int64)
    for path in scans.values():
        with fsspec.open(path, "rb") as f, np.load(f) as z:
            counts += z["counts"]
            unmatched += z["unmatched"]
            np.add.at(tok_hist.reshape(-1), z["cells"], z["cell_tokens"])
            np.add.at(doc_hist.reshape(-1), z["cells"], z["cell_docs"])
    available = counts[:, 1].tolist()
    allocs = plan(mix, available, tok_hist, doc_hist)  # a spec the counts make impossible fails here
    windows = [a.window for a in allocs]
    found, _ = _execute(execute, window_part, [(p, windows) for p in scans.values()], "mix fill")
    fill(mix, allocs, available, [(np.concatenate([f[s][0] for f in found] or [np.empty(0, np.uint64)]),
                                   np.concatenate([f[s][1] for f in found] or [np.empty(0, np.int64)]))
                                  for s in range(n_src)])
    write_json_atomic(f"{root}/spec.json", {"spec": mix.spec(), "runs": runs.identity})  # from here on, fixed

    shards = ShardPlan(train=max(1, math.ceil(sum(a.planned_tokens for a in allocs) / mix.shard_tokens)),
                     validation=tuple(math.ceil(v / mix.shard_tokens) for v in counts[:, 3]))
    spills = {ref.key: f"{root}/work/spill/{ref.key}" for ref in runs.parts}
    _execute(execute, spill_part, [(ref, scans[ref.key], mix.seed, dtype, allocs, shards, spills[ref.key])
                                   for ref in runs.parts
                                   if not exists(spills[ref.key] + ".json")], "mix spill")
    spilled = [read_json(p + ".json") for p in spills.values()]

    names = [s.name for s in mix.sources]
    shard_meta = {"format": FORMAT, "dtype": dtype, "eos_id": runs.tokenizer["eos_id"],
                  "vocab_size": runs.tokenizer["vocab_size"], "tokenizer_sha256": runs.tokenizer["sha256"],
                  "sources": names, "n_sources": n_src}
    todo = []
    for o in range(shards.total):
        prefix = f"{root}/{shards.prefix(o, names)}"
        if exists(prefix + ".json"):
            continue
        ranges = [(spills[m["part"]], m["docs"][o], m["docs"][o + 1], m["tokens"][o], m["tokens"][o + 1])
                  for m in spilled if m["docs"][o + 1] > m["docs"][o]]
        todo.append((prefix, ranges, dtype, shard_meta))
    _execute(execute, write_shard, todo, "mix shards")

    realised = np.sum([m["per_source"] for m in spilled], axis=0) if spilled else np.zeros((n_src, 4), np.int64)
    manifest = _describe(mix, runs, shards, counts, unmatched, allocs, realised, names)
    manifest["seconds"] = round(time.time() - started, 2)
    write_json_atomic(f"{root}/mix.json", manifest)
    _remove(f"{root}/work")
    return manifest


def _scan_id(mix: MixConfig, runs: Runs) -> str:
    """What a scan depends on: sources' predicates, the split, the seed, the runs. A spec fixed
    after a failed allocation (budget, weights, caps) reuses its scan."""
    what = [[s.where and {c: v.to_dict() for c, v in s.where.items()} for s in mix.sources],
            mix.validation, mix.seed, runs.identity]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def _execute(execute: Execute, fn: Callable, todo: list[tuple], desc: str) -> tuple[list, list]:
    results, failed = execute(fn, todo, desc)
    if failed:
        (args, error), more = failed[0], len(failed) - 1
        where = getattr(args[0], "key", args[0])
        raise MixFailed(f"{desc}: {where}: {error}" + (f" (and {more} more)" if more else "")
                        + "; finished tasks are kept, rerun to resume")
    return results, failed


def _describe(mix: MixConfig, runs: Runs, shards: ShardPlan, counts: np.ndarray, unmatched: np.ndarray,
              allocs: list, realised: np.ndarray, names: list[str]) -> dict:
    train_tokens = int(realised[:, 1].sum())
    root = mix.mix_dir
    metas = [read_json(f"{root}/{shards.prefix(o, names)}.json") for o in range(shards.total)]
    sources = []
    for i, (src, a) in enumerate(zip(mix.sources, allocs)):
        avail = int(counts[i, 1])
        sources.append({
            "id": i, "name": src.name, "where": {c: cond.to_dict() for c, cond in src.where.items()},
            "weight": src.weight / sum(s.weight for s in mix.sources), "max_epochs": src.max_epochs,
            "available": {"docs": int(counts[i, 0]), "tokens": avail},
            "target_tokens": round(a.target), "allocated_tokens": round(a.tokens),
            "short_by_tokens": round(a.short_by),
            "realised": {"docs": int(realised[i, 0]), "tokens": int(realised[i, 1]),
                         "share": realised[i, 1] / train_tokens if train_tokens else 0.0},
            "epochs": realised[i, 1] / avail if avail else 0.0,
            "validation": {"docs": int(counts[i, 2]), "tokens": int(counts[i, 3])},
        })
    def listing(lo: int, hi: int) -> list[dict]:
        return [{"path": shards.prefix(o, names), "docs": metas[o]["n_docs"], "tokens": metas[o]["n_tokens"]}
                for o in range(lo, hi)]
    base = shards.validation_base()
    return {
        "format": FORMAT,
        "name": mix.name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "seed": mix.seed,
        "budget": mix.budget,
        "validation_share": mix.validation,
        "shortfall": mix.shortfall,
        "rule": ("a document belongs to the first source whose `where` matches; a source short of its "
                 "target (cap) gives its tokens to the others in proportion to their weights"),
        "tokenizer": runs.tokenizer,
        "dtype": runs.tokenizer["dtype"],
        "eos_id": runs.tokenizer["eos_id"],
        "runs": [{**i, **m} for i, m in zip(runs.identity, runs.manifests)],
        "sources": sources,
        "unmatched": {"docs": int(unmatched[0]), "tokens": int(unmatched[1])},
        "train": {"docs": int(realised[:, 0].sum()), "tokens": train_tokens, "shards": listing(0, shards.train)},
        "validation": {src.name: {"docs": int(counts[i, 2]), "tokens": int(counts[i, 3]),
                                  "shards": listing(int(base[i]), int(base[i]) + shards.validation[i])}
                       for i, src in enumerate(mix.sources)},
        "allocation": [a.describe() for a in allocs],
    }


def _remove(path: str) -> None:
    fs, p = fsspec.core.url_to_fs(path)
    if fs.exists(p):
        fs.rm(p, recursive=True)

