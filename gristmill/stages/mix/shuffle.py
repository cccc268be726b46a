"""The two passes that write a mixture with bounded memory, as a map-reduce shuffle.

1. `spill_part` (per input part, from its scan): the part's chosen copies of documents, each with a seeded order
   key that names its output shard; written sorted by (shard, key) to `spill/<part>.{bin,meta}`
   with the offsets of each shard's range in `spill/<part>.json` (written last: the marker).
2. `write_shard` (per output shard): that shard's range from every spill file, ordered by key,
   written as a token shard. Memory: one output shard.

Nothing depends on how tasks are scheduled, so outputs are the same byte for byte whatever the
number of workers. Output shard files: `.bin` tokens, `.idx` int64 offsets (n_docs + 1), `.src`
uint16 source id per document, `.origin` int32 (run, part, row) per document, `.json` last.
"""

from __future__ import annotations

from dataclasses import dataclass

import fsspec
import numpy as np

from gristmill.core.data import read_tokens
from gristmill.core.io import open_atomic, read_parquet, write_json_atomic
from gristmill.stages.mix.allocate import Allocation
from gristmill.stages.mix.runs import PartRef
from gristmill.stages.mix.select import UNMATCHED, held_out, key_bucket, order_keys

RECORD = np.dtype([("key", "<u8"), ("length", "<i8"), ("source", "<i2"), ("run", "<i4"), ("part", "<i4"),
                   ("row", "<i8")])
ORIGIN = np.dtype([("run", "<i4"), ("part", "<i4"), ("row", "<i4")])
CHUNK_DOCS = 4096  # documents gathered at a time while writing


@dataclass(frozen=True)
class ShardPlan:
    """The output shards: `train` ones first, then each source's validation ones."""

    train: int
    validation: tuple[int, ...]  # per source

    @property
    def total(self) -> int:
        return self.train + sum(self.validation)

    def validation_base(self) -> np.ndarray:
        return self.train + np.concatenate([[0], np.cumsum(self.validation)[:-1]]).astype(np.int64)

    def prefix(self, index: int, names: list[str]) -> str:
        if index < self.train:
            return f"train/shard-{index:05d}"
        base = self.validation_base()
        s = int(np.searchsorted(base, index, side="right")) - 1
        return f"validation/{names[s]}/shard-{index - base[s]:05d}"


def spill_part(ref: PartRef, scan: str, seed: int, dtype: str, allocs: list[Allocation], plan: ShardPlan,
               out: str, extra_validation: np.ndarray) -> dict:
    """Write the part's chosen copies (see the module doc), from its scan's decisions (and the
    content hashes held out beyond the validation share)."""
    with fsspec.open(scan, "rb") as f, np.load(f) as z:
        d = {k: z[k] for k in ("source", "validation", "keys", "lengths", "content")}
    d["tokens"], d["offsets"], _ = read_tokens(ref.tokens, dtype)
    ids = read_parquet(ref.docs, ["id"])["id"].to_pylist()
    src = d["source"]
    val = held_out(src, d["validation"], d["content"], extra_validation)
    full = np.array([a.full_epochs for a in allocs] + [0], dtype=np.int64)
    cut = np.array([a.cut_bucket for a in allocs] + [0], dtype=np.int64)
    s_idx = np.where(src == UNMATCHED, len(allocs), src).astype(np.int64)
    last = key_bucket(d["keys"]) < cut[s_idx]
    for s, a in enumerate(allocs):
        last |= (s_idx == s) & np.isin(d["keys"], a.fill_keys)
    copies = np.where(val, 1, full[s_idx] + last)
    copies[src == UNMATCHED] = 0
    rows = np.repeat(np.arange(len(copies)), copies)
    copy_no = np.arange(len(rows)) - np.repeat(np.cumsum(copies) - copies, copies)
    keys = order_keys([ids[r] for r in rows], copy_no, seed)
    spread = keys >> np.uint64(32)
    row_src = s_idx[rows]
    n_val = np.maximum(np.array(plan.validation, dtype=np.uint64), 1)
    out_shard = np.where(val[rows],
                         plan.validation_base()[np.minimum(row_src, len(allocs) - 1)]
                         + (spread % n_val[np.minimum(row_src, len(allocs) - 1)]).astype(np.int64),
                         (spread % np.uint64(plan.train)).astype(np.int64))
    order = np.lexsort((rows, keys, out_shard))
    rows, keys, out_shard = rows[order], keys[order], out_shard[order]
    rec = np.empty(len(rows), RECORD)
    rec["key"], rec["length"], rec["source"] = keys, d["lengths"][rows], src[rows]
    rec["run"], rec["part"], rec["row"] = ref.run, ref.part, rows
    tok_ends = np.cumsum(rec["length"])
    doc_bounds = np.searchsorted(out_shard, np.arange(plan.total + 1))
    tok_bounds = np.concatenate([[0], tok_ends])[doc_bounds]
    tokens, offsets = d["tokens"], d["offsets"]
    with open_atomic(out + ".bin") as f:
        for i in range(0, len(rows), CHUNK_DOCS):
            chunk = rows[i:i + CHUNK_DOCS]
            if len(chunk):
                f.write(np.concatenate([tokens[offsets[r]:offsets[r + 1]] for r in chunk]).tobytes())
    with open_atomic(out + ".meta") as f:
        f.write(rec.tobytes())
    train = ~val[rows]
    per_source = np.zeros((len(allocs), 4), dtype=np.int64)  # train docs, tokens; validation docs, tokens
    for s in range(len(allocs)):
        mine = rec["source"] == s
        per_source[s] = [(mine & train).sum(), rec["length"][mine & train].sum(),
                         (mine & ~train).sum(), rec["length"][mine & ~train].sum()]
    meta = {"part": ref.key, "docs": doc_bounds.tolist(), "tokens": tok_bounds.tolist(),
            "per_source": per_source.tolist()}
    write_json_atomic(out + ".json", meta)
    return meta


def _read_range(path: str, start: int, stop: int, dtype: np.dtype) -> np.ndarray:
    with fsspec.open(path, "rb") as f:
        f.seek(start * dtype.itemsize)
        return np.frombuffer(f.read((stop - start) * dtype.itemsize), dtype=dtype)


def write_shard(prefix: str, ranges: list[tuple[str, int, int, int, int]], dtype: str, meta: dict) -> dict:
    """Gather one output shard from its spill ranges [(spill prefix, doc start, stop, token start,
    stop)], order its documents by key (then run, part, row), write it; returns its metadata."""
    tdtype = np.dtype(dtype)
    recs, toks = [], []
    for spill, d0, d1, t0, t1 in ranges:
        recs.append(_read_range(spill + ".meta", d0, d1, RECORD))
        toks.append(_read_range(spill + ".bin", t0, t1, tdtype))
    rec = np.concatenate(recs) if recs else np.empty(0, RECORD)
    tokens = np.concatenate(toks) if toks else np.empty(0, tdtype)
    starts = np.concatenate([[0], np.cumsum(rec["length"])[:-1]]).astype(np.int64)
    order = np.lexsort((rec["row"], rec["part"], rec["run"], rec["key"]))
    rec, starts = rec[order], starts[order]
    offsets = np.concatenate([[0], np.cumsum(rec["length"])]).astype(np.int64)
    with open_atomic(prefix + ".bin") as f:
        for i in range(0, len(rec), CHUNK_DOCS):
            sl = slice(i, i + CHUNK_DOCS)
            f.write(np.concatenate([tokens[s:s + n] for s, n in zip(starts[sl], rec["length"][sl])]
                                   or [np.empty(0, tdtype)]).tobytes())
    with open_atomic(prefix + ".idx") as f:
        f.write(offsets.tobytes())
    with open_atomic(prefix + ".src") as f:
        f.write(rec["source"].astype("<u2").tobytes())
    origin = np.empty(len(rec), ORIGIN)
    origin["run"], origin["part"], origin["row"] = rec["run"], rec["part"], rec["row"]
    with open_atomic(prefix + ".origin") as f:
        f.write(origin.tobytes())
    out = {**meta, "n_docs": int(len(rec)), "n_tokens": int(offsets[-1]),
           "docs_per_source": np.bincount(rec["source"], minlength=meta["n_sources"]).tolist(),
           "tokens_per_source": np.bincount(rec["source"], weights=rec["length"],
                                            minlength=meta["n_sources"]).astype(np.int64).tolist()}
    write_json_atomic(prefix + ".json", out)
    return out

