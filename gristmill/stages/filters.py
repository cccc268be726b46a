"""The filters stage: each document through its language's filters (filters/), signals kept as
columns. The first filter that objects drops the document as "<filter>:<reason>"; with
`annotate_only` nothing is dropped, every signal is computed and the would-be reason is kept in
`filter_flag` (and counted as `would_drop:<reason>`). `compat` picks the heuristics' definitions
(the papers', or datatrove's exactly) for every filter that does not set its own."""

from __future__ import annotations

import pyarrow as pa

from gristmill.filters import FILTERS, DocFilter
from gristmill.filters.text import TextView
from gristmill.pipeline.config import FiltersConfig
from gristmill.stages.base import DocStage


class FilterStage(DocStage):
    name = "filters"

    def __init__(self, cfg: FiltersConfig):
        self.cfg = cfg
        self.chains: dict[str, list[DocFilter]] = {}

    def columns(self) -> list[pa.Field]:
        signals = [s for name in self.cfg.filter_names() for s in FILTERS[name].signals]
        return [pa.field(s, pa.float32()) for s in dict.fromkeys(signals)] + [pa.field("filter_flag", pa.string())]

    def chain(self, language: str) -> list[DocFilter]:
        """The filters for one language, built on first use and kept for the worker's life."""
        if language not in self.chains:
            self.chains[language] = [FILTERS[name](self.params(name, params), language)
                                     for name, params in self.cfg.for_language(language).items()]
        return self.chains[language]

    def params(self, name: str, params: dict):
        """A filter's parameters; the stage's `compat` unless the filter sets its own."""
        cls = FILTERS[name].Params
        if "compat" in cls.model_fields and "compat" not in params:
            params = {**params, "compat": self.cfg.compat}
        return cls.model_validate(params)

    def apply(self, doc: dict) -> str | None:
        language = doc.get("language") or "unknown"
        view = TextView(doc["text"], language, doc.get("url", ""))
        flag = None
        for f in self.chain(language):
            signals, reason = f(view)
            doc.update(signals)
            if reason is not None and flag is None:
                flag = f"{f.name}:{reason}"
                if not self.cfg.annotate_only:
                    return flag
        if flag is not None:
            self.events[f"would_drop:{flag}"] += 1
        doc["filter_flag"] = flag
        return None
