"""HTML → main text with trafilatura, after charset decoding, under a per-document time limit.

The limit holds because trafilatura runs in a forked child that is killed at the limit
(stages/extract_worker.py); `isolate: false` runs it in-process under SIGALRM instead, which
fires only between Python bytecodes: 6–17 s at a 5 s limit on pages of 200k small elements.
"""

from __future__ import annotations

import codecs
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from typing import Literal

import trafilatura
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import detect_encoding
from resiliparse.parse.html import HTMLTree
from trafilatura.settings import DEFAULT_CONFIG

from pydantic import Field

from gristmill.core.config import Strict
from gristmill.core.stats import StageStats
from gristmill.stages.base import DocStage
from gristmill.stages.extract_artefacts import without_artefacts
from gristmill.stages.extract_worker import ForkedWorker, WorkerDied, WorkerError, WorkerTimeout


class ExtractConfig(Strict):
    mode: Literal["precision", "balanced", "recall"] = "precision"
    fast: bool = True  # trafilatura without its readability/jusText fallbacks (see BENCHMARKS.md)…
    fallback: Literal["resiliparse", "trafilatura"] = "resiliparse"  # …then this, where the fast text
    fallback_below_chars: int = Field(default=1200, ge=0)  # is shorter than this (0: never)…
    fallback_below_share: float = Field(default=0.3, ge=0, le=1)  # …and than this share of the page's
    # main-content estimate (resiliparse), unless it reads as a whole article; 0: by length alone
    timeout_s: float = Field(default=5.0, gt=0)  # per document; overruns count as `extract_timeout`
    isolate: bool = True  # extract in a child process killed at the limit (else SIGALRM: fires late)
    min_chars: int = Field(default=1, ge=0)  # shorter results count as `empty_text`
    include_tables: bool = True
    one_line_chars: int = Field(default=4000, ge=0)  # a text in one line this long is replaced by the
    # page's main content where that is about as long and in lines (0: never)
    remove_artefacts: bool = True  # lines repeated past the page's own count, trailing link lists…
    link_tail_lines: int = Field(default=4, ge=0)  # …of at least this many lines (0: kept); see
    # stages/extract_artefacts.py

OVERRUN_FACTOR = 1.1  # a page stopped later than this × the limit counts as an `extract_overrun`
# A fast text "reads as a whole article" (tuned on the gold pages, BENCHMARKS.md):
ARTICLE_MIN_CHARS = 400
SENTENCE_LINE_CHARS = 60
SENTENCE_ENDS = (".", "!", "?", '"', "”", "。")
ARTICLE_SENTENCE_SHARE = 0.9
MARKUP = re.compile(r"<[A-Za-z!/]")  # a fallback's text must come from a page with tags in its head
ONE_LINE_LENGTHS = (0.8, 1.5)  # "about the same text": the estimate's length against the one line's


class ExtractTimeout(BaseException):
    """Raised by SIGALRM inside the extractor; a BaseException so no `except Exception` eats it."""


def _on_alarm(signum, frame):
    raise ExtractTimeout()


@contextmanager
def time_limit(seconds: float):
    """Interrupt the block after `seconds` of wall time (main thread only, else no limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_html(payload: bytes, declared: str | None) -> tuple[str, str, str]:
    """Bytes → (text, charset used, how it was chosen).

    Valid UTF-8 wins over a declaration (pages that declare latin-1 but send UTF-8 are common,
    the reverse almost never validates); then the declared charset; then detection (uchardet).
    """
    codec = _codec(declared)
    try:
        return payload.decode("utf-8"), "utf-8", "declared" if codec == "utf-8" else "utf8_valid"
    except UnicodeDecodeError:
        pass
    if codec:
        try:
            return payload.decode(codec), codec, "declared"
        except UnicodeDecodeError:
            pass
    detected = _codec(detect_encoding(payload[:65536]))
    if detected:
        return payload.decode(detected, errors="replace"), detected, "detected"
    return payload.decode("cp1252", errors="replace"), "cp1252", "fallback"


def reads_as_article(text: str) -> bool:
    """A fast result of at least ARTICLE_MIN_CHARS, nearly all in sentence-long lines that end
    like sentences: a short article found whole, which no fallback improves."""
    if len(text) < ARTICLE_MIN_CHARS:
        return False
    lines = [line.strip() for line in text.splitlines()]
    whole = sum(len(line) for line in lines if len(line) >= SENTENCE_LINE_CHARS and line.endswith(SENTENCE_ENDS))
    return whole >= ARTICLE_SENTENCE_SHARE * sum(len(line) for line in lines)


def main_content(html: str) -> str:
    """resiliparse's main-content text (boilerplate removed by markup rules; no image alt texts,
    which thumbnail galleries repeat by the hundred): ~3 ms a page."""
    return extract_plain_text(HTMLTree.parse(html), main_content=True, alt_texts=False)


class TrafilaturaExtract(DocStage):
    """Adds `text` and `charset`; drops `extract_timeout`, `extract_error` and `empty_text`.

    With `fast`, trafilatura runs without its readability/jusText fallbacks, which halves its
    cost. Where the fast path fails (a teaser, a menu, a cookie notice instead of the page) its
    text is short against the page's main content: a fast text under `fallback_below_chars` that
    does not read as a whole article and is under `fallback_below_share` of resiliparse's
    main-content estimate is replaced by that estimate (`fallback: resiliparse`, ~3 ms) or by
    trafilatura with its fallbacks (`trafilatura`, 5-10× the fast cost on those pages). Then
    `remove_artefacts` takes out what the extractor added: lines repeated past the page's own
    count and trailing lists of link lines (extract_artefacts.py).
    BENCHMARKS.md ("The whole chain on real crawl pages") measures each setting.
    With `isolate`, extraction runs in a child process started once per `run` (shard) and
    replaced when it is killed at the time limit; it is stopped when the run ends.
    """

    name = "extract"

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self.events = Counter()
        config = deepcopy(DEFAULT_CONFIG)
        config["DEFAULT"]["EXTRACTION_TIMEOUT"] = "0"  # we enforce our own limit
        self.kwargs = dict(
            favor_precision=cfg.mode == "precision",
            favor_recall=cfg.mode == "recall",
            include_comments=False,
            include_tables=cfg.include_tables,
            config=config,
        )
        self.worker = ForkedWorker(self._extract_in_child) if cfg.isolate else None

    def extract(self, html: str) -> str | None:
        """The page's main text, in lines, without what the extractor added (extract_artefacts.py)."""
        text = self.main_text(html)
        if text:
            text = self.in_lines(text, html)
        if text and self.cfg.remove_artefacts:
            text, removed = without_artefacts(text, html, self.cfg.link_tail_lines)
            self.events.update({f"removed:{what}": n for what, n in removed.items()})
        return text

    def in_lines(self, text: str, html: str) -> str:
        """A long text in one line is trafilatura's flattened article (its paragraphs joined):
        resiliparse's main content replaces it where that is about the same text, in lines."""
        if not self.cfg.one_line_chars or len(text) < self.cfg.one_line_chars or "\n" in text.strip():
            return text
        estimate = main_content(html)
        low, high = ONE_LINE_LENGTHS
        if estimate.count("\n") >= 2 and low * len(text) <= len(estimate) <= high * len(text):
            self.events["fallback_extraction:one_line"] += 1
            return estimate
        self.events["one_line_kept"] += 1
        return text

    def main_text(self, html: str) -> str | None:
        cfg = self.cfg
        if not cfg.fast:
            return trafilatura.extract(html, no_fallback=False, **self.kwargs)
        text = trafilatura.extract(html, no_fallback=True, **self.kwargs) or ""
        if len(text) >= cfg.fallback_below_chars:
            return text
        estimate = None
        if cfg.fallback_below_share > 0:
            if reads_as_article(text):
                self.events["fallback_skipped:whole_article"] += 1
                return text
            estimate = main_content(html)
            if len(text) >= cfg.fallback_below_share * len(estimate):
                self.events["fallback_skipped:covers_main_content"] += 1
                return text
        self.events[f"fallback_extraction:{cfg.fallback}"] += 1
        if cfg.fallback == "resiliparse":
            estimate = main_content(html) if estimate is None else estimate
            return estimate if estimate.strip() and MARKUP.search(html, 0, 4096) else text
        return trafilatura.extract(html, no_fallback=False, **self.kwargs) or text

    def _extract_in_child(self, html_utf8: bytes) -> tuple[str | None, dict[str, int]]:
        """In the child: the page → its text and the events counted on the way."""
        self.events = Counter()
        return self.extract(html_utf8.decode("utf-8", "surrogatepass")), dict(self.events)

    def extract_within_limit(self, html: str) -> str | None:
        """`extract(html)` stopped at `timeout_s` (ExtractTimeout or WorkerTimeout)."""
        if self.worker is None:
            with time_limit(self.cfg.timeout_s) as limited:
                if not limited:
                    self.events["no_time_limit"] += 1  # not on the main thread: SIGALRM unusable
                return self.extract(html)
        text, events = self.worker.call(html.encode("utf-8", "surrogatepass"), self.cfg.timeout_s)
        self.events.update(events)
        return text

    def apply(self, doc: dict) -> str | None:
        payload = doc.pop("html")
        html, charset, how = decode_html(payload, doc.get("charset"))
        doc["charset"] = charset
        self.events[f"charset_{how}"] += 1
        t0 = time.perf_counter()
        try:
            text = self.extract_within_limit(html)
        except (ExtractTimeout, WorkerTimeout):
            if time.perf_counter() - t0 > OVERRUN_FACTOR * self.cfg.timeout_s:
                self.events["extract_overrun"] += 1  # the limit fired late (inside C code)
            return "extract_timeout"
        except WorkerError as e:  # raised in the child; the child carries on
            self.events[f"extract_error:{e}"] += 1  # the exception's class name
            return "extract_error"
        except WorkerDied:  # a crash in C code or the OOM killer; the next page gets a new child
            self.events["extract_error:WorkerDied"] += 1
            return "extract_error"
        except Exception as e:  # a parser bug on one page must not stop the shard
            self.events[f"extract_error:{type(e).__name__}"] += 1
            return "extract_error"
        if not text or len(text.strip()) < self.cfg.min_chars:
            return "empty_text"
        doc["text"] = text
        return None

    def run(self, docs: Iterable[dict], stats: StageStats, rejects: list[dict]) -> Iterator[dict]:
        """DocStage.run, then the extraction child is stopped (however the run ends)."""
        try:
            yield from super().run(docs, stats, rejects)
        finally:
            if self.worker is not None:
                self.worker.close()
