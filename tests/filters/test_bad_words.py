"""Bad-words filter (filters/bad_words.py): unit behaviour."""

from __future__ import annotations

import math

import pytest

from gristmill.filters.bad_words import BadWords, BadWordsParams, available_languages
from gristmill.filters.base import DocFilter
from gristmill.filters.text import TextView


def run(f: DocFilter, text: str, language: str = "en", url: str = ""):
    return f(TextView(text, language, url))


def test_clean_text_kept():
    for lang, text in [("en", "The committee published its annual report on regional water quality."),
                       ("de", "Der Ausschuss hat seinen Jahresbericht zur Wasserqualität veröffentlicht."),
                       ("zh", "委员会发布了关于区域水质的年度报告，可能性很大。"),
                       ("ja", "委員会は地域の水質に関する年次報告書を公表しました。スマートフォンで読めます。")]:
        signals, reason = run(BadWords(BadWordsParams(), lang), text, lang)
        assert reason is None and signals == {"badwords_ratio": 0.0, "badwords_count": 0.0}, (lang, text)


def test_whole_words_only_in_spaced_languages():
    f = BadWords(BadWordsParams(threshold=0.0), "en")
    assert run(f, "A classic class assessment in Scunthorpe.")[0]["badwords_count"] == 0.0
    signals, reason = run(f, "What an ASS, honestly.")
    assert signals["badwords_count"] == 1.0 and reason == "ratio"


def test_multi_word_entries():
    f = BadWords(BadWordsParams(threshold=0.0), "en")
    signals, _ = run(f, "They watched 2 girls 1 cup yesterday")  # a four-word entry
    assert signals["badwords_count"] == 1.0
    assert signals["badwords_ratio"] == pytest.approx(4 / 7)
    signals, _ = run(f, "A ball\n  gag on the table")  # whitespace runs, line breaks
    assert signals["badwords_count"] == 1.0 and signals["badwords_ratio"] == pytest.approx(2 / 6)


def test_cjk_substring_matching():
    zh = BadWords(BadWordsParams(threshold=0.0), "zh")
    signals, reason = run(zh, "你他妈的在干什么", "zh")  # no spaces: found inside the run of characters
    assert signals["badwords_count"] == 1.0 and reason == "ratio"
    assert signals["badwords_ratio"] == pytest.approx(3 / 8)  # 他妈的: 3 of 8 characters
    assert run(zh, "这种可能性很大", "zh")[0]["badwords_count"] == 0.0  # single-character entries (性) ignored
    assert run(zh, "价格是2013.5元", "zh")[0]["badwords_count"] == 0.0  # ASCII entry "13." needs a boundary
    ja = BadWords(BadWordsParams(threshold=0.0), "ja")
    assert run(ja, "このサイトはアナルの話ばかりだ", "ja")[0]["badwords_count"] == 1.0
    assert run(ja, "新しいsmartphoneを買った", "ja")[0]["badwords_count"] == 0.0  # "sm" is ASCII: whole word
    assert run(BadWords(BadWordsParams(), "zh-Hans"), "你他妈的", "zh-Hans")[0]["badwords_count"] == 1.0


def test_korean_prefix_and_russian_yo():
    ko = BadWords(BadWordsParams(threshold=0.0), "ko")
    assert run(ko, "이 병신아 꺼져", "ko")[0]["badwords_count"] == 1.0  # particle attached to the entry
    ru = BadWords(BadWordsParams(threshold=0.0), "ru")
    assert run(ru, "ну ты и ЖОПА", "ru")[0]["badwords_count"] == 1.0
    assert run(ru, "ёб твою мать", "ru")[0]["badwords_count"] == run(ru, "еб твою мать", "ru")[0]["badwords_count"]


def test_ratio_threshold():
    f = BadWords(BadWordsParams(threshold=0.1), "en")
    assert run(f, "shit " + "word " * 5)[1] == "ratio"  # 1/6 > 0.1
    assert run(f, "shit " + "word " * 20)[1] is None  # 1/21 < 0.1


def test_unknown_language_is_a_no_op():
    for lang in ("xx", "unknown", "", "sw"):
        signals, reason = run(BadWords(BadWordsParams(threshold=0.0), lang), "fuck shit", lang)
        assert reason is None and all(math.isnan(v) for v in signals.values())
    f = BadWords(BadWordsParams(threshold=0.0, extra_words=["mbaya sana"]), "sw")  # extra words make a list
    assert run(f, "hii ni mbaya  sana kabisa", "sw")[0]["badwords_count"] == 1.0


def test_shipped_languages():
    assert {"en", "de", "es", "fr", "pl", "ru", "ja", "zh"} <= set(available_languages())
