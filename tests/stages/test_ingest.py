"""Ingest on real and deliberately broken crawl files: every problem counted, nothing fatal."""

import gzip
import io
import re
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.stages.ingest import IngestConfig
from gristmill.stages.ingest import read_all
from tests.conftest import WARC, require

EDGE = WARC / "edge-cases"

# file → (documents out, {drop reason: n}, {event: n} that must be present)
EDGE_CASES = {
    # ARC records with lengths -1 and "abc" and 18-digit dates
    "bad.arc": (0, {"content_type": 1, "empty_payload": 2}, {"record:response": 3, "invalid_date": 2}),
    # whole-file gzip (one member for all records): read again as a gzip stream
    "example-bad-non-chunked.warc.gz": (1, {}, {"whole_file_gzip": 1, "record:revisit": 1}),
    "example-bad.warc.gz.bad": (1, {"http_status_3xx": 1}, {"whole_file_gzip": 1, "record:response": 2}),
    "example-digest.warc": (0, {}, {"record:request": 4}),
    "example-iana.org-chunked.warc": (1, {}, {"record:response": 1}),
    "example-resource.warc.gz": (1, {}, {"record:resource": 1}),
    "example-space-in-target-uri.warc.gz": (0, {"not_http": 1}, {"record:resource": 1}),  # file:// URI
    "example-space-in-url.arc": (1, {}, {"record:response": 1}),
    "example-trunc.warc": (1, {}, {"bad_record_length": 1}),
    "example-wget-bad-target-uri.warc.gz": (1, {"not_http": 2}, {"record:response": 1}),  # metadata://
    # a gzip member ends before the body: the payload is empty and the next "record" is HTML
    "example-wrong-chunks.warc.gz": (0, {"truncated_payload": 1}, {"read_error:malformed_record": 1}),
    "example.arc": (1, {}, {"record:response": 1}),
    "example.arc.gz": (1, {}, {"record:response": 1}),
    "example.warc": (1, {}, {"record:revisit": 1}),
    "example.warc.gz": (1, {}, {"record:revisit": 1}),
    "post-test.warc.gz": (0, {"content_type": 3}, {"record:request": 3}),
}


def test_every_edge_case_file_is_covered():
    assert sorted(p.name for p in require(EDGE).iterdir()) == sorted(EDGE_CASES)


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_case_file(name):
    n_docs, dropped, events = EDGE_CASES[name]
    docs, rejects, stats = read_all(str(EDGE / name))
    assert len(docs) == n_docs
    assert dict(stats.dropped) == dropped
    assert len(rejects) == sum(dropped.values())
    assert all(r["reject_stage"] == "ingest" and r["reject_reason"] in dropped for r in rejects)
    for event, n in events.items():
        assert stats.events[event] == n, (event, dict(stats.events))
    for d in docs:
        assert d["html"] and d["url"] and " " not in d["url"] and not d["url"].startswith("<")
        assert len(d["id"]) == 20


def test_arc_documents_have_url_date_and_ids():
    (doc,), _, _ = read_all(str(EDGE / "example.arc.gz"))
    assert doc["url"] == "http://example.com/"
    assert doc["warc_date"].year == 2014
    assert doc["warc_record_id"] is None and doc["id"] == read_all(str(EDGE / "example.arc"))[0][0]["id"]
    (spaced,), _, _ = read_all(str(EDGE / "example-space-in-url.arc"))
    assert "%20" in spaced["url"]


def test_wget_angle_bracket_uris_are_repaired():
    docs, _, _ = read_all(str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz")))
    assert len(docs) == 22
    assert all(d["url"].startswith("https://") and d["domain"] for d in docs)


def test_clueweb_invalid_dates_and_gzip_bodies():
    docs, rejects, stats = read_all(str(require(WARC / "real" / "clueweb09-ja-quirk.warc.gz")))
    assert len(docs) == 29 and not rejects
    assert stats.events["invalid_date"] == 29
    assert all(d["warc_date"] is None for d in docs)
    # Content-Encoding: gzip bodies arrive decoded, declaring EUC-JP
    assert all(d["html"].lstrip()[:1] == b"<" for d in docs)
    assert {d["charset"] for d in docs} == {"euc-jp"}


def test_common_crawl_excerpt():
    docs, rejects, stats = read_all(str(require(WARC / "real" / "CC-MAIN-20200808165417-20200808195417-00395.part-a.warc.gz")))
    assert len(docs) == 10
    assert stats.events["record:request"] == 11 and stats.events["record:metadata"] == 10
    assert all(d["warc_date"].year == 2020 for d in docs)


def _warc(records: list[tuple[str, bytes, str]], gz: bool = True) -> bytes:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=gz)
    for url, body, ctype in records:
        http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http))
    return buf.getvalue()


PAGE = b"<html><body><p>" + b"A real paragraph of text. " * 20 + b"</p></body></html>"


def test_synthetic_bad_bodies(tmp_path: Path):
    data = _warc([
        ("http://ok.example/", PAGE, "text/html"),
        ("http://big.example/", b"<html>" + b"x" * 5000 + b"</html>", "text/html"),
        ("http://bin.example/", b"<html>\x00\x01\x02" + bytes(range(256)) * 4, "text/html"),
        ("http://pdf.example/", b"%PDF-1.4", "application/pdf"),
        ("http://empty.example/", b"   ", "text/html"),
        ("http://blocked.example/", PAGE, "text/html"),
        ("http://sub.blocked.example/", PAGE, "text/html"),
    ])
    path = tmp_path / "bad.warc.gz"
    path.write_bytes(data)
    cfg = IngestConfig(max_payload_bytes=2000, url_blocklist=["blocked.example"])
    docs, rejects, stats = read_all(str(path), cfg)
    assert [d["url"] for d in docs] == ["http://ok.example/"]
    assert dict(stats.dropped) == {"too_large": 1, "binary_payload": 1, "content_type": 1,
                                   "empty_payload": 1, "url_blocklist": 2}


def test_truncated_gzip_keeps_what_came_before(tmp_path: Path):
    data = _warc([(f"http://p{i}.example/", PAGE, "text/html") for i in range(10)])
    path = tmp_path / "trunc.warc.gz"
    whole = len(data) // 10  # bytes per record, about
    for cut in (6 * whole + 20, 6 * whole + whole // 2, 6 * whole + whole - 30):
        path.write_bytes(data[:cut])
        docs, rejects, stats = read_all(str(path))
        assert len(docs) == 6
        # the cut record is counted: as unreadable, or (headers intact) as a short payload
        assert stats.events["read_error:truncated"] + stats.dropped["truncated_payload"] == 1, cut


def test_whole_file_gzip_and_uncompressed(tmp_path: Path):
    plain = _warc([(f"http://p{i}.example/", PAGE, "text/html") for i in range(3)], gz=False)
    (tmp_path / "a.warc").write_bytes(plain)
    (tmp_path / "b.warc.gz").write_bytes(gzip.compress(plain))
    for name in ("a.warc", "b.warc.gz"):
        docs, _, _ = read_all(str(tmp_path / name))
        assert len(docs) == 3


def test_garbage_files_are_counted_not_fatal(tmp_path: Path):
    (tmp_path / "junk.warc.gz").write_bytes(b"\x1f\x8b\x08\x00garbage" + bytes(range(256)))
    docs, rejects, stats = read_all(str(tmp_path / "junk.warc.gz"))
    assert docs == [] and rejects == []
    assert sum(v for k, v in stats.events.items() if k.startswith("read_error:")) == 1
    # warcio reads free text as ARC header lines; the "URLs" fail validation
    (tmp_path / "text.warc").write_bytes(b"this is not a warc file\n" * 10)
    docs, rejects, stats = read_all(str(tmp_path / "text.warc"))
    assert docs == [] and {r["reject_reason"] for r in rejects} == {"bad_url"}


def test_cut_bodies_in_whole_records_are_kept(tmp_path: Path):
    """A crawler's WARC-Truncated body, or a server's wrong Content-Length, is not a broken
    record: the page is kept (and counted), unlike a record cut off by a damaged file."""
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", "99999")],
                            protocol="HTTP/1.1")
    w.write_record(w.create_warc_record("http://a.example/", "response", payload=io.BytesIO(PAGE),
                                        http_headers=http, warc_headers_dict={"WARC-Truncated": "length"}))
    (tmp_path / "t.warc.gz").write_bytes(buf.getvalue())
    docs, rejects, stats = read_all(str(tmp_path / "t.warc.gz"))
    assert len(docs) == 1 and not rejects
    assert stats.events["warc_truncated"] == 1


# --- a bad record loses one record (issue #9) ------------------------------------------------------

CC_EXCERPT = WARC / "real" / "CC-MAIN-20200808165417-20200808195417-00395.part-a.warc.gz"


def _real_responses(n: int = 7) -> list[bytes]:
    """The first n response records of a real Common Crawl excerpt, uncompressed, byte for byte."""
    data = require(CC_EXCERPT).read_bytes()
    with open(CC_EXCERPT, "rb") as f:
        archive = ArchiveIterator(f)
        spans = [(archive.get_record_offset(), archive.get_record_length(), r.rec_type) for r in archive]
    return [gzip.decompress(data[o:o + n_bytes]) for o, n_bytes, kind in spans if kind == "response"][:n]


def _url(record: bytes) -> str:
    return re.search(rb"WARC-Target-URI: (\S+)", record).group(1).decode()


def _with_warc_length(record: bytes, delta: int) -> bytes:
    """The record with its WARC Content-Length (the first one: WARC headers come first) off by delta."""
    m = re.search(rb"Content-Length: (\d+)", record)
    return record[:m.start(1)] + str(int(m.group(1)) + delta).encode() + record[m.end(1):]


def _write(path: Path, records: list[bytes], gz: bool, between: dict[int, bytes] | None = None) -> str:
    """Records one after another (each its own gzip member if gz), `between[i]` written before record i."""
    parts = []
    for i, record in enumerate(records):
        parts.append((between or {}).get(i, b""))
        parts.append(gzip.compress(record) if gz else record)
    path.write_bytes(b"".join(parts))
    return str(path)


def _read_quietly(path: str, capfd, caplog) -> tuple[list[dict], list[dict], object]:
    """read_all, checking the console: nothing from warcio, one log line per kind of read error."""
    caplog.clear()
    docs, rejects, stats = read_all(path)
    out, err = capfd.readouterr()
    assert out == err == ""  # warcio would print the rest of a bad record here
    kinds = {k for k in stats.events if k.startswith("read_error:")}
    assert len(caplog.records) == len(kinds) and all(len(r.getMessage()) < 400 for r in caplog.records)
    return docs, rejects, stats


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("delta", [-300, 300], ids=["too_short", "too_long"])
def test_a_wrong_content_length_loses_only_its_own_record(tmp_path, capfd, caplog, gz, delta):
    records = _real_responses()
    bad = 3
    broken = records[:bad] + [_with_warc_length(records[bad], delta)] + records[bad + 1:]
    path = _write(tmp_path / "bad.warc", broken, gz)
    docs, rejects, stats = _read_quietly(path, capfd, caplog)
    honest = [_url(r) for i, r in enumerate(records) if i != bad]
    assert stats.events["record:response"] == len(records) and stats.events["bad_record_length"] == 1
    if gz and delta > 0:  # the gzip member ends the record: its page is whole (the HTTP length is met)
        assert [d["url"] for d in docs] == [_url(r) for r in records] and not rejects
        return
    assert [d["url"] for d in docs] == honest
    assert [(r["url"], r["reject_reason"]) for r in rejects] == [(_url(records[bad]), "bad_content_length")]
    assert stats.events["read_error:bad_content_length"] == 1 and stats.events["resync_skipped_bytes"] > 0


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_junk_between_records_is_skipped_and_counted(tmp_path, capfd, caplog, gz):
    records = _real_responses()
    junk = b"\x00\x01 not a record\r\n" * 20 + b"<html>" + b"x" * 3000 + b"\r\n"
    path = _write(tmp_path / "junk.warc", records, gz, {4: junk})
    docs, rejects, stats = _read_quietly(path, capfd, caplog)
    assert [d["url"] for d in docs] == [_url(r) for r in records] and not rejects
    assert sum(v for k, v in stats.events.items() if k.startswith("read_error:")) == 1
    assert len(junk) <= stats.events["resync_skipped_bytes"] < len(junk) + 100


def test_a_gzip_cut_at_the_end_keeps_every_whole_record(tmp_path, capfd, caplog):
    records = _real_responses()
    members = [gzip.compress(r) for r in records]
    for keep in (20, len(members[-1]) // 2, len(members[-1]) - 4):  # in the headers, the body, the trailer
        path = tmp_path / "cut.warc.gz"
        path.write_bytes(b"".join(members[:-1]) + members[-1][:keep])
        docs, rejects, stats = _read_quietly(str(path), capfd, caplog)
        whole = keep == len(members[-1]) - 4  # only the gzip trailer's size field is missing
        assert [d["url"] for d in docs] == [_url(r) for r in records[:len(records) - (not whole)]], keep
        cut = len(rejects) + stats.events["read_error:truncated"]
        assert cut == (not whole) and {r["reject_reason"] for r in rejects} <= {"truncated_payload"}, keep


def test_an_arc_whose_first_record_has_no_separator_after_it_is_read_whole():
    """Common Crawl 2008: the filedesc record's length covers the blank line after it, so the
    next record follows without one. warcio gives up there; resuming where the filedesc ends,
    as declared, reads all 145 responses, counted as a missing separator, not a read error."""
    path = require(WARC / "more" / "copycat-cc2008-small-sample-1213893279526_0.arc")
    docs, rejects, stats = read_all(str(path))
    assert stats.events["record:response"] == 145 and stats.events["missing_separator"] == 1
    assert not [k for k in stats.events if k.startswith("read_error:")]
    assert len(docs) == 125 and len({d["url"] for d in docs}) == 125  # 131 with status 200, 6 of them PDFs
    assert dict(stats.dropped) == {"content_type": 6, "http_status_3xx": 6, "http_status_4xx": 8}
