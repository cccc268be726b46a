"""Ingest on every real crawl file (warc/real, warc/more): each quirk read and counted, and no file
yields fewer pages than a lenient reader of our own finds in it. Synthetic records pin down the
HTTP body decoding: a header is honoured only where the body carries its encoding."""

from __future__ import annotations

import gzip
import io
import re
import shutil
import zlib
from functools import cache
from pathlib import Path

import brotli
import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParser

from gristmill.stages.ingest import IngestConfig
from gristmill.stages.ingest import read_all
from tests.conftest import WARC, require

REAL, MORE = WARC / "real", WARC / "more"
CC2008_ARC = MORE / "copycat-cc2008-small-sample-1213893279526_0.arc"
CC2014_WARC = MORE / "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc"
CC2015_WHOLE_GZIP = MORE / "CC-MAIN-20150226074059-00000-ip-10-28-5-156.ec2.internal.warc.gz"
IAH_WARC = MORE / "aut-IAH-20080430204825-00000-blackbook.warc.gz"
IAH_ARC = MORE / "aut-IAH-20080430204825-00000-blackbook.arc.gz"
IPWB = MORE / "ipwb-sample-1.warc.gz"
DERIVATIVES = (".wat", ".wet", ".wat.gz", ".wet.gz")  # Common Crawl's metadata and text: no responses

@cache
def _read(path: Path) -> tuple[list[dict], list[dict], dict, dict]:
    docs, rejects, stats = read_all(str(require(path)))
    return docs, rejects, dict(stats.events), dict(stats.dropped)


def _read_errors(events: dict) -> dict:
    return {k: v for k, v in events.items() if k.startswith(("read_error:", "payload_error:"))
            or k in ("bad_record_length", "resync_skipped_bytes")}


# --- a lenient, independent count of pages ------------------------------------------------------


def _arc_records(data: bytes):
    """A length-driven ARC scan: header line `url ip date mime length`, `length` bytes, newlines."""
    pos = 0
    while True:
        while data[pos:pos + 1] in (b"\n", b"\r"):
            pos += 1
        if pos >= len(data):
            return
        eol = data.index(b"\n", pos)
        fields = data[pos:eol].split(b" ")
        length = int(fields[-1])
        yield fields[0].decode("latin-1"), fields[3].decode("latin-1"), data[eol + 1:eol + 1 + length]
        pos = eol + 1 + length


def _looks_like_a_page(url: str, status: str | None, content_type: str | None, body: bytes) -> bool:
    if not url.startswith(("http://", "https://")) or not body.strip():
        return False
    if status is not None and not status.startswith("2"):
        return False
    if content_type:
        return "html" in content_type.lower()
    return body.lstrip()[:100].lower().startswith((b"<!doctype html", b"<html"))


def _lenient_pages_in_arc(path: Path) -> int:
    pages = 0
    for url, mime, block in _arc_records(path.read_bytes()):
        head, _, body = block.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        if not status_line.startswith("HTTP/"):
            continue
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        pages += _looks_like_a_page(url, status_line.split()[1], headers.get("content-type", mime), body)
    return pages


def _lenient_pages(path: Path, tmp_path: Path) -> int:
    """Pages warcio's own iterator finds: response/resource records with an http(s) URL, a 2xx
    status (or no HTTP message: a response block that is the page), an HTML Content-Type (or
    none and an HTML-looking body) and a non-blank body."""
    if path == CC2008_ARC:  # warcio stops after its first record
        return _lenient_pages_in_arc(path)
    try:
        return _count_pages(path)
    except ArchiveLoadFailed:  # one gzip member for the whole file: warcio reads it gunzipped
        plain = tmp_path / path.name.removesuffix(".gz")
        with gzip.open(path) as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return _count_pages(plain)


def _count_pages(path: Path) -> int:
    pages = 0
    with open(path, "rb") as f:
        for record in ArchiveIterator(f, arc2warc=False, no_record_parse=True):
            if record.rec_type not in ("response", "resource"):
                continue
            h = record.rec_headers
            url = (h.get_header("WARC-Target-URI") or h.get_header("uri") or "").strip("<> ")
            status, content_type, body = _http_message(record.rec_type, h.get_header("Content-Type"),
                                                       record.raw_stream.read())
            pages += _looks_like_a_page(url, status, content_type, body)
    return pages


def _http_message(record_type: str, record_content_type: str | None, block: bytes):
    """(status, content type, body) of a block: an HTTP response's, or (a resource, or a response
    block that is the page itself, with no status line) the record's type and the whole block."""
    if record_type == "response" and block.lstrip()[:5].upper() == b"HTTP/":
        stream = io.BytesIO(block.lstrip())
        http = StatusAndHeadersParser(["HTTP/"], verify=False).parse(stream)
        return http.get_statuscode(), http.get_header("Content-Type"), stream.read()
    if record_content_type and record_content_type.lower().startswith("application/http"):
        record_content_type = None
    return None, record_content_type, block


CRAWL_FILES = sorted(p.name for d in (REAL, MORE) if d.is_dir() for p in d.iterdir())


def test_the_crawl_data_is_there():
    assert len(CRAWL_FILES) >= 16, f"test data missing in {REAL} / {MORE} (CI runs with ../shared beside the clone)"


@pytest.mark.parametrize("name", CRAWL_FILES)
def test_no_file_yields_fewer_pages_than_a_lenient_reader(name, tmp_path):
    path = REAL / name if (REAL / name).exists() else MORE / name
    docs, _, events, _ = _read(path)
    assert not _read_errors(events), events
    if name.endswith(DERIVATIVES):
        assert docs == []
        return
    lenient = _lenient_pages(path, tmp_path)
    assert lenient > 0 and len(docs) >= lenient, (len(docs), lenient)


# --- the quirks, one file each ------------------------------------------------------------------


def test_cc2008_arc_is_read_whole_despite_its_filedesc_length_and_stale_headers():
    docs, rejects, events, dropped = _read(CC2008_ARC)
    assert events["record:arc_header"] == 1 and events["record:response"] == 145  # 146 records
    assert events["missing_separator"] == 1 and not _read_errors(events)
    # bodies are stored decoded under the original headers (36 chunked, 14 gzip); 3 of the
    # chunked ones are redirects or a 404, whose bodies are never read
    assert events["stale_header:transfer-encoding"] == 33
    assert events["stale_header:content-encoding"] == 14
    assert not [k for k in events if k.startswith("decode_fallback:")]
    assert len(docs) == 125 and dropped == {"content_type": 6, "http_status_3xx": 6, "http_status_4xx": 8}
    by_url = {d["url"]: d["html"] for d in docs}
    arc = CC2008_ARC.read_bytes()
    records = [(url, *block.partition(b"\r\n\r\n")) for url, _, block in _arc_records(arc)]
    for header in (b"Transfer-Encoding:chunked", b"Content-Encoding:gzip"):
        stored = {url: body for url, head, _, body in records if header in head and url in by_url}
        assert len(stored) >= 10
        for url, body in stored.items():
            assert by_url[url] == body
            assert re.search(rb"<!doctype|<html", body[:1024], re.I)  # the page as stored, not de-chunked


def test_whole_file_gzip_warc():
    docs, _, events, _ = _read(CC2015_WHOLE_GZIP)
    assert len(docs) == 4 and events["whole_file_gzip"] == 1
    assert events["record:response"] == 4 and events["record:request"] == 5
    assert events["stale_header:content-encoding"] == 3 and not _read_errors(events)
    assert all(d["html"].lstrip().startswith(b"<") for d in docs)


def test_warc_0_17():
    assert gzip.open(IAH_WARC).read(9) == b"WARC/0.17"
    docs, _, events, _ = _read(IAH_WARC)
    assert events["record:response"] == 299 and events["record:warcinfo"] == 1
    assert len(docs) == 94 and all(d["warc_record_id"] and d["warc_date"].year == 2008 for d in docs)


def test_arc_twin_gives_the_same_pages_as_the_warc():
    warc_docs, _, _, warc_dropped = _read(IAH_WARC)
    arc_docs, _, arc_events, arc_dropped = _read(IAH_ARC)
    assert arc_events["record:response"] == 299 and arc_dropped == warc_dropped
    assert sorted((d["url"], d["html"]) for d in arc_docs) == sorted((d["url"], d["html"]) for d in warc_docs)


def test_dns_records_are_not_http_rather_than_bad_urls():
    _, rejects, _, dropped = _read(IAH_WARC)
    assert dropped["not_http"] == 38 and "bad_url" not in dropped
    assert all(r["url"].startswith("dns:") for r in rejects if r["reject_reason"] == "not_http")


def test_revisits_are_counted_and_never_pages():
    docs, rejects, events, _ = _read(IPWB)
    assert events["record:revisit"] == 10 and events["record:response"] == 70
    with open(IPWB, "rb") as f:
        revisits = {r.rec_headers.get_header("WARC-Record-ID")
                    for r in ArchiveIterator(f) if r.rec_type == "revisit"}
    assert len(revisits) == 10
    assert not revisits & {d["warc_record_id"] for d in docs + rejects}
    assert len(docs) + len(rejects) == 70


def test_warc_truncated_bodies_are_counted_and_kept():
    docs, _, events, _ = _read(CC2014_WARC)
    assert events["warc_truncated"] == 2
    with open(CC2014_WARC, "rb") as f:
        cut = {r.rec_headers.get_header("WARC-Record-ID"): r.raw_stream.read() for r in ArchiveIterator(f)
               if r.rec_headers.get_header("WARC-Truncated") == "length"}
    kept = {d["warc_record_id"]: d["html"] for d in docs}
    assert len(cut) == 2 and all(kept[record_id] == body for record_id, body in cut.items())


# --- HTTP bodies: a header is honoured only where the body carries its encoding -------------------

PAGE = b"<html><body><p>" + b"A real paragraph of text. " * 40 + b"</p></body></html>"


def _response(url: str, body: bytes, headers: list[tuple[str, str]]) -> bytes:
    http = b"".join([b"HTTP/1.1 200 OK\r\n", *(f"{k}: {v}\r\n".encode() for k, v in headers), b"\r\n", body])
    warc = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\n"
            f"WARC-Date: 2024-05-01T00:00:00Z\r\nWARC-Record-ID: <urn:test:{url}>\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n")
    return warc.encode() + http + b"\r\n\r\n"


def _read_records(tmp_path: Path, records: list[bytes], cfg: IngestConfig | None = None):
    path = tmp_path / "t.warc"
    path.write_bytes(b"".join(records))
    docs, rejects, stats = read_all(str(path), cfg)
    return {d["url"]: d["html"] for d in docs}, rejects, stats


def _chunked(body: bytes, sizes: tuple[int, ...] = (100, 7, 1000)) -> bytes:
    out, pos = [], 0
    for size in sizes:
        part, pos = body[pos:pos + size], pos + size
        if part:
            out.append(b"%x\r\n%s\r\n" % (len(part), part))
    if pos < len(body):
        out.append(b"%x\r\n%s\r\n" % (len(body) - pos, body[pos:]))
    return b"".join(out) + b"0\r\nX-Trailer: 1\r\n\r\n"


HTML = ("Content-Type", "text/html")
CHUNKED, GZIP = ("Transfer-Encoding", "chunked"), ("Content-Encoding", "gzip")


def test_a_body_that_looks_chunked_is_kept_under_a_stale_header(tmp_path):
    bodies = {
        "http://hex.example/": b"abc\r\n" + PAGE,  # a hex "size" far past the end of the body
        "http://zero.example/": b"0\r\n\r\n" + PAGE,  # a "last chunk" followed by the page
        "http://short.example/": b"5\r\n<htm" + PAGE,  # a whole first "chunk", then no CRLF
        "http://plain.example/": PAGE,
    }
    records = [_response(url, body, [HTML, CHUNKED]) for url, body in bodies.items()]
    pages, rejects, stats = _read_records(tmp_path, records)
    assert pages == bodies and not rejects
    assert stats.events["stale_header:transfer-encoding"] == 4


def test_a_plain_body_under_a_stale_content_encoding_is_kept(tmp_path):
    bodies = {f"http://{c}.example/": (PAGE, c) for c in ("gzip", "x-gzip", "deflate", "br")}
    bodies["http://zlib-header.example/"] = (b"x^" + PAGE, "deflate")  # starts like zlib data
    records = [_response(url, body, [HTML, ("Content-Encoding", c)]) for url, (body, c) in bodies.items()]
    pages, _, stats = _read_records(tmp_path, records)
    assert pages == {url: body for url, (body, _) in bodies.items()}
    assert stats.events["stale_header:content-encoding"] == 5


def test_real_chunked_and_compressed_bodies_are_decoded(tmp_path):
    gz = gzip.compress(PAGE)
    bodies = {
        "http://chunked.example/": (_chunked(PAGE), [CHUNKED]),
        "http://gzip.example/": (gz, [GZIP]),
        "http://chunked-gzip.example/": (_chunked(gz, (10, 20)), [CHUNKED, GZIP]),
        "http://two-members.example/": (gzip.compress(PAGE[:100]) + gzip.compress(PAGE[100:]), [GZIP]),
        "http://no-last-chunk.example/": (_chunked(PAGE).rsplit(b"0\r\n", 1)[0], [CHUNKED]),
        "http://zlib.example/": (zlib.compress(PAGE), [("Content-Encoding", "deflate")]),
        "http://raw-deflate.example/": (zlib.compress(PAGE, wbits=-15), [("Content-Encoding", "deflate")]),
        "http://br.example/": (brotli.compress(PAGE), [("Content-Encoding", "br")]),
    }
    records = [_response(url, body, [HTML, *headers]) for url, (body, headers) in bodies.items()]
    pages, rejects, stats = _read_records(tmp_path, records)
    assert pages == dict.fromkeys(bodies, PAGE) and not rejects
    assert not [k for k in stats.events if k.startswith(("stale_header:", "decode_fallback:"))]


def test_corrupt_encodings_keep_what_can_be_recovered(tmp_path):
    paragraphs = (b"<p>Paragraph %d, item %d.</p>" % (i, i * 7919 % 1013) for i in range(4000))
    page = b"<html><body>" + b"".join(paragraphs)
    gz = gzip.compress(page)
    half = len(gz) // 2
    broken_chunks = _chunked(PAGE).rsplit(b"0\r\n", 1)[0] + b"zz\r\nrest of the page"
    cut = {c: data[:len(data) // 2] for c, data in (("gzip", gz), ("deflate", zlib.compress(page)),
                                                     ("br", brotli.compress(page)))}
    records = [
        *(_response(f"http://cut-{c}.example/", data, [HTML, ("Content-Encoding", c)])
          for c, data in cut.items()),
        _response("http://bad-gzip.example/", gz[:half] + b"\xff" * 64 + gz[half + 64:], [HTML, GZIP]),
        _response("http://bad-chunk.example/", broken_chunks, [HTML, CHUNKED]),
    ]
    pages, _, stats = _read_records(tmp_path, records)
    assert stats.events["decode_fallback:truncated"] == 3
    assert stats.events["decode_fallback:corrupt_gzip"] == 1
    assert stats.events["decode_fallback:bad_chunk"] == 1
    for coding in cut:
        text = pages[f"http://cut-{coding}.example/"]
        assert len(page) // 8 < len(text) < len(page) and page.startswith(text), coding
    bad = pages["http://bad-gzip.example/"]
    assert len(page) // 4 < len(bad) and bad[:len(page) // 4] == page[:len(page) // 4]
    assert pages["http://bad-chunk.example/"] == PAGE + b"zz\r\nrest of the page"


def test_decompression_is_bounded_by_the_payload_limit(tmp_path):
    bomb = gzip.compress(b"<html>" + b" " * 20_000_000, compresslevel=1)
    records = [_response("http://bomb.example/", bomb, [HTML, GZIP]),
               _response("http://ok.example/", PAGE, [HTML])]
    pages, rejects, _ = _read_records(tmp_path, records, IngestConfig(max_payload_bytes=100_000))
    assert list(pages) == ["http://ok.example/"] and [r["reject_reason"] for r in rejects] == ["too_large"]


def test_content_length_is_checked_against_the_body_as_stored(tmp_path):
    """A record the file cuts short is truncated only if its stored body falls short of the HTTP
    Content-Length: a body stored decoded under a stale gzip header (longer than the compressed
    length declared) is whole; a real gzip body cut short is not."""
    gz = gzip.compress(PAGE * 20)
    for body, expected in ((PAGE, "kept"), (gz[:len(gz) // 2], "truncated_payload")):
        record = _response("http://a.example/", body, [HTML, GZIP, ("Content-Length", str(len(gz)))])
        record = re.sub(rb"Content-Length: (\d+)\r\n\r\nHTTP", lambda m: b"Content-Length: %d\r\n\r\nHTTP"
                        % (int(m.group(1)) + 50), record, count=1)  # the WARC record claims 50 bytes more
        pages, rejects, _ = _read_records(tmp_path, [record.removesuffix(b"\r\n\r\n")])
        if expected == "kept":
            assert list(pages.values()) == [PAGE] and len(gz) < len(PAGE)
        else:
            assert not pages and [r["reject_reason"] for r in rejects] == [expected]
