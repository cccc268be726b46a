"""Gopher's repetition heuristics (Rae et al. 2021, "Scaling Language Models", A.1.1): duplicate
lines and paragraphs, the top n-grams' and the repeated n-grams' shares of the characters. The
two definitions (`compat`: the paper's, or datatrove's exactly) are described in gopher_quality.py;
here they differ in what a duplicate line is and in what the n-grams count as words.
"""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from gristmill.filters.base import DocFilter, HeuristicParams, Limit
from gristmill.filters.text import TextView

NAN = float("nan")


# --- what the paper's rules count as a duplicate line ------------------------------------------

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

