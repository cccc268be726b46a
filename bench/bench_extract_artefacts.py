"""Extraction artefacts: how often the extracted text comes as one flattened line, repeats a line the
page holds fewer times, or ends in a list of link lines, and what the stage's remedies (the
one-line fallback in gristmill/stages/extract.py, the cleanup in extract_artefacts.py) do to
extraction quality, to the filters' drops and to time.

    python bench/bench_extract_artefacts.py [--out bench/results/extract_artefacts.json]

- **Gold pages**: the 708 pages of `warc/packed/` (clean by construction), extracted as the stage
  does with the default config, one-line fallback and cleanup off; then with each `one_line_chars`
  candidate (cleanup at its default), and each `link_tail_lines` candidate (one-line at its default).
  Quality: mean token F1 on the scrapinghub gold, snippet F1 on the trafilatura gold. Drops: the
  filters block of `configs/sample.yaml` on the texts (every drop of a gold page is a false one).
- **Cross-validation**: the pages fall in two halves by the SHA-1 of their URL; `one_line_chars`
  and `link_tail_lines` are each chosen on one half (best snippet F1, then fewest drops, then the
  most conservative value) and scored on the other, both ways. The repeated-line rule has no
  tuned threshold.
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
from gristmill.stages.extract import ExtractConfig, TrafilaturaExtract, decode_html
from gristmill.stages.extract_artefacts import without_artefacts
from gristmill.stages.ingest import WarcIngest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `bench` when run as a script
from bench.bench_filter_drops import decide, half, inputs, sample_filters  # noqa: E402
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402
from bench.gold import (  # noqa: E402
    SnippetCounts, load_scrapinghub_gold, load_trafilatura_gold, snippet_scores, token_f1,
)

TAIL_CANDIDATES = (0, 6, 5, 4, 3, 2)  # link_tail_lines, most conservative first (0: off)
LINE_CANDIDATES = (0, 4000, 2000, 1000, 500)  # one_line_chars, likewise
DEFAULTS = {"link_tail_lines": 4, "one_line_chars": 4000}


def pages(paths: list[str]) -> list[dict]:
    """Every page as the stage extracts it (cleanup off), after LID, with its decoded HTML and the
    extraction's time; a page found twice (the same crawl as ARC and WARC) counts once."""
    cfg = parse_config({"inputs": [{"name": "bench", "paths": paths}],
                        "stages": {"ingest": {}, "extract": {"timeout_s": 30.0, "isolate": False, "one_line_chars": 0,
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


def in_lines(docs: list[dict], one_line_chars: int) -> dict[int, str]:
    """Each text after the stage's one-line fallback at this threshold (0: off)."""
    stage = TrafilaturaExtract(ExtractConfig(isolate=False, one_line_chars=one_line_chars))
    return {d["key"]: stage.in_lines(d["text"], d["html"]) for d in docs}


def cleaned(docs: list[dict], texts: dict[int, str], link_tail_lines: int) -> tuple[dict[int, str], Counter, list[float]]:
    out, removed, seconds = {}, Counter(), []
    for d in docs:
        t0 = time.perf_counter()
        out[d["key"]], r = without_artefacts(texts[d["key"]], d["html"], link_tail_lines)
        seconds.append(time.perf_counter() - t0)
        removed.update(r)
    return out, removed, seconds


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


def choose(by_n: dict[int, dict], candidates: tuple[int, ...]) -> int:
    """Best snippet F1, then fewest drops; ties go to the most conservative candidate."""
    return min(candidates, key=lambda n: (-by_n[n]["snippet_f1"], by_n[n]["dropped"], candidates.index(n)))


def sweep(docs: list[dict], gold: tuple, texts_for: dict) -> tuple[dict, dict]:
    """Scores of each candidate (all pages and per half), and the cross-validated choice."""
    halves = (("all", None), ("A", 0), ("B", 1))
    table = {n: {h: scores(docs, texts, gold, w) for h, w in halves} for n, texts in texts_for.items()}
    candidates = tuple(n for n in texts_for if n != "off")
    cv = {}
    for tune, score in (("A", "B"), ("B", "A")):
        n = choose({c: table[c][tune] for c in candidates}, candidates)
        cv[f"tuned on {tune}"] = {"value": n, f"held-out {score}": table[n][score],
                                  f"held-out {score}, off": table["off"][score]}
    return table, cv


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def changed_crawl_pages(docs: list[dict]) -> list[dict]:
    texts, _, _ = cleaned(docs, in_lines(docs, DEFAULTS["one_line_chars"]), DEFAULTS["link_tail_lines"])
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
    raw = {d["key"]: d["text"] for d in docs}
    lined = {n: in_lines(docs, n) for n in LINE_CANDIDATES}
    line_table, line_cv = sweep(docs, gold, {"off": cleaned(docs, raw, DEFAULTS["link_tail_lines"])[0],
                                             **{n: cleaned(docs, lined[n], DEFAULTS["link_tail_lines"])[0]
                                                for n in LINE_CANDIDATES}})
    default_lined = lined[DEFAULTS["one_line_chars"]]
    tail_table, tail_cv = sweep(docs, gold, {"off": default_lined,
                                             **{n: cleaned(docs, default_lined, n)[0] for n in TAIL_CANDIDATES}})
    everything_off = {h: scores(docs, raw, gold, w) for h, w in (("all", None), ("A", 0), ("B", 1))}
    texts, removed, seconds = cleaned(docs, default_lined, DEFAULTS["link_tail_lines"])
    extract_s = [d["extract_s"] for d in docs]
    one_line = [d for d in docs if "\n" not in d["text"].strip()]
    report = {
        "command": "python bench/bench_extract_artefacts.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_notes(["trafilatura", "resiliparse"]),
        "gold_pages": len(docs),
        "defaults": DEFAULTS,
        "one_line_texts": {f">= {n} chars": sum(len(d["text"]) >= n for d in one_line) for n in (200, 500, 1000, 2000)},
        "one_line_replaced_at_default": sum(default_lined[d["key"]] != d["text"] for d in docs),
        "pages_with_repeated_lines": sum(1 for d in docs if without_artefacts(d["text"], d["html"], 0)[1]["repeated_line"]),
        "removed_at_default": dict(removed),
        "everything_off": everything_off,
        "everything_on": line_table[DEFAULTS["one_line_chars"]],
        "by_one_line_chars": {str(k): v for k, v in line_table.items()},
        "one_line_cross_validation": line_cv,
        "by_link_tail_lines": {str(k): v for k, v in tail_table.items()},
        "link_tail_cross_validation": tail_cv,
        "cleanup_ms": {"mean": round(1000 * sum(seconds) / len(seconds), 3),
                       "p99": round(1000 * percentile(seconds, 0.99), 3), "max": round(1000 * max(seconds), 3)},
        "extract_ms": {"mean": round(1000 * sum(extract_s) / len(extract_s), 3),
                       "p99": round(1000 * percentile(extract_s, 0.99), 3), "max": round(1000 * max(extract_s), 3)},
        "crawl_pages_changed": changed_crawl_pages(pages(inputs(DATA_DIR)["crawl"])),
    }
    write_json(args.out, report)
    for name, table in (("one_line_chars", line_table), ("link_tail_lines", tail_table)):
        rows = [[k, v["all"]["token_f1"], v["all"]["snippet_f1"], v["all"]["dropped"], v["A"]["dropped"],
                 v["B"]["dropped"]] for k, v in table.items()]
        print(markdown_table([name, "token F1", "snippet F1", "gold dropped", "A", "B"], rows))
    print({k: report[k] for k in ("gold_pages", "everything_off", "one_line_texts", "one_line_replaced_at_default",
                                   "pages_with_repeated_lines", "removed_at_default", "cleanup_ms", "extract_ms")})
    print(line_cv)
    print(tail_cv)
    for c in report["crawl_pages_changed"]:
        print(c)


if __name__ == "__main__":
    main()
