"""The extraction time limit: what the killable child costs on normal pages, and how long a
pathological page takes to drop, each against in-process extraction under SIGALRM, one core.

    python bench/bench_extract_limit.py [--rounds 2] [--limit N] [--out bench/results/extract_limit.json]

1. Throughput: the extract stage alone over the 708 packed pages (ingested once, up front) with
   `isolate: true` (the default) and `isolate: false`, page by page in alternating order (one
   child for the whole run, as for a shard), --rounds times; the fastest round of each counts.
   The texts of the two must be identical.
2. Time to drop: pages of 200,000 small elements (under the 4 MB payload cap) at a 5 s limit,
   one per shape, timed from the stage taking the page to it yielding the drop, both ways.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import gristmill.core.env  # noqa: F401

from gristmill.core.stats import StageStats
from gristmill.stages.extract import ExtractConfig
from gristmill.stages.extract import TrafilaturaExtract
from gristmill.stages.ingest import read_all

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402

TIMEOUT_S = 5.0
PACKED = ("scrapinghub_pages.warc.gz", "trafilatura_pages.warc.gz")
ELEMENTS = 200_000
SHAPES = {
    "p": "<p>x</p>",
    "table": "<table><tr><td>x</td></tr></table>",
    "div_p": "<div><p>word</p></div>",
    "div_span": "<div><span>x</span></div>",
}


def extract_all(docs: list[dict], isolate: bool) -> tuple[float, dict]:
    """Seconds for the stage over copies of `docs` (child started and stopped), and its counts."""
    stage = TrafilaturaExtract(ExtractConfig(timeout_s=TIMEOUT_S, isolate=isolate))
    stats = StageStats()
    t0 = time.perf_counter()
    list(stage.run((dict(d) for d in docs), stats, []))
    return time.perf_counter() - t0, stats.to_dict()


def throughput(docs: list[dict], rounds: int) -> dict:
    """Both ways page by page, in alternating order, so a busy spell on the machine hits both."""
    stages = {isolate: TrafilaturaExtract(ExtractConfig(timeout_s=TIMEOUT_S, isolate=isolate))
              for isolate in (False, True)}
    texts = {isolate: {} for isolate in stages}
    seconds = {isolate: [] for isolate in stages}
    for stage in stages.values():
        stage.events = Counter()
    for r in range(rounds):
        total = dict.fromkeys(stages, 0.0)
        for i, doc in enumerate(docs):
            for isolate in (False, True) if (i + r) % 2 == 0 else (True, False):
                copy = dict(doc)
                t0 = time.perf_counter()
                reason = stages[isolate].apply(copy)
                total[isolate] += time.perf_counter() - t0
                texts[isolate][doc["warc_record_id"]] = copy.get("text") if reason is None else reason
        for isolate, s in total.items():
            seconds[isolate].append(round(s, 2))
    stages[True].worker.close()
    best = {isolate: min(runs) for isolate, runs in seconds.items()}
    return {
        "pages": len(docs),
        "in_process_seconds_each_round": seconds[False],
        "isolated_seconds_each_round": seconds[True],
        "in_process_docs_per_s": round(len(docs) / best[False], 1),
        "isolated_docs_per_s": round(len(docs) / best[True], 1),
        "isolated_vs_in_process": round(best[False] / best[True], 3),
        "isolated_vs_in_process_each_round": [round(a / b, 3) for a, b in zip(seconds[False], seconds[True])],
        "identical_texts": texts[True] == texts[False],
        "isolated_events": dict(stages[True].events),
    }


def time_to_drop(shape: str, element: str, isolate: bool) -> dict:
    html = ("<html><body><article>" + element * ELEMENTS + "</article></body></html>").encode()
    seconds, counts = extract_all([{"html": html, "charset": None}], isolate)
    return {"shape": shape, "bytes": len(html), "isolate": isolate, "seconds": round(seconds, 2),
            "dropped": counts["dropped"], "overruns": counts["events"].get("extract_overrun", 0)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="first N packed pages of each file")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "extract_limit.json"))
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="shared/data")
    args = parser.parse_args()
    pin_to_core()  # the child inherits the core: parent and child share it, as in a Ray worker

    docs = [d for name in PACKED for d in read_all(str(args.data / "warc" / "packed" / name))[0][:args.limit]]
    speed = throughput(docs, args.rounds)
    drops = [time_to_drop(shape, el, isolate) for shape, el in SHAPES.items() for isolate in (False, True)]

    write_json(args.out, {"machine": machine_notes(["trafilatura", "lxml"]), "timeout_s": TIMEOUT_S,
                          "rounds": args.rounds, "throughput": speed, "time_to_drop": drops})
    print(markdown_table(
        ["pages", "in-process docs/s", "isolated docs/s", "isolated vs in-process", "identical texts"],
        [[speed["pages"], speed["in_process_docs_per_s"], speed["isolated_docs_per_s"],
          f"{speed['isolated_vs_in_process']:.3f}×", speed["identical_texts"]]]))
    print()
    print(markdown_table(
        ["page (200k elements)", "bytes", "in-process s (SIGALRM)", "isolated s (killed)", "dropped"],
        [[a["shape"], a["bytes"], a["seconds"], b["seconds"], f"{a['dropped']} / {b['dropped']}"]
         for a, b in zip(drops[::2], drops[1::2])]))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
