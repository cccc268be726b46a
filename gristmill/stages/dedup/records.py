"""Fixed-width binary record files: the dedup index and the edge lists between dedup steps.

A file is a packed numpy structured array, little-endian, no header. Files sorted by their first
field can be read by key range with a binary search of seeks, so a task reads only its slice
(through fsspec: local disk or object store alike).

Document keys: `origin << 56 | part << 32 | row`; origin 0 is this run, origin i the i-th run of
`against`. Priorities (see `priority`) order documents within a duplicate cluster: the smallest
(priority, key) is the document kept.
"""

from __future__ import annotations

import bisect

import fsspec
import numpy as np

from gristmill.core.io import open_atomic
from gristmill.stages.dedup.minhash import fmix64

BAND = np.dtype([("hash", "<u8"), ("prio", "<u8"), ("key", "<u8")])  # one document in one band
EDGE = np.dtype([("vk", "<u8"), ("vp", "<u8"), ("mk", "<u8"), ("mp", "<u8")])  # v → m, m better
KEPT = np.dtype([("key", "<u8"), ("copies", "<u8")])  # a kept document, and duplicates dropped for it
ORIGIN_SHIFT = np.uint64(56)
PART_SHIFT = np.uint64(32)


def doc_key(part: int, rows: np.ndarray, origin: int = 0) -> np.ndarray:
    return (np.uint64(origin) << ORIGIN_SHIFT) | (np.uint64(part) << PART_SHIFT) | rows.astype(np.uint64)


def key_origin(keys: np.ndarray) -> np.ndarray:
    return keys >> ORIGIN_SHIFT


def key_part(keys: np.ndarray) -> np.ndarray:
    return (keys >> PART_SHIFT) & np.uint64(0xFFFFFF)


def key_row(keys: np.ndarray) -> np.ndarray:
    return keys & np.uint64(0xFFFFFFFF)


def part_range(part: int) -> tuple[int, int]:
    """The keys of this run's documents in one part: [lo, hi)."""
    return part << 32, (part + 1) << 32


def write(path: str, records: np.ndarray) -> None:
    with open_atomic(path) as f:
        f.write(records.tobytes())


def read(path: str, dtype: np.dtype) -> np.ndarray:
    with fsspec.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype).copy()


def read_range(path: str, dtype: np.dtype, lo: int, hi: int | None) -> np.ndarray:
    """Records with lo <= first field < hi (None: no upper bound) of a file sorted by it."""
    fs, p = fsspec.core.url_to_fs(path)
    n = fs.size(p) // dtype.itemsize
    with fs.open(p, "rb", block_size=1 << 16) as f:
        def first_field(i: int) -> int:
            f.seek(i * dtype.itemsize)
            return int.from_bytes(f.read(8), "little")

        start = bisect.bisect_left(range(n), lo, key=first_field) if lo > 0 else 0
        end = n if hi is None else bisect.bisect_left(range(start, n), hi, key=first_field) + start
        f.seek(start * dtype.itemsize)
        return np.frombuffer(f.read((end - start) * dtype.itemsize), dtype).copy()


def less(ap: np.ndarray, ak: np.ndarray, bp: np.ndarray, bk: np.ndarray) -> np.ndarray:
    """(ap, ak) < (bp, bk), element-wise, in (priority, key) order."""
    return (ap < bp) | ((ap == bp) & (ak < bk))


def partition_of(keys: np.ndarray, partitions: int) -> np.ndarray:
    return (fmix64(keys) >> np.uint64(32)) % np.uint64(partitions)


def write_partitioned(prefix: str, edges: np.ndarray, by: np.ndarray, partitions: int) -> list[int]:
    """Write `edges` into `<prefix>-to-PPPP.bin`, one file per partition of the keys `by`
    (an empty file where none go); returns the count per partition."""
    dest = partition_of(by, partitions) if partitions > 1 else np.zeros(len(by), np.uint64)
    order = np.argsort(dest, kind="stable")
    edges, dest = edges[order], dest[order]
    bounds = np.searchsorted(dest, np.arange(partitions + 1, dtype=np.uint64))
    counts = []
    for p in range(partitions):
        chunk = edges[bounds[p]:bounds[p + 1]]
        write(f"{prefix}-to-{p:04d}.bin", chunk)
        counts.append(len(chunk))
    return counts
