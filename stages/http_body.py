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
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass

try:  # as in warcio: brotli is optional
    import brotli
except ImportError:  # pragma: no cover
    brotli = None

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,8})[ \t]*(?:;[^\r\n]*)?\r?\n")
TRAILER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\r\n]*\r?\n")
INFLATE_BLOCK = 1 << 16
CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")  # in compressed data, not in text (ESC is)


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


def read_body(record, limit: int, events: Counter) -> Body:
    """The HTTP body as stored (up to `limit` bytes), with the encodings it carries undone
    (`decode_body`). A stored body of `limit` bytes is too large and left as it is."""
    raw = record.raw_stream
    stored = raw.read(limit) if raw is not None else b""
    http = record.http_headers
    if http is None or len(stored) >= limit:
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
