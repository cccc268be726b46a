"""The filters stage: each document through its language's filters (filters/), signals kept as
columns. The first filter that objects drops the document as "<filter>:<reason>"; with
`annotate_only` nothing is dropped, every signal is computed and the would-be reason is kept in
`filter_flag` (and counted as `would_drop:<reason>`). `compat` picks the heuristics' definitions
(the papers', or datatrove's exactly) for every filter that does not set its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pyarrow as pa
from pydantic import ValidationError

from gristmill.core.config import ConfigError, Strict, format_error
from gristmill.filters import FILTERS, DocFilter
from gristmill.filters.text import TextView
from gristmill.stages.base import DocStage


class FiltersConfig(Strict):
    """Document filters (filters/), applied in the order listed, per document language."""

    annotate_only: bool = False  # dry run: compute every signal, drop nothing (would-be drops are counted)
    compat: Literal["paper", "datatrove"] = "paper"  # the heuristics' definitions: the papers', or
    # datatrove 0.10.1's exactly (to reproduce FineWeb); a filter's own `compat` parameter wins
    default: dict[str, dict[str, Any]] = {}  # filter name → its parameters ({} = its defaults)
    languages: dict[str, dict[str, dict[str, Any] | bool]] = {}  # per language: replace a filter's
    # parameters, or `false` to switch it off for that language; languages not listed use `default`

    def for_language(self, language: str) -> dict[str, dict[str, Any]]:
        """Filter name → parameters for documents in `language`."""
        chain = dict(self.default)
        for name, params in self.languages.get(language, {}).items():
            if params is False:
                chain.pop(name, None)
            elif params is not True:
                chain[name] = params
        return chain

    def filter_names(self) -> list[str]:
        names = list(self.default)
        for overrides in self.languages.values():
            names += [n for n, p in overrides.items() if p is not False and n not in names]
        return names


def resolve_paths(raw: dict, resolve: Callable[[Any], Any]) -> None:
    """Filters' model files (`path`), relative to the config file."""
    chains = [raw.get("default")]
    if isinstance(raw.get("languages"), dict):
        chains += list(raw["languages"].values())
    for chain in (c for c in chains if isinstance(c, dict)):
        for params in chain.values():
            if isinstance(params, dict) and isinstance(params.get("path"), str):
                params["path"] = resolve(params["path"])


def check(stages: Any) -> None:
    """Every filter named exists and its parameters validate, at load time."""
    fcfg: FiltersConfig = stages.filters
    places = [(f"stages.filters.default.{n}", n, p) for n, p in fcfg.default.items()]
    places += [(f"stages.filters.languages.{lang}.{n}", n, p)
               for lang, chain in fcfg.languages.items() for n, p in chain.items() if isinstance(p, dict)]
    for where, name, params in places:
        if name not in FILTERS:
            raise ConfigError(f"{where}: unknown filter (known: {', '.join(FILTERS)})")
        try:
            FILTERS[name].Params.model_validate(params)
        except ValidationError as e:
            raise ConfigError(format_error(e, prefix=where)) from None


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
