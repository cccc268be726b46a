"""Which source each document belongs to, which side of the split, and its seeded keys.

- Source: the first source whose `where` matches (documents matching none are not used).
- Split: validation when a hash of the document's *content* (its token ids) falls under the
  validation share. Content, not id: an exact copy under another id lands on the same side.
  Unsalted by the seed, so mixtures over the same runs hold out the same documents. A source the
  share leaves with fewer than `min_validation_docs` also holds out its training documents of
  lowest content hash, as many as the share of its documents allows (`extra_validation`): the
  same documents whatever the seed or the layout of parts, and their copies anywhere with them.
- Sample key: a seeded hash of the document id. Down-sampling and the fractional last epoch
  take documents in key order, so adding data later keeps earlier picks.
"""

from __future__ import annotations

import hashlib
import math

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core.data import read_tokens
from gristmill.core.io import open_atomic
from gristmill.stages.mix.config import VIRTUAL_COLUMNS, Condition, MixConfig
from gristmill.stages.mix.runs import PartRef

KEY_BITS = 18  # sample-key histogram resolution: 2^18 buckets per source
UNMATCHED = -1


def _h64(*parts: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(b"\x00".join(parts), digest_size=8).digest(), "little")


def sample_keys(ids: list[str], seed: int) -> np.ndarray:
    s = str(seed).encode()
    return np.fromiter((_h64(b"sample", s, i.encode()) for i in ids), dtype=np.uint64, count=len(ids))


def order_keys(ids: list[str], copies: np.ndarray, seed: int) -> np.ndarray:
    """Per copy of a document: which output shard (high bits) and its place in it."""
    s = str(seed).encode()
    return np.fromiter((_h64(b"order", s, i.encode(), str(c).encode()) for i, c in zip(ids, copies)),
                       dtype=np.uint64, count=len(ids))


def content_hashes(tokens: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return np.fromiter((_h64(b"content", tokens[offsets[j]:offsets[j + 1]].tobytes())
                        for j in range(len(offsets) - 1)), dtype=np.uint64, count=len(offsets) - 1)


def is_validation(content: np.ndarray, share: float) -> np.ndarray:
    return content < np.uint64(min(int(share * 2**64), 2**64 - 1))


def key_bucket(keys: np.ndarray) -> np.ndarray:
    return (keys >> np.uint64(64 - KEY_BITS)).astype(np.int64)


def _condition(col: pa.ChunkedArray, column: str, cond: Condition) -> pa.ChunkedArray:
    masks = []
    if cond.in_ is not None:
        masks.append(_in(col, column, cond.in_))
    if cond.not_in is not None:
        masks.append(pc.invert(_in(col, column, cond.not_in)))
    if cond.min is not None:
        masks.append(pc.greater_equal(col, pa.scalar(cond.min).cast(col.type)))
    if cond.max is not None:
        masks.append(pc.less_equal(col, pa.scalar(cond.max).cast(col.type)))
    if cond.matches is not None:
        masks.append(pc.match_substring_regex(col, cond.matches))
    mask = masks[0]
    for m in masks[1:]:
        mask = pc.and_kleene(mask, m)
    return mask


def _in(col: pa.ChunkedArray, column: str, values: list) -> pa.ChunkedArray:
    if column == "domain":  # a domain matches itself and its subdomains
        masks = [pc.or_(pc.equal(col, v), pc.ends_with(col, "." + v)) for v in values]
        out = masks[0]
        for m in masks[1:]:
            out = pc.or_kleene(out, m)
        return out
    return pc.is_in(col, value_set=pa.array(values).cast(col.type))


def where_columns(mix: MixConfig) -> list[str]:
    return sorted({c for s in mix.sources for c in s.where if c not in VIRTUAL_COLUMNS})


def assign_sources(table: pa.Table, mix: MixConfig) -> np.ndarray:
    """Source index per row (UNMATCHED for none): the first source whose every condition holds."""
    n = table.num_rows
    assigned = np.full(n, UNMATCHED, dtype=np.int16)
    for s, src in enumerate(mix.sources):
        mask = np.ones(n, dtype=bool)
        for column, cond in src.where.items():
            if column not in table.column_names:  # this run lacks the column: its values are null
                mask[:] = False
                break
            m = _condition(table[column], column, cond)
            mask &= pc.fill_null(m, False).to_numpy(zero_copy_only=False)
        assigned[(assigned == UNMATCHED) & mask] = s
    return assigned


def read_part(ref: PartRef, mix: MixConfig, dtype: str) -> dict:
    """A part's documents with everything the mixture decides from: ids, token ranges, source,
    split, sample keys."""
    with fsspec.open(ref.docs, "rb") as f:  # any fsspec URL (pyarrow would use its own S3 client)
        pf = pq.ParquetFile(f, pre_buffer=False)  # (core/io.py:read_parquet says why)
        table = pf.read(columns=["id"] + [c for c in where_columns(mix) if c in pf.schema_arrow.names])
    tokens, offsets, _ = read_tokens(ref.tokens, dtype)
    if len(offsets) - 1 != table.num_rows:
        raise ValueError(f"{ref.docs} has {table.num_rows} rows but its token shard {ref.tokens} "
                         f"has {len(offsets) - 1} documents")
    lengths = np.diff(offsets)
    table = table.append_column("tokens", pa.array(lengths, pa.int64()))
    table = table.append_column("run", pa.array([ref.run_name] * table.num_rows, pa.string()))
    ids = table["id"].to_pylist()
    return {
        "ids": ids,
        "tokens": tokens,
        "offsets": offsets,
        "lengths": lengths,
        "source": assign_sources(table, mix),
        "content": (content := content_hashes(tokens, offsets)),
        "validation": is_validation(content, mix.validation),
        "keys": sample_keys(ids, mix.seed),
    }


def scan_part(ref: PartRef, mix: MixConfig, dtype: str, out: str) -> dict:
    """Decide a part's documents (source, split, sample key) and keep them with their lengths and
    content hashes in `out` (.npz, its existence marks the part scanned), with counts per source and
    split, the histograms of training tokens and documents by sample key, and per source the
    training documents of lowest content hash (`min_validation_docs`, ties included)."""
    d = read_part(ref, mix, dtype)
    n_src = len(mix.sources)
    counts = np.zeros((n_src, 4), dtype=np.int64)  # train docs, train tokens, validation docs, tokens
    for s in range(n_src):
        mine = d["source"] == s
        train, val = mine & ~d["validation"], mine & d["validation"]
        counts[s] = [train.sum(), d["lengths"][train].sum(), val.sum(), d["lengths"][val].sum()]
    train = (d["source"] != UNMATCHED) & ~d["validation"]
    flat = d["source"][train].astype(np.int64) * 2**KEY_BITS + key_bucket(d["keys"][train])
    cells, where = np.unique(flat, return_inverse=True)
    sums = np.bincount(where, weights=d["lengths"][train], minlength=len(cells)).astype(np.int64)
    docs = np.bincount(where, minlength=len(cells)).astype(np.int64)
    unmatched = d["source"] == UNMATCHED
    low = [np.empty(0, np.int64)]
    for s in range(n_src) if mix.validation > 0 else ():
        rows = np.flatnonzero((d["source"] == s) & ~d["validation"])
        k = min(mix.min_validation_docs, len(rows))
        if k:
            content = d["content"][rows]
            low.append(rows[content <= np.partition(content, k - 1)[k - 1]])
    low_rows = np.concatenate(low)
    with open_atomic(out) as f:
        np.savez(f, counts=counts, cells=cells, cell_tokens=sums, cell_docs=docs,
                 unmatched=np.array([unmatched.sum(), d["lengths"][unmatched].sum()], dtype=np.int64),
                 source=d["source"], validation=d["validation"], keys=d["keys"], lengths=d["lengths"],
                 content=d["content"], low_source=d["source"][low_rows], low_content=d["content"][low_rows])
    return {"part": ref.key, "docs": len(d["ids"])}


def validation_wanted(mix: MixConfig, docs: int) -> int:
    """How many of a source's `docs` documents it should hold out at least: `min_validation_docs`,
    as far as the validation share of them allows."""
    return min(mix.min_validation_docs, math.floor(mix.validation * docs + 1e-9))


def extra_validation(mix: MixConfig, counts: np.ndarray, low_source: np.ndarray,
                     low_content: np.ndarray) -> np.ndarray:
    """The content hashes held out beyond the share: for each source the share leaves short of
    `validation_wanted`, its training documents of lowest content hash (from every part's scan)."""
    extra = [np.empty(0, np.uint64)]
    for s in range(len(mix.sources)):
        held, docs = int(counts[s, 2]), int(counts[s, 0] + counts[s, 2])
        missing = validation_wanted(mix, docs) - held
        if missing > 0:
            content = np.sort(low_content[low_source == s])
            extra.append(content[content <= content[missing - 1]])
    return np.unique(np.concatenate(extra))


def held_out(source: np.ndarray, validation: np.ndarray, content: np.ndarray,
             extra: np.ndarray) -> np.ndarray:
    """The validation side: the share's hash split, and the documents whose content is in `extra`."""
    if not len(extra):
        return validation
    return validation | ((source != UNMATCHED) & np.isin(content, extra))


def hold_out_part(scan: str, extra: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source, length, sample key) of this part's training documents that `extra` moves to validation."""
    with fsspec.open(scan, "rb") as f, np.load(f) as z:
        source, val, content = z["source"], z["validation"], z["content"]
        moved = held_out(source, val, content, extra) & ~val
        return source[moved], z["lengths"][moved], z["keys"][moved]


def window_part(scan: str, windows: list[tuple[int, int]],
                extra: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per source, the (sample keys, lengths) of this part's training documents whose key bucket is
    in the source's window [start, stop): the candidates to fill a fractional epoch's last gap."""
    with fsspec.open(scan, "rb") as f, np.load(f) as z:
        source, keys, lengths = z["source"], z["keys"], z["lengths"]
        val = held_out(source, z["validation"], z["content"], extra)
    buckets = key_bucket(keys)
    out = []
    for s, (start, stop) in enumerate(windows):
        mine = (source == s) & ~val & (buckets >= start) & (buckets < stop)
        out.append((keys[mine], lengths[mine]))
    return out
