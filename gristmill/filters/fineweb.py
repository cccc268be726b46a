"""FineWeb's own quality heuristics (Penedo et al. 2024, "The FineWeb Datasets", section 3.5).

Our own implementation of the rules of datatrove 0.10.1's FineWebQualityFilter, over the
non-blank lines of the page; `compat: datatrove` reproduces datatrove's defaults exactly:

- `line_punct_ratio`: the share of lines ending in sentence-final punctuation must reach 0.12
  (the paper's definition, the default, also counts a line ending in a closing quotation mark,
  'He left.”', as datatrove does not);
- `short_line_ratio`: at most 67% of the lines may be 30 characters or shorter;
- both line shares are undefined (NaN, never a drop) for a text of one line in the paper's
  definition (`min_lines: 2`): the share of one line is whether its last character is a full
  stop, and a paragraph ending in a link or a name is not a list (datatrove judges every text);
- `char_dup_ratio`: at most 10% of the characters (newlines aside) may be in lines repeating an
  earlier line, the paper's threshold (datatrove's default: 1%, which drops clean articles that
  repeat one sentence, e.g. a pull quote); in the paper's definition, as in Gopher's rule
  (gopher_repetition.py), repeats of layout lines ("-", "|") and short labelled fields ("Ort:
  Stadthalle") are not duplicated text;
- `list_ratio`: at most 0.3 newlines per word (datatrove's own rule, not in the paper; words:
  `TextView.words`, with punctuation tokens, as datatrove counts them).
"""

from __future__ import annotations

from pydantic import Field

from gristmill.filters.base import DocFilter, HeuristicParams, Limit
from gristmill.filters.gopher_repetition import NAN, repeated_lines
from gristmill.filters.text import SENTENCE_ENDS, SENTENCE_TERMINALS, TextView


class FineWebQualityParams(HeuristicParams):
    """Where datatrove deviates from the paper: it drops at a duplicated-line character fraction
    of 0.01 (the paper: 0.1), and a line ending in a closing quotation mark ('He left.”') does not
    end in punctuation there."""

    datatrove_defaults = {"char_duplicates_ratio": 0.01, "min_lines": 1}
    line_punct_thr: float | None = Field(default=0.12, ge=0, le=1)  # min share of lines ending in . ! ? …
    line_punct_exclude_zero: bool = False  # keep pages where no line ends a sentence
    stop_chars: list[str] | None = None  # line endings that count; None: Unicode's sentence
    # terminals (and, in the paper's definition, closing quotation marks)
    short_line_thr: float | None = Field(default=0.67, ge=0, le=1)  # max share of short lines
    short_line_length: int = Field(default=30, ge=0)  # a line this long or shorter is short
    char_duplicates_ratio: float | None = Field(default=0.1, ge=0)  # max share of chars in repeated lines
    new_line_ratio: float | None = Field(default=0.3, ge=0)  # max newlines per word
    min_lines: int = Field(default=2, ge=1)  # the two line shares judge texts of at least this
    # many non-blank lines (the paper's definition; datatrove: 1); fewer: the shares are NaN


class FineWebQuality(DocFilter):
    name = "fineweb"
    Params = FineWebQualityParams
    signals = ("fineweb_line_punct_ratio", "fineweb_short_line_ratio", "fineweb_char_dup_ratio",
               "fineweb_newline_ratio")
    params: FineWebQualityParams

    def __init__(self, params: FineWebQualityParams, language: str):
        super().__init__(params, language)
        chars = params.stop_chars
        if chars is None:
            chars = SENTENCE_TERMINALS if params.compat == "datatrove" else SENTENCE_ENDS
        self.stop_chars = tuple(chars)

    @classmethod
    def limits(cls, params: FineWebQualityParams) -> list[Limit]:
        """Every rule but "empty" (no non-blank line); the punctuation rule not with
        `line_punct_exclude_zero`, which spares a ratio of 0 (not a single threshold)."""
        p = params
        punct = None if p.line_punct_exclude_zero else p.line_punct_thr
        return cls._limits(
            ("fineweb_line_punct_ratio", "<", punct, "line_punct_ratio"),
            ("fineweb_short_line_ratio", ">", p.short_line_thr, "short_line_ratio"),
            ("fineweb_char_dup_ratio", ">", p.char_duplicates_ratio, "char_dup_ratio"),
            ("fineweb_newline_ratio", ">", p.new_line_ratio, "list_ratio"),
        )

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        p, text = self.params, doc.text
        lines = [line for line in doc.lines if line.strip()]
        if not lines:
            return dict.fromkeys(self.signals, float("nan")), "empty"
        n_lines = len(lines)
        punct_ratio = short_ratio = NAN  # a share of one line is that line's last character
        if n_lines >= p.min_lines:
            punct_ratio = sum(1 for line in lines if line.endswith(self.stop_chars)) / n_lines
            short_ratio = sum(1 for line in lines if len(line) <= p.short_line_length) / n_lines
        _, dup_chars = repeated_lines(lines, skip_layout_and_fields=p.compat == "paper")
        n_chars = len(text) - text.count("\n")
        dup_ratio = dup_chars / n_chars  # n_chars > 0: there is a non-blank line
        n_words = len(doc.words)
        newline_ratio = text.count("\n") / n_words if n_words else float("nan")
        signals = {"fineweb_line_punct_ratio": punct_ratio, "fineweb_short_line_ratio": short_ratio,
                   "fineweb_char_dup_ratio": dup_ratio, "fineweb_newline_ratio": newline_ratio}
        if (p.line_punct_thr is not None and punct_ratio < p.line_punct_thr
                and not (punct_ratio == 0 and p.line_punct_exclude_zero)):
            return signals, "line_punct_ratio"
        if p.short_line_thr is not None and short_ratio > p.short_line_thr:
            return signals, "short_line_ratio"
        if p.char_duplicates_ratio is not None and dup_ratio > p.char_duplicates_ratio:
            return signals, "char_dup_ratio"
        if p.new_line_ratio is not None and newline_ratio > p.new_line_ratio:
            return signals, "list_ratio"
        return signals, None
