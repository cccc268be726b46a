"""Bad-words filter: the share of a document covered by LDNOOBW list entries, per language.

The second of the three adult-content filters, after `url_blocklist` (filters/url_blocklist.py)
and before `toxicity` (filters/toxicity.py). Defaults and the measurements behind them:
bench/bench_toxicity.py, bench/results/toxicity.json.

`badwords` (signals `badwords_ratio`, `badwords_count`; reason "ratio")
    Lists: LDNOOBW, "List of Dirty, Naughty, Obscene, and Otherwise Bad Words", CC BY 4.0, from
    LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words @
    5faf2ba42d7b1c0977169ec3611df25a3c08eb13. The files in assets/ldnoobw/ are unchanged copies of
    26 lists plus the Quebec French one, with the licence text and attribution beside them.
    `badwords_ratio` is the fraction of the document's units covered by list entries. A unit is
    a word in spaced languages (the tokens of `view.words` that contain a letter or digit) and a
    letter or digit in zh, ja and th. `badwords_count` is the number of matches.
    Matching uses Aho-Corasick over the casefolded text, with whitespace runs collapsed. An entry
    of several words matches them in sequence and covers that many words. Where matches overlap,
    the longest is kept. The edges an entry needs depend on the script:
      - spaced languages: the entry must stand as whole words, with no letter or digit on
        either side;
      - zh, ja, th: substring matching. Entries shorter than 2 characters (th: 3) are ignored:
        single characters such as 性 ("nature", as in 可能性) hit 28 of 437 clean Chinese
        sentences. An edge that is an ASCII letter or digit still needs an ASCII word
        boundary, so "sm" does not match inside "smartphone" and "13." does not match "2013.";
      - ko: the entry must start a word but may carry a suffix, because Korean particles attach
        (병신 matches "병신아").
    Russian ё is folded to е. Languages map by base code: zh-Hans → zh, nb/nn → no, tl → fil.
    fr also gets the Quebec list.
    A language with no list gets NaN signals and is never dropped. `extra_words` adds terms;
    given for a language with no list, it switches the filter on there.
    A document is dropped when the ratio is above `threshold` (default 0.02). C4's rule (drop on
    any one hit; threshold 0 here) dropped 10 of 113 clean news articles in the bench, because
    such pages mention rape, sex or pedophile in reporting. At 0.02 none were dropped, and none
    of the 779 real pages of the sample run except one Chinese porn page.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from gristmill.filters.base import DocFilter, FilterParams, Limit
from gristmill.filters.text import TextView

ASSETS = Path(__file__).resolve().parent / "assets"
LDNOOBW = ASSETS / "ldnoobw"
NAN = float("nan")

_WS = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[\W_]+")
# language (base code) → how entries match, and the list files that make it up
_SUBSTRING_MIN_LEN = {"zh": 2, "ja": 2, "th": 3}  # scriptio continua: substring matching
_PREFIX = {"ko"}  # spaced, but particles attach to the word: the entry must start a word
_LISTS = {"fr": ("fr", "fr-CA-u-sd-caqc")}
_ALIASES = {"nb": "no", "nn": "no", "tl": "fil"}


def base_language(language: str) -> str:
    base = (language or "unknown").strip().lower().replace("_", "-").split("-")[0]
    return _ALIASES.get(base, base)


def _fold(text: str, lang: str) -> str:
    text = _WS.sub(" ", text).casefold()
    return text.replace("ё", "е") if lang in ("ru", "uk", "be") else text


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


class BadWordMatcher:
    """One language's bad-word automaton: `match(text)` finds the entries, `units(doc)` counts the
    units (words, or letters and digits for zh/ja/th) that `badwords_ratio` divides by."""

    def __init__(self, lang: str, entries: frozenset[str]):
        import ahocorasick

        self.lang = lang
        self.mode = "substring" if lang in _SUBSTRING_MIN_LEN else "prefix" if lang in _PREFIX else "word"
        min_len = _SUBSTRING_MIN_LEN.get(lang, 1)
        self.automaton = ahocorasick.Automaton()
        self.size = 0
        for entry in entries:
            if self.mode == "substring" and len(entry) < min_len and not entry.isascii():
                continue
            # an entry's edges: need_start/need_end = a boundary is required there; units = words it covers
            if self.mode == "substring":
                need_start, need_end = _is_ascii_alnum(entry[0]), _is_ascii_alnum(entry[-1])
                units = sum(map(str.isalnum, entry))
            else:
                need_start, need_end = True, self.mode == "word" or entry.isascii()
                units = len(entry.split(" "))
            self.automaton.add_word(entry, (len(entry), need_start, need_end, units))
            self.size += 1
        if self.size:
            self.automaton.make_automaton()

    def _boundary(self, ch: str) -> bool:
        return not (_is_ascii_alnum(ch) if self.mode == "substring" else _is_word_char(ch))

    def match(self, text: str) -> list[tuple[int, int, int]]:
        """Accepted, non-overlapping matches as (start, end, units), longest first on overlap."""
        if not self.size:
            return []
        text = _fold(text, self.lang)
        found = []
        last = len(text) - 1
        for end, (length, need_start, need_end, units) in self.automaton.iter(text):
            start = end - length + 1
            if need_start and start > 0 and not self._boundary(text[start - 1]):
                continue
            if need_end and end < last and not self._boundary(text[end + 1]):
                continue
            found.append((start, end, units))
        if len(found) > 1:
            found.sort(key=lambda m: (m[0], -m[1]))
            kept, reach = [], -1
            for m in found:
                if m[0] > reach:
                    kept.append(m)
                    reach = m[1]
            found = kept
        return found

    def units(self, doc: TextView) -> int:
        if self.mode == "substring":
            return len(_NON_ALNUM.sub("", doc.text))
        return sum(1 for w in doc.words if any(_is_word_char(c) for c in w))


def available_languages() -> list[str]:
    """Base language codes that have a shipped list."""
    return sorted(p.name for p in LDNOOBW.iterdir() if p.is_file() and "-" not in p.name and p.name != "LICENSE"
                  and not p.name.endswith((".md", ".txt")))


@cache
def badword_matcher(lang: str, extra: tuple[str, ...] = ()) -> BadWordMatcher | None:
    """The matcher for a base language code, or None where there is no list and no extra words."""
    entries: set[str] = set()
    for name in _LISTS.get(lang, (lang,)):
        path = LDNOOBW / name
        if path.is_file():
            entries.update(_fold(line.strip(), lang) for line in path.read_text(encoding="utf-8").splitlines())
    entries.update(_fold(w.strip(), lang) for w in extra)
    entries.discard("")
    entries.discard(" ")
    return BadWordMatcher(lang, frozenset(e.strip() for e in entries)) if entries else None


class BadWordsParams(FilterParams):
    threshold: float = Field(default=0.02, ge=0.0)  # drop when badwords_ratio > threshold (measured: bench)
    extra_words: list[str] = Field(default_factory=list)  # added to the language's list (or make one)


class BadWords(DocFilter):
    """LDNOOBW bad-word ratio; drops above `threshold`. No list for the language → NaN, kept."""

    name: ClassVar[str] = "badwords"
    Params: ClassVar[type[FilterParams]] = BadWordsParams
    signals: ClassVar[tuple[str, ...]] = ("badwords_ratio", "badwords_count")
    params: BadWordsParams

    def __init__(self, params: BadWordsParams, language: str):
        super().__init__(params, language)
        self.matcher = badword_matcher(base_language(language), tuple(sorted(set(params.extra_words))))

    @classmethod
    def limits(cls, params: BadWordsParams) -> list[Limit]:
        return cls._limits(("badwords_ratio", ">", params.threshold, "ratio"))

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        if self.matcher is None:
            return {"badwords_ratio": NAN, "badwords_count": NAN}, None
        found = self.matcher.match(doc.text)
        if not found:
            return {"badwords_ratio": 0.0, "badwords_count": 0.0}, None
        total = self.matcher.units(doc)
        ratio = min(1.0, sum(m[2] for m in found) / total) if total else 1.0
        signals = {"badwords_ratio": ratio, "badwords_count": float(len(found))}
        return signals, ("ratio" if ratio > self.params.threshold else None)
