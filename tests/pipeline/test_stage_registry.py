"""A stage is its own file plus one registry line: a small per-document stage and a small
whole-run stage, registered here, are validated by the real config loader, fused into the
per-shard chain, and run by the real runner (a private Ray, in this process: its workers find
this module as the driver does)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import ray
from pydantic import Field

from gristmill.core.config import ConfigError, Strict
from gristmill.core.io import read_json, read_parquet, write_json_atomic
from gristmill.core.layout import docs_path
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.runner import run_pipeline
from gristmill.pipeline.shard import build_doc_stages
from gristmill.stages import registry
from gristmill.stages.base import DocStage, RunContext, StageSpec
from tests.conftest import WARC, make_config, require

DOLMA = str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz"))  # 22 English pages


class ShoutConfig(Strict):
    min_chars: int = Field(default=0, ge=0)


class Shout(DocStage):
    """Upper-cases the text; drops documents shorter than `min_chars`."""

    name = "shout"

    def __init__(self, cfg: ShoutConfig):
        self.cfg = cfg

    def columns(self) -> list[pa.Field]:
        return [pa.field("shouted_chars", pa.int64())]

    def apply(self, doc: dict) -> str | None:
        if len(doc["text"]) < self.cfg.min_chars:
            return "too_quiet"
        doc["text"] = doc["text"].upper()
        doc["shouted_chars"] = len(doc["text"])
        return None


class CensusConfig(Strict):
    output: str = "census.json"


def census(ctx: RunContext) -> list[dict]:
    """Counts the run's documents after every shard is done (and after dedup, which runs first)."""
    docs = sum(read_parquet(docs_path(ctx.run_dir, s.part), ["id"]).num_rows for s in ctx.shards)
    path = f"{ctx.run_dir}/{ctx.stages.census.output}"
    write_json_atomic(path, {"documents": docs})
    ctx.outputs["census"] = path
    return []


@pytest.fixture
def registered(monkeypatch):
    stages = list(registry.STAGES)
    stages.insert([s.name for s in stages].index("pii") + 1, StageSpec("shout", ShoutConfig, "document", Shout))
    stages.append(StageSpec("census", CensusConfig, "run", census))
    monkeypatch.setattr(registry, "STAGES", stages)
    yield
    if ray.is_initialized():
        ray.shutdown()


def config(tmp_path, **stages) -> dict:
    raw = make_config(tmp_path, {"x": [DOLMA]})
    raw["stages"] = {"ingest": {}, "extract": {"timeout_s": 30.0}, **stages}
    return raw


def test_the_loader_knows_a_registered_stage_by_its_key(registered, tmp_path):
    cfg = parse_config(config(tmp_path, shout={"min_chars": 5}, write={}))
    assert cfg.stages.shout == ShoutConfig(min_chars=5)
    assert cfg.stages.order == ["ingest", "extract", "shout", "write"]
    assert [type(s).__name__ for s in build_doc_stages(cfg)] == ["TrafilaturaExtract", "Shout"]
    with pytest.raises(ConfigError, match=r"stages\.shout\.min_chars: Input should be greater than or equal to 0"):
        parse_config(config(tmp_path, shout={"min_chars": -1}, write={}))
    with pytest.raises(ConfigError, match=r"stages\.shout\.loud: unknown key"):
        parse_config(config(tmp_path, shout={"loud": True}, write={}))
    with pytest.raises(ConfigError, match="must run in the order ingest → extract → shout → write"):
        parse_config(config(tmp_path, write={}, shout={}))
    assert parse_config(config(tmp_path, write={})).stages.shout is None  # off unless named


@pytest.mark.slow
def test_a_registered_stage_runs_in_the_chain_and_a_whole_run_stage_after_it(registered, tmp_path):
    cfg = parse_config(config(tmp_path, shout={"min_chars": 2000}, write={}, census={}))
    manifest = run_pipeline(cfg)
    assert manifest["status"] == "done", manifest["failed_shards"]
    shout = manifest["totals"]["shout"]
    assert shout["docs_in"] == shout["docs_out"] + shout["dropped"]["too_quiet"]
    assert shout["docs_out"] > 0 and shout["dropped"]["too_quiet"] > 0
    docs = ds.dataset(f"{cfg.run_dir}/docs", format="parquet").to_table()
    assert docs.num_rows == manifest["documents"] == shout["docs_out"]
    texts = docs["text"].to_pylist()
    assert all(t == t.upper() for t in texts)
    assert docs["shouted_chars"].to_pylist() == [len(t) for t in texts]
    rejects = ds.dataset(f"{cfg.run_dir}/rejects", format="parquet").to_table().to_pylist()
    assert sum(r["reject_stage"] == "shout" and r["reject_reason"] == "too_quiet" for r in rejects) == \
        shout["dropped"]["too_quiet"]
    assert manifest["outputs"]["census"] == f"{cfg.run_dir}/census.json"
    assert read_json(manifest["outputs"]["census"]) == {"documents": docs.num_rows}
