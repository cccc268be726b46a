"""The data contract: the documents' Parquet schema, and token shards.

Documents: one Parquet part per input shard, with DOC_SCHEMA's columns first and then any the
stages add (filter signals…); rejected documents go to a twin part with REJECT_FIELDS appended.

Token shard: `<prefix>.bin` (token ids, each document followed by EOS; uint16 when the vocabulary
fits, else uint32), `<prefix>.idx` (int64 start offsets, n_docs + 1) and `<prefix>.json`
(metadata, written last: it marks the shard complete). A mixture's shards add `<prefix>.src`
(uint16: each document's source id). Document i is tokens[idx[i]:idx[i+1]].
"""

from __future__ import annotations

from typing import NamedTuple

import fsspec
import numpy as np
import pyarrow as pa

from gristmill.core.io import is_local

DOC_SCHEMA = pa.schema([
    ("id", pa.string()),  # sha1 of WARC-Record-ID (or of url + date), 20 hex chars
    ("source", pa.string()),  # the input's name in the config
    ("url", pa.string()),
    ("domain", pa.string()),
    ("warc_record_id", pa.string()),
    ("warc_date", pa.timestamp("ms", tz="UTC")),  # Parquet has no second unit
    ("charset", pa.string()),  # the charset the HTML was decoded with
    ("html_bytes", pa.int64()),
    ("text", pa.string()),
    ("language", pa.string()),
    ("language_score", pa.float32()),
])
REJECT_FIELDS = [
    pa.field("reject_stage", pa.string()),
    pa.field("reject_reason", pa.string()),
    pa.field("duplicate_of", pa.string()),  # dedup: the id of the document kept in its place
]


def schemas(extra: list[pa.Field]) -> tuple[pa.Schema, pa.Schema]:
    """(documents, rejects) schemas with the stages' extra columns (filter signals…)."""
    docs = pa.schema([*DOC_SCHEMA, *extra])
    return docs, pa.schema([*docs, *REJECT_FIELDS])


class TokenShard(NamedTuple):
    tokens: np.ndarray  # token ids
    offsets: np.ndarray  # int64, n_docs + 1
    sources: np.ndarray | None  # uint16 source id per document (a mixture's shards), if asked for


def read_tokens(prefix: str, dtype: str, with_sources: bool = False) -> TokenShard:
    """One token shard: memory-mapped on local disk (a reader touches only the rows it takes),
    read whole from an object store."""
    fs, p = fsspec.core.url_to_fs(prefix)
    with fs.open(p + ".idx", "rb") as f:
        offsets = np.frombuffer(f.read(), dtype=np.int64)
    sources = _array(fs, p + ".src", np.uint16) if with_sources else None
    if offsets[-1] == 0:
        return TokenShard(np.zeros(0, dtype=dtype), offsets, sources)
    return TokenShard(_array(fs, p + ".bin", dtype), offsets, sources)


def _array(fs: fsspec.AbstractFileSystem, path: str, dtype) -> np.ndarray:
    if is_local(fs):
        return np.memmap(path, dtype=dtype, mode="r") if fs.size(path) else np.zeros(0, dtype=dtype)
    with fs.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=dtype)
