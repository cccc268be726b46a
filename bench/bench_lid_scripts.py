"""The LID stage's script check (stages/lid.py `identify`) against fastText lid.176 alone.

    python bench/bench_lid_scripts.py [--out bench/results/lid_scripts.json] [--passes 3]

Baseline: lid.176's raw top label (`model.predict(" ".join(text.split()), k=1)`), as the stage
labelled texts before the script check. Both run in this process on the same texts and model.

1. lingua's three sets in ../shared/data/langid (sentences, word pairs, single words; read with
   `csv.DictReader` as tests/stages/test_lid_scripts.py reads them, so a NEL inside a text stays in it):
   texts, right labels lost (right alone, wrong with the check), labels mended (the reverse),
   labels changed at all, and each language's accuracy before → after where it moved. A label is
   right when it equals lingua's code (lingua's `nb` is never right: lid.176 says `no`).
2. Real pages: every file of warc/packed, warc/real and warc/more as `stages.ingest.read_all`
   reads it, extracted by the extract stage (as bench/bench_pii.py does; the `.wat`/`.wet`
   files give no documents). Every label the check changes is listed with its URL.
3. Threshold sweep: `stages.lid.MIN_LABEL_SHARE` set to 10, 15, 20 (the stage's), 25, 30 and
   40%: right labels lost and labels mended on every lingua set, labels changed on the pages;
   the right labels lost at each setting on the sentences are listed.
4. The figures behind the weight of two: the median count of Han, kana and Hangul characters per
   sentence in zh, ja and ko, and of letters per sentence in each Latin-script language (and
   the median over those languages).
5. The examples of the docstrings and tests (茉莉花, 静夜思, a pinyin title, pinyin under every
   line): fastText's label and score alone, and the stage's; the share of single Chinese words
   fastText alone calls English.
6. Cost, one pinned core, on the real pages: counting the letters (`Scripts`), fastText's top
   label, and the whole `identify`, mean ms per page; per page the fastest of --passes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
import gristmill.core.env  # noqa: F401,E402
import numpy as np  # noqa: E402

import gristmill.stages.lid as lid  # noqa: E402
from bench.bench_pii import CORPORA, corpus_docs  # noqa: E402
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402

SETS = ("sentences", "word_pairs", "single_words")
THRESHOLDS = (0.10, 0.15, 0.20, 0.25, 0.30, 0.40)
STAGE_THRESHOLD = lid.MIN_LABEL_SHARE

# 茉莉花 (Jasmine Flower) with its pinyin, and 静夜思: as in tests/stages/test_lid_scripts.py
JASMINE = [
    ("好一朵美丽的茉莉花", "hao yi duo mei li de mo li hua"),
    ("好一朵美丽的茉莉花", "hao yi duo mei li de mo li hua"),
    ("芬芳美丽满枝桠", "fen fang mei li man zhi ya"),
    ("又香又白人人夸", "you xiang you bai ren ren kua"),
    ("让我来将你摘下", "rang wo lai jiang ni zhai xia"),
    ("送给别人家", "song gei bie ren jia"),
    ("茉莉花呀茉莉花", "mo li hua ya mo li hua"),
]
EXAMPLES = {
    "茉莉花, Han lines alone": "\n".join(han for han, _ in JASMINE),
    "静夜思, four lines": "床前明月光\n疑是地上霜\n举头望明月\n低头思故乡",
    "茉莉花 under a pinyin title": "Mo Li Hua (Jasmine Flower)\n" + "\n".join(han for han, _ in JASMINE),
    "茉莉花, pinyin under every line": "\n".join(f"{han}\n{pinyin}" for han, pinyin in JASMINE),
    "茉莉花, pinyin under the first two lines": "\n".join(
        [*JASMINE[0], *JASMINE[1], *(han for han, _ in JASMINE[2:])]),
}


def fasttext_alone(model, text: str) -> tuple[str, float]:
    """The baseline: lid.176's top label, as the stage took it before the script check."""
    labels, probs = model.predict(" ".join(text.split()), k=1)
    if not labels:
        return "unknown", 0.0
    return labels[0].removeprefix("__label__"), float(min(probs[0], 1.0))


def stage_label(model, text: str, threshold: float = STAGE_THRESHOLD) -> str:
    lid.MIN_LABEL_SHARE = threshold  # `identify` reads the module's constant at each call
    try:
        return lid.identify(model, text).language
    finally:
        lid.MIN_LABEL_SHARE = STAGE_THRESHOLD


def lingua(kind: str) -> list[tuple[str, str]]:
    with gzip.open(DATA_DIR / "langid" / f"lingua_{kind}.tsv.gz", "rt", encoding="utf-8") as f:
        return [(row["lang"], row["text"]) for row in csv.DictReader(f, delimiter="\t")]


def compare(langs: list[str], before: list[str], after: list[str]) -> dict:
    lost = [i for i, (l, b, a) in enumerate(zip(langs, before, after)) if b == l != a]
    mended = [i for i, (l, b, a) in enumerate(zip(langs, before, after)) if b != l == a]
    changed = sum(b != a for b, a in zip(before, after))
    n, right_b, right_a = Counter(langs), Counter(), Counter()
    for l, b, a in zip(langs, before, after):
        right_b[l] += b == l
        right_a[l] += a == l
    moved = {l: {"texts": n[l], "before": round(right_b[l] / n[l], 3), "after": round(right_a[l] / n[l], 3),
                 "right_before": right_b[l], "right_after": right_a[l]}
             for l in sorted(n, key=lambda l: (right_b[l] - right_a[l]) / n[l]) if right_b[l] != right_a[l]}
    return {"texts": len(langs), "languages": len(n), "right_labels_lost": len(lost), "labels_mended": len(mended),
            "labels_changed": changed, "accuracy_before": round(sum(right_b.values()) / len(langs), 4),
            "accuracy_after": round(sum(right_a.values()) / len(langs), 4), "moved": moved,
            "lost": lost, "mended": mended}


def letter_counts(text: str) -> Counter:
    """Unweighted letters per script (None: letters of scripts outside stages.lid.SCRIPTS)."""
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    codes = np.where(codes < lid.TABLE_SIZE, codes, 0)
    counts = np.bincount(lid.script_table()[codes], minlength=len(lid.SCRIPTS) + 2)[1:].tolist()
    return Counter({s: c for s, c in zip((*lid.SCRIPTS, None), counts) if c})


def letter_medians(rows: list[tuple[str, str]]) -> dict:
    by_lang = defaultdict(list)
    for lang, text in rows:
        by_lang[lang].append(letter_counts(text))
    cjk = {lang: statistics.median(c["Han"] + c["Kana"] + c["Hangul"] for c in by_lang[lang])
           for lang in ("zh", "ja", "ko")}
    latin = {lang: statistics.median(sum(c.values()) for c in counts) for lang, counts in sorted(by_lang.items())
             if lid.LANGUAGE_SCRIPTS.get({"nb": "no"}.get(lang, lang)) == frozenset({"Latin"})}
    return {"han_kana_hangul_per_sentence": cjk, "latin_letters_per_sentence": latin,
            "latin_languages": len(latin), "median_latin_language": statistics.median(latin.values())}


def timings(model, texts: list[str], passes: int) -> dict:
    """Mean ms per page, each page's fastest of `passes`: letters counted, fastText's top label,
    the whole identify."""
    best = {k: [float("inf")] * len(texts) for k in ("scripts", "fasttext", "identify")}
    for _ in range(passes):
        for i, text in enumerate(texts):
            line = " ".join(text.split())
            t0 = time.perf_counter()
            lid.Scripts(line)
            t1 = time.perf_counter()
            model.predict(line, k=1)
            t2 = time.perf_counter()
            lid.identify(model, text)
            t3 = time.perf_counter()
            for k, s in (("scripts", t1 - t0), ("fasttext", t2 - t1), ("identify", t3 - t2)):
                best[k][i] = min(best[k][i], s)
    return {"pages": len(texts), "mean_chars": round(sum(map(len, texts)) / len(texts)), "passes": passes,
            **{f"{k}_ms_per_page": round(1e3 * sum(v) / len(v), 4) for k, v in best.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=3, help="timings per real page (the fastest counts)")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "lid_scripts.json"))
    args = ap.parse_args()
    started = time.time()
    pin_to_core()
    model = lid.load_model()
    lid.script_table()

    # 1. lingua's sets, baseline against the stage
    sets, before = {}, {}
    rows_by_set = {kind: lingua(kind) for kind in SETS}
    for kind, rows in rows_by_set.items():
        langs = [l for l, _ in rows]
        before[kind] = [fasttext_alone(model, t)[0] for _, t in rows]
        after = [stage_label(model, t) for _, t in rows]
        r = sets[kind] = compare(langs, before[kind], after)
        r["lost"] = [{"lang": langs[i], "before": before[kind][i], "after": after[i], "text": rows[i][1]}
                     for i in r["lost"]]
        r["mended"] = [{"lang": langs[i], "before": before[kind][i], "after": after[i], "text": rows[i][1]}
                       for i in r["mended"]]
        print(kind, {k: v for k, v in r.items() if k not in ("moved", "lost", "mended")}, flush=True)

    # 2. real pages
    pages, unreadable = [], {}
    for name, pattern in CORPORA.items():
        docs, unreadable[name] = corpus_docs(pattern)
        pages += [{**d, "corpus": name} for d in docs]
    print("pages", len(pages), {k: sum(p["corpus"] == k for p in pages) for k in CORPORA}, flush=True)
    page_before = [fasttext_alone(model, p["text"]) for p in pages]

    def page_changes(threshold: float) -> list[dict]:
        out = []
        for p, (b, score) in zip(pages, page_before):
            r = lid.identify(model, p["text"]) if threshold == STAGE_THRESHOLD else None
            a = r.language if r else stage_label(model, p["text"], threshold)
            if a != b:
                shares = lid.Scripts(" ".join(p["text"].split())).shares
                out.append({"corpus": p["corpus"], "url": p["url"], "before": b, "before_score": round(score, 3),
                            "after": a, "chars": len(p["text"]),
                            "shares": {s: round(v, 3) for s, v in sorted(shares.items(), key=lambda x: -x[1])},
                            "head": p["text"][:120]})
        return out

    page_result = {"pages": len(pages), "per_corpus": {k: sum(p["corpus"] == k for p in pages) for k in CORPORA},
                   "unreadable_files": unreadable, "changed": page_changes(STAGE_THRESHOLD),
                   "languages_before": dict(Counter(b for b, _ in page_before).most_common())}

    # 3. threshold sweep
    sweep = []
    for threshold in THRESHOLDS:
        row = {"threshold": threshold}
        for kind, rows in rows_by_set.items():
            if threshold == STAGE_THRESHOLD:
                r = sets[kind]
                row[kind] = {"right_labels_lost": r["right_labels_lost"], "labels_mended": r["labels_mended"]}
                if kind == "sentences":
                    row["sentences_lost"] = r["lost"]
                continue
            langs = [l for l, _ in rows]
            after = [stage_label(model, t, threshold) for _, t in rows]
            c = compare(langs, before[kind], after)
            row[kind] = {"right_labels_lost": c["right_labels_lost"], "labels_mended": c["labels_mended"]}
            if kind == "sentences":
                row["sentences_lost"] = [{"lang": langs[i], "before": before[kind][i], "after": after[i],
                                          "text": rows[i][1]} for i in c["lost"]]
        row["pages_changed"] = page_changes(threshold)
        sweep.append(row)
        print("threshold", threshold, {k: row[k] for k in SETS}, "pages changed", len(row["pages_changed"]),
              flush=True)

    # 4. letters per sentence; 5. examples
    medians = letter_medians(rows_by_set["sentences"])
    examples = {}
    for name, text in EXAMPLES.items():
        b, score = fasttext_alone(model, text)
        label = lid.identify(model, text)
        examples[name] = {"fasttext": b, "fasttext_score": round(score, 3), "stage": label.language,
                          "stage_score": round(label.score, 3), "event": label.script_event,
                          "shares": {s: round(v, 3) for s, v in lid.Scripts(" ".join(text.split())).shares.items()}}
    zh_words = [i for i, (l, _) in enumerate(rows_by_set["single_words"]) if l == "zh"]
    zh_words_en = sum(before["single_words"][i] == "en" for i in zh_words) / len(zh_words)

    # 6. cost on the real pages
    cost = timings(model, [p["text"] for p in pages], args.passes)

    # tables
    def moved_cell(r: dict) -> str:
        return ", ".join(f"{l} {m['before']} → {m['after']} ({m['texts']})" for l, m in r["moved"].items()) or "none"

    print("\n## lid.176 alone → the stage (script check at 20%)\n")
    print(markdown_table(
        ["set", "texts", "right labels lost", "labels mended", "labels changed", "accuracy", "accuracy that moved (texts)"],
        [*([f"lingua {kind.replace('_', ' ')} ({r['languages']} languages)", f"{r['texts']:,}", r["right_labels_lost"],
            r["labels_mended"], r["labels_changed"], f"{r['accuracy_before']} → {r['accuracy_after']}", moved_cell(r)]
           for kind, r in sets.items()),
         ["pages extracted from warc/packed, warc/real, warc/more", f"{len(pages):,}", "—", "—",
          len(page_result["changed"]), "—",
          "; ".join(f"{c['url']}: {c['before']} → {c['after']}" for c in page_result["changed"]) or "no label changed"]]))
    print("\n## Threshold sweep (MIN_LABEL_SHARE): right labels lost / labels mended\n")
    print(markdown_table(["share", *(f"{k.replace('_', ' ')} lost / mended" for k in SETS), "pages changed"],
                         [[f"{int(row['threshold'] * 100)}%" + (" (stage)" if row["threshold"] == STAGE_THRESHOLD else ""),
                           *(f"{row[k]['right_labels_lost']} / {row[k]['labels_mended']}" for k in SETS),
                           len(row["pages_changed"])] for row in sweep]))
    for row in sweep:
        for x in row["sentences_lost"]:
            print(f"  {int(row['threshold'] * 100)}% sentence lost: {x['lang']} → {x['after']}: {x['text'][:100]!r}")
        for c in row["pages_changed"]:
            print(f"  {int(row['threshold'] * 100)}% page changed: {c['before']} → {c['after']} {c['url']} {c['shares']}")
    print("\n## Examples\n")
    print(markdown_table(["text", "lid.176 alone", "stage", "letter shares"],
                         [[k, f"{v['fasttext']} {v['fasttext_score']}", f"{v['stage']} {v['stage_score']}", v["shares"]]
                          for k, v in examples.items()]))
    print(f"\nzh single words lid.176 alone calls en: {zh_words_en:.3f} of {len(zh_words)}")
    print(f"letters per sentence: {medians['han_kana_hangul_per_sentence']} (Han+kana+Hangul); "
          f"median Latin-script language {medians['median_latin_language']} over {medians['latin_languages']}")
    print("\n## Cost per page, one core\n")
    print(markdown_table(["pages", "mean chars", "letters counted (ms)", "lid.176 top label (ms)", "identify (ms)"],
                         [[cost["pages"], cost["mean_chars"], cost["scripts_ms_per_page"], cost["fasttext_ms_per_page"],
                           cost["identify_ms_per_page"]]]))
    seconds = round(time.time() - started)
    print(f"\n{seconds} s")
    write_json(args.out, {"machine": machine_notes(["fasttext-numpy2-wheel", "numpy", "regex", "trafilatura", "warcio"]),
                          "date": time.strftime("%Y-%m-%d"), "seconds": seconds, "stage_threshold": STAGE_THRESHOLD,
                          "lingua": sets, "pages": page_result, "sweep": sweep, "letters_per_sentence": medians,
                          "examples": examples, "zh_single_words_called_en": round(zh_words_en, 3), "cost": cost})


if __name__ == "__main__":
    main()
