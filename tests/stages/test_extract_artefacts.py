"""What an extractor adds that the page does not hold is taken out after extraction: lines
repeated past the page's own count, and trailing lists of link lines."""

from __future__ import annotations

from collections import Counter

from gristmill.core.stats import StageStats
from gristmill.stages.extract import ExtractConfig, TrafilaturaExtract
from gristmill.stages.extract_artefacts import without_artefacts
from gristmill.stages.ingest import IngestConfig, WarcIngest
from tests.conftest import WARC, require

LEAD = "The council voted on Tuesday to close the old bridge to cars from next spring onwards."
BODY = "Engineers had warned for years that its steel frame could no longer carry heavy traffic."


def page(body: str) -> str:
    return f"<html><head><title>t</title></head><body>{body}</body></html>"


def test_a_paragraph_the_page_holds_once_is_kept_once():
    html = page(f"<article><p>{LEAD}</p><p>{BODY}</p></article>")
    text, removed = without_artefacts(f"{LEAD}\n{LEAD}\n{BODY}", html, 4)
    assert text == f"{LEAD}\n{BODY}" and removed == Counter(repeated_line=1)


def test_lines_the_page_repeats_stay_as_often_as_it_shows_them():
    item = "Free delivery on orders over twenty pounds"
    html = page(f"<ul><li>{item}</li></ul><p>{BODY}</p><ul><li>{item}</li></ul>")
    text = f"- {item}\n{BODY}\n- {item}\n- {item}"  # three copies, the page shows two
    cleaned, removed = without_artefacts(text, html, 4)
    assert cleaned == f"- {item}\n{BODY}\n- {item}" and removed == Counter(repeated_line=1)
    short = "Read more"  # too short to be judged a paragraph
    assert without_artefacts(f"{short}\n{BODY}\n{short}", page(f"<p>{BODY}</p>"), 4)[1] == Counter()


def test_lines_written_otherwise_than_the_page_shows_them_are_not_judged():
    row = "Monday | 10:00 | Main hall | free entry |"  # a table row in the extractor's own syntax
    html = page(f"<table><tr><td>Monday</td><td>10:00</td><td>Main hall</td></tr></table><p>{BODY}</p>")
    text = f"{row}\n{row}\n{BODY}"
    assert without_artefacts(text, html, 4) == (text, Counter())


LINKS = ["Merriam-Webster dictionary", "Cambridge dictionary", "Collins dictionary", "Oxford dictionary",
         "Wiktionary entry"]


def test_a_trailing_list_of_link_lines_is_removed_and_a_short_one_kept():
    html = page(f"<p>{LEAD}</p><p>{BODY}</p>" + "".join(f'<a href="/{i}">{t}</a>' for i, t in enumerate(LINKS)))
    text, removed = without_artefacts("\n".join([LEAD, BODY, *[f"- {t}" for t in LINKS], ""]), html, 4)
    assert text == f"{LEAD}\n{BODY}" and removed == Counter(link_tail=1, link_tail_lines=5)
    three = "\n".join([LEAD, BODY, *LINKS[:3]])
    assert without_artefacts(three, html, 4) == (three, Counter())
    assert without_artefacts("\n".join([LEAD, BODY, *LINKS]), html, 0)[1] == Counter()  # off


def test_prose_at_the_end_and_a_text_of_links_only_are_kept():
    html = page("".join(f'<a href="/{i}">{t}</a>' for i, t in enumerate(LINKS)) + f"<p>{BODY}</p>")
    ends_in_prose = "\n".join([*LINKS, BODY])
    assert without_artefacts(ends_in_prose, html, 4) == (ends_in_prose, Counter())
    only_links = "\n".join(LINKS)
    assert without_artefacts(only_links, html, 4) == (only_links, Counter())


def test_the_stage_removes_a_lead_paragraph_trafilatura_emits_twice():
    """A real gold page (biathlon-antholz.it) whose article body, results list included,
    trafilatura writes twice; the page shows it once."""
    packed = require(WARC / "packed" / "trafilatura_pages.warc.gz")
    stats = StageStats()
    doc = next(d for d in WarcIngest(IngestConfig(), "gold").read(str(packed), stats, [])
               if "biathlon-antholz.it" in d["url"])
    results = {}
    for remove in (False, True):
        stage = TrafilaturaExtract(ExtractConfig(isolate=False, remove_artefacts=remove))
        results[remove] = [(d["text"], Counter(stage.events)) for d in stage.run([dict(doc)], StageStats(), [])][0]
    (before, _), (after, events) = results[False], results[True]
    repeated = [line for line, n in Counter(before.splitlines()).items() if n == 2 and len(line) >= 20]
    assert len(repeated) >= 3  # three paragraphs and the results list
    assert all(after.splitlines().count(line) == 1 for line in repeated)
    assert events["removed:repeated_line"] == len(repeated) and after.splitlines()[:3] == before.splitlines()[:3]


def test_an_article_trafilatura_flattens_into_one_line_comes_in_lines():
    """A real gold page (aljazeera.com) whose 4,057-character article trafilatura's fast path
    returns as one line; resiliparse's main content holds about the same text in 39 lines."""
    packed = require(WARC / "packed" / "scrapinghub_pages.warc.gz")
    doc = next(d for d in WarcIngest(IngestConfig(), "gold").read(str(packed), StageStats(), [])
               if "aljazeera.com/ajimpact/nasas-commercial-moon-shot" in d["url"])
    texts = {}
    for one_line_chars in (0, 4000, 5000):
        stage = TrafilaturaExtract(ExtractConfig(isolate=False, one_line_chars=one_line_chars))
        texts[one_line_chars] = [(d["text"], Counter(stage.events)) for d in stage.run([dict(doc)], StageStats(), [])][0]
    (flat_text, _), (lined, events), (too_short, kept) = texts[0], texts[4000], texts[5000]
    assert "\n" not in flat_text.strip() and len(flat_text) >= 4000
    assert lined.count("\n") >= 20 and 0.8 * len(flat_text) <= len(lined) <= 1.5 * len(flat_text)
    assert events["fallback_extraction:one_line"] == 1
    assert too_short == flat_text and kept["fallback_extraction:one_line"] == 0  # under the threshold
