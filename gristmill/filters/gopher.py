"""Gopher's quality and repetition heuristics (Rae et al. 2021, "Scaling Language Models", A.1.1).

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

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from gristmill.filters.base import DocFilter, HeuristicParams, Limit
from gristmill.filters.text import ALPHA_TOKENS, SYMBOL_TOKENS, TextView, stop_words

NAN = float("nan")


def _ratio(a: float, b: float) -> float:
    return a / b if b else NAN


# --- what the paper's rules count as a duplicate line and as a word --------------------------

_HAS_WORD = re.compile(r"[^\W_]")
# A field at the start of a line: a label of up to 3 words before a ":", then its value ("Ort:
# Stadthalle", "Eintritt: frei", "Price: $12"); a line of at most FIELD_LINE_CHARS is then a field.
_FIELD = re.compile(r"\s*[^\W\d_][^\W_]*(?:[ .'/-][^\W_]+){0,2}\s?:\s*\S")
FIELD_LINE_CHARS = 80


def is_layout_or_field_line(line: str) -> bool:
    """A line whose repeats are the page's structure, not repeated text: a rule of symbols with no
    letter or digit ("-", "|", "* * *"; blank and whitespace lines still count), or a short
    labelled field with its value ("Ort: Stadthalle", "Eintritt: frei"), which a listing repeats by
    design. A label alone ("Average rating:") is an interface's, and its repeats count."""
    if not _HAS_WORD.search(line):
        return bool(line.strip())
    return len(line) <= FIELD_LINE_CHARS and _FIELD.match(line) is not None


def repeated_lines(lines: list[str], skip_layout_and_fields: bool = False) -> tuple[int, int]:
    """(how many lines repeat an earlier one, their total length). With `skip_layout_and_fields`,
    a repeat of a layout or field line (`is_layout_or_field_line`) is not counted; every line still
    counts in the total it is a fraction of."""
    if not skip_layout_and_fields:
        unique = dict.fromkeys(lines)
        return len(lines) - len(unique), len("".join(lines)) - len("".join(unique))
    seen: set[str] = set()
    n = chars = 0
    for line in lines:
        if line in seen:
            if not is_layout_or_field_line(line):
                n += 1
                chars += len(line)
        else:
            seen.add(line)
    return n, chars


# The numbering of a list item at the start of a line: "1." "12)" "iv." "b)" (one token, as in
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


# --- repetition ---------------------------------------------------------------------------------

TOP_NGRAMS = (2, 3, 4)  # the most frequent n-gram's share of the characters…
DUP_NGRAMS = (5, 6, 7, 8, 9, 10)  # …and the share in repeated n-grams


class GopherRepetitionParams(HeuristicParams):
    """Fractions above which a document is dropped; None turns a rule off. `compat`: n-grams of
    words (paper) or of word and punctuation tokens (datatrove)."""

    dup_line_frac: float | None = Field(default=0.3, ge=0)  # repeated lines, by count
    dup_para_frac: float | None = Field(default=0.3, ge=0)  # repeated paragraphs, by count
    dup_line_char_frac: float | None = Field(default=0.2, ge=0)  # …by characters
    dup_para_char_frac: float | None = Field(default=0.2, ge=0)
    top_ngram_char_frac: dict[int, float] = {2: 0.2, 3: 0.18, 4: 0.16}  # n -> max fraction (n in 2..4)
    dup_ngram_char_frac: dict[int, float] = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}  # (5..10)

    @field_validator("top_ngram_char_frac", "dup_ngram_char_frac")
    @classmethod
    def _known_sizes(cls, v: dict[int, float], info: ValidationInfo) -> dict[int, float]:
        sizes = TOP_NGRAMS if info.field_name == "top_ngram_char_frac" else DUP_NGRAMS
        if not set(v) <= set(sizes):
            raise ValueError(f"n-gram sizes must be among {sizes}")
        return v


_PARAGRAPH_BREAK = re.compile(r"\n{2,}")
_LINE_BREAK = re.compile(r"\n+")


def _duplicates(items: list[str]) -> tuple[int, int]:
    """(how many items repeat an earlier one, their total length)."""
    unique = dict.fromkeys(items)
    return len(items) - len(unique), len("".join(items)) - len("".join(unique))


def _ngram_chars(words: list[str]) -> tuple[dict[int, int], dict[int, int]]:
    """Over the n-grams of `words`:

    - for n in TOP_NGRAMS, the length of the most frequent n-gram (its words joined by spaces)
      times its count; ties go to the n-gram seen first;
    - for n in DUP_NGRAMS, the characters (spaces aside) of the n-grams that repeat an earlier
      n-gram, scanning left to right and jumping past each repeat (overlaps count once).

    Words become integer ids and the n-grams of each size dense ids built from those of size
    n-1 (numpy), and only positions whose (n-1)-gram repeats are followed: an n-gram can only
    repeat where its first n-1 words do.
    """
    n_words = len(words)
    top, dup = dict.fromkeys(TOP_NGRAMS, 0), dict.fromkeys(DUP_NGRAMS, 0)
    if n_words < 2:
        return top, dup
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.fromiter(map(vocab.__getitem__, words), np.int64, n_words)
    ends_np = np.zeros(n_words + 1, np.int64)
    np.cumsum(np.fromiter(map(len, words), np.int64, n_words), out=ends_np[1:])
    ends = ends_np.tolist()
    width = len(vocab)
    repeated = np.bincount(ids)[ids] > 1
    pos, key = np.flatnonzero(repeated), ids[repeated]  # positions whose n-gram repeats, its id
    for n in range(2, DUP_NGRAMS[-1] + 1):
        if n > n_words:
            break
        fits = pos <= n_words - n
        pos, key = pos[fits], key[fits]
        if len(pos):
            _, first, inverse, counts = np.unique(key * width + ids[pos + n - 1], return_index=True,
                                                  return_inverse=True, return_counts=True)
            repeated = counts[inverse] > 1
            top_count = int(counts.max())
            top_at = int(pos[first[counts == top_count].min()])
            pos, key = pos[repeated], inverse[repeated]
        else:
            top_count = 1
        if n in top:
            if top_count == 1:  # every n-gram is unique: the first one wins the tie
                top_at = 0
            top[n] = (ends[top_at + n] - ends[top_at] + n - 1) * top_count
        elif n in dup and len(pos):
            seen: set[int] = set()
            resume = chars = 0
            for i, k in zip(pos.tolist(), key.tolist(), strict=True):
                if i < resume:
                    continue
                if k in seen:
                    chars += ends[i + n] - ends[i]
                    resume = i + n
                else:
                    seen.add(k)
            dup[n] = chars
        if not len(pos) and n >= TOP_NGRAMS[-1]:
            break
    return top, dup


class GopherRepetition(DocFilter):
    name = "gopher_repetition"
    Params = GopherRepetitionParams
    signals = ("gopher_rep_dup_para_frac", "gopher_rep_dup_para_char_frac", "gopher_rep_dup_line_frac",
               "gopher_rep_dup_line_char_frac",
               *(f"gopher_rep_top_{n}gram_char_frac" for n in TOP_NGRAMS),
               *(f"gopher_rep_dup_{n}gram_char_frac" for n in DUP_NGRAMS))
    params: GopherRepetitionParams

    @classmethod
    def limits(cls, params: GopherRepetitionParams) -> list[Limit]:
        """Every rule (not "empty", for an empty text); an n-gram size missing from its dict is off."""
        p = params
        return cls._limits(
            ("gopher_rep_dup_para_frac", ">", p.dup_para_frac, "dup_para_frac"),
            ("gopher_rep_dup_para_char_frac", ">", p.dup_para_char_frac, "dup_para_char_frac"),
            ("gopher_rep_dup_line_frac", ">", p.dup_line_frac, "dup_line_frac"),
            ("gopher_rep_dup_line_char_frac", ">", p.dup_line_char_frac, "dup_line_char_frac"),
            *((f"gopher_rep_top_{n}gram_char_frac", ">", p.top_ngram_char_frac.get(n), f"top_{n}_gram")
              for n in TOP_NGRAMS),
            *((f"gopher_rep_dup_{n}gram_char_frac", ">", p.dup_ngram_char_frac.get(n),
               f"duplicated_{n}_n_grams") for n in DUP_NGRAMS),
        )

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        p, text = self.params, doc.text
        if not text:
            return dict.fromkeys(self.signals, NAN), "empty"
        n_chars = len(text)
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        para_dups, para_dup_chars = _duplicates(paragraphs)
        lines = _LINE_BREAK.split(text)
        line_dups, line_dup_chars = repeated_lines(lines, skip_layout_and_fields=p.compat == "paper")
        signals = {
            "gopher_rep_dup_para_frac": para_dups / len(paragraphs),
            "gopher_rep_dup_para_char_frac": para_dup_chars / n_chars,
            "gopher_rep_dup_line_frac": line_dups / len(lines),
            "gopher_rep_dup_line_char_frac": line_dup_chars / n_chars,
        }
        top, dup = _ngram_chars(doc.words if p.compat == "datatrove" else doc.words_without_punctuation)
        for n, chars in top.items():
            signals[f"gopher_rep_top_{n}gram_char_frac"] = chars / n_chars
        for n, chars in dup.items():
            signals[f"gopher_rep_dup_{n}gram_char_frac"] = chars / n_chars

        def above(value: float, limit: float | None) -> bool:
            return limit is not None and value > limit

        # The checks in datatrove's order.
        if above(signals["gopher_rep_dup_para_frac"], p.dup_para_frac):
            return signals, "dup_para_frac"
        if above(signals["gopher_rep_dup_para_char_frac"], p.dup_para_char_frac):
            return signals, "dup_para_char_frac"
        if above(signals["gopher_rep_dup_line_frac"], p.dup_line_frac):
            return signals, "dup_line_frac"
        if above(signals["gopher_rep_dup_line_char_frac"], p.dup_line_char_frac):
            return signals, "dup_line_char_frac"
        for n in TOP_NGRAMS:
            if above(signals[f"gopher_rep_top_{n}gram_char_frac"], p.top_ngram_char_frac.get(n)):
                return signals, f"top_{n}_gram"
        for n in DUP_NGRAMS:
            if above(signals[f"gopher_rep_dup_{n}gram_char_frac"], p.dup_ngram_char_frac.get(n)):
                return signals, f"duplicated_{n}_n_grams"
        return signals, None


GOPHER_FILTERS: tuple[type[DocFilter], ...] = (GopherQuality, GopherRepetition)
