"""stages/decontaminate/ngrams.py against lm-evaluation-harness's janitor (the reference of GPT-3's
13-gram recipe; lm-eval 0.4.13, installed --no-deps as the tests' reference): the same n-grams
registered, and the same pieces kept, on real gold article text with benchmark items planted in
it — as they are, upper-cased, with punctuation changed, with line breaks."""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest

from gristmill.core.eval_tasks import load_task
from gristmill.stages.decontaminate.ngrams import NgramIndex, clean_pieces, contaminant_ngrams
from tests.conftest import DATA, require


def janitor_class():
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        janitor = pytest.importorskip("lm_eval.decontamination.janitor")  # warns: no C++ helper
    return janitor.Janitor


def plant_variants(item: str, rng: random.Random) -> list[str]:
    """An item as a quiz page might copy it."""
    return [item, item.upper(), item.replace("?", " ?").replace(",", ";"), item.replace(" ", "\n", 3),
            "".join(c for c in item if c not in ".,?!")]


@pytest.fixture(scope="module")
def fixture_texts() -> tuple[list[str], list[str]]:
    """Contaminants (context + gold answer of arc_easy and hellaswag questions) and documents: gold
    article bodies, some with one to three items planted at random word boundaries."""
    gold = require(DATA / "extraction" / "scrapinghub" / "ground-truth.json")
    articles = [v["articleBody"] for _, v in sorted(json.loads(gold.read_text(encoding="utf-8")).items())][:60]
    rng = random.Random(7)
    items = []
    for name in ("arc_easy:rc_0shot", "hellaswag:rc_0shot"):
        for q in load_task(name, 30).questions:
            context, answer = q.choices[q.label]
            items.append(context + answer)
    docs = []
    for i, article in enumerate(articles):
        words = article.split(" ")
        for _ in range(i % 4):  # 0-3 planted items
            at = rng.randrange(len(words) + 1)
            words.insert(at, rng.choice(plant_variants(rng.choice(items), rng)))
        docs.append(" ".join(words))
    docs += ["", "short", "a " * 150, items[0], items[1][:150]]  # short ones: the recipe drops them
    return items, docs


@pytest.mark.parametrize("n, window, min_slice, too_dirty", [(13, 200, 200, 10), (8, 50, 30, 3), (5, 0, 0, 100)])
def test_the_same_pieces_as_the_janitor(fixture_texts, n, window, min_slice, too_dirty):
    Janitor = janitor_class()
    items, docs = fixture_texts
    jan = Janitor(ngram_n=n, window_to_remove=window, minimum_slice_length=min_slice, too_dirty_cutoff=too_dirty)
    with contextlib.redirect_stdout(io.StringIO()):
        for item in items:
            jan.register_contaminant_python(item)
        theirs = [jan.clean_python(d) for d in docs]
    assert {g for item in items for g in contaminant_ngrams(item, n)} == jan.dirt_ngrams
    index = NgramIndex.build(items, n, exact=True)
    ours = [clean_pieces(d, index.matches(d), window, min_slice, too_dirty) for d in docs]
    assert ours == theirs
    changed = sum(o != [d] for o, d in zip(ours, docs))
    assert changed >= len(docs) // 2  # the fixture does exercise removal


def test_planted_items_are_found_in_every_form(fixture_texts):
    """Every item of 13 words or more, in every planted form; the janitor's exact recipe misses a
    question whose "?" is set apart (an empty word breaks its n-grams), ours does not."""
    items, _ = fixture_texts
    index, janitor = NgramIndex.build(items, 13), NgramIndex.build(items, 13, exact=True)
    rng, missed_by_janitor = random.Random(1), 0
    for item in items:
        if not list(contaminant_ngrams(item, 13)):  # under 13 words: nothing to find
            continue
        for variant in plant_variants(item, rng):
            page = "Some page text before. " + variant + " And after it."
            assert index.matches(page), variant
            missed_by_janitor += not janitor.matches(page)
    assert missed_by_janitor > 0


def test_an_index_saved_and_memory_mapped_matches_the_same(tmp_path, fixture_texts):
    items, docs = fixture_texts
    index = NgramIndex.build(items, 13)
    index.save(tmp_path / "index.npy")
    mapped = NgramIndex.load(tmp_path / "index.npy", 13)
    assert len(mapped) == len(index) and all(mapped.matches(d) == index.matches(d) for d in docs)
