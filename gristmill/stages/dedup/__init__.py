"""Exact and MinHash near-duplicate removal over a whole run, as Ray tasks in four steps:

1. signatures (per part)           stages/dedup/signatures.py
2. buckets (per band, hash range)  stages/dedup/buckets.py
3. connected components (rounds)   stages/dedup/components.py
4. remove (per part)               stages/dedup/remove.py

Every task writes its outputs atomically and then a marker; a rerun skips the tasks whose marker
exists, so a killed run resumes where it stopped and ends with the same result. Files: layout.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict

import fsspec

from gristmill.core.config import ConfigError
from gristmill.core.io import exists, read_json, write_json_atomic
from gristmill.core.layout import docs_path, part_name, rejects_path
from gristmill.core.stats import StageStats
from gristmill.stages.base import Execute, RunContext
from gristmill.stages.dedup import records
from gristmill.stages.dedup.buckets import Source, bucket_task
from gristmill.stages.dedup.components import collect_task, round_task
from gristmill.stages.dedup.config import DedupConfig
from gristmill.stages.dedup.layout import Layout, families
from gristmill.stages.dedup.minhash import NORMALISATION, LshParams
from gristmill.stages.dedup.remove import remove_task
from gristmill.stages.dedup.signatures import sign_part

MAX_ROUNDS = 64
SORT_COPIES = 4  # a task holds about this many copies of its records while sorting


def lsh_params(cfg: DedupConfig) -> LshParams | None:
    m = cfg.minhash
    if m is None:
        return None
    return LshParams.choose(m.threshold, m.num_perm, m.seed, m.ngram, tuple(m.weights), m.bands, m.rows)


def index_params(cfg: DedupConfig) -> dict:
    """What makes two runs' indexes comparable (an earlier run in `against` must match)."""
    lsh = lsh_params(cfg)
    return {"normalisation": NORMALISATION, "exact": cfg.exact, "lsh": asdict(lsh) if lsh else None}


def plan(records_per_family: int, n_families: int, memory_mb: int) -> dict:
    """Hash ranges per band and graph partitions, so that a task's records fit `memory_mb`.
    Edges are bounded by one per document and family (each document joins one bucket each)."""
    budget = memory_mb * 2**20
    ranges = math.ceil(records_per_family * records.BAND.itemsize * SORT_COPIES / budget)
    edges = 2 * records_per_family * n_families  # both directions
    partitions = math.ceil(edges * records.EDGE.itemsize * SORT_COPIES / budget)
    return {"ranges": max(ranges, 1), "partitions": max(partitions, 1)}


def earlier_runs(against: list[str], params: dict) -> list[Source]:
    sources = []
    for i, run_dir in enumerate(against, start=1):
        lay = Layout(run_dir)
        if not exists(lay.params):
            raise ConfigError(f"stages.dedup.against.{i - 1}: {run_dir} has no dedup index ({lay.params})")
        theirs = read_json(lay.params)
        if (theirs["normalisation"], theirs["lsh"]) != (params["normalisation"], params["lsh"]):
            raise ConfigError(f"stages.dedup.against.{i - 1}: {run_dir} was indexed with other MinHash "
                              f"parameters ({theirs['lsh']}, not {params['lsh']})")
        fs, root = fsspec.core.url_to_fs(f"{lay.root}/index/done")
        parts = tuple(sorted(int(p.rsplit("part-", 1)[1][:5]) for p in fs.glob(f"{root}/part-*.json")))
        lsh = theirs["lsh"]
        sources.append(Source(run_dir, i, parts, tuple(families(lsh["bands"] if lsh else 0, theirs["exact"]))))
    return sources


def run_stage(ctx: RunContext) -> list[dict]:
    """The dedup stage over the whole run (the registry's builder); returns its failures."""
    stats, failures = run_dedup(ctx, [s.index for s in ctx.shards], ctx.execute)
    ctx.stats.stages["dedup"] = stats
    ctx.outputs["dedup"] = f"{ctx.run_dir}/dedup"
    return failures


def run_dedup(cfg: RunContext, parts: list[int], execute: Execute) -> tuple[StageStats, list[dict]]:
    """Run (or resume) dedup over the run's parts (`cfg`: the run config, or a RunContext: its
    `run_dir` and `stages`); (its stats, failures)."""
    dcfg, run_dir = cfg.stages.dedup, cfg.run_dir
    lay = Layout(run_dir)
    if exists(lay.done):
        return StageStats.from_dict(read_json(lay.done)), []
    lsh = lsh_params(dcfg)
    params = index_params(dcfg)
    if not exists(lay.params):
        write_json_atomic(lay.params, params)
    fams = families(lsh.bands if lsh else 0, dcfg.exact)
    sources = [Source(run_dir, 0, tuple(parts), tuple(fams)), *earlier_runs(dcfg.against, params)]
    keep = [k.model_dump() for k in dcfg.keep]

    todo = [(run_dir, p, lsh, dcfg.exact, keep) for p in parts if not exists(lay.signed(p))]
    if failed := execute(sign_part, todo, "dedup signatures")[1]:
        return StageStats(), _failures("dedup_signatures", failed)
    signed = [read_json(lay.signed(p)) for p in parts]
    total = sum(m["records"] for m in signed)
    for src in sources[1:]:
        total += sum(read_json(Layout(src.run_dir).signed(p))["records"] for p in src.parts)
    if not exists(lay.plan):
        write_json_atomic(lay.plan, plan(total, len(fams), dcfg.task_memory_mb))
    split = read_json(lay.plan)
    ranges, partitions = split["ranges"], split["partitions"]

    bounds = [r * 2**64 // ranges for r in range(ranges)] + [None]
    tasks = [(run_dir, sources, fam, bounds[r], bounds[r + 1], partitions, f"{fam}-r{r:04d}")
             for fam in fams for r in range(ranges)]
    todo = [t for t in tasks if not exists(lay.round_done(0, t[-1]))]
    if failed := execute(bucket_task, todo, "dedup buckets")[1]:
        return StageStats(), _failures("dedup_buckets", failed)
    buckets = [read_json(lay.round_done(0, t[-1])) for t in tasks]

    k = 1
    while True:
        todo = [(run_dir, k, p, partitions) for p in range(partitions) if not exists(lay.round_done(k, f"p{p:04d}"))]
        kind = "large" if k % 2 else "small"
        if failed := execute(round_task, todo, f"dedup {kind}-star {k}")[1]:
            return StageStats(), _failures(f"dedup_round_{k}", failed)
        if k % 2:
            final = [read_json(lay.round_done(k, f"p{p:04d}")) for p in range(partitions)]
            if sum(s["not_star"] for s in final) == 0:
                break
        k += 1
        if k > MAX_ROUNDS:
            raise RuntimeError(f"connected components did not converge in {MAX_ROUNDS} rounds")

    todo = [(run_dir, k, p) for p in range(partitions) if not exists(lay.drops_done(p))]
    if failed := execute(collect_task, todo, "dedup collect")[1]:
        return StageStats(), _failures("dedup_collect", failed)

    write = cfg.stages.write
    todo = [(run_dir, p, partitions, dcfg.against, docs_path(run_dir, part_name(p)),
             rejects_path(run_dir, f"{part_name(p)}.dedup") if write.write_rejects else None,
             write.codec) for p in parts if not exists(lay.removed(p))]
    if failed := execute(remove_task, todo, "dedup remove")[1]:
        return StageStats(), _failures("dedup_remove", failed)
    removed = [read_json(lay.removed(p)) for p in parts]
    collected = [read_json(lay.drops_done(p)) for p in range(partitions)]
    rounds = [read_json(lay.round_done(j, f"p{p:04d}")) for j in range(1, k + 1) for p in range(partitions)]

    st = StageStats()
    for m in removed:
        st.docs_in += m["docs_in"]
        st.docs_out += m["docs_out"]
        st.bytes_out += m["bytes_out"]
        st.dropped.update(m["dropped"])
        st.events["duplicate_of_earlier_run"] += m["of_earlier_runs"]
    st.bytes_in = sum(m["text_bytes"] for m in signed)
    st.events.update(
        no_words=sum(m["no_words"] for m in signed),
        bucket_edges=sum(m["edges"] for m in buckets),
        clusters=sum(s["clusters"] for s in final),
        largest_cluster=max((s["largest"] for s in final), default=0),
        cc_rounds=k,
        hash_ranges=ranges,
        graph_partitions=partitions,
    )
    st.seconds = sum(m["seconds"] for m in [*signed, *buckets, *rounds, *collected, *removed])
    write_json_atomic(lay.done, st.to_dict())
    fs, cc = fsspec.core.url_to_fs(lay.rounds)
    fs.rm(cc, recursive=True)  # the graph's edge lists: as big as the edges, and no longer needed
    return st, []


def _failures(step: str, failed: list[tuple[tuple, str]]) -> list[dict]:
    """As the runner reports them: the part for per-part steps (whose second argument it is)."""
    per_part = step in ("dedup_signatures", "dedup_remove")
    return [{"stage": step, "part": a[1] if per_part else None, "input": repr(a[1:4]), "error": err}
            for a, err in failed]


def run_in_process(fn: Callable, args: list[tuple], desc: str) -> tuple[list, list[tuple[tuple, str]]]:
    """An `Execute` without Ray: the tasks one after another (tests, benchmarks, debugging)."""
    return [fn(*a) for a in args], []
