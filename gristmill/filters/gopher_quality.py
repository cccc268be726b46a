"""Gopher's quality heuristics (Rae et al. 2021, "Scaling Language Models", A.1.1); the repetition
heuristics are in gopher_repetition.py.

Our own implementation of the rules at the paper's thresholds (datatrove 0.10.1's defaults).
Tokens are `TextView.words`: word and punctuation tokens, split per language (filters/text.py).
Every signal is computed for every document (NaN where undefined); the reason is that of the
first rule, in datatrove's order, that the document fails.

Two definitions (`compat`):
- `paper` (the default): the paper's rules are about words, and punctuation is not a word. "80%
  of words contain a letter", the "#" and ellipsis ratios and the repeated n-grams all count
  words (tokens not made only of punctuation or symbols). Ordinary prose scores 0.95-1.0 on the
  alphabetic ratio; a page of numbers and dates still scores far below 0.8.
  Two more, where the paper says "words" and "lines" and datatrove counts layout: the number
  of a list item at a line start ("1." "iv)" "b)") is numbering, not a word, so it leaves the
  alphabetic ratio (a numbered list is not a table of numbers); and a repeated line counts as a
  duplicate line only if it is text: not a rule of symbols without a letter or digit ("-",
  "|"), nor a short labelled field with its value ("Ort: Stadthalle", "Eintritt: frei"), which
  listings repeat by design (`is_layout_or_field_line`; every line still counts in the total).
- `datatrove`: datatrove's decisions (tests/filters/test_heuristic_filters.py measures the agreement on
  real pages): those three count every spaCy token, each comma and period a "word" without a
  letter, so that ordinary German or English news prose scores 0.78-0.80 and is dropped.

Deviations from datatrove in both, on purpose:
- the stop words are the document language's (`filters.text.stop_words`; English is Gopher's
  list, which datatrove applies to every language); a language without a list skips the rule;
- a token counts as a symbol (not a word) when it is made only of punctuation, symbols or
  control characters by Unicode category; datatrove uses a fixed character list, which counts
  e.g. "•", "©", "€" or an emoji as words;
- repeated n-grams are compared as word sequences; datatrove compares the concatenated strings,
  so that ("ab", "c") and ("a", "bc") collide there;
- datatrove's "gopher_enough_stop_words" (a drop for too few) is called "gopher_few_stop_words".

The thresholds are Gopher's, tuned on English. Chinese and Japanese words are single characters
here (filters/text.py): their mean word length is about 1 and natural text repeats character
5-grams often, so those languages need their own settings (e.g. `min_avg_word_length: null`
and higher n-gram fractions) in the filters config.
"""

from __future__ import annotations

import re

from pydantic import Field

from gristmill.filters.base import DocFilter, HeuristicParams, Limit
from gristmill.filters.text import ALPHA_TOKENS, SYMBOL_TOKENS, TextView, stop_words

NAN = float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b else NAN


# German "3.", or a number or letter followed by its "." or ")" token).
_MARKER = re.compile(r"(?:\d{1,3}|[ivxlc]{1,5}|[IVXLC]{1,5}|[a-zA-Z])[.)]")
_MARKER_HEAD = re.compile(r"\d{1,3}|[ivxlc]{1,5}|[IVXLC]{1,5}|[a-zA-Z]")


def list_marker_tokens(line_words: list[list[str]]) -> list[str]:
    """The tokens that number list items ("1", "iv.", "b"), one at most per line (its first), when
    followed by more of the line: numbering, not words. Bullets ("•", "-") are symbols already."""
    out = []
    for tokens in line_words:
        if len(tokens) < 2:
            continue
        first = tokens[0]
        if _MARKER.fullmatch(first) or (len(tokens) > 2 and tokens[1] in (".", ")")
                                        and _MARKER_HEAD.fullmatch(first)):
            out.append(first)
    return out


class GopherQualityParams(HeuristicParams):
    """Each threshold set to None turns its rule off (the signal is still computed). `compat`:
    what the ratios count per (see the module docstring)."""

    min_doc_words: int | None = Field(default=50, ge=0)  # words: tokens not made only of symbols
    max_doc_words: int | None = Field(default=100_000, ge=0)
    min_avg_word_length: float | None = Field(default=3, ge=0)
    max_avg_word_length: float | None = Field(default=10, ge=0)
    max_symbol_word_ratio: float | None = Field(default=0.1, ge=0)  # "#", and "..."/"…", per token
    max_bullet_lines_ratio: float | None = Field(default=0.9, ge=0, le=1)  # lines starting "•" or "-"
    max_ellipsis_lines_ratio: float | None = Field(default=0.3, ge=0, le=1)  # lines ending "..." or "…"
    min_alpha_words_ratio: float | None = Field(default=0.8, ge=0, le=1)  # tokens with a letter
    min_stop_words: int | None = Field(default=2, ge=0)  # distinct stop words present
    stop_words: list[str] | None = None  # None: the language's list (filters/text.py)


class GopherQuality(DocFilter):
    name = "gopher_quality"
    Params = GopherQualityParams
    signals = ("gopher_word_count", "gopher_mean_word_length", "gopher_hash_ratio", "gopher_ellipsis_ratio",
               "gopher_bullet_lines_ratio", "gopher_ellipsis_lines_ratio", "gopher_alpha_words_ratio",
               "gopher_stop_words")
    params: GopherQualityParams

    def __init__(self, params: GopherQualityParams, language: str):
        super().__init__(params, language)
        own = params.stop_words
        self.stop_words = frozenset(own) if own is not None else stop_words(language)

    @classmethod
    def limits(cls, params: GopherQualityParams) -> list[Limit]:
        """Every rule (the stop-word one only where the language has stop words: NaN otherwise)."""
        p = params
        return cls._limits(
            ("gopher_word_count", "<", p.min_doc_words, "gopher_short_doc"),
            ("gopher_word_count", ">", p.max_doc_words, "gopher_long_doc"),
            ("gopher_mean_word_length", "<", p.min_avg_word_length, "gopher_below_avg_threshold"),
            ("gopher_mean_word_length", ">", p.max_avg_word_length, "gopher_above_avg_threshold"),
            ("gopher_hash_ratio", ">", p.max_symbol_word_ratio, "gopher_too_many_hashes"),
            ("gopher_ellipsis_ratio", ">", p.max_symbol_word_ratio, "gopher_too_many_ellipsis"),
            ("gopher_bullet_lines_ratio", ">", p.max_bullet_lines_ratio, "gopher_too_many_bullets"),
            ("gopher_ellipsis_lines_ratio", ">", p.max_ellipsis_lines_ratio, "gopher_too_many_end_ellipsis"),
            ("gopher_alpha_words_ratio", "<", p.min_alpha_words_ratio, "gopher_below_alpha_threshold"),
            ("gopher_stop_words", "<", p.min_stop_words, "gopher_few_stop_words"),
        )

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        p, text, words = self.params, doc.text, doc.words
        n_tokens = len(words)
        joined = "\n".join(words)
        symbols = SYMBOL_TOKENS.findall(joined)
        n_words = n_tokens - len(symbols)
        word_chars = len(joined) - max(n_tokens - 1, 0) - sum(map(len, symbols))
        mean_len = _ratio(word_chars, n_words)
        per = n_words if p.compat == "paper" else n_tokens  # datatrove: per token, punctuation too
        hash_ratio = _ratio(text.count("#"), per)
        ellipsis_ratio = _ratio(text.count("...") + text.count("…"), per)
        lines = text.splitlines()
        n_bullets = n_ellipsis = 0
        for line in lines:
            if line.lstrip().startswith(("•", "-")):
                n_bullets += 1
            if line.rstrip().endswith(("...", "…")):
                n_ellipsis += 1
        bullet_ratio = _ratio(n_bullets, len(lines))
        end_ellipsis_ratio = _ratio(n_ellipsis, len(lines))
        n_alpha = len(ALPHA_TOKENS.findall(joined))
        if p.compat == "paper":  # list numbering ("1." "iv)") is not a word
            markers = list_marker_tokens(doc.line_words)
            n_alpha -= len(ALPHA_TOKENS.findall("\n".join(markers)))
            alpha_ratio = _ratio(n_alpha, per - len(markers))
        else:
            alpha_ratio = _ratio(n_alpha, per)
        n_stop = float(len(self.stop_words.intersection(words))) if self.stop_words else NAN
        signals = {
            "gopher_word_count": float(n_words), "gopher_mean_word_length": mean_len,
            "gopher_hash_ratio": hash_ratio, "gopher_ellipsis_ratio": ellipsis_ratio,
            "gopher_bullet_lines_ratio": bullet_ratio, "gopher_ellipsis_lines_ratio": end_ellipsis_ratio,
            "gopher_alpha_words_ratio": alpha_ratio, "gopher_stop_words": n_stop,
        }
        # The checks in datatrove's order; NaN (undefined) never fails a check.
        if p.min_doc_words is not None and n_words < p.min_doc_words:
            return signals, "gopher_short_doc"
        if p.max_doc_words is not None and n_words > p.max_doc_words:
            return signals, "gopher_long_doc"
        if p.min_avg_word_length is not None and mean_len < p.min_avg_word_length:
            return signals, "gopher_below_avg_threshold"
        if p.max_avg_word_length is not None and mean_len > p.max_avg_word_length:
            return signals, "gopher_above_avg_threshold"
        if p.max_symbol_word_ratio is not None:
            if hash_ratio > p.max_symbol_word_ratio:
                return signals, "gopher_too_many_hashes"
            if ellipsis_ratio > p.max_symbol_word_ratio:
                return signals, "gopher_too_many_ellipsis"
        if p.max_bullet_lines_ratio is not None and bullet_ratio > p.max_bullet_lines_ratio:
            return signals, "gopher_too_many_bullets"
        if p.max_ellipsis_lines_ratio is not None and end_ellipsis_ratio > p.max_ellipsis_lines_ratio:
            return signals, "gopher_too_many_end_ellipsis"
        if p.min_alpha_words_ratio is not None and alpha_ratio < p.min_alpha_words_ratio:
            return signals, "gopher_below_alpha_threshold"
        if p.min_stop_words is not None and self.stop_words and n_stop < p.min_stop_words:
            return signals, "gopher_few_stop_words"
        return signals, None
