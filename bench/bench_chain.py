"""The whole per-document chain against datatrove's FineWeb-style chain, on real crawl pages and
on the packed benchmark pages, one pinned core, interleaved rounds.

    python bench/bench_chain.py [--rounds 2] [--out bench/results/chain.json]

- **gristmill**: `configs/sample.yaml`'s per-document stages (ingest → extract → lid → filters →
  pii), in-process as `process_shard` runs them, the Parquet writer left out; variants change
  only `stages.extract`.
- **datatrove**: WarcReader → Trafilatura(favour_precision, 5 s) → LanguageFilter (keep all) →
  GopherRepetition → GopherQuality → C4 (no terminal-punctuation rule, as FineWeb ran it) →
  FineWebQuality → PIIFormatter, by `LocalPipelineExecutor(tasks=1, workers=1)`, no writer.
- **Inputs**, written once and read by both: "real" is every page gristmill's reader finds in
  `warc/real` and `warc/more` (the ARC twin of the IAH crawl left out: same pages), re-packed as
  per-record-gzip WARC responses tagged text/html (datatrove's reader reads no ARC and sniffs
  untagged payloads with libmagic); "packed" is `warc/packed` as bench_extract.py writes it.
- **Speed** is pages read per wall-clock second on the pinned core, fastest of `--rounds`
  interleaved rounds, each run in a fresh process (setup included).
- **Quality**: each pipeline's text right after extraction is scored on the gold pages
  (scrapinghub token F1, trafilatura snippet F1), as bench_extract.py scores them.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import gristmill.core.env  # noqa: F401  (offline hub, HF_HOME: before datatrove)
import yaml

from gristmill.stages.base import DocStage
from gristmill.stages.extract import decode_html, main_content

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.bench_extract import PACKED, Gold, write_bench_input  # noqa: E402
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402
from bench.gold import mean_token_scores, total_snippet_counts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REAL_DIRS = ("real", "more")
SKIP_SUFFIXES = (".wat", ".wet", ".wat.gz", ".wet.gz")
TWINS = ("aut-IAH-20080430204825-00000-blackbook.arc.gz",)  # the same crawl as its .warc.gz
EXTRACT_TIMEOUT_S = 5.0


@dataclass
class Variant:
    name: str
    engine: str  # "gristmill" | "datatrove"
    extract: dict = field(default_factory=dict)  # overrides of configs/sample.yaml's stages.extract


VARIANTS = [
    Variant("gristmill default (fallback: resiliparse where the fast text falls short)", "gristmill"),
    Variant("gristmill, fallback: trafilatura where the fast text falls short", "gristmill",
            {"fallback": "trafilatura"}),
    Variant("gristmill before: trafilatura's fallbacks for fast texts < 1200 chars", "gristmill",
            {"fallback": "trafilatura", "fallback_below_share": 0}),
    Variant("gristmill, no fallback", "gristmill", {"fallback_below_chars": 0}),
    Variant("gristmill with resiliparse alone as the extractor (as DCLM)", "gristmill", {"engine": "resiliparse"}),
    Variant("datatrove FineWeb-style", "datatrove"),
]


class ResiliparseExtract(DocStage):
    """Bench only: the extract stage with resiliparse's main content for every page."""

    name = "extract"

    def apply(self, doc: dict) -> str | None:
        html, doc["charset"], _ = decode_html(doc.pop("html"), doc.get("charset"))
        doc["text"] = main_content(html)
        return None if doc["text"].strip() else "empty_text"


# --- inputs ----------------------------------------------------------------------------------------


def real_crawl_files(data: Path) -> list[Path]:
    files = [p for d in REAL_DIRS for p in sorted((data / "warc" / d).iterdir())]
    return [p for p in files if not p.name.endswith(SKIP_SUFFIXES) and p.name not in TWINS]


def pack_real_pages(files: list[Path], dest: Path) -> dict[str, int]:
    """Every page gristmill's reader keeps from `files`, as one per-record-gzip WARC of text/html
    responses (body and charset as read); pages per file."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from gristmill.stages.ingest import read_all

    counts = {}
    with open(dest, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for path in files:
            docs, _, _ = read_all(str(path))
            counts[path.name] = len(docs)
            for doc in docs:
                ctype = "text/html" + (f"; charset={doc['charset']}" if doc["charset"] else "")
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
                date = doc["warc_date"].strftime("%Y-%m-%dT%H:%M:%SZ") if doc["warc_date"] else None
                headers = {"WARC-Identified-Payload-Type": "text/html", **({"WARC-Date": date} if date else {})}
                writer.write_record(writer.create_warc_record(
                    doc["url"], "response", payload=io.BytesIO(doc["html"]), http_headers=http,
                    warc_headers_dict=headers))
    return counts


# --- the two chains ------------------------------------------------------------------------------


@dataclass
class Output:
    pages: int  # pages read
    kept: int  # documents out of the chain
    texts: dict[str, str]  # WARC-Record-ID → text right after extraction
    events: dict[str, int] = field(default_factory=dict)


def run_gristmill(variant: Variant, inputs: list[Path]) -> Output:
    from gristmill.pipeline.config import parse_config
    from gristmill.pipeline.shard import build_doc_stages
    from gristmill.core.stats import RunStats
    from gristmill.stages.ingest import WarcIngest

    raw = yaml.safe_load((ROOT / "configs" / "sample.yaml").read_text())
    stages = {k: v for k, v in raw["stages"].items() if k not in ("dedup", "tokenize")}
    overrides = {k: v for k, v in variant.extract.items() if k != "engine"}
    stages["extract"] = {**stages["extract"], "timeout_s": EXTRACT_TIMEOUT_S, **overrides}
    cfg = parse_config({"inputs": [{"name": "bench", "paths": [str(p) for p in inputs]}], "stages": stages})
    stats, texts, kept = RunStats(), {}, 0
    ingest, chain = WarcIngest(cfg.stages.ingest, "bench"), build_doc_stages(cfg)
    if variant.extract.get("engine") == "resiliparse":
        chain = [ResiliparseExtract() if s.name == "extract" else s for s in chain]
    extract_at = next(i for i, s in enumerate(chain) if s.name == "extract") + 1

    def tap(docs):
        for doc in docs:
            texts[doc["warc_record_id"]] = doc["text"]
            yield doc

    for path in inputs:
        docs = ingest.read(str(path), stats.stage("ingest"), [])
        for i, stage in enumerate(chain):
            docs = stage.run(docs, stats.stage(stage.name), [])
            if i + 1 == extract_at:
                docs = tap(docs)
        kept += sum(1 for _ in docs)
    events = Counter()
    for stage in chain:
        events.update(getattr(stage, "events", {}))
    return Output(stats.stage("ingest").docs_out, kept, texts, dict(events))


def run_datatrove(variant: Variant, inputs: list[Path]) -> Output:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.base import PipelineStep
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter, FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter, LanguageFilter,
    )
    from datatrove.pipeline.formatters import PIIFormatter
    from datatrove.pipeline.readers import WarcReader

    from gristmill.stages.lid import lid176_path

    texts: dict[str, str] = {}
    kept = [0]

    class Tap(PipelineStep):
        name = "tap"

        def __init__(self, store: bool):
            super().__init__()
            self.store = store

        def run(self, data, rank=0, world_size=1):
            for doc in data:
                if self.store:
                    texts[doc.id] = doc.text
                else:
                    kept[0] += 1
                yield doc

    language = LanguageFilter(None, language_threshold=0.0)
    language.model.MODEL_URL = str(lid176_path())  # the same local model: no download
    steps = [
        WarcReader(str(inputs[0].parent), glob_pattern="*.warc.gz"),
        Trafilatura(favour_precision=True, timeout=EXTRACT_TIMEOUT_S),
        Tap(store=True),
        language,
        GopherRepetitionFilter(),
        GopherQualityFilter(),
        C4QualityFilter(filter_no_terminal_punct=False),
        FineWebQualityFilter(),
        PIIFormatter(),
        Tap(store=False),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        stats = LocalPipelineExecutor(steps, tasks=1, workers=1, logging_dir=f"{tmp}/logs").run().stats
    return Output(stats[0]["documents"].total, kept[0], texts)


RUNNERS = {"gristmill": run_gristmill, "datatrove": run_datatrove}


@dataclass
class Timed:
    output: Output
    seconds: float
    rounds: list[float] = field(default_factory=list)


def timed(variant: Variant, inputs: list[Path]) -> Timed:
    t0 = time.perf_counter()
    output = RUNNERS[variant.engine](variant, inputs)
    return Timed(output, time.perf_counter() - t0)


def fastest_of_rounds(variants: list[Variant], inputs: list[Path], rounds: int) -> list[Timed]:
    """Every variant once per round, each in a fresh process pinned to the bench core."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    from bench.common import fastest_of_each, pin_to_core

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                             max_tasks_per_child=1, initializer=pin_to_core) as pool:
        runs = list(pool.map(timed, variants * rounds, repeat(inputs)))
    return [replace(best, rounds=each) for best, each in fastest_of_each(runs, len(variants))]


# --- report --------------------------------------------------------------------------------------


def row(variant: Variant, run: Timed, baseline: Timed, gold: Gold | None) -> dict:
    out = {
        "variant": variant.name, "engine": variant.engine, "extract": variant.extract,
        "pages": run.output.pages, "kept": run.output.kept, "seconds": round(run.seconds, 2),
        "rounds": run.rounds, "pages_per_s": round(run.output.pages / run.seconds, 2),
        "vs_datatrove": round((run.output.pages / run.seconds) / (baseline.output.pages / baseline.seconds), 2),
        "events": run.output.events,
    }
    if gold is not None:
        out["scrapinghub_f1"] = round(mean_token_scores(run.output.texts, gold.scrapinghub).f1, 4)
        out["snippet_f1"] = round(total_snippet_counts(run.output.texts, gold.trafilatura).f1, 4)
    return out


HEADERS = ["input", "chain", "pages", "kept", "s", "pages/s/core", "vs datatrove", "fallbacks",
           "scrapinghub F1", "snippet F1"]


def table(report: dict) -> str:
    rows = []
    for name, results in report["inputs"].items():
        for r in results["results"]:
            ev = r["events"]
            fb = sum(n for k, n in ev.items() if k.startswith("fallback_extraction"))
            rows.append([name, r["variant"], r["pages"], r["kept"], r["seconds"], r["pages_per_s"],
                         f"{r['vs_datatrove']:.2f}×", fb if r["engine"] == "gristmill" else "all",
                         r.get("scrapinghub_f1", ""), r.get("snippet_f1", "")])
    return markdown_table(HEADERS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", choices=("real", "packed"), default=None)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "chain.json"))
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    args = parser.parse_args()

    report = {"machine": machine_notes(["datatrove", "trafilatura", "resiliparse", "warcio"]),
              "rounds": args.rounds, "inputs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        real_dir, packed_dir = Path(tmp, "real"), Path(tmp, "packed")
        real_dir.mkdir()
        packed_dir.mkdir()
        sets: dict[str, tuple[list[Path], Gold | None]] = {}
        if args.only in (None, "real"):
            counts = pack_real_pages(real_crawl_files(args.data), real_dir / "real_pages.warc.gz")
            report["real_pages_per_file"] = counts
            sets["real"] = ([real_dir / "real_pages.warc.gz"], None)
        if args.only in (None, "packed"):
            inputs = {key: packed_dir / name for key, name in PACKED.items()}
            for key, path in inputs.items():
                write_bench_input(args.data / "warc" / "packed" / PACKED[key], path, None)
            sets["packed"] = (list(inputs.values()), Gold.load(inputs, args.data))
        for name, (inputs, gold) in sets.items():
            runs = fastest_of_rounds(VARIANTS, inputs, args.rounds)
            baseline = runs[[v.engine for v in VARIANTS].index("datatrove")]
            report["inputs"][name] = {"results": [row(v, r, baseline, gold) for v, r in zip(VARIANTS, runs)]}
            print(f"{name}: done", flush=True)
    write_json(args.out, report)
    print(table(report))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
