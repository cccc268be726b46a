"""Crawl ingest: WARC/1.x, WARC/0.18 and ARC files → one dict per HTTP response with an HTML body.

Reader: warcio (see BENCHMARKS.md "WARC readers"): it reads ARC and WARC/0.17-0.18 as well as
WARC/1.x and per-record gzip (whole-file gzip is read again as a stream); HTTP bodies are decoded
by `stages.http_body`, which honours an encoding header only where the body carries it. FastWARC
parses 2-3.5× faster but reads no ARC and, in its default mode, silently cuts ClueWeb09 bodies;
warcio's ~0.5 ms a page is ~3% of a document's cost here.

Nothing a crawl throws at it is fatal: every record is counted under `events` (record types,
repairs, read errors) or, for a response that cannot become a document, dropped with a reason.
After a read error (a wrong Content-Length, junk between records, a corrupt gzip member) reading
resumes at the next record, so a bad record costs itself, counted, and one log line per kind.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from urllib.parse import urlsplit

import fsspec
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from pydantic import Field

from gristmill.core.config import Strict
from gristmill.core.stats import StageStats
from gristmill.stages.http_body import (HeaderlessBlock, ResponseHeadParser, declared_charset, headerless_content_type,
                                        looks_binary, looks_like_html, matches_http_length, read_body, was_cut_short,
                                        without_nul_bytes)


class IngestConfig(Strict):
    content_types: list[str] = ["text/html", "application/xhtml+xml"]
    max_payload_bytes: int = Field(default=5_000_000, ge=1)  # bigger bodies are skipped as `too_large`
    url_blocklist: list[str] = []  # domains (and their subdomains) skipped before extraction
    task_bytes: int = Field(default=16_000_000, ge=1)  # bigger files run as record ranges of about this

DOC_RECORD_TYPES = ("response", "resource")
LENGTH_MISMATCH = "length_mismatch"  # iter_records: the record before was not followed by a record boundary
WARC_LINE = re.compile(rb"\nWARC/\d+\.\d+\r?\n")
ARC_LINE = re.compile(rb"\n[A-Za-z][\w+.-]*://\S* \S+ \d{12,18} [^\n]*\n")
RECORD_LINE = re.compile(WARC_LINE.pattern + b"|" + ARC_LINE.pattern)
GZIP_MEMBER = re.compile(rb"\x1f\x8b\x08")
URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+-]*:")  # a scheme: dns:, metadata://, file://
SCAN_BLOCK, SCAN_OVERLAP = 1 << 20, 512
logger = logging.getLogger("gristmill.ingest")


def doc_id(record_id: str | None, url: str, date: str | None) -> str:
    """Stable id: hash of the WARC-Record-ID, or of url + date when there is none (ARC)."""
    key = record_id or f"{url} {date or ''}"
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def domain_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    v = value.strip()
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y%m%d%H%M%S", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            d = datetime.strptime(v, fmt)
        except ValueError:
            continue
        return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)
    return None


def _blocked(domain: str, blocklist: frozenset[str]) -> bool:
    parts = domain.split(".")
    return any(".".join(parts[i:]) in blocklist for i in range(len(parts)))


class WarcIngest:
    """`read(path)` yields documents (dicts with the raw `html` bytes) and rejected documents."""

    name = "ingest"

    def __init__(self, cfg: IngestConfig, source: str):
        self.cfg = cfg
        self.source = source
        self.content_types = tuple(t.lower() for t in cfg.content_types)
        self.blocklist = frozenset(d.lower().lstrip(".") for d in cfg.url_blocklist)

    def read(self, path: str, stats: StageStats, rejects: list[dict], start: int = 0,
             end: int | None = None) -> Iterator[dict]:
        """Documents of the records that start in [start, end) (stages/ranges.py plans them)."""
        records = iter_records(path, stats, start, end)
        held = None  # a document waits for the next record, which shows whether its length was right
        while True:
            t0 = time.perf_counter()
            item = next(records, None)
            ready, held = self._advance(item, held, stats, rejects)
            stats.seconds += time.perf_counter() - t0
            if ready is not None:
                yield ready
            if item is None:
                return

    def _advance(self, item, held: dict | None, stats: StageStats,
                 rejects: list[dict]) -> tuple[dict | None, dict | None]:
        """(document now known good, document now held) after the next item of `iter_records`."""
        if item is LENGTH_MISMATCH:
            if held is not None and not held["_whole"]:  # cut short, or running into the next record
                return self._drop(held, "bad_content_length", stats, rejects), None
            return None, held
        if held is not None:
            del held["_whole"]
            stats.docs_out += 1
            stats.bytes_out += held["html_bytes"]
        if item is None:
            return held, None
        rtype = item.rec_type or "unknown"
        stats.events[f"record:{rtype}"] += 1
        return held, self._to_doc(item, stats, rejects) if rtype in DOC_RECORD_TYPES else None

    def _drop(self, doc: dict, reason: str, stats: StageStats, rejects: list[dict]) -> None:
        stats.dropped[reason] += 1
        rejects.append({**{k: v for k, v in doc.items() if k not in ("html", "_whole")},
                        "reject_stage": self.name, "reject_reason": reason})

    def _to_doc(self, record, stats: StageStats, rejects: list[dict]) -> dict | None:
        h = record.rec_headers
        record_id = h.get_header("WARC-Record-ID")  # None in ARC files
        raw_date = h.get_header("WARC-Date") or h.get_header("archive-date")
        # warcio strips wget's `<…>` and encodes spaces in WARC target URIs, not in ARC ones
        url = (h.get_header("WARC-Target-URI") or h.get_header("uri") or "").strip()
        if " " in url:
            url = url.replace(" ", "%20")
        date = parse_date(raw_date)
        if raw_date and date is None:
            stats.events["invalid_date"] += 1
        doc = {
            "id": doc_id(record_id, url, raw_date),
            "source": self.source,
            "url": url,
            "domain": domain_of(url),
            "warc_record_id": record_id,
            "warc_date": date,
            "charset": None,
            "html_bytes": 0,
        }
        stats.docs_in += 1

        def drop(reason: str) -> None:
            return self._drop(doc, reason, stats, rejects)

        if h.get_header("WARC-Truncated"):  # cut by the crawler on purpose: the body is kept
            stats.events["warc_truncated"] += 1
        if not url:
            return drop("missing_url")
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https") and URL_SCHEME.match(url):  # dns:, whois:, wget's metadata://
            return drop("not_http")
        if scheme not in ("http", "https") or not doc["domain"]:
            return drop("bad_url")
        if self.blocklist and _blocked(doc["domain"], self.blocklist):
            return drop("url_blocklist")
        http = record.http_headers
        if isinstance(http, HeaderlessBlock):  # the block is the page: the WARC header says what it is
            content_type = headerless_content_type(h.get_header("Content-Type"), http.head)
            if content_type is None:
                return drop("bad_http_header")
            stats.events["headerless_response"] += 1
        elif record.rec_type == "response":
            status = http.get_statuscode() if http else None
            if not status or not status.isdigit():
                return drop("bad_http_header")
            if not status.startswith("2"):
                return drop(f"http_status_{status[0]}xx")
            content_type = http.get_header("Content-Type")
        else:
            content_type = h.get_header("Content-Type")
        mime = (content_type or "").split(";")[0].strip().lower()
        if mime and not mime.startswith(self.content_types):
            return drop("content_type")
        try:
            body = read_body(record, self.cfg.max_payload_bytes + 1, stats.events)
        except Exception as e:
            stats.events[f"payload_error:{_error_kind(e)}"] += 1
            return drop("unreadable_payload")
        payload = body.data
        stats.bytes_in += len(payload)
        if len(payload) > self.cfg.max_payload_bytes:
            return drop("too_large")
        if was_cut_short(record, body):
            return drop("truncated_payload")
        if not payload.strip():
            return drop("empty_payload")
        if not mime and not looks_like_html(payload):
            return drop("content_type")
        if looks_binary(payload):
            return drop("binary_payload")
        if len(text := without_nul_bytes(payload)) < len(payload):
            stats.events["nul_bytes_removed"] += 1
            payload = text
        doc["charset"] = declared_charset(content_type, payload)
        doc["html"] = payload
        doc["html_bytes"] = len(payload)
        doc["_whole"] = matches_http_length(record, body)
        return doc


def iter_records(path: str, stats: StageStats, start: int = 0, end: int | None = None) -> Iterator:
    """warcio records of one file (those starting in [start, end), `start` being a record start),
    and `LENGTH_MISMATCH` right after a record that was not followed by a record boundary (its
    Content-Length is wrong). Read errors are counted, never raised; reading resumes at the next
    record (see `_records`).

    A whole-file gzip (one gzip member for many records) is read again as a gzip stream, since
    warcio's seekable reader only takes one member per record.
    """
    try:
        f = fsspec.open(path, "rb").open()
    except OSError as e:
        stats.events[f"open_error:{type(e).__name__}"] += 1
        return
    log = _EventLog(path)
    with f:
        n = yield from _records(f, stats, log, 0, start, end)
    if n is not None:
        stats.events["whole_file_gzip"] += 1
        with fsspec.open(path, "rb", compression="gzip") as g:
            yield from _records(g, stats, log, n)


class _QuietArchiveIterator(ArchiveIterator):
    """warcio writes the rest of a record whose length is wrong (kilobytes of HTML) to stderr;
    gristmill counts the record instead. A response block with no HTTP message stays whole."""

    INC_RECORD = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loader.http_parser = ResponseHeadParser()


def _records(f, stats: StageStats, log: _EventLog, skip: int, start: int = 0, end: int | None = None):
    """Yield records after the first `skip`, from offset `start` up to the first record at or
    after `end`; returns the count read if the file turns out to be a whole-file gzip (to be
    read again), else None.

    After a read error, reading resumes at the next record start (`next_record_start`): a wrong
    Content-Length loses its own record, never the rest of the file. When the record before the
    error was not followed by a boundary, its declared length may hide the next record's start,
    so the search begins inside it."""
    gzipped = peek(f, 0, 2) == b"\x1f\x8b"
    resume, n, fmt = start, 0, None
    stop = sys.maxsize if end is None else end  # records starting here or later are not this range's
    while True:
        f.seek(resume)
        # ARC stays ARC: arc2warc invents random ids
        archive = _QuietArchiveIterator(f, ensure_http_headers=True)
        archive.known_format = fmt
        records, start, previous = iter(archive), resume, None
        try:
            while True:
                errors = archive.err_count
                record = next(records, None)
                if archive.err_count > errors:  # the record before was not followed by a boundary
                    stats.events["bad_record_length"] += 1
                    yield LENGTH_MISMATCH
                elif _ended_early(previous):  # its gzip member (or the file) ended first
                    stats.events["bad_record_length"] += 1
                if record is None:
                    break
                if archive.offset >= stop:  # the next range's first record
                    return None
                previous = record
                start, fmt = archive.offset, archive.known_format
                n += 1
                if n > skip:
                    yield record
        except Exception as e:  # any parse or decompression error: count it, resume after it
            if "non-chunked gzip" in str(e) and skip == 0 and resume == 0:
                return n
            flagged = archive.err_count > errors
            failed_at = start if flagged else max(archive.offset, start)
            found = next_record_start(f, failed_at + 1, gzipped, fmt)
            if flagged and found is not None and found == _declared_end(archive, gzipped):
                # the next record starts right where this one ends, as declared, with no blank line
                # between them (Common Crawl 2008's filedesc): nothing is wrong with either
                stats.events["missing_separator"] += 1
                if found >= stop:
                    return None
                resume = found
                continue
            if flagged:
                stats.events["bad_record_length"] += 1
                yield LENGTH_MISMATCH
            kind = "bad_content_length" if flagged else _error_kind(e)
            stats.events[f"read_error:{kind}"] += 1
            upto = min(found if found is not None else _size(f), stop)
            stats.events["resync_skipped_bytes"] += max(0, upto - failed_at)
            log.once(f"read_error:{kind}", f"offset {failed_at}: {str(e)[:100]!r}; "
                     + (f"resumed at offset {found}" if found is not None else "no record after it"))
            if found is None or found >= stop:
                return None
            resume = found
        else:
            last = sum(archive.member_info) if archive.member_info else None
            if end is None and last is not None and _has_leftover(f, last):  # cut inside its headers
                stats.events["read_error:truncated"] += 1
                log.once("read_error:truncated", f"offset {last}: the file ends inside a record")
            return None


def _declared_end(archive: ArchiveIterator, gzipped: bool) -> int | None:
    """Where the last record read ends by its declared length (uncompressed files only: warcio
    counts the line it took for a separator out of the record's length)."""
    info = archive.member_info
    return None if gzipped or not info else info[0] + info[1]


def _has_leftover(f, end: int) -> bool:
    """Are there non-blank bytes after offset `end` (the end of the last whole record)?"""
    try:
        return bool(peek(f, end, 65536).strip())
    except (OSError, ValueError):
        return False


def _ended_early(record) -> bool:
    """Did a record's stream end before the length it declares (read to its end by warcio)?"""
    return record is not None and getattr(record.raw_stream, "limit", 0) > 0


def peek(f, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _size(f) -> int:
    try:
        return f.seek(0, 2)
    except (OSError, ValueError):  # a gzip stream: read to its end
        while f.read(SCAN_BLOCK):
            pass
        return f.tell()


def next_record_start(f, offset: int, gzipped: bool, fmt: str | None) -> int | None:
    """Offset of the first record start at or after `offset`: in a per-record gzip the next gzip
    member whose text begins like a record, else the next line that begins like a WARC (or,
    in an ARC file, an ARC) header. None when there is none."""
    pattern = GZIP_MEMBER if gzipped else ARC_LINE if fmt == "arc" else WARC_LINE if fmt else RECORD_LINE
    carry = b""
    if not gzipped:  # a header line must follow a newline: keep the byte before `offset`
        carry = peek(f, offset - 1, 1) if offset else b"\n"
    while True:
        chunk = carry + peek(f, offset, SCAN_BLOCK)
        if len(chunk) == len(carry):
            return None
        base = offset - len(carry)
        for m in pattern.finditer(chunk):
            at = base + m.start() + (not gzipped)  # past the newline before a header line
            if at >= offset and (not gzipped or _starts_a_record(f, at)):
                return at
        offset += len(chunk) - len(carry)
        carry = chunk[-SCAN_OVERLAP:]


def _starts_a_record(f, offset: int) -> bool:
    """Does a gzip member at `offset` decompress to something that begins like a record?"""
    try:
        head = zlib.decompressobj(31).decompress(peek(f, offset, 4096), 1024)
    except zlib.error:
        return False
    return bool(RECORD_LINE.match(b"\n" + head))


class _EventLog:
    """One console line per kind of read error and file (Ray forwards workers' stderr)."""

    def __init__(self, path: str):
        self.path, self.seen = path, set()

    def once(self, kind: str, message: str) -> None:
        if kind not in self.seen:
            self.seen.add(kind)
            logger.warning("%s: %s at %s (counted; more of this kind in this file are only counted)",
                           self.path, kind, message)


def _error_kind(e: BaseException) -> str:
    if isinstance(e, zlib.error) or "gzip" in str(e).lower() or "decompress" in str(e).lower():
        return "corrupt_gzip"
    if isinstance(e, EOFError) or "truncat" in str(e).lower() or "end of" in str(e).lower():
        return "truncated"
    if isinstance(e, ArchiveLoadFailed):
        return "malformed_record"
    return type(e).__name__


def read_all(path: str, cfg: IngestConfig | None = None, source: str = "test") -> tuple[list[dict], list[dict], StageStats]:
    """Read a whole file at once (tests and benchmarks)."""
    stats, rejects = StageStats(), []
    docs = list(WarcIngest(cfg or IngestConfig(), source).read(path, stats, rejects))
    return docs, rejects, stats


