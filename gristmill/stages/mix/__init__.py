"""Mixture sampling: finished runs → shuffled train and per-source validation token shards in
exact token proportions, and `mix.json` describing them. Three task steps, each resumable:

1. scan (per input part)    source, split, sample key per document; histograms  select.py
   hold-out (per input part, only when a source is short of min_validation_docs)  select.py
2. fill (per input part)    the documents that may fill a fractional epoch       select.py
3. spill (per input part)   the chosen copies, sorted by output shard           shuffle.py
4. shards (per output)      each shard gathered from every spill, in key order  shuffle.py

After 1 the driver allocates tokens to sources (refusing shares the caps push past the tolerance)
and after 2 picks the fill (allocate.py). Files under `<mix>/`: `spec.json` (what was asked; a
rerun with another spec is refused), `work/` (scan and spill files, removed at the end, and on
failure the ones this attempt wrote), `train/`, `validation/<source>/`, and `mix.json` last, with
its `warnings`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

import fsspec
import numpy as np

from gristmill.core.config import ConfigError
from gristmill.core.io import exists, is_local, read_json, write_json_atomic
from gristmill.core.version import code_version
from gristmill.stages.mix.allocate import fill, plan, share_departures
from gristmill.stages.mix.config import MixConfig
from gristmill.stages.mix.runs import Runs, check_columns, open_runs
from gristmill.stages.mix.select import (KEY_BITS, extra_validation, hold_out_part, key_bucket, scan_part,
                                         validation_wanted, window_part)
from gristmill.stages.mix.shuffle import ShardPlan, spill_part, write_shard

FORMAT = "gristmill-mix/1"
SCAN_FORMAT = 2  # what a scan file holds; part of its name
REPEATS_PAY_EPOCHS = 4  # past this, repeated tokens stop paying (Muennighoff et al. 2023)
Execute = Callable[[Callable, list[tuple], str], tuple[list, list[tuple[tuple, str]]]]


class MixFailed(RuntimeError):
    """Tasks failed; the finished output shards are kept and a rerun goes on from them."""


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
    """Build (or resume, or return the finished) mixture; returns mix.json's content. A failure
    (a refused allocation, a failed task, any error) removes the work files this attempt wrote;
    an interruption or a kill leaves them for the rerun to resume from."""
    runs = runs or prepare(mix)
    root = mix.mix_dir
    if exists(f"{root}/mix.json"):
        _remove(f"{root}/work")
        return read_json(f"{root}/mix.json")
    before, root_existed = _files(f"{root}/work"), exists(root)
    try:
        return _build(mix, execute, runs)
    except Exception:
        _remove_new(f"{root}/work", before)
        if not root_existed:
            _remove_new(root, _files(root))  # only the directory, if nothing else is left in it
        raise


def _build(mix: MixConfig, execute: Execute, runs: Runs) -> dict:
    started = time.time()
    root = mix.mix_dir
    dtype = runs.tokenizer["dtype"]
    n_src = len(mix.sources)

    scans = {ref.key: f"{root}/work/scan-{_scan_id(mix, runs)}/{ref.key}.npz" for ref in runs.parts}
    _execute(execute, scan_part, [(ref, mix, dtype, scans[ref.key]) for ref in runs.parts
                                  if not exists(scans[ref.key])], "mix scan")
    counts = np.zeros((n_src, 4), dtype=np.int64)
    tok_hist = np.zeros((n_src, 2**KEY_BITS), dtype=np.int64)
    doc_hist = np.zeros((n_src, 2**KEY_BITS), dtype=np.int64)
    unmatched = np.zeros(2, dtype=np.int64)
    low_source, low_content = [np.empty(0, np.int16)], [np.empty(0, np.uint64)]
    for path in scans.values():
        with fsspec.open(path, "rb") as f, np.load(f) as z:
            counts += z["counts"]
            unmatched += z["unmatched"]
            np.add.at(tok_hist.reshape(-1), z["cells"], z["cell_tokens"])
            np.add.at(doc_hist.reshape(-1), z["cells"], z["cell_docs"])
            low_source.append(z["low_source"])
            low_content.append(z["low_content"])
    extra = extra_validation(mix, counts, np.concatenate(low_source), np.concatenate(low_content))
    if len(extra):  # sources short of min_validation_docs: those documents leave training
        moved, _ = _execute(execute, hold_out_part, [(p, extra) for p in scans.values()], "mix hold-out")
        for source, lengths, keys in moved:
            np.add.at(counts, (source, 0), -1)
            np.add.at(counts, (source, 1), -lengths)
            np.add.at(counts, (source, 2), 1)
            np.add.at(counts, (source, 3), lengths)
            np.add.at(tok_hist, (source, key_bucket(keys)), -lengths)
            np.add.at(doc_hist, (source, key_bucket(keys)), -1)
    available = counts[:, 1].tolist()
    allocs = plan(mix, available, tok_hist, doc_hist)  # a spec the counts make impossible fails here
    windows = [a.window for a in allocs]
    found, _ = _execute(execute, window_part, [(p, windows, extra) for p in scans.values()], "mix fill")
    fill(mix, allocs, available, [(np.concatenate([f[s][0] for f in found] or [np.empty(0, np.uint64)]),
                                   np.concatenate([f[s][1] for f in found] or [np.empty(0, np.int64)]))
                                  for s in range(n_src)])
    write_json_atomic(f"{root}/spec.json", {"spec": mix.spec(), "runs": runs.identity})  # from here on, fixed

    shards = ShardPlan(train=max(1, math.ceil(sum(a.planned_tokens for a in allocs) / mix.shard_tokens)),
                     validation=tuple(math.ceil(v / mix.shard_tokens) for v in counts[:, 3]))
    spills = {ref.key: f"{root}/work/spill/{ref.key}" for ref in runs.parts}
    _execute(execute, spill_part, [(ref, scans[ref.key], mix.seed, dtype, allocs, shards, spills[ref.key],
                                    extra) for ref in runs.parts
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
    """What a scan depends on: sources' predicates, the split, the seed, the runs. A rerun with
    another budget, weights or caps after an interrupted scan reuses what it left."""
    what = [SCAN_FORMAT, [s.where and {c: v.to_dict() for c, v in s.where.items()} for s in mix.sources],
            mix.validation, mix.min_validation_docs, mix.seed, runs.identity]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def _execute(execute: Execute, fn: Callable, todo: list[tuple], desc: str) -> tuple[list, list]:
    results, failed = execute(fn, todo, desc)
    if failed:
        (args, error), more = failed[0], len(failed) - 1
        where = getattr(args[0], "key", args[0])
        raise MixFailed(f"{desc}: {where}: {error}" + (f" (and {more} more)" if more else "")
                        + "; rerun to retry (finished output shards are kept)")
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
            "validation": {"docs": int(counts[i, 2]), "tokens": int(counts[i, 3]),
                           "wanted_docs": validation_wanted(mix, int(counts[i, 0] + counts[i, 2]))},
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
        "min_validation_docs": mix.min_validation_docs,
        "max_epochs": mix.max_epochs,
        "shortfall": mix.shortfall,
        "share_tolerance": mix.share_tolerance,
        "rule": ("a document belongs to the first source whose `where` matches; a source short of its "
                 "target (cap) gives its tokens to the others in proportion to their weights, within "
                 "share_tolerance of every weight unless shortfall is redistribute"),
        "warnings": mixture_warnings(mix, sources),
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


def mixture_warnings(mix: MixConfig, sources: list[dict]) -> list[str]:
    """What a reader of the mixture must not miss: shares past the tolerance (what `shortfall:
    redistribute` allows, or whole documents cost a tiny source), sources repeated past the epochs
    that pay because they are uncapped, sources short of `min_validation_docs`."""
    out = []
    departures = share_departures([s["weight"] for s in sources], [s["realised"]["share"] for s in sources])
    off = [f"{s['name']} weight {s['weight']:.3f} → share {s['realised']['share']:.3f}"
           + (f" (capped at {s['max_epochs']:g} epochs)" if s["short_by_tokens"] else "")
           for s, d in zip(sources, departures) if d > mix.share_tolerance]
    if off:
        out.append(f"shares depart from their weights by more than share_tolerance {mix.share_tolerance:g} "
                   f"(shortfall: {mix.shortfall}): " + "; ".join(off))
    for s in sources:
        if s["max_epochs"] is None and s["epochs"] > REPEATS_PAY_EPOCHS:
            out.append(f"{s['name']} is repeated {s['epochs']:,.1f} epochs (max_epochs: null); past about "
                       f"{REPEATS_PAY_EPOCHS} epochs repeated tokens stop paying")
    for s in sources:
        v, docs = s["validation"], s["validation"]["docs"] + s["available"]["docs"]
        if mix.validation > 0 and v["docs"] < mix.min_validation_docs:
            out.append(f"{s['name']}: {v['docs']} of {docs:,} documents held out for validation, fewer than "
                       f"min_validation_docs {mix.min_validation_docs} (a validation share of "
                       f"{mix.validation:g} allows {v['wanted_docs']}); its validation loss is "
                       + ("not measured" if v["docs"] == 0 else "noisy"))
    return out


def _remove(path: str) -> None:
    fs, p = fsspec.core.url_to_fs(path)
    if fs.exists(p):
        fs.rm(p, recursive=True)


def _files(path: str) -> set[str]:
    fs, p = fsspec.core.url_to_fs(path)
    return set(fs.find(p))


def _remove_new(path: str, before: set[str]) -> None:
    """Remove the files under `path` that are not in `before`, then the directories left empty
    (on a local disk; an object store has none)."""
    fs, p = fsspec.core.url_to_fs(path)
    with contextlib.suppress(OSError):
        for f in set(fs.find(p)) - before:
            fs.rm_file(f)
        if is_local(fs):
            found = fs.find(p, withdirs=True, detail=True)
            dirs = [d for d, info in found.items() if info["type"] == "directory"]
            for d in sorted(dirs, key=len, reverse=True) + [p]:
                if fs.isdir(d) and not fs.ls(d):
                    fs.rmdir(d)

