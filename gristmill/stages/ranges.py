"""Record-range tasks: a big crawl file is cut at record starts so that its parts run in parallel.

A cut is the first record start at or after `k × size / n` (in a per-record gzip, a gzip member
that decompresses to a record header; in an uncompressed file, a WARC or ARC header line), so
the plan depends only on the file's bytes and `task_bytes`: a rerun plans the same ranges and
resumes task by task. A whole-file gzip has no member to cut at and stays one task.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import fsspec

from gristmill.stages.ingest import next_record_start, peek


@dataclass(frozen=True)
class ByteRange:
    start: int  # offset of the first record to read
    end: int | None  # records starting at or after this belong to the next range; None: to the end
    size: int  # bytes in the range (for scheduling: the biggest tasks go first)


def plan_ranges(path: str, task_bytes: int, size: int | None = None) -> list[ByteRange]:
    """`path` (of `size` bytes, when the listing said) as ranges of about `task_bytes` each, cut at
    record starts. A file no bigger than `task_bytes` is not opened."""
    fs, p = fsspec.core.url_to_fs(path)
    size = int(fs.size(p)) if size is None else size
    n = math.ceil(size / task_bytes)
    if n <= 1:
        return [ByteRange(0, None, size)]
    cuts = [0]
    with fs.open(p, "rb") as f:
        gzipped = peek(f, 0, 2) == b"\x1f\x8b"
        fmt = _format(f, gzipped)
        for k in range(1, n):
            at = next_record_start(f, max(k * size // n, cuts[-1] + 1), gzipped, fmt)
            if at is None:
                break
            cuts.append(at)
    ends = cuts[1:] + [None]
    return [ByteRange(s, e, (e if e is not None else size) - s) for s, e in zip(cuts, ends)]


def _format(f, gzipped: bool) -> str:
    """"warc" or "arc", from the first record's first line."""
    head = peek(f, 0, 4096)
    if gzipped:
        try:
            head = zlib.decompressobj(31).decompress(head, 16)
        except zlib.error:
            head = b""
    return "warc" if head.startswith(b"WARC/") else "arc"
