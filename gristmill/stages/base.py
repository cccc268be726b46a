"""The contracts of a stage: a per-document DocStage (as datatrove's PipelineStep, with explicit
rejects), a whole-run stage's RunContext, and the StageSpec that registers either."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from gristmill.core.config import Strict
from gristmill.core.layout import Shard
from gristmill.core.stats import RunStats, StageStats


class DocStage:
    """A step over one document: `apply(doc)` adds columns and returns None to keep the document
    or a short reason to drop it. Heavy state (models) is built once in `__init__`, per worker.
    """

    name: str = "stage"
    events: Counter  # things worth counting that are not drops (set per `run`)

    def apply(self, doc: dict) -> str | None:
        raise NotImplementedError

    def columns(self) -> list:
        """Extra pyarrow fields this stage adds to the documents (beyond core/data.py's DOC_SCHEMA)."""
        return []

    def text_bytes(self, doc: dict) -> int:
        text = doc.get("text")
        return len(text.encode("utf-8")) if text else 0

    def run(self, docs: Iterable[dict], stats: StageStats, rejects: list[dict]) -> Iterator[dict]:
        """Stream `docs` through `apply`, counting in `stats` and appending drops to `rejects`."""
        self.events = stats.events
        for doc in docs:
            stats.docs_in += 1
            stats.bytes_in += doc.get("html_bytes", 0) if "html" in doc else self.text_bytes(doc)
            t0 = time.perf_counter()
            reason = self.apply(doc)
            stats.seconds += time.perf_counter() - t0
            if reason is None:
                stats.docs_out += 1
                stats.bytes_out += self.text_bytes(doc)
                yield doc
            else:
                doc.pop("html", None)
                stats.dropped[reason] += 1
                rejects.append({**doc, "reject_stage": self.name, "reject_reason": reason})


def final_documents(stats: RunStats) -> StageStats | None:
    """The stats of the stage whose output is the run's documents: dedup's, else the write's."""
    return next((stats.stages[s] for s in ("dedup", "write") if s in stats.stages), None)


Execute = Callable[[Callable, list[tuple], str], tuple[list, list[tuple[tuple, str]]]]
"""Runs `fn(*args)` for each args tuple as tasks (on Ray, in the pipeline): (results, [(args, error)])."""


@dataclass
class RunContext:
    """What a whole-run stage gets: the run, every stage's config, what the per-document stages
    wrote (one part per shard), a task executor, and the run's stats and outputs to add to."""

    run_dir: str
    stages: Any  # the run config's `stages`: each stage's config by name (None: the stage is off)
    shards: list[Shard]
    execute: Execute
    stats: RunStats
    outputs: dict[str, str]


@dataclass(frozen=True)
class StageSpec:
    """One line of the stage registry (stages/registry.py).

    kind "document": fused into the per-shard task. `build(config)` gives the DocStage (None for
    ingest and write, which the task itself is: the chain's source and sink); `precheck(config)`
    gives an optional cheap DocStage (or None) run before extraction. kind "run": after every
    shard is done, `build(ctx)` runs the stage over the whole run and returns its failures.
    `resolve_paths(raw, resolve)` makes the raw YAML's relative paths absolute (relative to the
    config file); `check(stages)` validates what spans stages, once the config has loaded."""

    name: str
    config: type[Strict]
    kind: Literal["document", "run"]
    build: Callable | None = None
    required: bool = False
    precheck: Callable | None = None
    resolve_paths: Callable[[dict, Callable[[Any], Any]], None] | None = None
    check: Callable[[Any], None] | None = None
