"""Filter throughput: gristmill's heuristic filters against datatrove's same filters, and the fused
chain with and without the filters stage, on the packed benchmark pages, one core.

    python bench/bench_filters.py [--limit N] [--out bench/results/filters.json]

1. Filters alone, on the same extracted documents (texts and languages from gristmill's chain):
   each of our filters under `compat: datatrove` and datatrove's counterpart at the same
   thresholds, documents per second, and their agreement on keep/drop.
2. The fused chain (ingest → extract → lid [→ filters]) in-process, with and without filters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import gristmill.core.env  # noqa: F401  (offline hub, HF_HOME: before datatrove)
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter,
)

from gristmill.core.stats import RunStats
from gristmill.filters import FILTERS
from gristmill.filters.text import TextView, stop_words
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.shard import build_doc_stages
from gristmill.stages.ingest import WarcIngest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402

HEURISTICS = ("gopher_repetition", "gopher_quality", "c4", "fineweb")  # FineWeb's order
DATATROVE = {  # ours → datatrove's same filter at its default thresholds
    "gopher_repetition": lambda lang: GopherRepetitionFilter(language=lang),
    # the same stop words as ours: datatrove's default applies the English list to every language
    "gopher_quality": lambda lang: GopherQualityFilter(stop_words=sorted(stop_words(lang)) or None, language=lang),
    "c4": lambda lang: C4QualityFilter(language=lang),
    "fineweb": lambda lang: FineWebQualityFilter(language=lang),
}
DATATROVE_LANGUAGES = {"en", "de", "fr", "es", "pl", "ru", "zh", "it", "pt", "nl"}  # tokenizers it has here


def chain_config(inputs: list[str], with_filters: bool) -> dict:
    stages = {"ingest": {}, "extract": {}, "lid": {}}
    if with_filters:
        stages["filters"] = {"compat": "datatrove", "default": {name: {} for name in HEURISTICS}}
    stages["write"] = {}
    return {"inputs": [{"name": "bench", "paths": inputs}], "stages": stages}


def run_chain(inputs: list[str], with_filters: bool) -> tuple[list[dict], float, dict]:
    cfg = parse_config(chain_config(inputs, with_filters))
    stats, docs = RunStats(), []
    t0 = time.perf_counter()
    ingest, chain = WarcIngest(cfg.stages.ingest, "bench"), build_doc_stages(cfg)
    for path in inputs:
        stream = ingest.read(path, stats.stage("ingest"), [])
        for stage in chain:
            stream = stage.run(stream, stats.stage(stage.name), [])
        docs += stream
    return docs, time.perf_counter() - t0, stats.to_dict()


def ours(name: str, docs: list[dict]) -> tuple[list[bool], float]:
    cls = FILTERS[name]
    built: dict = {}
    keep = []
    t0 = time.perf_counter()
    for d in docs:
        f = built.get(d["language"]) or built.setdefault(d["language"], cls(cls.Params(compat="datatrove"), d["language"]))
        _, reason = f(TextView(d["text"], d["language"], d["url"]))
        keep.append(reason is None)
    return keep, time.perf_counter() - t0


def ours_together(docs: list[dict]) -> float:
    """All four on one shared view per document, as the filters stage runs them."""
    built: dict = {}
    t0 = time.perf_counter()
    for d in docs:
        chain = built.get(d["language"]) or built.setdefault(
            d["language"], [FILTERS[n](FILTERS[n].Params(compat="datatrove"), d["language"]) for n in HEURISTICS])
        view = TextView(d["text"], d["language"], d["url"])
        for f in chain:
            f(view)
    return time.perf_counter() - t0


def theirs(name: str, docs: list[dict]) -> tuple[list[bool | None], float]:
    built: dict = {}
    keep: list[bool | None] = []
    t0 = time.perf_counter()
    for i, d in enumerate(docs):
        if d["language"] not in DATATROVE_LANGUAGES:
            keep.append(None)
            continue
        f = built.get(d["language"]) or built.setdefault(d["language"], DATATROVE[name](d["language"]))
        result = f.filter(Document(text=d["text"], id=str(i), metadata={"language": d["language"]}))
        keep.append(result if isinstance(result, bool) else result[0])
    return keep, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "filters.json")
    args = p.parse_args()
    pin_to_core()
    inputs = [str(args.data / "warc" / "packed" / n) for n in ("scrapinghub_pages.warc.gz", "trafilatura_pages.warc.gz")]

    docs, chain_s, _ = run_chain(inputs, with_filters=False)
    docs_f, chain_f_s, stats_f = run_chain(inputs, with_filters=True)
    comparable = [d for d in docs if d["language"] in DATATROVE_LANGUAGES]

    rows, results = [], {}
    total_ours = total_theirs = 0.0
    for name in HEURISTICS:
        keep_o, t_o = ours(name, comparable)
        keep_t, t_t = theirs(name, comparable)
        agree = sum(a == b for a, b in zip(keep_o, keep_t)) / len(comparable)
        total_ours += t_o
        total_theirs += t_t
        results[name] = {"docs": len(comparable), "ours_s": t_o, "datatrove_s": t_t, "agreement": agree,
                         "ours_docs_per_s": len(comparable) / t_o, "datatrove_docs_per_s": len(comparable) / t_t,
                         "dropped_ours": keep_o.count(False), "dropped_datatrove": keep_t.count(False)}
        rows.append([name, len(comparable), f"{len(comparable) / t_o:,.0f}", f"{len(comparable) / t_t:,.0f}",
                     f"{t_t / t_o:.1f}×", f"{agree:.3f}", keep_o.count(False), keep_t.count(False)])
    n = len(comparable)
    together = ours_together(comparable)
    rows.append(["all four (ours: one shared word split)", n, f"{n / together:,.0f}", f"{n / total_theirs:,.0f}",
                 f"{total_theirs / together:.1f}×", "", "", ""])
    results["all_four"] = {"ours_s": together, "datatrove_s": total_theirs, "docs": n}
    chain = {"docs_read": len(docs), "without_filters_s": chain_s, "with_filters_s": chain_f_s,
             "without_docs_per_s": len(docs) / chain_s, "with_docs_per_s": len(docs) / chain_f_s,
             "filters_stage": stats_f.get("filters", {})}
    report = {"machine": machine_notes(["datatrove", "trafilatura"]), "filters": results, "chain": chain}
    print(markdown_table(["filter", "docs", "ours docs/s", "datatrove docs/s", "speed-up", "agreement",
                          "dropped (ours)", "dropped (datatrove)"], rows))
    print()
    stage_s = chain["filters_stage"].get("seconds", 0.0)
    print(markdown_table(["fused chain (708 pages)", "seconds", "docs/s/core"], [
        ["ingest → extract → lid", f"{chain_s:.1f}", f"{chain['without_docs_per_s']:.1f}"],
        ["ingest → extract → lid → filters", f"{chain_f_s:.1f}", f"{chain['with_docs_per_s']:.1f}"],
        ["of which the filters stage", f"{stage_s:.2f}", f"{len(docs) / stage_s:,.0f}" if stage_s else ""],
    ]))
    write_json(args.out, report)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
