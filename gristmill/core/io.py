"""Storage: reads and atomic writes at any fsspec URL (local disk, S3, GCS…).

Everything is written under a temp name and renamed into place when complete, so that a reader
never sees half a file and a killed writer leaves only a `.tmp-*` file (removed by the next run).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_GROUP = 2000

# Object stores: no listing is cached. s3fs and gcsfs otherwise answer `exists`, `open` and globs
# from a listing made earlier in this process, blind to the markers other processes (Ray workers,
# the run a rerun resumes) wrote since: every check of a marker asks the store.
for _protocol in ("s3", "s3a", "gs", "gcs"):
    fsspec.config.conf.setdefault(_protocol, {})["use_listings_cache"] = False


def temp_path(final: str) -> str:
    """A sibling temp name that no reader's `part-*` glob matches."""
    head, _, name = final.rpartition("/")
    return f"{head}/.tmp-{uuid.uuid4().hex[:8]}-{name}"


def commit(fs: fsspec.AbstractFileSystem, tmp: str, final: str) -> None:
    fs.mv(tmp, final)  # a rename on local disk and HDFS; copy+delete on object stores


@contextmanager
def open_atomic(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open `path` for writing under a temp name; renamed to `path` only if the block succeeds."""
    fs, p = fsspec.core.url_to_fs(path)
    fs.makedirs(p.rpartition("/")[0], exist_ok=True)
    tmp = temp_path(p)
    try:
        with fs.open(tmp, mode) as f:
            yield f
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise
    commit(fs, tmp, p)


def protocol(fs: fsspec.AbstractFileSystem) -> str:
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return protocol(fs) in ("file", "local")


def exists(path: str) -> bool:
    fs, p = fsspec.core.url_to_fs(path)
    return fs.exists(p)


def copy_atomic(source: str, dest: str) -> None:
    """Copy a file between any two fsspec URLs; `dest` appears complete or not at all."""
    with fsspec.open(source, "rb") as src, open_atomic(dest) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def write_json_atomic(path: str, obj: Any) -> None:
    with open_atomic(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=False, default=str)


def write_table_atomic(path: str, table: pa.Table) -> None:
    with open_atomic(path) as f:
        pq.write_table(table, f)


def read_parquet(path: str, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file at any fsspec URL, read through fsspec (pyarrow's own S3 client would ignore
    fsspec's settings). `pre_buffer` is off: with it, pyarrow's IO threads call back into the
    Python file object, and a process that exits with such a thread alive aborts ("terminate
    called without an active exception", seen with s3fs)."""
    with fsspec.open(path, "rb") as f:
        return pq.ParquetFile(f, pre_buffer=False).read(columns=columns)


def read_json(path: str) -> Any:
    with fsspec.open(path, "r") as f:
        return json.load(f)


class PartWriter:
    """Stream rows (dicts) into one Parquet part; nothing is visible under the final name until
    `commit()`. Rows are flushed as row groups, so memory stays bounded by ROWS_PER_GROUP."""

    def __init__(self, path: str, schema: pa.Schema, compression: str = "zstd"):
        self.fs, self.final = fsspec.core.url_to_fs(path)
        self.fs.makedirs(self.final.rpartition("/")[0], exist_ok=True)
        self.tmp = temp_path(self.final)
        self.schema = schema
        self.handle = self.fs.open(self.tmp, "wb")
        self.writer = pq.ParquetWriter(self.handle, schema, compression=compression)
        self.rows: list[dict] = []
        self.count = 0

    def append(self, row: dict) -> None:
        self.rows.append(row)
        self.count += 1
        if len(self.rows) >= ROWS_PER_GROUP:
            self._flush()

    def write_table(self, table: pa.Table) -> None:
        self._flush()
        self.writer.write_table(table.select(self.schema.names).cast(self.schema))
        self.count += table.num_rows

    def _flush(self) -> None:
        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def commit(self) -> None:
        self._flush()
        self.writer.close()
        self.handle.close()
        commit(self.fs, self.tmp, self.final)

    def abort(self) -> None:
        try:
            self.writer.close()
            self.handle.close()
        finally:
            self.fs.rm(self.tmp)
