"""Text an extractor adds that the page does not hold: the cleanup after extraction.

- **Repeated lines.** trafilatura sometimes emits a paragraph twice (a lead paragraph that the
  page's markup nests in two containers, a quote under its own heading): the text then holds a
  line more often than the page's visible text does. Copies past the page's own count are
  removed; a line the page repeats (list items of a repeated widget, table rows) stays as often
  as the page shows it. Lines shorter than MIN_REPEAT_CHARS are left alone (labels, dates), and
  so are lines the visible text does not hold as such (table rows, which the extractor writes
  in its own syntax): those cannot be judged.
- **Trailing link lists.** A text that ends in `link_tail_lines` or more lines, each the whole
  text of one of the page's links ("related articles", a category box, a navigation menu the
  extractor took for content), loses that tail.

Each check reads the page only when the text gives it cause (a repeated line; short lines at the
end): resiliparse's visible text for the first (~3 ms), lxml's links for the second.
"""

from __future__ import annotations

import re
from collections import Counter

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree
from trafilatura.utils import load_html

MIN_REPEAT_CHARS = 20  # shorter repeated lines (labels, dates, "Read more") are not paragraphs
TAIL_LINE_CHARS = 160  # a trailing line longer than this is prose, not a link
LIST_MARKER = re.compile(r"^(?:[-•*·▪►]|\d{1,3}[.)])\s+")  # trafilatura writes list items as "- item"


def flat(text: str) -> str:
    """Whitespace runs as one space, ends stripped: how lines are compared with the page."""
    return " ".join(text.split())


def unmarked(line: str) -> str:
    return LIST_MARKER.sub("", flat(line))


def _repeated(keys: list[str]) -> set[str]:
    return {key for key, n in Counter(keys).items() if n > 1 and len(key) >= MIN_REPEAT_CHARS}


def _tail_candidates(lines: list[str], tail_lines: int) -> bool:
    last = [line for line in lines if line.strip()][-tail_lines:]
    return len(last) == tail_lines and all(len(flat(line)) <= TAIL_LINE_CHARS for line in last)


def _link_texts(html: str) -> set[str]:
    """The text of every link on the page. lxml, through trafilatura's tolerant loader: resiliparse
    walks a collection of elements in quadratic time (20 s for a page of 2,215 links)."""
    tree = load_html(html)
    return set() if tree is None else {flat(a.text_content()) for a in tree.iter("a")} - {""}


def without_artefacts(text: str, html: str, link_tail_lines: int) -> tuple[str, Counter]:
    """`text` without repeated lines past the page's own count and without a trailing list of
    `link_tail_lines` or more link lines (0: kept); (the text, what was removed, counted)."""
    lines = text.split("\n")
    keys = [unmarked(line) for line in lines]  # lines as the page's text is compared with them
    repeated = _repeated(keys)
    tail = link_tail_lines > 0 and _tail_candidates(lines, link_tail_lines)
    removed: Counter = Counter()
    if not repeated and not tail:
        return text, removed
    if repeated:
        visible = flat(extract_plain_text(HTMLTree.parse(html), main_content=False, alt_texts=False))
        shown = {line: visible.count(line) for line in repeated}
        allowed = {line: n for line, n in shown.items() if n > 0}  # 0: written otherwise there, unjudged
        seen: Counter = Counter()
        kept = []
        for line, key in zip(lines, keys):
            if key in allowed:
                seen[key] += 1
                if seen[key] > allowed[key]:
                    removed["repeated_line"] += 1
                    continue
            kept.append(line)
        lines = kept
    if tail and (links := _link_texts(html)):
        end = len(lines)
        while end and not lines[end - 1].strip():
            end -= 1
        start = end
        while start and lines[start - 1].strip() and (
                flat(lines[start - 1]) in links or unmarked(lines[start - 1]) in links):
            start -= 1
        if end - start >= link_tail_lines and any(line.strip() for line in lines[:start]):
            removed["link_tail"] += 1
            removed["link_tail_lines"] += end - start
            lines = lines[:start]
    return ("\n".join(lines).strip("\n") if removed else text), removed
