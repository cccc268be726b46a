"""Empty is a result, not a failure: runs where no document reaches dedup (or a dedup hash range
holds none) finish with 0 documents, empty but valid outputs, and a manifest that says so; a
rerun is a no-op. One private Ray serves every case (run in this process)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import ray

from gristmill.core.data import schemas
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.runner import run_pipeline
from gristmill.stages.tokenize import read_shard
from tests.conftest import WARC, make_config, require

pytestmark = pytest.mark.slow

DOLMA = str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz"))  # 22 English pages
DEDUP = {"exact": True, "minhash": {"threshold": 0.8}}
TOKENIZE = {"vocab_size": 512, "train_sample_bytes": 1_000_000}


@pytest.fixture(scope="module", autouse=True)
def private_ray():
    yield
    if ray.is_initialized():
        ray.shutdown()


def run(tmp_path: Path, name: str, inputs: list[str], **stages) -> dict:
    raw = make_config(tmp_path, {"x": inputs}, name=name, **stages)
    raw["stages"] = {**{k: v for k, v in raw["stages"].items() if k != "write"},
                     "dedup": DEDUP, "write": {}, "tokenize": TOKENIZE}  # in the stages' order
    cfg = parse_config(raw)
    first = run_pipeline(cfg)
    again = run_pipeline(cfg)  # a finished run reruns as a no-op, with the same outcome
    assert again["status"] == first["status"] and again["documents"] == first["documents"]
    assert again["parts_skipped_as_done"] == first["parts"]
    return first


def assert_empty_but_valid(manifest: dict, run_dir: Path) -> None:
    assert manifest["status"] == "done" and manifest["documents"] == 0 and not manifest["failed_shards"]
    assert manifest["totals"]["dedup"]["docs_in"] == manifest["totals"]["dedup"]["docs_out"] == 0
    doc_schema, _ = schemas([])
    parts = sorted((run_dir / "docs").glob("part-*.parquet"))
    assert len(parts) == manifest["parts"]
    for part in parts:  # every part exists, readable, with the documents' columns and no rows
        assert pq.read_metadata(part).num_rows == 0
        assert {f.name for f in doc_schema} <= set(pq.read_schema(part).names)
    assert ds.dataset(run_dir / "docs", format="parquet").count_rows() == 0
    shards = sorted((run_dir / "tokens").glob("*/shard-*.json"))
    assert len(shards) == manifest["parts"]
    for meta in shards:
        tokens, offsets, info = read_shard(str(meta)[: -len(".json")])
        assert info["n_docs"] == info["n_tokens"] == len(tokens) == 0 and list(offsets) == [0]


def test_an_empty_input(tmp_path):
    empty, header_only = tmp_path / "empty.warc.gz", tmp_path / "warcinfo-only.warc.gz"
    empty.write_bytes(b"")
    info = b"format: WARC File Format 1.0\r\n"
    header_only.write_bytes(gzip.compress(
        b"WARC/1.0\r\nWARC-Type: warcinfo\r\nWARC-Date: 2026-11-28T00:00:00Z\r\n"
        b"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-000000000001>\r\n"
        b"Content-Type: application/warc-fields\r\nContent-Length: " + str(len(info)).encode() + b"\r\n\r\n"
        + info + b"\r\n\r\n"))
    manifest = run(tmp_path, "empty-input", [str(empty), str(header_only)])
    assert_empty_but_valid(manifest, tmp_path / "out" / "empty-input")
    assert manifest["totals"]["ingest"]["docs_out"] == 0


def test_a_language_keep_list_that_matches_nothing(tmp_path):
    manifest = run(tmp_path, "no-language", [DOLMA], lid={"languages": ["zu"], "precheck": False})
    assert_empty_but_valid(manifest, tmp_path / "out" / "no-language")
    assert manifest["totals"]["lid"]["dropped"]["language"] == manifest["totals"]["lid"]["docs_in"] > 0


def test_everything_filtered(tmp_path):
    filters = {"default": {"gopher_quality": {"min_doc_words": 10_000_000}}}
    manifest = run(tmp_path, "all-filtered", [DOLMA], filters=filters)
    assert_empty_but_valid(manifest, tmp_path / "out" / "all-filtered")
    dropped = manifest["totals"]["filters"]["dropped"]
    assert sum(dropped.values()) == manifest["totals"]["filters"]["docs_in"] > 0


def test_hash_ranges_without_documents(tmp_path, monkeypatch):
    """256 hash ranges per band for 22 documents: most bucket tasks read nothing; same result as one."""
    one = run(tmp_path, "one-range", [DOLMA])
    import gristmill.stages.dedup as dedup

    monkeypatch.setattr(dedup, "plan", lambda *a: {"ranges": 256, "partitions": 3})
    many = run(tmp_path, "many-ranges", [DOLMA])
    assert many["status"] == "done" and many["totals"]["dedup"]["events"]["hash_ranges"] == 256
    assert many["documents"] == one["documents"] > 0
    assert many["totals"]["dedup"]["dropped"] == one["totals"]["dedup"]["dropped"]
