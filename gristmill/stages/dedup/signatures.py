"""Step 1, one task per part: exact hash and LSH band hashes of every document, written as the
run's index (sorted BAND records per band), plus each document's id and exact hash by row.

Memory: one part's records (24 bytes per document and band) and one batch of texts.
"""

from __future__ import annotations

import time

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core.io import write_json_atomic, write_table_atomic
from gristmill.stages.dedup import records
from gristmill.stages.dedup.layout import Layout, families
from gristmill.stages.dedup.minhash import LshParams, sign

BATCH = 512
CURRENT_RUN = np.uint64(1 << 63)  # earlier runs' documents get priority 0: they always win
UNITS = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}


def sortable(col: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 whose order is the column's order, null mask) for a numeric or timestamp column."""
    null = col.is_null().to_numpy(zero_copy_only=False)
    kind = col.type
    if pa.types.is_timestamp(kind):  # seconds since 1970, up to 2106
        v = pc.fill_null(col.cast(pa.int64()), 0).to_numpy() // UNITS[kind.unit]
        return np.clip(v, 0, 2**32 - 1).astype(np.uint32), null
    if pa.types.is_floating(kind):
        f = pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy().astype(np.float32)
        null = null | np.isnan(f)
        bits = f.view(np.uint32)
        return np.where(bits >> 31, ~bits, bits | np.uint32(0x80000000)).astype(np.uint32), null
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        v = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
        return (np.clip(v, -2**31, 2**31 - 1) + 2**31).astype(np.uint32), null
    raise ValueError(f"keep rule: column of type {kind} cannot be ordered")


def priority(batch: pa.RecordBatch, keep: list[dict]) -> np.ndarray:
    """uint64, smaller is kept first: the keep rule's first column in bits 62..32 (its top 31
    bits), the second in bits 31..0; nulls last. Ties fall to the document key (input order)."""
    prio = np.full(batch.num_rows, CURRENT_RUN, np.uint64)
    for i, rule in enumerate(keep):
        if rule["column"] not in batch.schema.names:
            raise ValueError(f"stages.dedup.keep.{i}.column: documents have no column {rule['column']!r}")
        u, null = sortable(batch.column(rule["column"]))
        if rule["order"] == "max":
            u = ~u
        u[null] = 0xFFFFFFFF
        prio |= (u >> np.uint32(1)).astype(np.uint64) << np.uint64(32) if i == 0 else u.astype(np.uint64)
    return prio


def sign_part(run_dir: str, part: int, lsh: LshParams | None, exact: bool, keep: list[dict]) -> dict:
    """Index one part; returns (and writes last) its marker with counts."""
    t0 = time.perf_counter()
    lay = Layout(run_dir)
    columns = list(dict.fromkeys(["id", "text", *(k["column"] for k in keep)]))
    bands = lsh.bands if lsh else 0
    found: dict[str, list[np.ndarray]] = {f: [] for f in families(bands, exact)}
    ids, hashes = [], []
    docs = no_words = text_bytes = 0
    with fsspec.open(lay.input_part(part), "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=BATCH, columns=columns):
            texts = batch.column("text").to_pylist()
            exact_h, band_h, has_words = sign(texts, lsh)
            keys = records.doc_key(part, np.arange(docs, docs + len(texts)))
            prio = priority(batch, keep)
            for family in found:
                h = exact_h if family == "exact" else band_h[:, int(family[5:])]
                rec = np.empty(int(has_words.sum()), records.BAND)
                rec["hash"], rec["prio"], rec["key"] = h[has_words], prio[has_words], keys[has_words]
                found[family].append(rec)
            ids += batch.column("id").to_pylist()
            hashes.append(exact_h)
            docs += len(texts)
            no_words += int((~has_words).sum())
            text_bytes += sum(len(t.encode("utf-8")) for t in texts)
    for family, chunks in found.items():
        rec = np.concatenate(chunks) if chunks else np.zeros(0, records.BAND)
        records.write(lay.band_file(family, part), rec[np.argsort(rec["hash"], kind="stable")])
    table = pa.table({"id": pa.array(ids, pa.string()),
                      "text_hash": pa.array(np.concatenate(hashes) if hashes else [], pa.uint64())})
    write_table_atomic(lay.ids_file(part), table)
    marker = {"part": part, "docs": docs, "no_words": no_words, "records": docs - no_words,
              "text_bytes": text_bytes, "seconds": round(time.perf_counter() - t0, 4)}
    write_json_atomic(lay.signed(part), marker)
    return marker

