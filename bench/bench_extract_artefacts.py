"""Extraction artefacts: how often the extracted text repeats a line the page holds fewer times, or
ends in a list of link lines, and what removing them (gristmill/stages/extract_artefacts.py) does
to extraction quality, to the filters' drops and to time.

    python bench/bench_extract_artefacts.py [--out bench/results/extract_artefacts.json]

- **Gold pages**: the 708 pages of `warc/packed/` (clean by construction), extracted as the stage
  does with the default config, cleanup off; then cleaned with each `link_tail_lines` candidate.
  Quality: mean token F1 on the scrapinghub gold, snippet F1 on the trafilatura gold. Drops: the
  filters block of `configs/sample.yaml` on the texts (every drop of a gold page is a false one).
- **Cross-validation**: the pages fall in two halves by the SHA-1 of their URL; `link_tail_lines`
  is chosen on one half (best snippet F1, then fewest drops, then the most conservative value)
  and scored on the other, both ways. The repeated-line rule has no tuned threshold.
- **Real crawl**: every page of `warc/real/` and `warc/more/` the cleanup changes, with what it
  removed and the filters' verdict before and after, to be read by hand.
- **Time**: the cleanup's cost per page (mean, p99, max) against the stage's own extraction.
"""

from __future__ import annotations

import argparse
import difflib
import sys
import time
from collections import Counter
from pathlib import Path

import gristmill.core.env  # noqa: F401  (offline hubs before anything loads a model)
from gristmill.core.stats import RunStats
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.shard import build_doc_stages
from gristmill.stages.extract import TrafilaturaExtract, decode_html
from gristmill.stages.extract_artefacts import without_artefacts
from gristmill.stages.ingest import WarcIngest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `bench` when run as a script
from bench.bench_filter_drops import decide, half, inputs, sample_filters  # noqa: E402
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402
from bench.gold import (  # noqa: E402
    SnippetCounts, load_scrapinghub_gold, load_trafilatura_gold, snippet_scores, token_f1,
)

CANDIDATES = (0, 6, 5, 4, 3, 2)  # link_tail_lines, most conservative first (0: off)


def pages(paths: list[str]) -> list[dict]:
    """Every page as the stage extracts it (cleanup off), after LID, with its decoded HTML and the
    extraction's time; a page found twice (the same crawl as ARC and WARC) counts once."""
    cfg = parse_config({"inputs": [{"name": "bench", "paths": paths}],
                        "stages": {"ingest": {}, "extract": {"timeout_s": 30.0, "isolate": False,
                                                             "remove_artefacts": False}, "lid": {}, "write": {}}})
    ingest, chain = WarcIngest(cfg.stages.ingest, "bench"), build_doc_stages(cfg)
    extract = next(s for s in chain if isinstance(s, TrafilaturaExtract))
    out, seen = [], set()
    for path in paths:
        stats = RunStats()
        docs = list(ingest.read(path, stats.stage("ingest"), []))
        html = {d["warc_record_id"]: decode_html(d["html"], d.get("charset"))[0] for d in docs}
        stream = iter(docs)
        for stage in chain:
            stream = stage.run(stream, stats.stage(stage.name), [])
        for d in stream:
            if (d["url"], d["text"]) in seen:
                continue
            seen.add((d["url"], d["text"]))
            t0 = time.perf_counter()
            extract.main_text(html[d["warc_record_id"]])
            out.append({"key": len(out), "id": d["warc_record_id"], "url": d["url"], "text": d["text"], "language": d["language"],
                        "html": html[d["warc_record_id"]], "extract_s": time.perf_counter() - t0})
    return out


def cleaned(docs: list[dict], link_tail_lines: int) -> tuple[dict[int, str], Counter, list[float]]:
    texts, removed, seconds = {}, Counter(), []
    for d in docs:
        t0 = time.perf_counter()
        texts[d["key"]], r = without_artefacts(d["text"], d["html"], link_tail_lines)
        seconds.append(time.perf_counter() - t0)
        removed.update(r)
    return texts, removed, seconds


def scores(docs: list[dict], texts: dict[int, str], gold: tuple[dict, dict], which: int | None) -> dict:
    shub, traf = gold
    chosen = [d for d in docs if which is None or half(d["url"]) == which]
    f1 = [token_f1(texts[d["key"]], shub[d["id"]])[2] for d in chosen if d["id"] in shub]
    snippets = sum((snippet_scores(texts[d["key"]], traf[d["id"]].with_, traf[d["id"]].without)
                    for d in chosen if d["id"] in traf), SnippetCounts())
    verdicts = decide([{"url": d["url"], "text": texts[d["key"]], "language": d["language"]} for d in chosen],
                      sample_filters("paper"))
    return {"token_f1": round(sum(f1) / len(f1), 4), "snippet_f1": round(snippets.f1, 4),
            "dropped": sum(v["first"] is not None for v in verdicts), "pages": len(chosen)}


def choose(by_n: dict[int, dict]) -> int:
    """Best snippet F1, then fewest drops; ties go to the most conservative candidate."""
    return min(CANDIDATES, key=lambda n: (-by_n[n]["snippet_f1"], by_n[n]["dropped"], CANDIDATES.index(n)))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def changed_crawl_pages(docs: list[dict], link_tail_lines: int) -> list[dict]:
    texts, _, _ = cleaned(docs, link_tail_lines)
    changed = [d for d in docs if texts[d["key"]] != d["text"]]
    cfg = sample_filters("paper")
    before = decide([{"url": d["url"], "text": d["text"], "language": d["language"]} for d in changed], cfg)
    after = decide([{"url": d["url"], "text": texts[d["key"]], "language": d["language"]} for d in changed], cfg)
    out = []
    for d, b, a in zip(changed, before, after):
        gone = [line[2:] for line in difflib.ndiff(d["text"].split("\n"), texts[d["key"]].split("\n"))
                if line.startswith("- ")]
        out.append({"url": d["url"], "lines_removed": len(gone), "first_removed": [g[:100] for g in gone[:3]],
                    "verdict_before": b["first"], "verdict_after": a["first"]})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "extract_artefacts.json")
    args = p.parse_args()
    packed = DATA_DIR / "warc" / "packed"
    gold = (load_scrapinghub_gold(DATA_DIR / "extraction/scrapinghub/ground-truth.json",
                                  packed / "scrapinghub_pages.warc.gz"),
            load_trafilatura_gold(DATA_DIR / "extraction/trafilatura/evaldata.json",
                                  packed / "trafilatura_pages.warc.gz"))
    docs = pages(inputs(DATA_DIR)["gold"])
    runs = {n: cleaned(docs, n) for n in CANDIDATES}
    base = {d["key"]: d["text"] for d in docs}
    table = {"off": {h: scores(docs, base, gold, w) for h, w in (("all", None), ("A", 0), ("B", 1))}}
    for n in CANDIDATES:
        table[n] = {h: scores(docs, runs[n][0], gold, w) for h, w in (("all", None), ("A", 0), ("B", 1))}
    cv = {}
    for tune, score in (("A", "B"), ("B", "A")):
        n = choose({c: table[c][tune] for c in CANDIDATES})
        cv[f"tuned on {tune}"] = {"link_tail_lines": n, f"held-out {score}": table[n][score],
                                  f"held-out {score}, cleanup off": table["off"][score]}
    default = 4
    texts, removed, seconds = runs[default]
    extract_s = [d["extract_s"] for d in docs]
    repeated_pages = sum(1 for d in docs if without_artefacts(d["text"], d["html"], 0)[1]["repeated_line"])
    report = {
        "command": "python bench/bench_extract_artefacts.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_notes(["trafilatura", "resiliparse"]),
        "gold_pages": len(docs),
        "pages_with_repeated_lines": repeated_pages,
        "removed_at_default": dict(removed),
        "pages_changed_at_default": sum(texts[d["key"]] != d["text"] for d in docs),
        "by_link_tail_lines": {str(k): v for k, v in table.items()},
        "cross_validation": cv,
        "cleanup_ms": {"mean": round(1000 * sum(seconds) / len(seconds), 3), "p99": round(1000 * percentile(seconds, 0.99), 3),
                       "max": round(1000 * max(seconds), 3)},
        "extract_ms": {"mean": round(1000 * sum(extract_s) / len(extract_s), 3),
                       "p99": round(1000 * percentile(extract_s, 0.99), 3), "max": round(1000 * max(extract_s), 3)},
        "crawl_pages_changed": changed_crawl_pages(pages(inputs(DATA_DIR)["crawl"]), default),
    }
    write_json(args.out, report)
    rows = [[k, v["all"]["token_f1"], v["all"]["snippet_f1"], v["all"]["dropped"], v["A"]["dropped"], v["B"]["dropped"]]
            for k, v in table.items()]
    print(markdown_table(["link_tail_lines", "token F1", "snippet F1", "gold dropped", "A", "B"], rows))
    print({k: report[k] for k in ("gold_pages", "pages_with_repeated_lines", "removed_at_default",
                                   "pages_changed_at_default", "cleanup_ms", "extract_ms")})
    print(cv)
    for c in report["crawl_pages_changed"]:
        print(c)


if __name__ == "__main__":
    main()
