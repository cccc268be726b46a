"""Extraction quality on real pages with gold text (floors from BENCHMARKS.md figures, with margins)."""

import pytest

from bench.gold import load_scrapinghub_gold, load_trafilatura_gold, mean_token_scores, total_snippet_counts
from gristmill.core.stats import StageStats
from gristmill.stages.extract import ExtractConfig
from gristmill.stages.extract import TrafilaturaExtract
from gristmill.stages.ingest import read_all
from tests.conftest import DATA, WARC, require
from tests.floors import floor

PACKED = WARC / "packed"
# measured 2026-11-29 with the default settings (BENCHMARKS.md, "The whole chain on real crawl
# pages"), floored at the 99% Wilson lower bound for the number of pages: scrapinghub mean token
# F1 0.958 over 113 pages → 0.878, trafilatura snippet F1 0.911 over 595 pages → 0.876
SCRAPINGHUB_PAGES, TRAFILATURA_PAGES = 113, 595
F1_FLOOR = floor(0.958, SCRAPINGHUB_PAGES)
SNIPPET_F1_FLOOR = floor(0.911, TRAFILATURA_PAGES)
GOLD = DATA / "extraction"


def extracted_texts(warc) -> dict[str, str]:
    """WARC-Record-ID → text, through gristmill's ingest and extract with default settings."""
    docs, _, _ = read_all(str(require(warc)))
    kept = TrafilaturaExtract(ExtractConfig(timeout_s=60)).run(docs, StageStats(), [])
    return {d["warc_record_id"]: d["text"] for d in kept}


def test_scrapinghub_article_token_f1():
    warc = PACKED / "scrapinghub_pages.warc.gz"
    gold = load_scrapinghub_gold(require(GOLD / "scrapinghub" / "ground-truth.json"), warc)
    assert len(gold) == SCRAPINGHUB_PAGES
    scores = mean_token_scores(extracted_texts(warc), gold)
    print(f"scrapinghub: P {scores.precision:.3f} R {scores.recall:.3f} F1 {scores.f1:.3f} empty {scores.empty}")
    assert scores.f1 >= F1_FLOOR


@pytest.mark.slow
def test_trafilatura_snippets():
    warc = PACKED / "trafilatura_pages.warc.gz"
    gold = load_trafilatura_gold(require(GOLD / "trafilatura" / "evaldata.json"), warc)
    assert len(gold) == TRAFILATURA_PAGES
    counts = total_snippet_counts(extracted_texts(warc), gold)
    print(f"trafilatura: P {counts.precision:.3f} R {counts.recall:.3f} F1 {counts.f1:.3f}")
    assert counts.f1 >= SNIPPET_F1_FLOOR

