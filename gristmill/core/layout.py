"""Where a run keeps what: the paths under a run directory, and the unit of per-document work.

    <run>/manifest.json                     the run's config, status and totals (written first and last)
    <run>/pre_dedup/part-NNNNN.parquet      the per-document stages' documents, when dedup follows
    <run>/docs/part-NNNNN.parquet           the run's documents
    <run>/rejects/part-NNNNN.parquet        dropped documents, with the stage and reason
    <run>/stats/part-NNNNN.json             a shard's stats, written last: the shard is done
    <run>/dedup/                            the dedup index and its steps (stages/dedup/layout.py)
    <run>/tokenizer.json                    the tokenizer trained on the run (unless one is given)
    <run>/tokens/<source>/shard-NNNNN.*     token shards, one per docs part (core/data.py)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """One task of per-document work: an input file, or a record range of a big one."""

    index: int
    source: str
    path: str
    start: int = 0  # the byte range whose records this shard reads (stages/ranges.py)
    end: int | None = None
    size: int = 0  # bytes in the range

    @property
    def part(self) -> str:
        return part_name(self.index)


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def manifest_path(run_dir: str) -> str:
    return f"{run_dir}/manifest.json"


def docs_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/docs/{part}.parquet"


def pre_dedup_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/pre_dedup/{part}.parquet"


def rejects_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/rejects/{part}.parquet"


def stats_path(run_dir: str, part: str) -> str:
    return f"{run_dir}/stats/{part}.json"


def tokenizer_path(run_dir: str) -> str:
    return f"{run_dir}/tokenizer.json"


def tokens_prefix(run_dir: str, source: str, index: int) -> str:
    return f"{run_dir}/tokens/{source}/shard-{index:05d}"
