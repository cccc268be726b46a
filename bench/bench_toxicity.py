"""Toxicity filters (filters/url_blocklist.py, bad_words.py, toxicity.py): precision/recall of the
drop decision, and speed.

    python bench/bench_toxicity.py [--out bench/results/toxicity.json] [--repeats 3]

Quality. Each filter is run as the pipeline runs it: `Cls(Params(...), "en")(TextView(text, "en"))`.
The drop decision is then compared with human labels:
  - surge: `toxicity/surge_toxicity_en.csv`, 580 English social-media comments (285 `Toxic`);
  - jigsaw: `toxicity/jigsaw_toxic_comments_sample.csv`, 67 Wikipedia talk-page comments with
    5 `toxic` = 1. There are so few positives that its recall moves in steps of 0.2. The
    alt-profanity-check model was trained on Jigsaw data, and these rows may be among its
    training rows, so jigsaw flatters `toxicity`.
Decision rules: each filter alone, and `badwords OR toxicity`, which is what the pipeline does
(the first filter that objects drops the document). Each is shown at the default thresholds and
over a sweep. C4's rule, any LDNOOBW word at all, is the badwords sweep's threshold 0 (`ratio > 0`).
Collateral damage, on text that should be kept:
  - articles: the 113 English news/blog `articleBody` texts of the scrapinghub extraction
    benchmark (about 5 KB each, clean by construction). The metric is the share dropped.
  - lingua: 600 clean sentences per language (lingua-py test data; ja 247, zh 437), run through
    `badwords` in each shipped language. The metric is the share with any hit and the share
    dropped. Single sentences are short, so one hit often crosses the ratio threshold.
  - urls: the 750 real page URLs of the extraction benchmarks and the Common Crawl sample,
    run through `url_blocklist`. The metric is the number dropped and which ones.
Speed: ms per document on one pinned core, for the comments (about 140 characters) and the
articles (about 5 KB). Each call gets a fresh TextView, so the cost of `view.words` is counted
(badwords needs it only for documents with a hit). One row shows badwords on views whose words
are already computed: in the pipeline, filters share that cost. The figure is the best of
--repeats passes. The package's own `predict_prob`,
one call per document, is the baseline for `toxicity`. Setup times (the first call in a process:
building or loading the UT1 arrays, loading the model) are measured in fresh subprocesses.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402
from gristmill.filters.bad_words import BadWords, BadWordsParams, available_languages, base_language  # noqa: E402
from gristmill.filters.text import TextView  # noqa: E402
from gristmill.filters.toxicity import ToxicityParams, ToxicityScore  # noqa: E402
from gristmill.filters.url_blocklist import UrlBlocklist, UrlBlocklistParams  # noqa: E402

TOX = DATA_DIR / "toxicity"
BADWORDS_SWEEP = [0.0, 0.01, 0.02, 0.03, 0.05, 0.08, 0.1, 0.15]
TOXICITY_SWEEP = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95]
LINGUA_ALIASES = {"nb": "no", "nn": "no", "tl": "fil"}  # lingua code → our list


# ----------------------------------------------------------------------------- data


def load_surge() -> tuple[list[str], list[bool]]:
    with open(TOX / "surge_toxicity_en.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["is_toxic"] == "Toxic" for r in rows]


def load_jigsaw() -> tuple[list[str], list[bool]]:
    with open(TOX / "jigsaw_toxic_comments_sample.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r["comment_text"] for r in rows], [r["toxic"] == "1" for r in rows]


def load_articles() -> list[str]:
    with open(DATA_DIR / "extraction" / "scrapinghub" / "ground-truth.json", encoding="utf-8") as f:
        return [v["articleBody"] for v in json.load(f).values()]


def load_lingua() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with gzip.open(DATA_DIR / "langid" / "lingua_sentences.tsv.gz", "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            lang, _, text = line.rstrip("\n").partition("\t")
            out.setdefault(lang, []).append(text)
    return out


def load_clean_urls() -> list[str]:
    from warcio.archiveiterator import ArchiveIterator

    with open(DATA_DIR / "extraction" / "trafilatura" / "evaldata.json", encoding="utf-8") as f:
        urls = [k for k in json.load(f) if k.startswith("http")]
    with open(DATA_DIR / "extraction" / "scrapinghub" / "ground-truth.json", encoding="utf-8") as f:
        urls += [v["url"] for v in json.load(f).values()]
    for path in sorted((DATA_DIR / "warc" / "real").glob("*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f):
                if record.rec_type == "response":
                    urls.append((record.rec_headers.get_header("WARC-Target-URI") or "").strip("<>"))
    return [u for u in urls if u]


# ----------------------------------------------------------------------------- metrics


def prf(pred: Sequence[bool], gold: Sequence[bool]) -> dict:
    tp = sum(p and g for p, g in zip(pred, gold))
    fp = sum(p and not g for p, g in zip(pred, gold))
    fn = sum(g and not p for p, g in zip(pred, gold))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "tp": tp, "fp": fp, "fn": fn, "dropped": tp + fp, "n": len(gold)}


def signal(f, text: str, key: str, language: str = "en", url: str = "") -> float:
    return f(TextView(text, language, url))[0][key]


def scores(texts: list[str]) -> dict[str, list[float]]:
    """The raw signals each decision rule thresholds."""
    bw = BadWords(BadWordsParams(), "en")
    tox_doc = ToxicityScore(ToxicityParams(unit="document"), "en")
    tox_line = ToxicityScore(ToxicityParams(unit="line"), "en")
    return {
        "badwords": [signal(bw, t, "badwords_ratio") for t in texts],
        "toxicity": [signal(tox_doc, t, "toxicity_score") for t in texts],
        "toxicity_line": [signal(tox_line, t, "toxicity_score") for t in texts],
    }


def decide(s: dict[str, list[float]], rule: str, bw: float, tox: float) -> list[bool]:
    n = len(s["badwords"])
    b = [s["badwords"][i] > bw for i in range(n)]
    t = [s["toxicity"][i] > tox for i in range(n)]
    tl = [s["toxicity_line"][i] > tox for i in range(n)]
    return {
        "badwords": b,
        "toxicity": t,
        "toxicity_line": tl,
        "badwords OR toxicity": [x or y for x, y in zip(b, t)],
        "badwords OR toxicity_line": [x or y for x, y in zip(b, tl)],
    }[rule]


RULES = ["badwords", "toxicity", "toxicity_line", "badwords OR toxicity", "badwords OR toxicity_line"]


def quality(datasets: dict[str, tuple[list[str], list[bool]]], articles: list[str], bw_t: float,
            tox_t: float) -> dict:
    sig = {name: scores(texts) for name, (texts, _) in datasets.items()}
    art = scores(articles)
    at_defaults = {}
    for rule in RULES:
        row = {name: prf(decide(sig[name], rule, bw_t, tox_t), gold) for name, (_, gold) in datasets.items()}
        dropped = sum(decide(art, rule, bw_t, tox_t))
        row["articles_dropped"] = {"dropped": dropped, "n": len(articles), "share": round(dropped / len(articles), 4)}
        at_defaults[rule] = row
    sweeps = {"badwords": [], "toxicity": [], "toxicity_line": [], "badwords OR toxicity": []}
    for t in BADWORDS_SWEEP:
        row = {"threshold": t, **{n: prf(decide(sig[n], "badwords", t, tox_t), g) for n, (_, g) in datasets.items()}}
        row["articles_dropped"] = sum(decide(art, "badwords", t, tox_t))
        sweeps["badwords"].append(row)
    for rule in ("toxicity", "toxicity_line"):
        for t in TOXICITY_SWEEP:
            row = {"threshold": t, **{n: prf(decide(sig[n], rule, bw_t, t), g) for n, (_, g) in datasets.items()}}
            row["articles_dropped"] = sum(decide(art, rule, bw_t, t))
            sweeps[rule].append(row)
    for b in BADWORDS_SWEEP:
        for t in TOXICITY_SWEEP:
            row = {"badwords_threshold": b, "toxicity_threshold": t,
                   **{n: prf(decide(sig[n], "badwords OR toxicity", b, t), g) for n, (_, g) in datasets.items()}}
            row["articles_dropped"] = sum(decide(art, "badwords OR toxicity", b, t))
            sweeps["badwords OR toxicity"].append(row)
    texts, gold = datasets["surge"]
    combined = decide(sig["surge"], "badwords OR toxicity", bw_t, tox_t)
    misses = [{"text": texts[i][:300], "badwords_ratio": round(sig["surge"]["badwords"][i], 4),
               "toxicity_score": round(sig["surge"]["toxicity"][i], 4)}
              for i in range(len(texts)) if gold[i] and not combined[i]]
    false_drops = [{"text": texts[i][:300], "badwords_ratio": round(sig["surge"]["badwords"][i], 4),
                    "toxicity_score": round(sig["surge"]["toxicity"][i], 4)}
                   for i in range(len(texts)) if combined[i] and not gold[i]]
    article_flags = [{"text_start": articles[i][:120], "toxicity_line": round(art["toxicity_line"][i], 4),
                      "toxicity": round(art["toxicity"][i], 4), "badwords": round(art["badwords"][i], 4)}
                     for i in range(len(articles))
                     if art["toxicity_line"][i] > tox_t or art["toxicity"][i] > tox_t or art["badwords"][i] > bw_t]
    return {"at_defaults": at_defaults, "sweeps": sweeps,
            "surge_misses": {"count": len(misses), "examples": misses[:25]},
            "surge_false_drops": {"count": len(false_drops), "examples": false_drops},
            "articles_flagged": article_flags}


def lingua_badwords(lingua: dict[str, list[str]], threshold: float) -> list[dict]:
    shipped = set(available_languages())
    rows = []
    for lang in sorted(lingua):
        ours = LINGUA_ALIASES.get(lang, lang)
        if base_language(ours) not in shipped:
            continue
        f = BadWords(BadWordsParams(threshold=threshold), ours)
        hit = dropped = 0
        for text in lingua[lang]:
            signals, reason = f(TextView(text, ours))
            hit += signals["badwords_count"] > 0
            dropped += reason is not None
        n = len(lingua[lang])
        rows.append({"language": lang, "list": ours, "n": n, "any_hit": hit, "dropped": dropped,
                     "dropped_share": round(dropped / n, 4)})
    return rows


def url_check(urls: list[str]) -> dict:
    f = UrlBlocklist(UrlBlocklistParams(), "en")
    dropped = [{"url": u, "reason": r} for u in urls for r in [f(TextView("", "en", u))[1]] if r]
    return {"n": len(urls), "dropped": len(dropped), "which": dropped}


def pipeline_docs(pattern: str) -> dict | None:
    """Every filter at its defaults on documents a gristmill run wrote (real extracted pages), if any."""
    import glob

    import pyarrow.parquet as pq

    paths = sorted(glob.glob(pattern))
    if not paths:
        return None
    docs = [d for p in paths for d in pq.read_table(p, columns=["url", "text", "language"]).to_pylist()]
    per_language: dict[str, dict] = {}
    dropped = []
    chains: dict[str, list] = {}
    for d in docs:
        lang = d["language"] or "unknown"
        if lang not in chains:
            chains[lang] = [UrlBlocklist(UrlBlocklistParams(), lang), BadWords(BadWordsParams(), lang),
                            ToxicityScore(ToxicityParams(), lang)]
        row = per_language.setdefault(lang, {"n": 0, "url_blocklist": 0, "badwords": 0, "toxicity": 0})
        row["n"] += 1
        view = TextView(d["text"], lang, d["url"] or "")
        for f in chains[lang]:
            signals, reason = f(view)
            if reason is not None:
                row[f.name] += 1
                dropped.append({"url": d["url"], "language": lang, "filter": f.name, "reason": reason,
                                "signals": {k: round(v, 4) for k, v in signals.items()}})
    return {"files": pattern, "n": len(docs),
            "per_language": dict(sorted(per_language.items(), key=lambda kv: -kv[1]["n"])), "dropped": dropped}


# ----------------------------------------------------------------------------- speed


def ms_per_doc(call: Callable[[str], object], texts: list[str], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for text in texts:
            call(text)
        best = min(best, time.perf_counter() - start)
    return round(best / len(texts) * 1000, 4)


def speed(comments: list[str], articles: list[str], urls: list[str], repeats: int) -> list[dict]:
    from profanity_check import predict_prob

    bw = BadWords(BadWordsParams(), "en")
    tox = ToxicityScore(ToxicityParams(), "en")
    tox_line = ToxicityScore(ToxicityParams(unit="line"), "en")
    ub = UrlBlocklist(UrlBlocklistParams(), "en")
    ub_domains = UrlBlocklist(UrlBlocklistParams(url_words=False), "en")
    zh = BadWords(BadWordsParams(), "zh")
    url_cycle = [urls[i % len(urls)] for i in range(len(articles))]
    views: dict[str, TextView] = {}  # views whose `words` are already computed, as a later filter sees them

    def warm_view(text: str) -> TextView:
        if text not in views:
            views[text] = TextView(text, "en")
            _ = views[text].words
        return views[text]

    rows = []
    for name, call in [
        ("badwords (en)", lambda t: bw(TextView(t, "en"))),
        ("badwords (en), view.words already computed", lambda t: bw(warm_view(t))),
        ("badwords (zh, substring; same texts)", lambda t: zh(TextView(t, "zh"))),
        ("toxicity unit=document", lambda t: tox(TextView(t, "en"))),
        ("toxicity unit=line", lambda t: tox_line(TextView(t, "en"))),
        ("baseline: profanity_check.predict_prob([text])", lambda t: predict_prob([t])),
    ]:
        rows.append({"filter": name, "comments_ms": ms_per_doc(call, comments, repeats),
                     "articles_ms": ms_per_doc(call, articles, repeats)})
    for name, f in [("url_blocklist", ub), ("url_blocklist url_words=false", ub_domains)]:
        it = iter(url_cycle * repeats)
        call = lambda _, f=f, it=it: f(TextView("", "en", next(it)))
        rows.append({"filter": name + " (per URL)", "comments_ms": None,
                     "articles_ms": ms_per_doc(call, articles, repeats)})
    return rows


_TEMP_CACHE = ("import os, tempfile; _d = tempfile.TemporaryDirectory(); "  # removed at exit
               "os.environ['GRISTMILL_CACHE'] = _d.name\n")
_URL = "from gristmill.filters.url_blocklist import UrlBlocklist, UrlBlocklistParams; "
_BAD = "from gristmill.filters.bad_words import BadWords, BadWordsParams; "
_TOX = "from gristmill.filters.toxicity import ToxicityParams, ToxicityScore; "
SETUP_SNIPPETS = {
    "url_blocklist, cold (build the UT1 hash array)": (
        _TEMP_CACHE + _URL + "t=time.perf_counter(); UrlBlocklist(UrlBlocklistParams(),'en')"),
    "url_blocklist, warm (mmap the cached array)": (
        _URL + "t=time.perf_counter(); UrlBlocklist(UrlBlocklistParams(),'en')"),
    "badwords (en)": _BAD + "t=time.perf_counter(); BadWords(BadWordsParams(),'en')",
    "toxicity, cold (unpickle the package's model: imports sklearn)": (
        _TEMP_CACHE + _TOX + "t=time.perf_counter(); ToxicityScore(ToxicityParams(),'en')"),
    "toxicity, warm (cached arrays, no sklearn)": (
        _TOX + "t=time.perf_counter(); ToxicityScore(ToxicityParams(),'en')"),
}


def setup_times() -> list[dict]:
    root = Path(__file__).resolve().parent.parent
    # the warm cases need the shared cache to exist: build it first (not timed)
    warm = ("from gristmill.filters.url_blocklist import ut1_lists; "
            "from gristmill.filters.toxicity import profanity_model; ut1_lists(); profanity_model()")
    subprocess.run([sys.executable, "-c", warm], cwd=root, check=True)
    rows = []
    for name, snippet in SETUP_SNIPPETS.items():
        # peak RSS from VmHWM: ru_maxrss would carry over this (forking) process's peak across exec
        code = "import time\n" + snippet + "\nd=time.perf_counter()-t\n" \
            "hwm=[l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\nprint(d, hwm)"
        out = subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(root)}).stdout.split()
        rows.append({"setup": name, "seconds": round(float(out[-2]), 3), "peak_rss_mb": round(int(out[-1]) / 1024)})
    return rows


# ----------------------------------------------------------------------------- report


def fmt(m: dict) -> str:
    return f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "toxicity.json"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--docs", default=str(Path(__file__).resolve().parent.parent / "out" / "sample" / "docs"
                                              / "*.parquet"),
                        help="documents of a gristmill run to screen as well (skipped when none match)")
    args = parser.parse_args()
    pin_to_core()
    bw_t, tox_t = BadWordsParams().threshold, ToxicityParams().threshold

    datasets = {"surge": load_surge(), "jigsaw": load_jigsaw()}
    articles, lingua, urls = load_articles(), load_lingua(), load_clean_urls()
    q = quality(datasets, articles, bw_t, tox_t)
    lingua_rows = lingua_badwords(lingua, bw_t)
    urls_result = url_check(urls)
    run_docs = pipeline_docs(args.docs)
    speed_rows = speed(datasets["surge"][0], articles, urls, args.repeats)
    setup_rows = setup_times()

    print(f"## Drop decision at the defaults (badwords threshold {bw_t}, toxicity threshold {tox_t})\n")
    print("P / R / F1; articles = clean scrapinghub news texts dropped (of 113)\n")
    print(markdown_table(["rule", "surge (580, 285 toxic)", "jigsaw (67, 5 toxic)", "articles dropped"],
                         [[r, fmt(v["surge"]), fmt(v["jigsaw"]), v["articles_dropped"]["dropped"]]
                          for r, v in q["at_defaults"].items()]))
    print("\n## badwords threshold sweep (ratio > threshold; 0 = C4's any-word rule)\n")
    print(markdown_table(["threshold", "surge P / R / F1", "jigsaw P / R / F1", "articles dropped"],
                         [[r["threshold"], fmt(r["surge"]), fmt(r["jigsaw"]), r["articles_dropped"]]
                          for r in q["sweeps"]["badwords"]]))
    for rule in ("toxicity", "toxicity_line"):
        print(f"\n## {rule} threshold sweep (score > threshold)\n")
        print(markdown_table(["threshold", "surge P / R / F1", "jigsaw P / R / F1", "articles dropped"],
                             [[r["threshold"], fmt(r["surge"]), fmt(r["jigsaw"]), r["articles_dropped"]]
                              for r in q["sweeps"][rule]]))
    best = [r for r in q["sweeps"]["badwords OR toxicity"]
            if r["badwords_threshold"] in (0.0, 0.01, 0.02, 0.05) and r["toxicity_threshold"] in (0.3, 0.5, 0.8)]
    print("\n## badwords OR toxicity over part of the grid (all of it is in the JSON)\n")
    print(markdown_table(["badwords t", "toxicity t", "surge P / R / F1", "jigsaw P / R / F1", "articles dropped"],
                         [[r["badwords_threshold"], r["toxicity_threshold"], fmt(r["surge"]), fmt(r["jigsaw"]),
                           r["articles_dropped"]] for r in best]))
    print(f"\n## badwords on clean lingua sentences (threshold {bw_t})\n")
    print(markdown_table(["lang", "list", "sentences", "any hit", "dropped"],
                         [[r["language"], r["list"], r["n"], r["any_hit"], r["dropped"]] for r in lingua_rows]))
    print(f"\n## url_blocklist on {urls_result['n']} real, clean page URLs: {urls_result['dropped']} dropped\n")
    for d in urls_result["which"]:
        print(f"- {d['url']} ({d['reason']})")
    if run_docs:
        print(f"\n## Every filter at its defaults on a gristmill run's documents ({run_docs['n']} docs)\n")
        print(markdown_table(["language", "docs", "url_blocklist", "badwords", "toxicity"],
                             [[lang, r["n"], r["url_blocklist"], r["badwords"], r["toxicity"]]
                              for lang, r in run_docs["per_language"].items() if r["n"] >= 5]))
        print()
        for d in run_docs["dropped"]:
            print(f"- {d['language']} {d['filter']}:{d['reason']} {d['url']} {d['signals']}")
    print("\n## Speed, one core (ms per document; best of", args.repeats, "passes)\n")
    print(markdown_table(["filter", "comments (~140 chars)", "articles (~5 KB)"],
                         [[r["filter"], r["comments_ms"] if r["comments_ms"] is not None else "—", r["articles_ms"]]
                          for r in speed_rows]))
    print("\n## Setup, once per process (fresh subprocess)\n")
    print(markdown_table(["setup", "seconds", "process peak RSS MB"],
                         [[r["setup"], r["seconds"], r["peak_rss_mb"]] for r in setup_rows]))
    write_json(args.out, {
        "machine": machine_notes(["alt-profanity-check", "scikit-learn", "datatrove", "pyahocorasick", "xxhash",
                                  "numpy"]),
        "defaults": {"badwords_threshold": bw_t, "toxicity_threshold": tox_t,
                     "toxicity_unit": ToxicityParams().unit},
        "quality": q, "lingua_badwords": lingua_rows, "urls": urls_result, "run_docs": run_docs,
        "speed_ms_per_doc": speed_rows, "setup": setup_rows,
    })
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
