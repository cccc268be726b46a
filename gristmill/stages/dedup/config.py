"""The dedup stage's config: exact and MinHash near-duplicate removal over the whole run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from gristmill.core.config import ConfigError, Strict
from gristmill.core.data import DOC_SCHEMA
from gristmill.filters import FILTERS


class MinHashConfig(Strict):
    """Near-duplicates: MinHash of word n-grams, LSH bands × rows chosen for the threshold."""

    threshold: float = Field(default=0.8, gt=0, lt=1)  # Jaccard similarity of shingle sets
    num_perm: int = Field(default=128, ge=8, le=1024)  # permutations per signature
    ngram: int = Field(default=5, ge=1, le=64)  # words per shingle
    seed: int = Field(default=1, ge=0)  # of datasketch's permutations
    bands: int | None = Field(default=None, ge=1)  # both None: datasketch's optimum for threshold,
    rows: int | None = Field(default=None, ge=1)  # weighing false positives and negatives as…
    weights: list[float] = Field(default=[0.5, 0.5], min_length=2, max_length=2)  # …(fp, fn)

    @field_validator("rows")
    @classmethod
    def _fits(cls, rows: int | None, info: ValidationInfo) -> int | None:
        bands = info.data.get("bands")
        if (bands is None) != (rows is None):
            raise ValueError("give both bands and rows, or neither")
        if rows is not None and bands * rows > info.data.get("num_perm", 0):
            raise ValueError(f"bands × rows ({bands} × {rows}) exceeds num_perm")
        return rows


class KeepKey(Strict):
    column: str  # a numeric or timestamp document column (e.g. warc_date, a filter signal)
    order: Literal["min", "max"]  # which end of it is kept


class DedupConfig(Strict):
    """Exact and MinHash near-duplicate removal over the whole run (stages/dedup/)."""

    exact: bool = True  # identical normalised text
    minhash: MinHashConfig | None = MinHashConfig()  # false: exact dedup only
    keep: list[KeepKey] = Field(default=[KeepKey(column="warc_date", order="min")], max_length=2)
    against: list[str] = []  # earlier runs' directories: their documents win, their index is reused
    task_memory_mb: float = Field(default=512, gt=0)  # per dedup task; sets how finely work is split

    @field_validator("minhash", mode="before")
    @classmethod
    def _false_is_off(cls, v: Any) -> Any:
        return None if v is False else v

    @field_validator("against")
    @classmethod
    def _at_most_255(cls, v: list[str]) -> list[str]:
        if len(v) > 255:
            raise ValueError("at most 255 earlier runs")
        return v


def resolve_paths(raw: dict, resolve: Callable[[Any], Any]) -> None:
    """Earlier runs (`against`), relative to the config file."""
    if isinstance(raw.get("against"), list):
        raw["against"] = [resolve(p) for p in raw["against"]]


def check(stages: Any) -> None:
    """Something to dedup on, and keep-rule columns that the documents will have."""
    dedup: DedupConfig = stages.dedup
    if not dedup.exact and dedup.minhash is None:
        raise ConfigError("stages.dedup: exact is false and minhash is off: nothing to dedup on")
    numeric = [f.name for f in DOC_SCHEMA if f.type != "string"]  # warc_date, html_bytes, language_score
    if stages.filters is not None:
        numeric += [s for name in stages.filters.filter_names() for s in FILTERS[name].signals]
    for i, key in enumerate(dedup.keep):
        if key.column not in numeric:
            raise ConfigError(f"stages.dedup.keep.{i}.column: {key.column!r} is not a numeric document "
                              f"column of this config (one of: {', '.join(numeric)})")
