"""Per-stage counters: documents in/out, drops by reason, other events, bytes and seconds."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    docs_in: int = 0
    docs_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    dropped: Counter = field(default_factory=Counter)  # reason → documents dropped
    events: Counter = field(default_factory=Counter)  # reason → things counted but not dropped

    def merge(self, other: StageStats) -> None:
        self.docs_in += other.docs_in
        self.docs_out += other.docs_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.seconds += other.seconds
        self.dropped.update(other.dropped)
        self.events.update(other.events)

    def to_dict(self) -> dict[str, Any]:
        return {
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "seconds": round(self.seconds, 4),
            "dropped": dict(sorted(self.dropped.items())),
            "events": dict(sorted(self.events.items())),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StageStats:
        return cls(
            d["docs_in"], d["docs_out"], d["bytes_in"], d["bytes_out"], d["seconds"],
            Counter(d["dropped"]), Counter(d["events"]),
        )


class RunStats:
    """Stage name → StageStats, in the order stages first report."""

    def __init__(self) -> None:
        self.stages: dict[str, StageStats] = {}

    def stage(self, name: str) -> StageStats:
        return self.stages.setdefault(name, StageStats())

    def merge(self, other: RunStats) -> None:
        for name, s in other.stages.items():
            self.stage(name).merge(s)

    def to_dict(self) -> dict[str, Any]:
        return {name: s.to_dict() for name, s in self.stages.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunStats:
        rs = cls()
        for name, s in d.items():
            rs.stages[name] = StageStats.from_dict(s)
        return rs
