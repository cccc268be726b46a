"""C4's page heuristics (Raffel et al. 2020, section 2.2), decision only: the text is not changed.

Our own implementation of the rules of datatrove 0.10.1's C4QualityFilter (line mode, as in
C4), at the paper's thresholds: lines of at least 5 words, pages of at least 3 sentences, and a
line ends in ". ? !" or a closing quotation mark in any script. `compat: datatrove` reproduces
datatrove's defaults exactly (3 words, 5 sentences, `. ? ! " '`). datatrove's filter deletes the lines the rules reject and keeps the rest of
the page; here no text is changed: the page is kept or dropped exactly as datatrove decides, and
what it would have removed is reported in the signals. Per line (stripped):

1. a line with a word (whitespace-separated) longer than `max_word_length` is removed;
2. Wikipedia-style citation marks ("[1]", "[edit]", "[citation needed]") are ignored;
3. a line not ending in terminal punctuation or ending in "..." is removed;
4. a line with fewer than `min_words_per_line` words is removed;
5. "lorem ipsum" in a line still kept drops the page;
6. a line mentioning "javascript" is removed;
7. a "{" in a line still kept drops the page;
8. a line with a cookie/terms-of-use phrase is removed;

and the page is dropped when its kept lines hold fewer than `min_num_sentences` sentences
(sentences as spaCy's sentencizer counts them: a new one after sentence-final punctuation
followed by a word; tokens from filters/text.py).

C4 is an English rule set: on Chinese or Japanese text, written without spaces, almost every line
has fewer than 3 whitespace-separated words and the page is dropped, as datatrove's is.
"""

from __future__ import annotations

import re

from pydantic import Field

from gristmill.filters.base import DocFilter, HeuristicParams, Limit
from gristmill.filters.text import SENTENCE_ENDS, SENTENCE_TERMINALS, SENTENCE_TERMINALS_CLASS, TextView, is_punct, tokenize

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END_PUNCTUATION = (".", "?", "!", '"', "'")  # datatrove's
# The paper's "terminal punctuation mark (a period, exclamation mark, question mark, or end
# quotation mark)", in any script: Unicode's sentence terminals and closing quotation marks.
_PAPER_END_PUNCTUATION = tuple(SENTENCE_ENDS)
_POLICY = re.compile("terms of use|privacy policy|cookie policy|uses cookies|use of cookies|use cookies")
# A sentence-final character inside a line (before its last character): only then can the line
# hold more than one sentence.
_INNER_TERMINAL = re.compile(f"[{SENTENCE_TERMINALS_CLASS}]")


class C4QualityParams(HeuristicParams):
    """None (or False) turns a rule off. The paper (and its reference code, TFDS `c4_utils`) keeps
    lines of at least 5 words and pages of at least 3 sentences; datatrove swaps the two."""

    datatrove_defaults = {"min_num_sentences": 5, "min_words_per_line": 3}
    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int | None = Field(default=3, ge=0)
    min_words_per_line: int | None = Field(default=5, ge=0)
    max_word_length: int | None = Field(default=1000, ge=1)
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True


def count_sentences(line: str, language: str, tokens: list[str] | None = None) -> int:
    """Sentences in one line, as spaCy's sentencizer splits it (at least 1); `tokens`: the line's
    tokens if already known."""
    if not _INNER_TERMINAL.search(line, 0, len(line) - 1):
        return 1
    n, after_end = 1, False
    for token in tokens if tokens is not None else tokenize(line, language):
        if token in SENTENCE_TERMINALS:
            after_end = True
        elif after_end and not is_punct(token):
            n += 1
            after_end = False
    return n


class C4Quality(DocFilter):
    name = "c4"
    Params = C4QualityParams
    signals = ("c4_removed_lines_frac", "c4_removed_chars_frac", "c4_sentences")
    params: C4QualityParams

    def __init__(self, params: C4QualityParams, language: str):
        super().__init__(params, language)
        self.end_punctuation = _END_PUNCTUATION if params.compat == "datatrove" else _PAPER_END_PUNCTUATION

    @classmethod
    def limits(cls, params: C4QualityParams) -> list[Limit]:
        """The sentence count only ("lorem_ipsum" and "curly_bracket" are per-line rules, no signal).
        They take precedence: a page short of sentences may be dropped for either instead."""
        return cls._limits(("c4_sentences", "<", params.min_num_sentences, "too_few_sentences"))

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        p = self.params
        lines = doc.text.splitlines()
        reason = None
        n_sentences = kept_lines = kept_chars = total_chars = 0
        for i, line in enumerate(lines):
            line = line.strip()
            total_chars += len(line)
            words = line.split()
            if (p.max_word_length is not None and len(line) > p.max_word_length
                    and max(map(len, words)) > p.max_word_length):
                continue
            cited = False
            if p.remove_citations and "[" in line:
                line, cited = _CITATION.subn("", line)
            if p.filter_no_terminal_punct and (not line.endswith(self.end_punctuation) or line.endswith("...")):
                continue
            if p.min_words_per_line is not None and len(words) < p.min_words_per_line:
                continue
            lower = line.lower()
            if p.filter_lorem_ipsum and "lorem ipsum" in lower:
                reason = reason or "lorem_ipsum"
                continue
            if p.filter_javascript and "javascript" in lower:
                continue
            if p.filter_curly_bracket and "{" in line:
                reason = reason or "curly_bracket"
                continue
            if p.filter_policy and _POLICY.search(lower):
                continue
            kept_lines += 1
            kept_chars += len(line)
            if p.min_num_sentences is not None:  # the view's tokens, unless citations were cut out
                n_sentences += count_sentences(line, doc.language, None if cited else doc.line_words[i])
        signals = {
            "c4_removed_lines_frac": 1 - kept_lines / len(lines) if lines else float("nan"),
            "c4_removed_chars_frac": 1 - kept_chars / total_chars if total_chars else float("nan"),
            "c4_sentences": float(n_sentences) if p.min_num_sentences is not None else float("nan"),
        }
        if reason is None and p.min_num_sentences is not None and n_sentences < p.min_num_sentences:
            reason = "too_few_sentences"
        return signals, reason
