"""One input shard (a WARC/ARC file, or a record range of a big one) through the fused
per-document stages into one output part.

The part's stats file is written last: its existence marks the shard done, so a rerun skips it.
"""

from __future__ import annotations

import time

from gristmill.core.data import schemas
from gristmill.core.io import PartWriter, write_json_atomic
from gristmill.core.layout import Shard, docs_path, pre_dedup_path, rejects_path, stats_path
from gristmill.core.stats import RunStats
from gristmill.pipeline.config import Config
from gristmill.stages.base import DocStage
from gristmill.stages.ingest import WarcIngest


def fused_docs_path(cfg: Config, part: str) -> str:
    """Where the per-document stages write: docs/, or pre_dedup/ when dedup comes after them."""
    if cfg.stages.dedup is None:
        return docs_path(cfg.run_dir, part)
    return pre_dedup_path(cfg.run_dir, part)


def build_doc_stages(cfg: Config) -> list[DocStage]:
    """The per-document chain after ingest, from the registry: every stage's cheap precheck
    (cheapest drops first), then the stages in run order."""
    document = [s for s in cfg.specs if s.kind == "document"]
    config = lambda s: getattr(cfg.stages, s.name)  # noqa: E731
    prechecks = [s.precheck(config(s)) for s in document if s.precheck is not None]
    stages = [s.build(config(s)) for s in document if s.build is not None]
    return [stage for stage in (*prechecks, *stages) if stage is not None]


class _Discard:
    count = 0

    def append(self, row: dict) -> None:
        self.count += 1

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


def process_shard(cfg: Config, shard: Shard, code_version: str = "") -> dict:
    """Run ingest → the chain (build_doc_stages) → write for one shard; returns its stats."""
    t0 = time.time()
    run_dir = cfg.run_dir
    stats = RunStats()
    compression = cfg.stages.write.codec
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
