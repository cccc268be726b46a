"""Step 4, one task per part: documents whose cluster kept another go to rejects, with reason
`exact_duplicate` (same normalised text as the kept one) or `minhash_duplicate`, and the kept
document's id in `duplicate_of`; the others go to docs/.

Memory: one part's drop list, the ids of one other part at a time, one Parquet batch.
"""

from __future__ import annotations

import time
from collections import Counter

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.core.data import DOC_SCHEMA, schemas
from gristmill.core.io import PartWriter, read_parquet, write_json_atomic
from gristmill.stages.dedup import records
from gristmill.stages.dedup.layout import Layout

BATCH = 2000
DUPLICATES = pa.field("duplicates", pa.int32())  # documents of this run dropped in favour of this one


def read_ids(path: str) -> tuple[list[str], np.ndarray]:
    table = read_parquet(path)
    return table["id"].to_pylist(), table["text_hash"].to_numpy()


def drop_list(run_dir: str, part: int, partitions: int, against: list[str]) -> dict[int, tuple[str, str, bool]]:
    """Row → (reason, kept document's id, whether that is in an earlier run) for this part."""
    lay = Layout(run_dir)
    lo, hi = records.part_range(part)
    found = [records.read_range(lay.drops(p), records.EDGE, lo, hi) for p in range(partitions)]
    edges = np.concatenate(found) if found else np.zeros(0, records.EDGE)
    if not len(edges):
        return {}
    own = read_ids(lay.ids_file(part))
    own_hash = own[1]
    rows = records.key_row(edges["vk"]).astype(np.int64)
    kept = edges["mk"]
    origin, kept_part, kept_row = records.key_origin(kept), records.key_part(kept), records.key_row(kept)
    out: dict[int, tuple[str, str, bool]] = {}
    for o, kp in sorted(set(zip(origin.tolist(), kept_part.tolist()))):  # one kept part at a time
        ids, hashes = own if (o, kp) == (0, part) else \
            read_ids(Layout(run_dir if o == 0 else against[o - 1]).ids_file(kp))
        sel = np.flatnonzero((origin == o) & (kept_part == kp))
        for i in sel.tolist():
            r, kr = int(rows[i]), int(kept_row[i])
            reason = "exact_duplicate" if hashes[kr] == own_hash[r] else "minhash_duplicate"
            out[r] = (reason, ids[kr], o > 0)
    return out


def copies_of_kept(run_dir: str, part: int, partitions: int) -> dict[int, int]:
    """Row → how many documents of this run were dropped in favour of it, for this part."""
    lay = Layout(run_dir)
    lo, hi = records.part_range(part)
    counts: Counter = Counter()
    for p in range(partitions):  # a kept document's duplicates are spread over the partitions
        found = records.read_range(lay.kept(p), records.KEPT, lo, hi)
        counts.update(dict(zip(records.key_row(found["key"]).tolist(), found["copies"].tolist())))
    return counts


def remove_task(run_dir: str, part: int, partitions: int, against: list[str], docs_out: str,
                rejects_out: str | None, compression: str | None) -> dict:
    t0 = time.perf_counter()
    lay = Layout(run_dir)
    drops = drop_list(run_dir, part, partitions, against)
    copies = copies_of_kept(run_dir, part, partitions)
    dropped: Counter = Counter()
    docs_in = bytes_out = earlier = 0
    with fsspec.open(lay.input_part(part), "rb") as f:
        source = pq.ParquetFile(f, pre_buffer=False)  # (core/io.py:read_parquet says why)
        extra = [fld for fld in source.schema_arrow if fld.name not in DOC_SCHEMA.names] + [DUPLICATES]
        doc_schema, reject_schema = schemas(extra)
        docs = PartWriter(docs_out, doc_schema, compression)
        rejects = PartWriter(rejects_out, reject_schema, compression) if rejects_out else None
        try:
            for batch in source.iter_batches(batch_size=BATCH):
                rows = np.arange(docs_in, docs_in + batch.num_rows)
                table = pa.Table.from_batches([batch]).append_column(
                    DUPLICATES, pa.array([copies.get(r, 0) for r in rows.tolist()], pa.int32()))
                hit = np.fromiter((r in drops for r in rows.tolist()), bool, len(rows))
                kept = table.filter(pa.array(~hit))
                docs.write_table(kept)
                bytes_out += sum(len(t.encode("utf-8")) for t in kept["text"].to_pylist())
                if hit.any():
                    why = [drops[r] for r in rows[hit].tolist()]
                    dropped.update(w[0] for w in why)
                    earlier += sum(w[2] for w in why)
                    if rejects is not None:
                        gone = table.filter(pa.array(hit))
                        gone = gone.append_column("reject_stage", pa.array(["dedup"] * len(why), pa.string()))
                        gone = gone.append_column("reject_reason", pa.array([w[0] for w in why], pa.string()))
                        gone = gone.append_column("duplicate_of", pa.array([w[1] for w in why], pa.string()))
                        rejects.write_table(gone)
                docs_in += table.num_rows
            docs.commit()
            if rejects is not None:
                rejects.commit()
        except BaseException:
            docs.abort()
            if rejects is not None:
                rejects.abort()
            raise
    marker = {"part": part, "docs_in": docs_in, "docs_out": docs_in - sum(dropped.values()),
              "dropped": dict(sorted(dropped.items())), "of_earlier_runs": earlier, "bytes_out": bytes_out,
              "seconds": round(time.perf_counter() - t0, 4)}
    write_json_atomic(lay.removed(part), marker)
    return marker
