"""Step 3: connected components of the duplicate graph, in bounded memory per task.

The large-star / small-star algorithm of Kiveris et al. ("Connected Components in MapReduce and
Beyond", SoCC 2014), over edge lists split into `partitions` by a hash of the node. Nodes are
ordered by (priority, key), so each component converges to a star around its best document —
the one the keep rule keeps — and every other node ends with one edge to it.

- large-star, per node x with neighbours N(x): m = min(x ∪ N(x)); each neighbour y > x gets the
  edge y → m. Its input holds every edge in both directions, grouped by source node.
- small-star, per node u with only its smaller neighbours: m = min N(u); every such neighbour
  v ≠ m gets v → m, and u gets u → m.

Rounds alternate until a large-star round finds its input already a forest of stars: no node
with a smaller neighbour has more than one neighbour. That round's output is the answer.

Memory: one partition's edges, plus the neighbours of a single node (a cluster's size).
"""

from __future__ import annotations

import time

import fsspec
import numpy as np

from gristmill.core.io import write_json_atomic
from gristmill.stages.dedup import records
from gristmill.stages.dedup.buckets import both_ways
from gristmill.stages.dedup.layout import Layout


def read_partition(round_dir: str, p: int) -> np.ndarray:
    fs, root = fsspec.core.url_to_fs(round_dir)
    paths = sorted(path for path in fs.glob(f"{root}/*-to-{p:04d}.bin")
                   if not path.rpartition("/")[2].startswith(".tmp-"))  # a killed task's leftovers
    chunks = [np.frombuffer(fs.cat_file(path), records.EDGE) for path in paths]
    return np.concatenate(chunks) if chunks else np.zeros(0, records.EDGE)


def grouped(edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges sorted by source node, then neighbour order (priority, key), duplicates removed;
    and the flag of each group's first row (which holds the smallest neighbour)."""
    edges = edges[np.lexsort((edges["mk"], edges["mp"], edges["vk"]))]
    if len(edges):
        same = (edges["vk"][1:] == edges["vk"][:-1]) & (edges["mk"][1:] == edges["mk"][:-1])
        edges = edges[np.concatenate([[True], ~same])]
    first = np.concatenate([[True], edges["vk"][1:] != edges["vk"][:-1]]) if len(edges) else np.zeros(0, bool)
    return edges, first


def edges_to(src_k, src_p, dst_k, dst_p) -> np.ndarray:
    out = np.empty(len(src_k), records.EDGE)
    out["vk"], out["vp"], out["mk"], out["mp"] = src_k, src_p, dst_k, dst_p
    return out


def large_star(edges: np.ndarray) -> tuple[np.ndarray, dict]:
    edges, first = grouped(edges)
    group = np.cumsum(first) - 1
    xk, xp = edges["vk"][first], edges["vp"][first]
    nk, np_ = edges["mk"][first], edges["mp"][first]  # smallest neighbour
    local_min = records.less(xp, xk, np_, nk)
    mk, mp = np.where(local_min, xk, nk), np.where(local_min, xp, np_)
    degree = np.diff(np.append(np.flatnonzero(first), len(edges)))
    larger = records.less(edges["vp"], edges["vk"], edges["mp"], edges["mk"])  # neighbour y > x
    out = edges_to(edges["mk"][larger], edges["mp"][larger], mk[group][larger], mp[group][larger])
    stats = {
        "edges_in": len(edges),
        "edges_out": len(out),
        "not_star": int((~local_min & (degree > 1)).sum()),
        "clusters": int((local_min & (degree > 0)).sum()),
        "largest": int(degree[local_min].max() + 1) if local_min.any() else 0,
    }
    return out, stats


def small_star(edges: np.ndarray) -> tuple[np.ndarray, dict]:
    edges, first = grouped(edges)
    group = np.cumsum(first) - 1
    mk, mp = edges["mk"][first], edges["mp"][first]  # each node's smallest neighbour
    rest = ~first
    out = np.concatenate([
        edges_to(edges["mk"][rest], edges["mp"][rest], mk[group][rest], mp[group][rest]),
        edges_to(edges["vk"][first], edges["vp"][first], mk, mp),
    ])
    return out, {"edges_in": len(edges), "edges_out": len(out)}


def round_task(run_dir: str, k: int, p: int, partitions: int) -> dict:
    """Round k (odd: large-star, even: small-star) for partition p: reads round k-1's edges to p,
    writes round k's edges, routed for the next round."""
    t0 = time.perf_counter()
    lay = Layout(run_dir)
    edges = read_partition(lay.round_dir(k - 1), p)
    task = f"p{p:04d}"
    if k % 2:
        out, stats = large_star(edges)  # next: small-star, grouped by the larger node (out.vk)
        routed = out
    else:
        out, stats = small_star(edges)  # next: large-star, both directions
        routed = both_ways(out)
    records.write_partitioned(f"{lay.round_dir(k)}/{task}", routed, routed["vk"], partitions)
    stats.update(task=task, seconds=round(time.perf_counter() - t0, 4))
    write_json_atomic(lay.round_done(k, task), stats)
    return stats


def collect_task(run_dir: str, k: int, p: int) -> dict:
    """From the final large-star round k: this run's duplicates in partition p, sorted by key, and
    how many of them each kept document of this run has."""
    t0 = time.perf_counter()
    lay = Layout(run_dir)
    edges, _ = grouped(read_partition(lay.round_dir(k), p))
    drops = edges[records.key_origin(edges["vk"]) == 0]  # earlier runs' documents are never dropped
    records.write(lay.drops(p), drops)  # already sorted by vk
    keys, copies = np.unique(drops["mk"][records.key_origin(drops["mk"]) == 0], return_counts=True)
    kept = np.empty(len(keys), records.KEPT)
    kept["key"], kept["copies"] = keys, copies
    records.write(lay.kept(p), kept)  # sorted by key
    marker = {"partition": p, "drops": len(drops), "seconds": round(time.perf_counter() - t0, 4)}
    write_json_atomic(lay.drops_done(p), marker)
    return marker
