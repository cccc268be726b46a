"""Step 2, one task per (band, hash range): documents sharing a bucket become edges.

A task reads its hash range from every part's sorted file of its band (a binary search, then one
read), including the index of every earlier run in `against`. In each bucket the best document
(smallest priority, then key) is the hub and every other member gets an edge to it. Buckets of
earlier runs' documents only are skipped: they change nothing in this run.

Memory: one hash range of one band — the plan picks enough ranges to fit the task budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from gristmill.core.io import write_json_atomic
from gristmill.stages.dedup import records
from gristmill.stages.dedup.layout import Layout


@dataclass(frozen=True)
class Source:
    """A run whose index takes part: this one (origin 0) or an earlier one."""

    run_dir: str
    origin: int
    parts: tuple[int, ...]
    families: tuple[str, ...]


def read_bucket_range(sources: list[Source], family: str, lo: int, hi: int | None) -> np.ndarray:
    chunks = []
    for src in sources:
        if family not in src.families:
            continue
        lay = Layout(src.run_dir)
        for part in src.parts:
            rec = records.read_range(lay.band_file(family, part), records.BAND, lo, hi)
            if src.origin:
                rec["prio"] = 0
                rec["key"] |= np.uint64(src.origin) << records.ORIGIN_SHIFT
            chunks.append(rec)
    return np.concatenate(chunks) if chunks else np.zeros(0, records.BAND)


def bucket_edges(rec: np.ndarray) -> np.ndarray:
    """EDGE records member → hub for every bucket (equal hash) of more than one document."""
    if len(rec) == 0:  # an empty run, or a hash range no document fell into
        return np.zeros(0, records.EDGE)
    rec = rec[np.lexsort((rec["key"], rec["prio"], rec["hash"]))]
    h = rec["hash"]
    hub_row = np.concatenate([[True], h[1:] != h[:-1]])
    hub = np.maximum.accumulate(np.where(hub_row, np.arange(len(rec)), 0))
    member, hub = rec[~hub_row], rec[hub[~hub_row]]
    earlier = (records.key_origin(member["key"]) > 0) & (records.key_origin(hub["key"]) > 0)
    edges = np.empty(int((~earlier).sum()), records.EDGE)
    edges["vk"], edges["vp"] = member["key"][~earlier], member["prio"][~earlier]
    edges["mk"], edges["mp"] = hub["key"][~earlier], hub["prio"][~earlier]
    return edges


def both_ways(edges: np.ndarray) -> np.ndarray:
    back = np.empty_like(edges)
    back["vk"], back["vp"], back["mk"], back["mp"] = edges["mk"], edges["mp"], edges["vk"], edges["vp"]
    return np.concatenate([edges, back])


def bucket_task(run_dir: str, sources: list[Source], family: str, lo: int, hi: int | None,
                partitions: int, task: str) -> dict:
    """Write this range's edges (both directions, by source node) as round 0 of the graph."""
    t0 = time.perf_counter()
    lay = Layout(run_dir)
    rec = read_bucket_range(sources, family, lo, hi)
    edges = bucket_edges(rec)
    directed = both_ways(edges)
    records.write_partitioned(f"{lay.round_dir(0)}/{task}", directed, directed["vk"], partitions)
    marker = {"task": task, "records": len(rec), "edges": len(edges), "seconds": round(time.perf_counter() - t0, 4)}
    write_json_atomic(lay.round_done(0, task), marker)
    return marker
