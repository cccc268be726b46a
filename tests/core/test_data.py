"""The token-shard reader that the mixture and the trainer share."""

from __future__ import annotations

import fsspec
import numpy as np

from gristmill.core.data import read_tokens


def write_shard(prefix: str, docs: list[list[int]], dtype: str, sources: list[int] | None = None) -> None:
    offsets = np.cumsum([0, *map(len, docs)]).astype(np.int64)
    tokens = np.array([t for d in docs for t in d], dtype=dtype)
    for ext, array in ((".bin", tokens), (".idx", offsets), (".src", np.array(sources or [], dtype=np.uint16))):
        with fsspec.open(prefix + ext, "wb") as f:
            f.write(array.tobytes())


def test_local_shards_are_memory_mapped_and_remote_ones_read_alike(tmp_path):
    docs = [[5, 6, 0], [7, 0], [9, 9, 9, 0]]
    for prefix in (str(tmp_path / "shard-00000"), "memory://gristmill-test/shard-00000"):
        write_shard(prefix, docs, "uint16", sources=[2, 0, 1])
        shard = read_tokens(prefix, "uint16", with_sources=True)
        assert isinstance(shard.tokens, np.memmap) == prefix.startswith("/")
        assert [shard.tokens[a:b].tolist() for a, b in zip(shard.offsets[:-1], shard.offsets[1:])] == docs
        assert shard.sources.tolist() == [2, 0, 1] and shard.tokens.dtype == np.uint16
        assert read_tokens(prefix, "uint16").sources is None


def test_an_empty_shard_reads_as_no_documents(tmp_path):
    prefix = str(tmp_path / "shard-00001")
    write_shard(prefix, [], "uint32", sources=[])
    shard = read_tokens(prefix, "uint32", with_sources=True)
    assert shard.tokens.size == 0 and shard.offsets.tolist() == [0] and shard.sources.size == 0
