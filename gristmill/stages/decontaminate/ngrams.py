"""Word n-grams of evaluation text and where they occur in a document: GPT-3's decontamination
recipe exactly as lm-evaluation-harness's janitor (`lm_eval/decontamination/janitor.py`, the
`scripts/clean_training_data` tool) implements it.

- **Normalisation** (the janitor's): ASCII letters lower-cased, ASCII punctuation
  (`string.punctuation`) deleted, every other character kept.
- **Contaminants** (a task's contexts and gold answers) are normalised, then split on
  whitespace; their n-grams are `n` consecutive words joined by one space, kept as 64-bit hashes
  in a sorted array (`NgramIndex`).
- **Documents** are split on whitespace first, each word keeping its character span, and each
  word normalised: an n-gram matches when its words joined by one space are in the index. In the
  janitor (`exact=True`) a word that normalises to nothing ("--", a "?" set apart) stays as an
  empty word, so no n-gram across it matches: a question copied as "… by waves ?" escapes it.
  By default such words are left out of the document's n-grams, as they are of the contaminant's.
- **Removal** (`clean_pieces`): every match widened by `window` characters each side; the pieces
  between them longer than `min_slice` characters are kept; a document with more than
  `too_dirty` matching n-grams (n-grams, not pieces, as the janitor counts) is dropped whole. As
  in the janitor, a text of at most `min_slice` characters without any match keeps no piece: the
  recipe drops short documents along with dirty ones (counted apart here).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xxhash

WORD = re.compile(r"\S+")
NORMALISE = str.maketrans(string.ascii_lowercase + string.ascii_uppercase, string.ascii_lowercase * 2,
                          string.punctuation)


def normalise(text: str) -> str:
    return text.translate(NORMALISE)


def ngram_hash(ngram: str) -> int:
    return xxhash.xxh3_64_intdigest(ngram.encode("utf-8"))


def contaminant_ngrams(text: str, n: int) -> Iterable[str]:
    """A contaminant's n-grams: normalised, then split (empty words vanish)."""
    words = normalise(text).split()
    return (" ".join(words[i:i + n]) for i in range(len(words) - n + 1))


def document_ngrams(text: str, n: int, exact: bool = False) -> tuple[list[str], list[tuple[int, int]]]:
    """A document's n-grams (each word normalised, then joined) and their spans (first character,
    last character: inclusive, as the janitor's); `exact`: keep words that normalise to nothing."""
    words = [(normalise(m.group(0)), m.start(), m.end() - 1) for m in WORD.finditer(text)]
    if not exact:
        words = [w for w in words if w[0]]
    grams = [" ".join(w for w, _, _ in words[i:i + n]) for i in range(len(words) - n + 1)]
    spans = [(words[i][1], words[i + n - 1][2]) for i in range(len(words) - n + 1)]
    return grams, spans


class NgramIndex:
    """A sorted array of the hashes of every contaminant n-gram (8 bytes each); memory-mapped
    when loaded from a file, so every process on a machine shares one copy."""

    def __init__(self, hashes: np.ndarray, n: int, exact: bool = False):
        self.hashes, self.n, self.exact = hashes, n, exact

    @classmethod
    def build(cls, texts: Iterable[str], n: int, exact: bool = False) -> NgramIndex:
        found = {ngram_hash(g) for text in texts for g in contaminant_ngrams(text, n)}
        return cls(np.array(sorted(found), dtype=np.uint64), n, exact)

    def save(self, path: str | Path) -> None:
        np.save(path, self.hashes)

    @classmethod
    def load(cls, path: str | Path, n: int, exact: bool = False) -> NgramIndex:
        return cls(np.load(path, mmap_mode="r"), n, exact)

    def __len__(self) -> int:
        return len(self.hashes)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Which of these hashes are in the index (boolean array)."""
        if not len(self.hashes) or not len(hashes):
            return np.zeros(len(hashes), dtype=bool)
        at = np.searchsorted(self.hashes, hashes).clip(max=len(self.hashes) - 1)
        return np.asarray(self.hashes[at] == hashes)

    def matches(self, text: str) -> list[tuple[int, int]]:
        """Spans (first, last character, inclusive) of the document's n-grams in the index, in order."""
        grams, spans = document_ngrams(text, self.n, self.exact)
        hashes = np.fromiter((ngram_hash(g) for g in grams), dtype=np.uint64, count=len(grams))
        return [span for span, hit in zip(spans, self.contains(hashes)) if hit]


def clean_pieces(text: str, matches: list[tuple[int, int]], window: int = 200, min_slice: int = 200,
                 too_dirty: int = 10) -> list[str]:
    """The janitor's `_split_chunks`: the pieces of `text` kept around the matches (see the module)."""
    pieces, splice, end = [], 0, -1
    for i, (start, end) in enumerate(matches):
        if i >= too_dirty:
            return []
        start, end = max(0, start - window), min(len(text), end + window)
        if start - splice > min_slice:
            pieces.append(text[splice:start])
        splice = end
    if end < len(text) - min_slice:
        pieces.append(text[end + 1:])
    return pieces
