"""The contract of a per-document stage, as datatrove's PipelineStep but with explicit rejects."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator

from gristmill.core.stats import StageStats


class DocStage:
    """A step over one document: `apply(doc)` adds columns and returns None to keep the document
    or a short reason to drop it. Heavy state (models) is built once in `__init__`, per worker.
    """

    name: str = "stage"
    events: Counter  # things worth counting that are not drops (set per `run`)

    def apply(self, doc: dict) -> str | None:
        raise NotImplementedError

    def columns(self) -> list:
        """Extra pyarrow fields this stage adds to the documents (beyond stages/write.py's)."""
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
