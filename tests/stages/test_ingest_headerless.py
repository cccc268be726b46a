"""Response records whose block is the page itself (no HTTP status line or headers, the type in
the WARC header), and binary-ness decided from a body's bytes as a whole."""

from __future__ import annotations

import gzip
import io
import random
import zlib
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.core.stats import StageStats
from gristmill.stages.extract import decode_html
from gristmill.stages.http_body import looks_binary
from gristmill.stages.ingest import IngestConfig
from gristmill.stages.ingest import WarcIngest, read_all
from gristmill.stages.ranges import plan_ranges
from tests.conftest import WARC, require

PARAGRAPH = "A real paragraph of text about the page. " * 12
LEADS = {"none": b"", "newline": b"\n", "crlf": b"\r\n", "blank_lines": b"\r\n \r\n\t\n"}
STARTS = {
    "doctype": "<!DOCTYPE html>\n<html><head><title>T</title></head>\n\n<body><p>{}</p></body></html>\n",
    "xml": '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">\n'
           "<head><title>T</title></head>\n\n<body><p>{}</p></body></html>",
    "html": '<html lang="en">\n<head><title>T</title></head>\n\n<body><p>{}</p></body></html>',
}


def _headerless(w: WARCWriter, url: str, block: bytes, content_type: str) -> None:
    """A `response` record whose block is `block` as it is. (warcio's record builder would read a
    response's payload for HTTP headers: the record is built as a resource, then retyped.)"""
    record = w.create_warc_record(url, "resource", payload=io.BytesIO(block), warc_content_type=content_type)
    record.rec_type = "response"
    record.rec_headers.replace_header("WARC-Type", "response")
    w.write_record(record)


def _http(w: WARCWriter, url: str, body: bytes, content_type: str) -> None:
    http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
    w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))


def _write(path: Path, records: list[tuple[str, bytes, str, bool]], gz: bool = True) -> str:
    """(url, block or body, content type, headerless) records in a WARC file at `path`."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    for url, data, content_type, headerless in records:
        (_headerless if headerless else _http)(w, url, data, content_type)
    path.write_bytes(buf.getvalue())
    return str(path)


def _crafted() -> tuple[list[tuple[str, bytes, str, bool]], dict[str, tuple[str, str]]]:
    """Headerless pages of every start and lead, pages in other charsets, an HTTP response among
    them: the records, and each page's (text, charset)."""
    records, expected = [], {}
    for start, template in STARTS.items():
        for lead, lead_bytes in LEADS.items():
            url = f"http://{start}-{lead}.example/"
            text = lead_bytes.decode() + template.format(PARAGRAPH)
            records.append((url, text.encode(), "text/html; charset=utf-8", True))
            expected[url] = (text, "utf-8")
    others = {  # url: (text, charset, headerless)
        "http://latin1.example/": (f"<html><body><p>Café crème, naïve. {PARAGRAPH}</p></body></html>",
                                   "iso-8859-1", True),
        "http://sjis.example/": (f"\n<html><body><p>日本語のページです。{PARAGRAPH}</p></body></html>",
                                 "shift_jis", True),
        "http://bom.example/": (f"\ufeff<!DOCTYPE html><html><body><p>{PARAGRAPH}</p></body></html>",
                                "utf-8", True),
        "http://http.example/": (f"<html><body><p>Über HTTP. {PARAGRAPH}</p></body></html>",
                                 "iso-8859-1", False),
    }
    for url, (text, charset, headerless) in others.items():
        records.append((url, text.encode(charset), f"text/html; charset={charset}", headerless))
        expected[url] = (text, charset)
    return records, expected


HTTP_TYPE = "application/http; msgtype=response"
NOT_PAGES = [  # headerless blocks that are no page: (url, block, WARC Content-Type, reason)
    ("http://icy.example/", b"ICY 200 OK\r\nicy-name: radio\r\n\r\n\xff\xfb", HTTP_TYPE, "bad_http_header"),
    ("http://words.example/", b"just some words\r\n\r\n<p>later</p>", HTTP_TYPE, "bad_http_header"),
    ("http://message.example/", b"HTTP 200\r\n\r\n<html></html>", "message/http", "bad_http_header"),
    ("http://image.example/", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", "content_type"),
]


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_headerless_pages_are_read_whole_whatever_their_first_byte(tmp_path, gz):
    records, expected = _crafted()
    not_pages = [(url, block, ctype, True) for url, block, ctype, _ in NOT_PAGES]
    docs, rejects, stats = read_all(_write(tmp_path / "h.warc", records + not_pages, gz))
    by_url = {d["url"]: d for d in docs}
    assert sorted(by_url) == sorted(expected)
    for url, (text, charset) in expected.items():
        doc = by_url[url]
        assert doc["charset"] == charset, url
        assert doc["html"] == text.encode(charset), url
        assert decode_html(doc["html"], doc["charset"])[0] == text, url
    headerless_pages = len(expected) - 1  # all but the HTTP response
    assert stats.events["headerless_response"] == headerless_pages + 1  # and the PNG, dropped by its type
    assert {(r["url"], r["reject_reason"]) for r in rejects} == {(u, reason) for u, _, _, reason in NOT_PAGES}


def test_a_headerless_page_under_application_http_is_read_by_its_markup(tmp_path):
    page = STARTS["doctype"].format(PARAGRAPH).encode()
    pages = {"http://a.example/": page, "http://b.example/": b"\n" + page}
    svg = ("http://svg.example/", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "application/http", True)
    records = [(url, block, HTTP_TYPE, True) for url, block in pages.items()] + [svg]
    docs, rejects, stats = read_all(_write(tmp_path / "h.warc.gz", records))
    assert {d["url"]: d["html"] for d in docs} == pages
    assert all(d["charset"] is None for d in docs)  # nothing declared it: decoding detects it
    assert [r["reject_reason"] for r in rejects] == ["content_type"]  # markup, but no HTML page
    assert stats.events["headerless_response"] == 3


def test_a_status_line_after_blank_lines_is_still_http(tmp_path):
    body = b"<html><body><p>" + PARAGRAPH.encode() + b"</p></body></html>"
    block = b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n" + body
    path = _write(tmp_path / "h.warc", [("http://a.example/", block, "text/html", True)])
    docs, rejects, stats = read_all(path)
    assert [(d["html"], d["charset"]) for d in docs] == [(body, "iso-8859-1")] and not rejects
    assert "headerless_response" not in stats.events


def test_a_headerless_arc_record_is_read_with_the_arc_type(tmp_path):
    page = b"\n<html><body><p>" + PARAGRAPH.encode() + b"</p></body></html>"
    record = b"http://a.example/ 10.0.0.1 20080430204825 text/html %d\n%s\n" % (len(page), page)
    (tmp_path / "h.arc").write_bytes(record)
    docs, rejects, stats = read_all(str(tmp_path / "h.arc"))
    assert [d["html"] for d in docs] == [page] and not rejects
    assert stats.events["headerless_response"] == 1


def test_a_cut_headerless_record_is_truncated(tmp_path):
    page = STARTS["html"].format(PARAGRAPH * 4).encode()
    path = Path(_write(tmp_path / "h.warc", [("http://a.example/", page, "text/html", True)], gz=False))
    path.write_bytes(path.read_bytes()[:-len(page) // 2])
    docs, rejects, _ = read_all(str(path))
    assert not docs and [r["reject_reason"] for r in rejects] == ["truncated_payload"]


@pytest.mark.parametrize("gz", [True, False], ids=["gzip", "plain"])
def test_headerless_files_read_in_record_ranges_as_whole(tmp_path, gz):
    records, _ = _crafted()
    path = _write(tmp_path / "h.warc", records * 3, gz)
    whole, _, whole_stats = read_all(path)
    ranges = plan_ranges(path, Path(path).stat().st_size // 6)
    stats, docs = StageStats(), []
    for r in ranges:
        docs += WarcIngest(IngestConfig(), "test").read(path, stats, [], r.start, r.end)
    assert len(ranges) >= 4 and len(whole) == len(records) * 3
    assert [(d["id"], d["html"]) for d in docs] == [(d["id"], d["html"]) for d in whole]
    assert stats.events["headerless_response"] == whole_stats.events["headerless_response"]
    assert not [k for k in stats.events if k.startswith("read_error")]


# --- binary or text: from the bytes as a whole ------------------------------------------------------

PAGE = ("<html><body><p>" + PARAGRAPH + "</p></body></html>").encode()
NOISE = random.Random(0).randbytes(20_000)  # what compressed and image data look like


def test_stray_nul_bytes_do_not_make_a_page_binary(tmp_path):
    pages = {
        "http://early-nul.example/": PAGE[:10] + b"\x00" + PAGE[10:],
        "http://some-nuls.example/": PAGE.replace(b"text", b"te\x00xt"),
        "http://utf16.example/": f"<html><body><p>UTF-16 {PARAGRAPH}</p></body></html>".encode("utf-16"),
    }
    records = [(url, body, "text/html", False) for url, body in pages.items()]
    docs, rejects, stats = read_all(_write(tmp_path / "t.warc.gz", records))
    by_url = {d["url"]: d["html"] for d in docs}
    assert not rejects and stats.events["nul_bytes_removed"] == 2
    assert by_url["http://early-nul.example/"] == PAGE and by_url["http://some-nuls.example/"] == PAGE
    assert by_url["http://utf16.example/"] == pages["http://utf16.example/"]  # zero bytes of characters kept


def test_real_binaries_are_still_binary_payload(tmp_path):
    binaries = {
        "http://png.example/": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + zlib.compress(NOISE),
        "http://pdf.example/": b"%PDF-1.4\n" + b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n" * 200,
        "http://gzip.example/": gzip.compress(PAGE * 50),  # no Content-Encoding: as stored, binary
        "http://raw-deflate.example/": zlib.compress(NOISE, wbits=-15),
        "http://html-then-noise.example/": b"<html><body>" + NOISE,
    }
    records = [(url, body, "text/html", False) for url, body in binaries.items()]
    records.append(("http://ok.example/", PAGE, "text/html", False))
    docs, _, stats = read_all(_write(tmp_path / "b.warc.gz", records))
    assert [d["url"] for d in docs] == ["http://ok.example/"]
    assert dict(stats.dropped) == {"binary_payload": len(binaries)}


def test_every_real_response_is_binary_by_its_type():
    """On real crawls: every image, font, PDF, Flash and zip body is binary, no text body is."""
    seen = {True: 0, False: 0}
    for name in ("aut-IAH-20080430204825-00000-blackbook.warc.gz",
                 "solrwayback-heritrix3-TEST-20220304210400500-00000.warc.gz"):
        with open(require(WARC / "more" / name), "rb") as f:
            for record in ArchiveIterator(f):
                content_type = record.http_headers.get_header("Content-Type") if record.http_headers else None
                body = record.content_stream().read()
                if record.rec_type != "response" or not content_type or not body:
                    continue
                mime = content_type.split(";")[0].strip().lower()
                binary = mime.startswith(("image/", "font/", "application/pdf", "application/octet-stream",
                                          "application/x-shockwave-flash")) and mime != "image/svg+xml"
                assert looks_binary(body) == binary, (name, mime, body[:20])
                seen[binary] += 1
    assert seen[True] >= 50 and seen[False] >= 200, seen
