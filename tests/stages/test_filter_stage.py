"""The filters stage: per-language chains, signal columns, drops and the annotate-only mode."""

from __future__ import annotations

import pytest
import yaml

from gristmill import filters
from gristmill.core.config import ConfigError
from gristmill.core.stats import StageStats
from gristmill.filters.base import DocFilter, FilterParams
from gristmill.pipeline.config import load_config
from gristmill.stages.filters import FiltersConfig
from gristmill.stages.filters import FilterStage
from tests.conftest import WARC, make_config, require


class MinWordsParams(FilterParams):
    min_words: int = 3


class MinWords(DocFilter):
    name = "min_words_test"
    Params = MinWordsParams
    signals = ("min_words_test_count",)

    def __call__(self, doc):
        n = len(doc.text.split())
        return {"min_words_test_count": float(n)}, "too_few_words" if n < self.params.min_words else None


class HasDigitParams(FilterParams):
    pass


class NoDigits(DocFilter):
    name = "no_digits_test"
    Params = HasDigitParams
    signals = ("no_digits_test_digits",)

    def __call__(self, doc):
        n = sum(c.isdigit() for c in doc.text)
        return {"no_digits_test_digits": float(n)}, "has_digits" if n else None


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    monkeypatch.setitem(filters.FILTERS, MinWords.name, MinWords)
    monkeypatch.setitem(filters.FILTERS, NoDigits.name, NoDigits)


DOCS = [
    {"text": "one two three four", "language": "en"},
    {"text": "one two", "language": "en"},
    {"text": "eins zwei", "language": "de"},
    {"text": "1 2 3 4", "language": "en"},
]


def run(cfg: FiltersConfig):
    stats, rejects = StageStats(), []
    kept = list(FilterStage(cfg).run([dict(d) for d in DOCS], stats, rejects))
    return kept, rejects, stats


def test_first_objection_drops_with_the_filter_name():
    cfg = FiltersConfig(default={"min_words_test": {}, "no_digits_test": {}},
                        languages={"de": {"min_words_test": {"min_words": 1}}})
    kept, rejects, stats = run(cfg)
    assert [d["text"] for d in kept] == ["one two three four", "eins zwei"]
    assert dict(stats.dropped) == {"min_words_test:too_few_words": 1, "no_digits_test:has_digits": 1}
    assert [r["reject_reason"] for r in rejects] == ["min_words_test:too_few_words", "no_digits_test:has_digits"]
    assert kept[0]["min_words_test_count"] == 4.0 and kept[0]["no_digits_test_digits"] == 0.0
    assert all(d["filter_flag"] is None for d in kept)


def test_a_filter_switched_off_for_one_language():
    cfg = FiltersConfig(default={"min_words_test": {}}, languages={"de": {"min_words_test": False}})
    kept, _, _ = run(cfg)
    assert "eins zwei" in [d["text"] for d in kept] and "min_words_test_count" not in kept[1]


def test_annotate_only_keeps_everything_and_flags():
    cfg = FiltersConfig(annotate_only=True, default={"min_words_test": {}, "no_digits_test": {}})
    kept, rejects, stats = run(cfg)
    assert len(kept) == 4 and not rejects and not stats.dropped
    assert [d["filter_flag"] for d in kept] == [None, "min_words_test:too_few_words",
                                                "min_words_test:too_few_words", "no_digits_test:has_digits"]
    assert all("no_digits_test_digits" in d for d in kept)  # every signal, even after a would-be drop
    assert stats.events["would_drop:min_words_test:too_few_words"] == 2


def test_columns_cover_every_configured_filter():
    cfg = FiltersConfig(default={"min_words_test": {}}, languages={"de": {"no_digits_test": {}}})
    names = [f.name for f in FilterStage(cfg).columns()]
    assert names == ["min_words_test_count", "no_digits_test_digits", "filter_flag"]


def config_with(tmp_path, filters_cfg):
    raw = make_config(tmp_path, {"cc": [str(require(WARC / "real" / "whirlwind-CC-MAIN-2024-22.warc.gz"))]})
    raw["stages"] = {"ingest": {}, "extract": {}, "lid": {}, "filters": filters_cfg, "write": {}}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


def test_filter_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"stages\.filters\.default\.nope: unknown filter"):
        load_config(config_with(tmp_path, {"default": {"nope": {}}}))
    with pytest.raises(ConfigError, match=r"stages\.filters\.default\.min_words_test\.min_words"):
        load_config(config_with(tmp_path, {"default": {"min_words_test": {"min_words": "x"}}}))
    with pytest.raises(ConfigError, match=r"stages\.filters\.languages\.de\.min_words_test\.typo: unknown key"):
        load_config(config_with(tmp_path, {"languages": {"de": {"min_words_test": {"typo": 1}}}}))
    cfg = load_config(config_with(tmp_path, {"default": {"min_words_test": {}}}))
    assert cfg.stages.order == ["ingest", "extract", "lid", "filters", "write"]


def test_compat_reaches_every_heuristic_unless_a_filter_sets_its_own():
    cfg = FiltersConfig(compat="datatrove", default={"gopher_quality": {}, "c4": {"compat": "paper"},
                                                     "min_words_test": {}})
    gopher, c4, min_words = FilterStage(cfg).chain("en")
    assert gopher.params.compat == "datatrove" and c4.params.compat == "paper"
    assert c4.params.min_num_sentences == 3  # the paper's threshold
    assert not hasattr(min_words.params, "compat")  # a filter without two definitions is untouched
    paper = FilterStage(FiltersConfig(default={"c4": {}})).chain("en")[0]
    assert paper.params.compat == "paper"
    assert FilterStage(FiltersConfig(compat="datatrove", default={"c4": {}})).chain("en")[0].params.min_num_sentences == 5
