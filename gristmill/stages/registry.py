"""Every stage, in run order: the one table that the config loader (keys, validation, order), the
per-shard chain (the "document" stages, fused into one task per input shard) and the runner (the
"run" stages, each over the whole run once the shards are done) all read.

A new stage is a file of its own (its config class, its DocStage or whole-run function) and one
line here.
"""

from __future__ import annotations

from gristmill.stages import dedup, extract, filters, ingest, lid, pii, tokenize, write
from gristmill.stages.base import StageSpec
from gristmill.stages.dedup import config as dedup_config

STAGES: list[StageSpec] = [
    StageSpec("ingest", ingest.IngestConfig, "document", required=True),  # the chain's source
    StageSpec("extract", extract.ExtractConfig, "document", extract.TrafilaturaExtract, required=True),
    StageSpec("lid", lid.LidConfig, "document", lid.FastTextLid, precheck=lid.precheck),
    StageSpec("filters", filters.FiltersConfig, "document", filters.FilterStage,
              resolve_paths=filters.resolve_paths, check=filters.check),
    StageSpec("pii", pii.PiiConfig, "document", pii.PiiScrub),
    StageSpec("dedup", dedup_config.DedupConfig, "run", dedup.run_stage,
              resolve_paths=dedup_config.resolve_paths, check=dedup_config.check),
    StageSpec("write", write.WriteConfig, "document", required=True),  # the chain's sink
    StageSpec("tokenize", tokenize.TokenizeConfig, "run", tokenize.run_stage,
              resolve_paths=tokenize.resolve_paths),
]

