"""Our text against Common Crawl's own (WET), page by page, where a crawl ships both.

    python bench/bench_wet.py [--out bench/results/wet.json]

A WET file holds Common Crawl's text extraction of the HTML responses of the WARC of the same
name, one `conversion` record per page, joined to our pages by WARC-Target-URI. Our text comes
from ingest (`stages.ingest.read_all`) and the extract stage with its default settings (in this
process: `isolate` off). WET keeps all visible text, menus and footers included, so it is no
gold: precision is the share of our tokens found in WET (do we invent text?), recall the share
of WET's tokens we keep (mostly boilerplate we mean to drop); tokens as multisets, after NFKC
and case folding (bench/gold.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
import gristmill.core.env  # noqa: F401,E402
from bench.common import DATA_DIR, machine_notes, markdown_table, write_json  # noqa: E402
from bench.gold import token_f1  # noqa: E402
from gristmill.core.stats import StageStats  # noqa: E402
from gristmill.stages.extract import ExtractConfig  # noqa: E402
from gristmill.stages.extract import TrafilaturaExtract  # noqa: E402
from gristmill.stages.ingest import read_all  # noqa: E402

WARC_DIR = DATA_DIR / "warc"
PAIRS = [  # (the crawl's WARC, its WET)
    ("more/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc",
     "more/CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc.wet"),
    ("real/whirlwind-CC-MAIN-2024-22.warc.gz", "real/whirlwind-CC-MAIN-2024-22.warc.wet.gz"),
]


def wet_texts(path: Path) -> dict[str, str]:
    """WARC-Target-URI → text of each conversion record."""
    with open(path, "rb") as f:
        return {r.rec_headers.get_header("WARC-Target-URI"):
                r.content_stream().read().decode("utf-8", "replace")
                for r in ArchiveIterator(f) if r.rec_type == "conversion"}


def our_texts(path: Path) -> dict[str, str | None]:
    """URL → our extracted text (None where extraction dropped the page) for every page ingest keeps."""
    extract = TrafilaturaExtract(ExtractConfig(isolate=False))  # the defaults, in this process
    docs, _, _ = read_all(str(path))
    texts: dict[str, str | None] = dict.fromkeys(d["url"] for d in docs)
    extracted = extract.run(docs, StageStats(), [])
    texts.update((d["url"], d["text"]) for d in extracted)
    return texts


def compare(warc: Path, wet: Path) -> list[dict]:
    ours, theirs = our_texts(warc), wet_texts(wet)
    rows = []
    for url, wet_text in theirs.items():
        text = ours.get(url)
        precision, recall, f1 = token_f1(text, wet_text)
        rows.append({
            "file": warc.name, "url": url, "ingested": url in ours,
            "chars_ours": len(text or ""), "chars_wet": len(wet_text),
            "precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3),
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "wet.json"))
    args = parser.parse_args()
    rows = [row for warc, wet in PAIRS for row in compare(WARC_DIR / warc, WARC_DIR / wet)]
    table = markdown_table(
        ["page", "chars ours / WET", "precision", "recall", "F1"],
        [(_short(r["url"]), f"{r['chars_ours']} / {r['chars_wet']}", r["precision"], r["recall"], r["f1"])
         for r in rows],
    )
    print(table)
    write_json(args.out, {
        "machine": {k: v for k, v in machine_notes(["warcio", "trafilatura"]).items()
                    if k != "pinned_to_core"},  # nothing is timed
        "pairs": [{"warc": warc, "wet": wet} for warc, wet in PAIRS],
        "pages": rows,
        "mean": {k: round(sum(r[k] for r in rows) / len(rows), 3) for k in ("precision", "recall", "f1")},
    })


def _short(url: str, width: int = 60) -> str:
    url = url.split("://", 1)[-1]
    return url if len(url) <= width else url[:width - 1] + "…"


if __name__ == "__main__":
    main()
