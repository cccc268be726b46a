"""HTTP bodies as crawlers store them: chunked framing and gzip/deflate/br codings undone only
where the stored bytes really carry them.

Some crawls (Common Crawl 2008, ClueWeb09, CC-MAIN 2014-2015) store bodies decoded but keep the
original `Transfer-Encoding` / `Content-Encoding` headers, so a header is checked against the body
before it is honoured: chunked framing must parse strictly, gzip must start with its magic bytes,
deflate and br (which have none) must decode to the end of their stream or not look like text. A
header the body does not carry is counted as `stale_header:<header>` and the body kept as stored.
Framing that breaks after good chunks, or a compressed body that is cut or corrupt, is decoded as
far as it goes and counted as `decode_fallback:<kind>`. Output is bounded by `limit` (a body that
decodes to `limit` bytes is too large: no zip bombs).

Some archive tools store no HTTP message at all: the block of a `response` is the page itself,
its type in the WARC header. `ResponseHeadParser` reads no header lines out of a block that starts
like no status line (`HeaderlessBlock`), so the page arrives whole, however it begins. Whether a
body is binary is decided from its bytes as a whole (`looks_binary`), never from one byte.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser

try:  # as in warcio: brotli is optional
    import brotli
except ImportError:  # pragma: no cover
    brotli = None

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")
TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n")
INFLATE_BLOCK = 1 << 16
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")  # in compressed data, not in text (ESC is)
# C0 controls that text never holds: not whitespace (\t\n\v\f\r), nor ISO-2022's SO, SI and ESC
BINARY_BYTES = bytes(range(0x09)) + bytes(range(0x10, 0x1B)) + bytes(range(0x1C, 0x20))
BINARY_SHARE = 0.03  # compressed and image data hold ~9% of BINARY_BYTES (24 of 256 values), text ~0
BINARY_SIGNATURES = (b"%PDF-", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"\x1f\x8b\x08",
                     b"PK\x03\x04")  # PDFs can open with kilobytes of text
UTF8_BOM = b"\xef\xbb\xbf"
WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")  # UTF-16 and UTF-32: zero bytes in characters
HTTP_MESSAGE_TYPES = ("application/http", "message/http")  # a block's type in the WARC header
BLANK_HEAD_LIMIT = 1 << 16  # blank lines read past at the start of a block that has no status line
HTML_STARTS = (b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body", b"<!--")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


@dataclass(frozen=True)
class Body:
    data: bytes  # the decoded body
    entity_length: int  # the stored body's length once de-chunked: what an HTTP Content-Length counts
    coding: str | None  # the content coding undone (gzip, deflate, br); None when stored as is
    events: tuple[str, ...] = ()


def decode_body(stored: bytes, transfer_encoding: str | None, content_encoding: str | None,
                limit: int) -> Body:
    """The body of an HTTP message as stored, with the encodings its bytes really carry undone."""
    events: list[str] = []
    entity = stored
    if transfer_encoding and "chunked" in transfer_encoding.lower():
        entity, event = undo_chunked(stored)
        if event:
            events.append(event)
    data, coding = entity, None
    codings = [c.strip().lower() for c in (content_encoding or "").split(",")]
    for name in reversed([c for c in codings if c in DECODERS and entity]):  # the last applied first
        out, outcome = DECODERS[name](data, limit)
        if outcome == "stale":
            events.append("stale_header:content-encoding")
            break
        if outcome != "ok":
            events.append(f"decode_fallback:{outcome}")
            if not out:  # nothing recovered: keep the bytes as stored
                break
        data, coding = out, coding or name.removeprefix("x-")
    return Body(data[:limit], len(entity), coding, tuple(events))


class HeaderlessBlock(StatusAndHeaders):
    """A response block with no HTTP message: no status line, no headers. `head`, read while
    looking for a status line (the first line, and any blank lines after it), begins the body."""

    def __init__(self, head: bytes):
        super().__init__("", [], protocol="")
        self.head = head

    def __bool__(self) -> bool:  # warcio would make up headers in place of an empty (falsy) block
        return True


class ResponseHeadParser(StatusAndHeadersParser):
    """warcio's lenient HTTP header parser, except that a block whose first line (after any blank
    lines) is no status line is not read as headers: its page is left whole (`HeaderlessBlock`),
    rather than its lines up to the first blank one taken for headers."""

    def __init__(self):
        super().__init__(["HTTP/1.0", "HTTP/1.1"], verify=False)

    def parse(self, stream, full_statusline: bytes | None = None) -> StatusAndHeaders:
        head = stream.readline() if full_statusline is None else full_statusline
        if not head or _is_status_line(head):  # an empty block raises EOFError, as before
            return super().parse(stream, head)
        while not head.strip() and len(head) < BLANK_HEAD_LIMIT:  # blank lines: the page starts further on
            if not (line := stream.readline(BLANK_HEAD_LIMIT)):
                break
            head += line
        if _is_status_line(head.lstrip()):  # blank lines before the status line
            headers = super().parse(stream, head.lstrip())
            headers.total_len += len(head) - len(head.lstrip())
            return headers
        return HeaderlessBlock(head)


def _is_status_line(line: bytes) -> bool:
    return line[:5].upper() == b"HTTP/"


def headerless_content_type(warc_content_type: str | None, head: bytes) -> str | None:
    """What a block without an HTTP message holds: the type the WARC (or ARC) header gives, unless
    that only says "an HTTP message"; else "" (not said) if it starts like a markup document (a
    byte order mark and whitespace, then `<`); None if neither, when it is not a page."""
    media = (warc_content_type or "").split(";")[0].strip().lower()
    if "/" in media and media not in HTTP_MESSAGE_TYPES:
        return warc_content_type
    return "" if starts_like_document(head) else None


def starts_like_document(head: bytes) -> bool:
    start = head[:1024]
    if start.startswith(UTF8_BOM):
        start = start[len(UTF8_BOM):]
    elif start.startswith(WIDE_BOMS):
        start = start.replace(b"\x00", b"")[2:]
    return start.lstrip().startswith(b"<")


def looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith(HTML_STARTS) or b"<html" in head


def declared_charset(content_type: str | None, head: bytes) -> str | None:
    """Charset from the Content-Type, else from a <meta> in the first 4 KB of the body."""
    if content_type and (m := HEADER_CHARSET.search(content_type)):
        return m.group(1).lower()
    if m := META_CHARSET.search(head[:4096]):
        return m.group(1).decode("ascii").lower()
    return None


def looks_binary(body: bytes) -> bool:
    """Is a body binary data (an image, a PDF, compressed bytes) rather than text? Decided from
    the bytes as a whole: a binary signature, or over BINARY_SHARE of bytes that text does not
    hold. Compressed and image data are ~9% such bytes, text pages next to none, so a stray NUL
    in a page does not make it binary; UTF-16 and UTF-32 text (by its byte order mark) is text."""
    if body.startswith(WIDE_BOMS):
        return False
    if body.startswith(BINARY_SIGNATURES):
        return True
    return len(body) - len(body.translate(None, BINARY_BYTES)) > BINARY_SHARE * len(body)


def without_nul_bytes(body: bytes) -> bytes:
    """A text body without stray NUL bytes (text extraction turns them into U+FFFD), except UTF-16
    and UTF-32 text, whose characters hold zero bytes."""
    return body if body.startswith(WIDE_BOMS) else body.replace(b"\x00", b"")


def read_body(record, limit: int, events: Counter) -> Body:
    """The HTTP body as stored (up to `limit` bytes), with the encodings it carries undone
    (`decode_body`); a block without an HTTP message, whole. A stored body of `limit` bytes is
    too large and left as it is."""
    raw, http = record.raw_stream, record.http_headers
    stored = http.head if isinstance(http, HeaderlessBlock) else b""
    if raw is not None and len(stored) < limit:
        stored += raw.read(limit - len(stored))
    if http is None or isinstance(http, HeaderlessBlock) or len(stored) >= limit:
        return Body(stored, len(stored), None)
    body = decode_body(stored, http.get_header("Transfer-Encoding"),
                       http.get_header("Content-Encoding"), limit)
    for event in body.events:
        events[event] += 1
    return body


def was_cut_short(record, body: Body) -> bool:
    """Did the record end before the length it declares, cutting the body short?

    A body the crawler cut on purpose (WARC-Truncated) is complete as a record and kept: what
    arrived is still text. ARC lengths are often off by a few bytes, so a record that ends
    early still counts as whole when the HTTP Content-Length was met (by the body as stored,
    de-chunked: a body stored decoded under a stale Content-Encoding is longer than declared).
    """
    raw = record.raw_stream
    if not getattr(raw, "limit", 0) or raw.read(1):
        return False
    http = record.http_headers
    declared = http.get_header("Content-Length") if http is not None else None
    if declared and declared.strip().isdigit():
        return body.entity_length < int(declared)
    return True


def matches_http_length(record, body: Body) -> bool:
    """Is the body the record declares exactly as long as its HTTP Content-Length? Then the
    record is whole even if junk follows it; if not, its WARC length is what is wrong."""
    http = record.http_headers
    declared = http.get_header("Content-Length") if http is not None else None
    if not (declared and declared.strip().isdigit() and record.length):
        return False
    missing = int(declared) - (int(record.length) - http.total_len)
    return missing == 0 or (body.coding == "gzip" and 0 < missing <= 8)  # cut in the gzip trailer: whole


def undo_chunked(body: bytes) -> tuple[bytes, str | None]:
    """(the de-chunked body, an event or None). Framing that breaks within the first two chunks
    is no framing (a stale header: the body is kept as stored; a text line that happens to read
    as a chunk size is no proof); framing that breaks later is corrupt: the chunks before the
    break are kept, followed by the rest as stored."""
    chunks, stop, consistent = _split_chunks(body)
    if consistent:
        return b"".join(chunks), None
    if len(chunks) < 2:
        return body, "stale_header:transfer-encoding"
    return b"".join(chunks) + body[stop:], "decode_fallback:bad_chunk"


def _split_chunks(body: bytes) -> tuple[list[bytes], int, bool]:
    """Chunks of chunked framing, the offset where parsing stopped, and whether the framing held:
    up to a 0 chunk and its trailer, or to the end of the body (a missing 0 chunk, or a body cut
    inside a chunk after the first)."""
    chunks: list[bytes] = []
    pos = 0
    while pos < len(body):
        m = CHUNK_SIZE_LINE.match(body, pos)
        if not m:  # consistent if only blank lines are left after a chunk
            return chunks, pos, bool(chunks) and not body[pos:].strip()
        size, start = int(m.group(1), 16), m.end()
        if size == 0:
            return chunks, pos, bool(chunks) or _only_trailer(body, start)
        end = start + size
        if end >= len(body):  # cut inside (or right at the end of) this chunk's data
            if end > len(body) and not chunks:
                return chunks, pos, False
            chunks.append(body[start:end])
            return chunks, len(body), True
        if body.startswith(b"\r\n", end):
            pos = end + 2
        elif body.startswith(b"\n", end):
            pos = end + 1
        else:
            return chunks, pos, False
        chunks.append(body[start:end])
    return chunks, pos, True


def _only_trailer(body: bytes, pos: int) -> bool:
    """Is the rest of the body after a 0 chunk trailer fields and blank lines only?"""
    while m := TRAILER_LINE.match(body, pos):
        pos = m.end()
    return not body[pos:].strip()


def _inflate(data: bytes, wbits: int, limit: int) -> tuple[bytes, bytes | None, bool]:
    """One zlib stream decoded in blocks, so that what precedes an error is kept:
    (output, the bytes after the stream or None where it did not end, whether it failed)."""
    d = zlib.decompressobj(wbits)
    out = bytearray()
    pos = 0
    while pos < len(data) and len(out) < limit:
        block, before = data[pos:pos + INFLATE_BLOCK], d.copy()
        pos += INFLATE_BLOCK
        try:
            out += d.decompress(block, limit - len(out))
        except zlib.error:
            return bytes(out + _until_error(before, block, limit - len(out))), None, True
        if d.eof:
            return bytes(out), d.unused_data + data[pos:], False
        if d.unconsumed_tail:  # the output limit was reached
            break
    return bytes(out), None, False


def _until_error(d, block: bytes, room: int) -> bytes:
    """What a decompressor yields from `block` before it fails, fed a little at a time."""
    out = bytearray()
    try:
        for pos in range(0, len(block), 256):
            if len(out) >= room:
                break
            out += d.decompress(block[pos:pos + 256], room - len(out))
    except zlib.error:
        pass
    return bytes(out)


def _gunzip(data: bytes, limit: int) -> tuple[bytes, str]:
    if not data.startswith(GZIP_MAGIC):
        return b"", "stale"
    out = b""
    rest: bytes | None = data
    while rest is not None and rest.startswith(GZIP_MAGIC) and len(out) < limit:  # members follow each other
        part, rest, failed = _inflate(rest, 31, limit - len(out))
        out += part
        if failed:
            return out, "corrupt_gzip"
    return out, "truncated" if rest is None and len(out) < limit else "ok"


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] << 8 | data[1]) % 31 == 0


def _undeflate(data: bytes, limit: int) -> tuple[bytes, str]:
    """deflate as zlib data (RFC 1950) or, as some servers send it, raw deflate. Text can pass
    for either for a while (even with a zlib header: "x^…"), so only a stream decoded to its end
    (or to the limit) counts."""
    first = None
    for wbits in (15, -15) if _zlib_header(data) else (-15,):
        out, rest, failed = _inflate(data, wbits, limit)
        if not failed and (rest is not None or len(out) >= limit):
            return out, "ok"
        first = first or (out, failed)
    return _not_decoded(data, *first, "deflate")


def _unbrotli(data: bytes, limit: int) -> tuple[bytes, str]:
    if brotli is None:
        return b"", "no_brotli"
    d = brotli.Decompressor()
    out, failed = b"", False
    try:
        for pos in range(0, len(data), INFLATE_BLOCK):
            out += d.process(data[pos:pos + INFLATE_BLOCK], output_buffer_limit=limit - len(out))
            if len(out) >= limit or d.is_finished():
                return out, "ok"
    except brotli.error:
        failed = True
    return _not_decoded(data, out, failed, "br")


def _not_decoded(data: bytes, out: bytes, failed: bool, coding: str) -> tuple[bytes, str]:
    """A deflate or br stream that did not decode to its end: text under a stale header (text can
    decode to garbage for a while), else a cut or corrupt stream whose output so far is kept."""
    if not CONTROL_BYTES.search(data[:1024]):
        return b"", "stale"
    return out, f"corrupt_{coding}" if failed else "truncated"


DECODERS = {"gzip": _gunzip, "x-gzip": _gunzip, "deflate": _undeflate, "br": _unbrotli}
