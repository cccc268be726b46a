"""The mixture spec: named sources (predicates over document columns) with weights, a token budget,
a validation share and a seed — a `gristmill mix` file, or the `mixture` block of a run config.

Static checks happen here (weights, conditions, names); checks that need the runs (columns, empty
sources, budgets the caps make impossible, shares the caps push past `share_tolerance`) happen in
stages/mix before any output is written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from gristmill.core.config import ConfigError, ExecutionConfig, Strict, format_error, read_yaml, resolve_path

CONDITION_KEYS = ("min", "max", "in", "not_in", "matches")
VIRTUAL_COLUMNS = {"tokens": "int64", "run": "string"}  # the document's token count (EOS included), its run's name
Scalar = str | int | float | bool


class Condition(Strict):
    """One column's test. `min`/`max` are inclusive; `in`/`not_in` list values; `matches` is a regex
    (RE2 syntax) searched in a string column. A null value matches no condition."""

    min: int | float | None = None
    max: int | float | None = None
    in_: list[Scalar] | None = Field(default=None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(default=None, min_length=1)
    matches: str | None = None

    @model_validator(mode="after")
    def _sane(self) -> Condition:
        if all(getattr(self, k) is None for k in ("min", "max", "in_", "not_in", "matches")):
            raise ValueError(f"a condition needs one of: {', '.join(CONDITION_KEYS)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if self.matches is not None:
            try:
                re.compile(self.matches)
            except re.error as e:
                raise ValueError(f"matches {self.matches!r} does not compile: {e}") from None
        return self

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True, exclude_none=True)


class SourceSpec(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # a folder name under validation/
    weight: float = Field(gt=0)  # relative; normalised over the sources
    # cap on repeats; unset: the mixture's `max_epochs`; null: as many as the budget needs
    max_epochs: float | None = Field(default=None, gt=0)
    # column → value (equality), [values] (any of them) or a Condition. `domain` also matches
    # subdomains (`wikipedia.org` matches en.wikipedia.org). Empty: every document not taken yet.
    where: dict[str, Condition] = {}

    @field_validator("where", mode="before")
    @classmethod
    def _sugar(cls, v: Any) -> Any:
        if not isinstance(v, dict):
            return v
        out = {}
        for column, cond in v.items():
            if isinstance(cond, list):
                cond = {"in": cond}
            elif not isinstance(cond, dict):
                cond = {"in": [cond]}
            out[column] = cond
        return out


class MixConfig(Strict):
    name: str = Field(default="mix", pattern=r"^[A-Za-z0-9_.-]+$")
    output: str | None = None  # fsspec dir; the mixture goes to <output>/<name>/ (None: the first run's parent)
    runs: list[str] = []  # finished run directories (same tokenizer); in a run config: that run
    budget: int = Field(gt=0)  # training tokens, EOS included
    validation: float = Field(default=0.005, ge=0, lt=1)  # share of each source's documents held out
    seed: int = 0
    shard_tokens: int = Field(default=50_000_000, ge=1_000)  # about this many tokens per output shard
    # every source's cap on repeats unless it sets its own; null: uncapped. Past ~4 epochs repeated
    # tokens stop paying (Muennighoff et al. 2023, "Scaling Data-Constrained Language Models")
    max_epochs: float | None = Field(default=4.0, gt=0)
    # a source its cap keeps short of its share: its tokens go to the others by weight as long as every
    # share stays within share_tolerance of its weight (else an error); `redistribute`: whatever the
    # shares become, with a warning; `fail`: any shortfall is an error
    shortfall: Literal["within_tolerance", "redistribute", "fail"] = "within_tolerance"
    share_tolerance: float = Field(default=0.1, ge=0)  # |share − weight| / weight allowed, per source
    min_validation_docs: int = Field(default=1, ge=0)  # per source, as far as the validation share allows
    sources: list[SourceSpec] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique(cls, v: list[SourceSpec]) -> list[SourceSpec]:
        names = [s.name for s in v]
        if dup := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"source names must be unique: {', '.join(dup)} repeated")
        return v

    @model_validator(mode="after")
    def _default_caps(self) -> MixConfig:
        """A source that does not set `max_epochs` takes the mixture's (an explicit null stays null)."""
        for src in self.sources:
            if "max_epochs" not in src.model_fields_set:
                src.max_epochs = self.max_epochs
        return self

    @property
    def mix_dir(self) -> str:
        run = self.runs[0].rstrip("/")
        out = self.output or (run.rpartition("/")[0] if "://" in run else str(Path(run).parent))
        return f"{out.rstrip('/')}/{self.name}"

    def spec(self) -> dict:
        """What must not change between a mixture and its rerun (the mixture's identity)."""
        return self.model_dump(mode="json", by_alias=True, exclude={"output"})


class MixFile(Strict):
    """A `gristmill mix` file: the mixture, and where its tasks run."""

    mixture: MixConfig
    execution: ExecutionConfig = ExecutionConfig()


def resolve_paths(raw_mix: Any, base_dir: str | os.PathLike) -> None:
    """Relative `runs` and `output` are relative to the file that names them."""
    if not isinstance(raw_mix, dict):
        return
    if isinstance(raw_mix.get("runs"), list):
        raw_mix["runs"] = [resolve_path(p, base_dir) for p in raw_mix["runs"]]
    if isinstance(raw_mix.get("output"), str):
        raw_mix["output"] = resolve_path(raw_mix["output"], base_dir)


def parse_mix(raw: Any, base_dir: str | os.PathLike = ".") -> MixFile:
    if not isinstance(raw, dict):
        raise ConfigError("mix file: the top level must be a mapping with a `mixture` key")
    raw = dict(raw)
    if isinstance(raw.get("mixture"), dict):
        raw["mixture"] = dict(raw["mixture"])
        resolve_paths(raw["mixture"], base_dir)
    try:
        mix = MixFile.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e)) from None
    if not mix.mixture.runs:
        raise ConfigError("mixture.runs: list at least one finished run directory")
    return mix


def load_mix(path: str | os.PathLike, overrides: list[str] = ()) -> MixFile:
    raw, base_dir = read_yaml(path, overrides, "mix file")
    return parse_mix(raw, base_dir)
