"""Filter drop rates: clean gold pages against the real crawl, datatrove-exact rules against the
papers' definitions.

    python bench/bench_filter_drops.py [--out bench/results/filters_drops.json] [--cache DOCS.pkl]

- **Gold pages**: the 708 hand-picked news and blog pages of the extraction benchmarks
  (`warc/packed/`), clean by construction: every drop there is a false positive.
- **Real crawl**: every WARC/ARC in `warc/real/` and `warc/more/` (WAT and WET files aside),
  which hold real junk (spam, link lists, error pages) beside real articles.
- Both go through gristmill's own ingest → extract → lid in-process, then the filters block of
  `configs/sample.yaml`, once with `compat: datatrove` ("before") and once with the papers'
  definitions (the default, "after").
- Counted per `filter:reason` twice: the first objection, as the stage drops, and each filter
  alone (not hidden by an earlier one). Every gold drop reason left gets one example.
- Held out: the gold pages fall in two halves by the SHA-1 of their URL. No threshold is tuned
  on them (the papers' thresholds stand); should the sample config's
  `url_blocklist.allow_domains` name domains, a page it spares counts as dropped in the held-out
  figure unless the same allowed domain spares a page of the other half.
- FineWeb's `min_lines` (its line shares judge texts of at least that many lines): each
  candidate's gold drops per half, chosen on one half and scored on the other, and the crawl
  pages each candidate keeps that judging every text drops (to be read by hand).
- Blocklist: every page the UT1 lists or URL words hit, with its domain and whether the
  allow-list spares it (the bundled lists carry no UT1 category: see filters/url_blocklist.py).
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
import sys
from collections import Counter
from pathlib import Path

import yaml

import gristmill.core.env  # noqa: F401  (offline hubs before anything loads a model)
from gristmill.core.stats import RunStats
from gristmill.filters.text import TextView
from gristmill.filters.url_blocklist import _host_and_path, domain_candidates
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.shard import build_doc_stages
from gristmill.stages.filters import FiltersConfig
from gristmill.stages.ingest import WarcIngest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402

MODES = ("datatrove", "paper")
EXCERPT_CHARS = 160


def inputs(data: Path) -> dict[str, list[str]]:
    warc = data / "warc"
    crawl = [p for d in ("real", "more") for p in sorted((warc / d).iterdir())
             if not p.name.endswith((".wat", ".wet", ".wat.gz", ".wet.gz"))]
    return {"gold": [str(p) for p in sorted((warc / "packed").glob("*.warc.gz"))], "crawl": [str(p) for p in crawl]}


def extract(paths: list[str]) -> tuple[list[dict], dict]:
    """Documents after ingest → extract → lid (as `configs/sample.yaml` runs them), and the stats."""
    cfg = parse_config({"inputs": [{"name": "bench", "paths": paths}],
                        "stages": {"ingest": {}, "extract": {"timeout_s": 30.0}, "lid": {}, "write": {}}})
    stats, docs, seen = RunStats(), [], set()
    ingest, chain = WarcIngest(cfg.stages.ingest, "bench"), build_doc_stages(cfg)
    for path in paths:
        stream = ingest.read(path, stats.stage("ingest"), [])
        for stage in chain:
            stream = stage.run(stream, stats.stage(stage.name), [])
        for doc in stream:
            if (doc["url"], doc["text"]) not in seen:  # the same crawl as ARC and as WARC counts once
                seen.add((doc["url"], doc["text"]))
                docs.append({"url": doc["url"], "text": doc["text"], "language": doc["language"],
                             "file": Path(path).name})
    return docs, stats.to_dict()


def sample_filters(compat: str) -> FiltersConfig:
    raw = yaml.safe_load((ROOT / "configs" / "sample.yaml").read_text())["stages"]["filters"]
    return FiltersConfig.model_validate({**raw, "compat": compat})


def decide(docs: list[dict], cfg: FiltersConfig) -> list[dict]:
    """Per document: the chain's first objection, and every filter's own reason."""
    from gristmill.stages.filters import FilterStage

    stage, out = FilterStage(cfg), []
    for d in docs:
        view = TextView(d["text"], d["language"], d["url"])
        alone, first, signals = {}, None, {}
        for f in stage.chain(d["language"]):
            sig, reason = f(view)
            signals[f.name] = sig
            if reason is not None:
                alone[f.name] = f"{f.name}:{reason}"
                first = first or alone[f.name]
        out.append({"first": first, "alone": alone, "signals": signals})
    return out


def half(url: str) -> int:
    """0 or 1: the cross-validation half of a page, by the SHA-1 of its URL."""
    return hashlib.sha1(url.encode("utf-8")).digest()[0] & 1


def allowed_by(url: str, allow: list[str]) -> str | None:
    """The allow-list entry that covers this URL's domain, if any."""
    hits = set(domain_candidates(_host_and_path(url)[0])) & {a.lower() for a in allow}
    return min(hits) if hits else None


def held_out(docs: list[dict], verdicts: list[dict], allow: list[str]) -> dict[str, list[int]]:
    """Per half: [dropped, pages], where a page kept only by an allow-list entry that no page of
    the other half needed counts as dropped (the entry was learned from that page)."""
    spared = [allowed_by(d["url"], allow) if v["first"] is None
              and v["signals"].get("url_blocklist", {}).get("url_blocklist_hit") == 1.0 else None
              for d, v in zip(docs, verdicts)]
    learned = {h: {e for d, e in zip(docs, spared) if e and half(d["url"]) == h} for h in (0, 1)}
    out = {"A": [0, 0], "B": [0, 0]}
    for d, v, entry in zip(docs, verdicts, spared):
        h = half(d["url"])
        cell = out["AB"[h]]
        cell[1] += 1
        cell[0] += v["first"] is not None or (entry is not None and entry not in learned[1 - h])
    return out


def blocklist_hits(docs: list[dict], verdicts: list[dict], allow: list[str]) -> list[dict]:
    """The pages the URL blocklist hits (before the allow-list), with the domain and the verdict."""
    hit = [(d, v) for d, v in zip(docs, verdicts)
           if v["signals"].get("url_blocklist", {}).get("url_blocklist_hit") == 1.0]
    return [{"url": d["url"], "domain": _host_and_path(d["url"])[0], "reason": v["alone"].get("url_blocklist"),
             "allowed_by": allowed_by(d["url"], allow)} for d, v in hit]


MIN_LINES = (1, 2, 3, 4, 5, 6)  # candidates for fineweb's `min_lines` (1: datatrove's, judge every text)


def sweep_min_lines(corpus: dict) -> dict:
    """FineWeb's line shares judged only on texts of >= k lines, for each candidate k: gold drops
    per half, and the crawl pages each k keeps that k = 1 drops (to be read). Each half's choice
    (fewest drops there, then the smallest k) is scored on the other half."""
    gold, crawl = corpus["gold"][0], corpus["crawl"][0]
    base = sample_filters("paper").model_dump()
    per_k, crawl_verdicts = {}, {}
    for k in MIN_LINES:
        raw = {**base, "default": {**base["default"], "fineweb": {**base["default"].get("fineweb", {}),
                                                                  "min_lines": k}}}
        cfg = FiltersConfig.model_validate(raw)
        vg, vc = decide(gold, cfg), decide(crawl, cfg)
        per_k[k] = {"gold": [sum(v["first"] is not None for d, v in zip(gold, vg) if half(d["url"]) == h)
                             for h in (0, 1)],
                    "crawl": sum(v["first"] is not None for v in vc)}
        crawl_verdicts[k] = vc
    for k in MIN_LINES:
        per_k[k]["crawl_kept_vs_1"] = [{"url": d["url"], "was": v1["first"], "excerpt": excerpt(d["text"])}
                                       for d, v1, v in zip(crawl, crawl_verdicts[1], crawl_verdicts[k])
                                       if v1["first"] and not v["first"]]
    choice = {h: min(MIN_LINES, key=lambda k: (per_k[k]["gold"][h], k)) for h in (0, 1)}
    held = [per_k[choice[1 - h]]["gold"][h] for h in (0, 1)]
    print("\nfineweb min_lines: k  gold A  gold B  crawl dropped  crawl kept vs k=1")
    for k in MIN_LINES:
        print(f"  {k}  {per_k[k]['gold'][0]}  {per_k[k]['gold'][1]}  {per_k[k]['crawl']}  "
              f"{len(per_k[k]['crawl_kept_vs_1'])}")
    print(f"  tuned on A: {choice[0]}, on B: {choice[1]}; held out: A {held[0]}, B {held[1]}, "
          f"both {sum(held)}/{len(gold)} ({sum(held) / len(gold):.1%})")
    for k in MIN_LINES[1:]:
        for r in per_k[k]["crawl_kept_vs_1"]:
            print(f"  k={k} keeps crawl page  {r['url']}  (was {r['was']}) {r['excerpt'][:100]}")
    return {"per_k": {str(k): v for k, v in per_k.items()}, "tuned_on_A": choice[0], "tuned_on_B": choice[1],
            "held_out": [sum(held), len(gold)]}


def excerpt(text: str, n: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat[:n] + ("…" if len(flat) > n else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA_DIR)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "filters_drops.json")
    p.add_argument("--cache", type=Path, help="extracted documents: read if present, else written")
    args = p.parse_args()

    if args.cache and args.cache.exists():
        corpus = pickle.loads(args.cache.read_bytes())
    else:
        corpus = {name: extract(paths) for name, paths in inputs(args.data).items()}
        if args.cache:
            args.cache.write_bytes(pickle.dumps(corpus))
    results = {"machine": machine_notes(["trafilatura"]), "sets": {}}
    verdicts: dict[tuple[str, str], list[dict]] = {}
    for name, (docs, stats) in corpus.items():
        results["sets"][name] = {"documents": len(docs), "languages": dict(Counter(d["language"] for d in docs)),
                                 "chain_stats": stats}
        for mode in MODES:
            verdicts[name, mode] = decide(docs, sample_filters(mode))

    # per reason: first objection (as the stage drops) and each filter alone
    reasons = sorted({r for v in verdicts.values() for d in v for r in d["alone"].values()})
    rows, table = [], {}
    for reason in reasons:
        cells = {}
        for name in corpus:
            for mode in MODES:
                v = verdicts[name, mode]
                cells[f"{name}_{mode}_first"] = sum(d["first"] == reason for d in v)
                cells[f"{name}_{mode}_alone"] = sum(reason in d["alone"].values() for d in v)
        table[reason] = cells
        rows.append([f"`{reason}`", *(f"{cells[f'{n}_{m}_first']} ({cells[f'{n}_{m}_alone']})"
                                      for n in corpus for m in MODES)])
    totals = {f"{n}_{m}": sum(d["first"] is not None for d in verdicts[n, m]) for n in corpus for m in MODES}
    rows.append(["**dropped by the chain**", *(
        f"**{totals[f'{n}_{m}']} / {len(corpus[n][0])} ({totals[f'{n}_{m}'] / len(corpus[n][0]):.1%})**"
        for n in corpus for m in MODES)])
    print(markdown_table(["reason: first (alone)", *(f"{n} {m}" for n in corpus for m in MODES)], rows))

    # every gold drop reason left, with one example; crawl pages the new defaults keep
    gold_docs, examples = corpus["gold"][0], {}
    for doc, d in zip(gold_docs, verdicts["gold", "paper"]):
        for reason in d["alone"].values():
            if reason not in examples:
                f = reason.split(":", 1)[0]
                examples[reason] = {"url": doc["url"], "language": doc["language"], "excerpt": excerpt(doc["text"]),
                                    "signals": {k: round(v, 3) for k, v in d["signals"][f].items()}}
    print()
    print(markdown_table(["reason", "example URL", "lang", "excerpt"],
                         [[f"`{r}`", e["url"], e["language"], e["excerpt"]] for r, e in sorted(examples.items())]))
    crawl_docs = corpus["crawl"][0]
    rescued = [{"url": doc["url"], "language": doc["language"], "was": before["first"], "excerpt": excerpt(doc["text"])}
               for doc, before, after in zip(crawl_docs, verdicts["crawl", "datatrove"], verdicts["crawl", "paper"])
               if before["first"] and not after["first"]]
    newly = [{"url": doc["url"], "language": doc["language"], "now": after["first"], "excerpt": excerpt(doc["text"])}
             for doc, before, after in zip(crawl_docs, verdicts["crawl", "datatrove"], verdicts["crawl", "paper"])
             if after["first"] and not before["first"]]
    allow = sample_filters("paper").default.get("url_blocklist", {}).get("allow_domains", [])
    splits = {}
    for mode in MODES:
        h = held_out(gold_docs, verdicts["gold", mode], allow)
        dropped, n = h["A"][0] + h["B"][0], h["A"][1] + h["B"][1]
        splits[mode] = {**h, "held_out": [dropped, n]}
        print(f"\ngold, {mode}, held out: half A {h['A'][0]}/{h['A'][1]} ({h['A'][0] / h['A'][1]:.1%}), "
              f"half B {h['B'][0]}/{h['B'][1]} ({h['B'][0] / h['B'][1]:.1%}); "
              f"both {dropped}/{n} (**{dropped / n:.1%}**)")
    hits = {name: blocklist_hits(corpus[name][0], verdicts[name, "paper"], allow) for name in corpus}
    for name, rows in hits.items():
        print(f"\nurl_blocklist hits on {name} pages: {len(rows)}")
        for r in rows:
            print(f"  {r['reason'] or 'spared'}  {r['domain']}  allowed by: {r['allowed_by']}  {r['url']}")
    print(f"\ncrawl pages kept now, dropped by datatrove's rules: {len(rescued)}")
    for r in rescued:
        print(f"  {r['was']}  {r['url']}  [{r['language']}] {r['excerpt'][:100]}")
    print(f"crawl pages dropped now, kept by datatrove's rules: {len(newly)}")
    for r in newly:
        print(f"  {r['now']}  {r['url']}  [{r['language']}] {r['excerpt'][:100]}")
    results.update({"by_reason": table, "dropped": totals, "gold_held_out": splits, "blocklist_hits": hits,
                    "first_reasons": {f"{n}_{m}": [{"url": doc["url"], "first": d["first"]}
                                                   for doc, d in zip(corpus[n][0], verdicts[n, m])]
                                      for n in corpus for m in MODES},
                    "gold_examples": examples,
                    "crawl_kept_now": rescued, "crawl_dropped_now": newly,
                    "min_lines_sweep": sweep_min_lines(corpus)})
    write_json(args.out, results)
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
