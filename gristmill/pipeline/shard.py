"""One input shard (a WARC/ARC file, or a record range of a big one) through the fused
per-document stages into one output part.

The part's stats file is written last: its existence marks the shard done, so a rerun skips it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from gristmill.pipeline.config import Config
from gristmill.core.stats import RunStats
from gristmill.stages.base import DocStage
from gristmill.stages.extract import TrafilaturaExtract
from gristmill.stages.ingest import WarcIngest
from gristmill.core.io import PartWriter, schemas, write_json_atomic


@dataclass(frozen=True)
class Shard:
    index: int
    source: str
    path: str
    start: int = 0  # the byte range whose records this shard reads (stages/ranges.py)
    end: int | None = None
    size: int = 0  # bytes in the range

    @property
    def part(self) -> str:
        return f"part-{self.index:05d}"


def docs_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/docs/{part}.parquet"


def fused_docs_path(cfg: Config, part: str) -> str:
    """Where the per-document stages write: docs/, or pre_dedup/ when dedup comes after them."""
    if cfg.stages.dedup is None:
        return docs_path(cfg.run_dir, part)
    return f"{cfg.run_dir}/pre_dedup/{part}.parquet"


def rejects_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/rejects/{part}.parquet"


def stats_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/stats/{part}.json"


def build_doc_stages(cfg: Config) -> list[DocStage]:
    """The per-document chain after ingest, cheapest drops first."""
    from gristmill.stages.lid import FastTextLid, LanguagePrecheck

    lid = cfg.stages.lid
    chain: list[DocStage] = []
    if lid is not None and lid.languages and lid.precheck:
        chain.append(LanguagePrecheck(lid))
    chain.append(TrafilaturaExtract(cfg.stages.extract))
    if lid is not None:
        chain.append(FastTextLid(lid))
    if cfg.stages.filters is not None:
        from gristmill.stages.filters import FilterStage

        chain.append(FilterStage(cfg.stages.filters))
    if cfg.stages.pii is not None:
        from gristmill.stages.pii import PiiScrub

        chain.append(PiiScrub(cfg.stages.pii))
    return chain


class _Discard:
    count = 0

    def append(self, row: dict) -> None:
        self.count += 1

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


def process_shard(cfg: Config, shard: Shard, code_version: str = "") -> dict:
    """Run ingest → [lid precheck] → extract → [lid] → write for one file; returns its stats."""
    t0 = time.time()
    run_dir = cfg.run_dir
    stats = RunStats()
    compression = cfg.stages.write.compression
    compression = None if compression == "none" else compression
    chain = build_doc_stages(cfg)
    doc_schema, reject_schema = schemas([f for stage in chain for f in stage.columns()])
    docs = PartWriter(fused_docs_path(cfg, shard.part), doc_schema, compression)
    rejects = PartWriter(rejects_path(run_dir, shard.part), reject_schema, compression) \
        if cfg.stages.write.write_rejects else _Discard()
    try:
        stream = WarcIngest(cfg.stages.ingest, shard.source).read(
            shard.path, stats.stage("ingest"), rejects, shard.start, shard.end)
        for stage in chain:
            stream = stage.run(stream, stats.stage(stage.name), rejects)
        write = stats.stage("write")
        for doc in stream:
            t = time.perf_counter()
            docs.append(doc)
            write.seconds += time.perf_counter() - t
            write.docs_in += 1
            write.docs_out += 1
            write.bytes_out += len(doc["text"].encode("utf-8"))
        t = time.perf_counter()
        docs.commit()
        rejects.commit()
        write.seconds += time.perf_counter() - t
        write.events["rejects_written"] += rejects.count
    except BaseException:
        docs.abort()
        rejects.abort()
        raise
    record = {
        "part": shard.part,
        "source": shard.source,
        "input": shard.path,
        "range": [shard.start, shard.end],
        "docs": docs.count,
        "rejects": rejects.count,
        "seconds": round(time.time() - t0, 3),
        "code_version": code_version,
        "stats": stats.to_dict(),
    }
    write_json_atomic(stats_path(run_dir, shard.part), record)
    return record
