"""The extraction fallback's thresholds, chosen by 2-fold cross-validation on the gold pages.

    python bench/bench_fallback_cv.py [--out bench/results/fallback_cv.json]

stages/extract.py replaces trafilatura's fast text by resiliparse's main-content estimate when
the fast text is under `fallback_below_chars`, does not read as a whole article, and is under
`fallback_below_share` of the estimate. Those thresholds were swept on the same gold pages they
are scored on. Here they are chosen on one half of the pages and scored on the other, both ways.

1. Every packed gold page (scrapinghub and trafilatura sets, as bench_extract.py writes them) is
   ingested and decoded as the pipeline does; trafilatura's fast text, resiliparse's estimate,
   `reads_as_article(fast text)` and the markup check are computed once, with the stage's own
   functions and trafilatura settings. The decision is then replayed here for every threshold
   setting; at the defaults the replay is asserted to give, page for page, the text the stage
   itself outputs (TrafilaturaExtract with the default ExtractConfig, run on the same pages).
2. Pages split into two halves by sha1 of the packed HTML file name.
3. Grid: chars {0, 400, 800, 1200, 1600, 2400} × share {0, 0.15, 0.3, 0.45, 0.6} × article rule
   {on, off}. On each half the best setting is picked by snippet F1 (trafilatura set, counts
   pooled over the half's pages as bench/gold.py and every other bench do), ties by mean
   scrapinghub token F1, then by fewer fallbacks, then by grid order; it is scored on the other
   half.
4. The held-out figure pools both folds: every page gets the text of the setting tuned on the
   other half, and the whole gold set is scored once.

The stage ties the article rule to `fallback_below_share > 0` (share 0 means "by length alone",
no article rule); settings with share > 0 and the article rule off, or share 0 with it on, are
bench-only variants (`in_stage: false` in the JSON): they would need a code change.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import gristmill.core.env  # noqa: F401
import trafilatura

from gristmill.core.stats import RunStats
from gristmill.pipeline.config import parse_config
from gristmill.stages.extract import MARKUP, TrafilaturaExtract, decode_html, main_content, reads_as_article
from gristmill.stages.ingest import WarcIngest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.bench_extract import PACKED, Gold, write_bench_input  # noqa: E402
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402
from bench.gold import SnippetCounts, snippet_scores, token_f1  # noqa: E402

CHARS = (0, 400, 800, 1200, 1600, 2400)
SHARES = (0.0, 0.15, 0.3, 0.45, 0.6)
ARTICLE = (True, False)
ALWAYS = 10**12  # chars threshold above every page: always fall back


@dataclass(frozen=True)
class Setting:
    chars: int
    share: float
    article: bool

    @property
    def in_stage(self) -> bool:
        return self.article == (self.share > 0)

    def label(self) -> str:
        chars = "always" if self.chars >= ALWAYS else str(self.chars)
        return f"chars {chars}, share {self.share:g}, article {'on' if self.article else 'off'}"


DEFAULT = Setting(1200, 0.3, True)
NO_FALLBACK = Setting(0, 0.0, False)
ALWAYS_FALLBACK = Setting(ALWAYS, 0.0, False)
GRID = [Setting(c, s, a) for c, s, a in product(CHARS, SHARES, ARTICLE)]


@dataclass
class Page:
    rid: str  # WARC-Record-ID
    name: str  # packed HTML file name (the page id used for the split)
    fast: str  # trafilatura's fast text ("" when none)
    estimate: str  # resiliparse's main-content estimate
    article: bool  # reads_as_article(fast)
    markup: bool  # tags in the page's head: the estimate may replace the fast text
    half: int


def falls_back(p: Page, s: Setting) -> bool:
    """Whether the stage's decision, at setting `s`, replaces the fast text (stages/extract.py
    TrafilaturaExtract.extract, with the article rule as its own switch)."""
    if len(p.fast) >= s.chars:
        return False
    if s.article and p.article:
        return False
    if s.share > 0 and len(p.fast) >= s.share * len(p.estimate):
        return False
    return True


def output_text(p: Page, fallback: bool, min_chars: int) -> str | None:
    """The stage's output: the estimate where it falls back (if any and the page has markup),
    else the fast text; None where the stage drops the page as `empty_text`."""
    text = p.estimate if fallback and p.estimate.strip() and p.markup else p.fast
    return text if text and len(text.strip()) >= min_chars else None


# --- computing every page's pieces once ------------------------------------------------------------


def ingest_docs(inputs: list[Path], cfg) -> list[dict]:
    ingest, docs = WarcIngest(cfg.stages.ingest, "bench"), []
    stats = RunStats()
    for path in inputs:
        docs.extend(ingest.read(str(path), stats.stage("ingest"), []))
    return docs


def stage_texts(docs: list[dict], cfg) -> tuple[dict[str, str], dict[str, int]]:
    """The stage itself, default config, in process (isolate off: the same `extract`), without the
    remedies that act after the fallback's decision (one-line texts, artefacts: their own bench,
    bench_extract_artefacts.py)."""
    stage = TrafilaturaExtract(cfg.stages.extract.model_copy(
        update={"isolate": False, "one_line_chars": 0, "remove_artefacts": False}))
    texts = {}
    for doc in stage.run(({**d} for d in docs), RunStats().stage("extract"), []):
        texts[doc["warc_record_id"]] = doc["text"]
    return texts, dict(stage.events)


def pieces(docs: list[dict], cfg, names: dict[str, str]) -> list[Page]:
    stage = TrafilaturaExtract(cfg.stages.extract.model_copy(update={"isolate": False}))
    pages = []
    for doc in docs:
        html, _, _ = decode_html(doc["html"], doc.get("charset"))
        fast = trafilatura.extract(html, no_fallback=True, **stage.kwargs) or ""
        name = names.get(doc["warc_record_id"], doc["warc_record_id"])
        pages.append(Page(
            doc["warc_record_id"], name, fast, main_content(html), reads_as_article(fast),
            bool(MARKUP.search(html, 0, 4096)), int(hashlib.sha1(name.encode()).hexdigest(), 16) % 2,
        ))
    return pages


# --- scoring ---------------------------------------------------------------------------------------


@dataclass
class Scored:
    """Per page, the gold scores of its two possible outputs (index: falls back or not)."""

    token: dict[str, tuple[float, float]]  # rid → token F1 (keep fast, fall back)
    snippet: dict[str, tuple[SnippetCounts, SnippetCounts]]


def score_pages(pages: list[Page], gold: Gold, min_chars: int) -> Scored:
    token, snippet = {}, {}
    for p in pages:
        texts = (output_text(p, False, min_chars), output_text(p, True, min_chars))
        if p.rid in gold.scrapinghub:
            token[p.rid] = tuple(token_f1(t, gold.scrapinghub[p.rid])[2] for t in texts)
        if p.rid in gold.trafilatura:
            g = gold.trafilatura[p.rid]
            snippet[p.rid] = tuple(snippet_scores(t, g.with_, g.without) for t in texts)
    return Scored(token, snippet)


def evaluate(pages: list[Page], choose, scored: Scored, gold: Gold) -> dict:
    """Scores of the gold pages among `pages`, page p falling back iff choose(p) (main asserts
    that ingest reads every gold page)."""
    by_rid = {p.rid: p for p in pages}
    tok, snip, fallbacks = [], SnippetCounts(), 0
    for p in pages:
        fallbacks += choose(p)
    for rid in gold.scrapinghub:
        if rid in by_rid:
            tok.append(scored.token[rid][choose(by_rid[rid])])
    for rid, g in gold.trafilatura.items():
        if rid in by_rid:
            snip = snip + scored.snippet[rid][choose(by_rid[rid])]
    return {
        "pages": len(pages),
        "fallbacks": fallbacks,
        "token_f1": sum(tok) / len(tok) if tok else 0.0,
        "token_pages": len(tok),
        "snippet_f1": snip.f1,
        "snippet_pages": sum(1 for p in pages if p.rid in gold.trafilatura),
    }


def rank_key(result: dict, index: int) -> tuple:
    return (-round(result["snippet_f1"], 12), -round(result["token_f1"], 12), result["fallbacks"], index)


def f1s(result: dict) -> str:
    return f"{result['snippet_f1']:.3f} / {result['token_f1']:.3f}"


def rounded(d: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "fallback_cv.json"))
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="shared/data")
    args = parser.parse_args()
    t0 = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="bench-fallback-cv-") as tmp:
        inputs = {key: Path(tmp, name) for key, name in PACKED.items()}
        for key, path in inputs.items():
            write_bench_input(args.data / "warc" / "packed" / PACKED[key], path, None)
        gold = Gold.load(inputs, args.data)
        cfg = parse_config({
            "inputs": [{"name": "bench", "paths": [str(p) for p in inputs.values()]}],
            "stages": {"ingest": {}, "extract": {}, "write": {}},
        })
        docs = ingest_docs(list(inputs.values()), cfg)
    ext = cfg.stages.extract
    assert (ext.fallback_below_chars, ext.fallback_below_share, ext.fallback) == (1200, 0.3, "resiliparse")
    read = {d["warc_record_id"] for d in docs}
    missing = [rid for rid in (*gold.scrapinghub, *gold.trafilatura) if rid not in read]
    assert not missing, f"{len(missing)} gold pages not read by ingest"

    reference, events = stage_texts(docs, cfg)
    pages = pieces(docs, cfg, gold.names)
    pages = [p for p in pages if p.rid in gold.scrapinghub or p.rid in gold.trafilatura]
    for p in pages:  # the replay reproduces the stage at the defaults, page for page
        replayed = output_text(p, falls_back(p, DEFAULT), ext.min_chars)
        assert replayed == reference.get(p.rid), f"replay differs from the stage on {p.name}"
    seconds_pieces = time.perf_counter() - t0

    scored = score_pages(pages, gold, ext.min_chars)
    halves = [[p for p in pages if p.half == h] for h in (0, 1)]

    def at(setting: Setting, subset: list[Page]) -> dict:
        return evaluate(subset, lambda p: falls_back(p, setting), scored, gold)

    folds, chosen, chosen_in_stage = [], {}, {}
    for tune, test in ((0, 1), (1, 0)):
        results = [at(s, halves[tune]) for s in GRID]
        order = sorted(range(len(GRID)), key=lambda i: rank_key(results[i], i))
        best = GRID[order[0]]
        chosen[test] = best  # pages of half `test` get the setting tuned on half `tune`
        best_in_stage = next(GRID[i] for i in order if GRID[i].in_stage)
        chosen_in_stage[test] = best_in_stage
        folds.append({
            "tuned_on_half": tune, "scored_on_half": test,
            "chosen": {**best.__dict__, "in_stage": best.in_stage},
            "chosen_on_tuning_half": rounded(results[order[0]]),
            "chosen_held_out": rounded(at(best, halves[test])),
            "chosen_in_stage": {**best_in_stage.__dict__},
            "chosen_in_stage_held_out": rounded(at(best_in_stage, halves[test])),
            "default_on_tuning_half": rounded(at(DEFAULT, halves[tune])),
            "default_held_out": rounded(at(DEFAULT, halves[test])),
            "no_fallback_held_out": rounded(at(NO_FALLBACK, halves[test])),
            "always_fallback_held_out": rounded(at(ALWAYS_FALLBACK, halves[test])),
            "top5_on_tuning_half": [
                {"setting": GRID[i].label(), **rounded(results[i])} for i in order[:5]
            ],
        })

    cv = evaluate(pages, lambda p: falls_back(p, chosen[p.half]), scored, gold)
    cv_in_stage = evaluate(pages, lambda p: falls_back(p, chosen_in_stage[p.half]), scored, gold)
    whole = {name: at(s, pages) for name, s in
             (("default", DEFAULT), ("no_fallback", NO_FALLBACK), ("always_fallback", ALWAYS_FALLBACK))}
    all_results = [at(s, pages) for s in GRID]
    best_all = min(range(len(GRID)), key=lambda i: rank_key(all_results[i], i))
    by_half = {name: [at(s, halves[h]) for h in (0, 1)] for name, s in
               (("default", DEFAULT), ("no_fallback", NO_FALLBACK), ("always_fallback", ALWAYS_FALLBACK))}

    rows = []
    for name, label in (("default", f"defaults ({DEFAULT.label()})"), ("no_fallback", "no fallback"),
                        ("always_fallback", "always fallback")):
        h0, h1 = by_half[name]
        rows.append([label, f"{h0['snippet_f1']:.3f} / {h0['token_f1']:.3f}",
                     f"{h1['snippet_f1']:.3f} / {h1['token_f1']:.3f}",
                     f"{whole[name]['snippet_f1']:.3f} / {whole[name]['token_f1']:.3f}",
                     whole[name]["fallbacks"]])
    rows.append([f"CV-chosen: half 1 gets [{chosen[1].label()}], half 0 gets [{chosen[0].label()}]",
                 f1s(folds[1]["chosen_held_out"]), f1s(folds[0]["chosen_held_out"]),
                 f"{f1s(cv)} (held out)", cv["fallbacks"]])
    rows.append([f"CV-chosen among settings the stage can express: half 1 gets "
                 f"[{chosen_in_stage[1].label()}], half 0 gets [{chosen_in_stage[0].label()}]",
                 f1s(folds[1]["chosen_in_stage_held_out"]), f1s(folds[0]["chosen_in_stage_held_out"]),
                 f"{f1s(cv_in_stage)} (held out)", cv_in_stage["fallbacks"]])
    rows.append([f"in-sample best on all pages ({GRID[best_all].label()})", "", "",
                 f"{all_results[best_all]['snippet_f1']:.3f} / {all_results[best_all]['token_f1']:.3f}",
                 all_results[best_all]["fallbacks"]])
    headers = ["setting", "half 0 snippet / token F1", "half 1 snippet / token F1",
               "all pages snippet / token F1", "fallbacks"]
    table = markdown_table(headers, rows)

    report = {
        "date": datetime.date.today().isoformat(),
        "machine": machine_notes(["trafilatura", "resiliparse", "warcio"]),
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_computing_pieces": round(seconds_pieces, 1),
        "pages": {"all": len(pages), "half_0": len(halves[0]), "half_1": len(halves[1]),
                  "scrapinghub_per_half": [sum(p.rid in gold.scrapinghub for p in h) for h in halves],
                  "trafilatura_per_half": [sum(p.rid in gold.trafilatura for p in h) for h in halves]},
        "stage_events_at_defaults": events,
        "replay_matches_stage_at_defaults": True,
        "selection": "max pooled snippet F1, then mean token F1, then fewer fallbacks, then grid order",
        "grid": {"chars": CHARS, "share": SHARES, "article": ARTICLE},
        "by_half": {k: [rounded(r) for r in v] for k, v in by_half.items()},
        "all_pages": {k: rounded(v) for k, v in whole.items()},
        "folds": folds,
        "cross_validated_held_out": rounded(cv),
        "cross_validated_in_stage_held_out": rounded(cv_in_stage),
        "held_out_gain_over_no_fallback": {
            "snippet_f1": round(cv["snippet_f1"] - whole["no_fallback"]["snippet_f1"], 4),
            "token_f1": round(cv["token_f1"] - whole["no_fallback"]["token_f1"], 4),
        },
        "held_out_in_stage_gain_over_no_fallback": {
            "snippet_f1": round(cv_in_stage["snippet_f1"] - whole["no_fallback"]["snippet_f1"], 4),
            "token_f1": round(cv_in_stage["token_f1"] - whole["no_fallback"]["token_f1"], 4),
        },
        "defaults_gain_over_no_fallback_all_pages": {
            "snippet_f1": round(whole["default"]["snippet_f1"] - whole["no_fallback"]["snippet_f1"], 4),
            "token_f1": round(whole["default"]["token_f1"] - whole["no_fallback"]["token_f1"], 4),
        },
        "in_sample_best_all_pages": {"setting": GRID[best_all].label(), **rounded(all_results[best_all])},
        "grid_all_pages": [{"setting": s.label(), "in_stage": s.in_stage, **rounded(r)}
                           for s, r in zip(GRID, all_results)],
        "table": table,
    }
    write_json(args.out, report)
    print(table)
    print()
    for f in folds:
        setting = Setting(**{k: f["chosen"][k] for k in ("chars", "share", "article")})
        print(f"tuned on half {f['tuned_on_half']}: {setting.label()} → snippet / token F1 "
              f"{f1s(f['chosen_on_tuning_half'])} on the tuning half, {f1s(f['chosen_held_out'])} "
              f"on half {f['scored_on_half']}; there the defaults score {f1s(f['default_held_out'])}, "
              f"no fallback {f1s(f['no_fallback_held_out'])}")
    gain = report["held_out_gain_over_no_fallback"]
    print(f"\nheld-out (CV) gain over no fallback: snippet F1 {gain['snippet_f1']:+.4f}, "
          f"token F1 {gain['token_f1']:+.4f}")
    gain = report["held_out_in_stage_gain_over_no_fallback"]
    print(f"held-out (CV, settings the stage can express) gain over no fallback: snippet F1 "
          f"{gain['snippet_f1']:+.4f}, token F1 {gain['token_f1']:+.4f}")
    print(f"results: {args.out} ({report['seconds']} s)")


if __name__ == "__main__":
    main()
