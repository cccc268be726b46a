"""The contract of a document filter.

A filter is one small class over one document. Built once per worker and language from its
parameters, it is called with a `TextView` and returns `(signals, reason)`: its signals as
floats (each becomes a nullable column named in `signals`, for the report and the mixture) and
None to keep the document or a short reason to drop it. It never changes the text.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from gristmill.filters.text import TextView


class FilterParams(BaseModel):
    """Base of every filter's parameters: the YAML mapping under its name in the config."""

    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


Compat = Literal["paper", "datatrove"]


class HeuristicParams(FilterParams):
    """Parameters of a heuristic with two definitions: the paper's (the default), or datatrove
    0.10.1's exactly (`compat: datatrove`, to reproduce FineWeb), where it deviates. Under
    `datatrove`, the thresholds in `datatrove_defaults` replace the paper's unless set."""

    datatrove_defaults: ClassVar[dict[str, Any]] = {}
    compat: Compat = "paper"

    @model_validator(mode="before")
    @classmethod
    def _compat_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("compat") == "datatrove":
            return {**cls.datatrove_defaults, **data}
        return data


Op = Literal["<", "<=", ">", ">="]
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Limit:
    """A threshold in force: a document is dropped as `reason` ("<filter>:<reason>", as counted and
    rejected) when `signal op value`. NaN (an undefined signal) never violates a limit."""

    signal: str
    op: Op
    value: float
    reason: str

    def violated(self, signals: dict[str, float]) -> bool:
        """Whether these signals (a filter's output) fail this limit."""
        return bool(_OPS[self.op](signals[self.signal], self.value))


class DocFilter:
    name: ClassVar[str]  # its key in the config; drops are counted and rejected as "<name>:<reason>"
    Params: ClassVar[type[FilterParams]]
    signals: ClassVar[tuple[str, ...]]  # the float columns it fills, globally unique names

    def __init__(self, params: FilterParams, language: str):
        self.params = params
        self.language = language

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        raise NotImplementedError

    @classmethod
    def limits(cls, params: FilterParams) -> list[Limit]:
        """The thresholds in force under `params` (validated) that drop a document on one signal
        alone, in the order the filter checks them; rules turned off (None) are left out."""
        return []

    @classmethod
    def _limits(cls, *rules: tuple[str, Op, float | None, str]) -> list[Limit]:
        """Limits from (signal, op, value or None for off, reason) rules; reasons get the name prefix."""
        return [Limit(s, op, float(v), f"{cls.name}:{r}") for s, op, v, r in rules if v is not None]
