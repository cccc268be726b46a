"""PII scrubbing (stages/pii.py, stages/pii_screen.py): quality on presidio-research's gold sets,
equality with naive presidio, precision on shapes seen on real pages, bounded cost, replacement
behaviour and offset safety."""

from __future__ import annotations

import json
import re
from functools import lru_cache

import pyarrow as pa
import pytest

from gristmill.core.config import ConfigError
from gristmill.core.stats import StageStats
from gristmill.pipeline.config import parse_config
from gristmill.stages.pii import PII_ENTITIES, PiiConfig
from gristmill.stages.pii import COLUMNS, PiiScrub, analyze, candidate_windows, findings, resolve_overlaps
from gristmill.stages.pii_screen import candidates
from tests.conftest import DATA, require
from tests.floors import floor

GOLD = {"synth_v2": "presidio_synth_dataset_v2.json", "generated_large": "presidio_generated_large.json"}
ENTITIES = frozenset(PII_ENTITIES)

# Measured (bench/bench_pii.py, 2026-11-28): per entity (recall, gold spans, precision, predictions).
# Each floor is the Wilson lower bound at 99% for that figure and sample size (tests/floors.py).
MEASURED = {
    "synth_v2": {"EMAIL_ADDRESS": (1.0, 29, 1.0, 29), "PHONE_NUMBER": (0.595, 42, 0.926, 27),
                 "IP_ADDRESS": (1.0, 6, 1.0, 6), "CREDIT_CARD": (0.8, 80, 1.0, 64),
                 "IBAN_CODE": (1.0, 15, 1.0, 15), "US_SSN": (1.0, 12, 1.0, 12)},
    "generated_large": {"EMAIL_ADDRESS": (1.0, 41, 1.0, 41), "PHONE_NUMBER": (0.619, 84, 1.0, 52),
                        "IP_ADDRESS": (1.0, 9, 1.0, 9), "CREDIT_CARD": (1.0, 139, 1.0, 139),
                        "IBAN_CODE": (0.944, 18, 1.0, 17), "US_SSN": (1.0, 25, 0.962, 26)},
}
FLOORS = {name: {e: (floor(r, n_gold), floor(p, n_pred)) for e, (r, n_gold, p, n_pred) in per_entity.items()}
          for name, per_entity in MEASURED.items()}


@lru_cache(maxsize=None)
def gold(name: str) -> list[dict]:
    return json.loads(require(DATA / "pii" / GOLD[name]).read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def predictions(name: str, prescreen: bool) -> tuple:
    return tuple(tuple(findings(x["full_text"], ENTITIES, prescreen)) for x in gold(name))


def overlaps(p: tuple, g: dict) -> bool:
    return p[2] == g["entity_type"] and p[0] < g["end_position"] and g["start_position"] < p[1]


def scores(name: str, prescreen: bool) -> dict[str, tuple[float, float]]:
    counts = {e: [0, 0, 0, 0] for e in PII_ENTITIES}  # gold found, gold, predictions right, predictions
    for x, pred in zip(gold(name), predictions(name, prescreen)):
        spans = [s for s in x["spans"] if s["entity_type"] in ENTITIES]
        for g in spans:
            counts[g["entity_type"]][0] += any(overlaps(p, g) for p in pred)
            counts[g["entity_type"]][1] += 1
        for p in pred:
            counts[p[2]][2] += any(overlaps(p, g) for g in spans)
            counts[p[2]][3] += 1
    return {e: (c[0] / c[1] if c[1] else 1.0, c[2] / c[3] if c[3] else 1.0) for e, c in counts.items()}


@pytest.mark.parametrize("name", GOLD)
def test_gold_precision_recall(name):
    measured = scores(name, prescreen=True)
    for entity, (recall_floor, precision_floor) in FLOORS[name].items():
        recall, precision = measured[entity]
        assert recall >= recall_floor, f"{entity} recall {recall:.3f} < {recall_floor}"
        assert precision >= precision_floor, f"{entity} precision {precision:.3f} < {precision_floor}"


@pytest.mark.parametrize("name", GOLD)
def test_same_findings_as_naive_presidio(name):
    """The pre-screen, windows and batches change nothing on the gold sets: the same spans, types
    and scores (both sides with the same precision rules)."""
    ours, naive = predictions(name, True), predictions(name, False)
    differing = [gold(name)[i]["full_text"] for i, (a, b) in enumerate(zip(ours, naive)) if a != b]
    assert not differing, differing[:3]
    assert scores(name, True) == scores(name, False)


def scrub(text: str, **cfg) -> tuple[str, dict]:
    stage = PiiScrub(PiiConfig(**cfg))
    doc = {"text": text}
    stats = StageStats()
    out = list(stage.run([doc], stats, []))
    assert out == [doc] and stats.docs_out == 1  # never drops
    return doc["text"], doc


def test_placeholders_and_counts():
    text = ("Mail jan@example.com or call +1 212-555-0143. Server 8.8.8.8 and 2a00:1450:4001:81d::200e. "
            "Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 536-22-8726.")
    out, doc = scrub(text)
    assert out == ("Mail <EMAIL> or call <PHONE>. Server <IP> and <IP>. "
                   "Card <CREDIT_CARD>, IBAN <IBAN>, SSN <SSN>.")
    assert {c: doc[c] for c in COLUMNS.values()} == {
        "pii_email": 1, "pii_phone": 1, "pii_ip": 2, "pii_credit_card": 1, "pii_iban": 1, "pii_ssn": 1}


def test_invalid_values_are_kept():
    text = "Card 4111 1111 1111 1112 fails Luhn, IBAN DE89 3704 0044 0532 0130 01 fails its checksum."
    assert scrub(text)[0] == text


def test_entities_are_configurable():
    out, doc = scrub("jan@example.com, 8.8.8.8", entities=["IP_ADDRESS"])
    assert out == "jan@example.com, <IP>"
    assert "pii_email" not in doc and doc["pii_ip"] == 1
    assert [f.name for f in PiiScrub(PiiConfig(entities=["IP_ADDRESS"])).columns()] == ["pii_ip"]


def test_allow_list_patterns_and_documentation_ips():
    text = ("Write to info@gristmill.org or jan@example.com; "
            "hosts 192.0.2.7, 2001:db8::1, 198.51.100.3 and 8.8.4.4.")
    out, doc = scrub(text, allow_list=["info@gristmill.org"])
    assert out == ("Write to info@gristmill.org or <EMAIL>; "
                   "hosts 192.0.2.7, 2001:db8::1, 198.51.100.3 and <IP>.")
    assert doc["pii_email"] == 1 and doc["pii_ip"] == 1
    out, _ = scrub(text, keep_documentation_ips=False, allow_patterns=[r"[a-z]+@example\.com"])
    assert out == "Write to <EMAIL> or jan@example.com; hosts <IP>, <IP>, <IP> and <IP>."
    with pytest.raises(ValueError):
        PiiConfig(allow_patterns=["(unclosed"])


def test_fake_values_are_consistent():
    text = "a@example.org, b@example.org, a@example.org; SSN 536-22-8726; call 212-555-0143; 8.8.8.8"
    out1, doc = scrub(text, replacement="fake")
    out2, _ = scrub(text, replacement="fake")
    assert out1 == out2  # deterministic across stages / runs with the same key
    emails = re.findall(r"[a-z]+@example\.com", out1)
    assert len(emails) == 3 and emails[0] == emails[2] != emails[1]
    assert "a@example.org" not in out1 and "536-22-8726" not in out1 and "8.8.8.8" not in out1
    assert re.search(r"SSN 9\d\d-\d\d-\d{4};", out1)  # format kept, never-issued 9xx area
    assert re.search(r"call \d{3}-\d{3}-\d{4};", out1)
    assert re.search(r"; 10\.\d+\.\d+\.\d+$", out1)
    assert doc["pii_email"] == 3
    assert scrub(text, replacement="fake", fake_key="other")[0] != out1
    from gristmill.stages.pii import FakeValues, _luhn_ok

    fake = FakeValues("k")
    cards = [fake("CREDIT_CARD", f"4111 1111 1111 {n:04d}") for n in range(50)]
    assert all(re.fullmatch(r"\d{4} \d{4} \d{4} \d{4}", c) and not _luhn_ok(c) for c in cards)
    assert _luhn_ok("4111 1111 1111 1111")
    iban = fake("IBAN_CODE", "DE89 3704 0044 0532 0130 00")
    assert iban.startswith("DE") and len(iban) == len("DE89 3704 0044 0532 0130 00")
    assert re.fullmatch(r"fd[0-9a-f]{2}(:[0-9a-f]{1,4}){7}", fake("IP_ADDRESS", "2001:4860::8888"))


def test_overlaps_keep_higher_score_then_longer():
    assert resolve_overlaps([(0, 10, "PHONE_NUMBER", 0.4), (0, 13, "IP_ADDRESS", 0.6)]) == [
        (0, 13, "IP_ADDRESS", 0.6)]
    assert resolve_overlaps([(0, 10, "A", 0.5), (5, 20, "B", 0.5), (20, 25, "C", 0.1)]) == [
        (5, 20, "B", 0.5), (20, 25, "C", 0.1)]
    # presidio also tags an IPv4 address as a phone number (score 0.4); the IP (0.6) wins
    raw, _ = analyze("host 192.168.10.24 is up", ENTITIES)
    assert {r[2] for r in raw} == {"IP_ADDRESS", "PHONE_NUMBER"}
    assert scrub("host 192.168.10.24 is up")[0] == "host <IP> is up"


def test_unicode_emoji_and_multilingual_offsets():
    text = "📧 jan.kowalski@example.pl — zadzwoń +48 601 234 567 🙂"
    assert scrub(text)[0] == "📧 <EMAIL> — zadzwoń <PHONE> 🙂"
    text = "Сервер 8.8.8.8 ✅ 联系 wang@example.cn ，谢谢 🇵🇱 «jan@example.com» ẞ"
    assert scrub(text)[0] == "Сервер <IP> ✅ 联系 <EMAIL> ，谢谢 🇵🇱 «<EMAIL>» ẞ"


def test_prescreen_skips_documents_without_candidates():
    assert candidate_windows("Nothing to see here, only words and 1999.", ENTITIES, 50) == []
    long = "word " * 500 + "jan@example.com" + " word" * 500
    (start, end, wanted), = candidate_windows(long, ENTITIES, 50)
    assert wanted == {"EMAIL_ADDRESS"} and end - start < 200
    assert scrub(long)[0] == "word " * 500 + "<EMAIL>" + " word" * 500


def test_stage_in_isolation_counts_events():
    docs = [{"text": "no pii here"}, {"text": ""}, {"text": "jan@example.com and ann@example.com, 8.8.8.8"}]
    stats, rejects = StageStats(), []
    stage = PiiScrub(PiiConfig())
    out = list(stage.run(docs, stats, rejects))
    assert len(out) == 3 and not rejects and stats.docs_out == 3
    assert stats.events["pii:EMAIL_ADDRESS"] == 2 and stats.events["pii:IP_ADDRESS"] == 1
    assert stats.events["pii:docs_scrubbed"] == 1
    assert [d["pii_email"] for d in out] == [0, 0, 2]
    schema = pa.schema(stage.columns())
    assert all(schema.field(c).type == pa.int32() for c in COLUMNS.values())


def test_config_places_pii_between_filters_and_write():
    from gristmill.pipeline.shard import build_doc_stages

    warc = str(DATA / "warc" / "*")
    raw = {"inputs": [{"name": "x", "paths": [warc]}],
           "stages": {"ingest": {}, "extract": {}, "pii": {"replacement": "fake"}, "write": {}}}
    cfg = parse_config(raw)
    assert cfg.stages.order == ["ingest", "extract", "pii", "write"]
    assert [s.name for s in build_doc_stages(cfg)][-1] == "pii"
    bad = {**raw, "stages": {"ingest": {}, "extract": {}, "write": {}, "pii": {}}}
    with pytest.raises(ConfigError, match="order"):
        parse_config(bad)
    with pytest.raises(ConfigError, match="pii.entities"):
        parse_config({**raw, "stages": {"ingest": {}, "extract": {}, "pii": {"entities": ["PERSON"]},
                                        "write": {}}})


# Shapes seen in scrubbed real pages (issue #9), exactly as reported, and their kin.
NOT_PII = [
    "Home :: News :: Sport :: Weather",  # '::' as a separator, not an IPv6 address
    "〒094-0011 北海道紋別市",  # a Japanese postcode, not a phone number
    "postcode 094-0011, Monbetsu",
    "Driver's licence number 123456782, class B.",  # 9 digits without the SSN's shape
    "Concert 30.01.2013, doors 19:30; at 1800 – 2000 m",  # a date, a range of years
    "Posted April 30, 2008 01:28:22pm by William Tell",  # a time is not an IPv6 address
    "Fr Sa So 01 02 03 04 05 06 07 08 09 10 11 12 13 14 15 16",  # a calendar row
]


@pytest.mark.parametrize("text", NOT_PII)
def test_precision_on_real_page_shapes(text):
    assert scrub(text)[0] == text


def test_foreign_phone_number_is_not_an_ssn():
    assert scrub("Tel. +81 158-23-2012 (Hokkaido)")[0] == "Tel. <PHONE> (Hokkaido)"


def test_recall_kept_next_to_the_precision_rules():
    text = ("SSN 536-22-8726 or 536 22 8726; fe80::1 and 2001:4860::8888 and ::ffff:8.8.8.8; "
            "call 33 93 31; phone +33 1 42 68 53 00; Telefon: 0561 940 83-14")
    out, doc = scrub(text)
    assert out == ("SSN <SSN> or <SSN>; <IP> and <IP> and <IP>; "
                   "call <PHONE>; phone <PHONE>; Telefon: <PHONE>")
    assert doc["pii_ssn"] == 2 and doc["pii_ip"] == 3 and doc["pii_phone"] == 3


def test_prescreen_drops_what_cannot_be_an_entity():
    times = "Re: Dark Star | 0 | 10 | April 30, 2008 01:28:22pm | " * 50
    assert candidates(times, ENTITIES) == []  # times are not IPv6, '2008 01' is not a phone
    assert candidates("Menu :: Home :: About", ENTITIES) == []
    (start, end, wanted), = candidates("host 2001:db8::1 up", ENTITIES)
    assert wanted == {"IP_ADDRESS"} and (start, end) == (5, 16)
    (_, _, wanted), = candidates("call 212-555-0143", ENTITIES)
    assert wanted == {"PHONE_NUMBER"}  # not the SSN's 3-2-4 shape
    assert candidates("SSN 536-22-8726", ENTITIES)[0][2] == {"PHONE_NUMBER", "US_SSN"}
    assert candidates("12345 people", ENTITIES) == []  # 5 digits, no phone word before them
    assert candidates("phone 12345", ENTITIES)[0][2] == {"PHONE_NUMBER"}


def staff_directory(entries: int) -> str:
    lines = []
    for i in range(entries):
        lines.append(f"Person {i} | Lecturer | person.{i}@dept{i % 7}.example.edu | "
                     f"Tel. +1 (212) 555-{i:04d} | Fax 0{30 + i % 50} {100 + i} {10 + i % 80}-{i % 90:02d} | "
                     f"SSN 536-{10 + i % 80}-{1000 + i} | Room {i % 5}.{i % 60:02d}")
    return "\n".join(lines)


def test_dense_page_equals_naive_presidio():
    """A staff directory: many windows in few batched calls, the same findings as one whole-page call."""
    text = staff_directory(60)
    ours, naive = findings(text, ENTITIES, prescreen=True), findings(text, ENTITIES, prescreen=False)
    assert ours == naive
    assert sum(r[2] == "EMAIL_ADDRESS" for r in ours) == 60 and sum(r[2] == "US_SSN" for r in ours) == 60
    assert sum(r[2] == "PHONE_NUMBER" for r in ours) >= 60


def test_remembered_pieces_give_the_same_findings(monkeypatch):
    """Repeated numbers are analyzed once per worker; forgetting (when the memory is full) changes nothing."""
    import gristmill.stages.pii as pii

    text = "Tel. 0201 2402 0 | Fax 0201 2402 403\n" * 20 + staff_directory(10)
    first = findings(text, ENTITIES)
    assert findings(text, ENTITIES) == first == findings(text, ENTITIES, prescreen=False)
    monkeypatch.setattr(pii, "_SEEN_MAX", 3)
    assert findings(text, ENTITIES) == first
    pii.forget_seen_pieces()
    assert findings(text, ENTITIES) == first


def test_candidate_cap_is_counted_never_silent():
    text = staff_directory(30)
    stats, stage = StageStats(), PiiScrub(PiiConfig(max_phone_candidates=20))
    doc = {"text": text}
    assert list(stage.run([doc], stats, [])) == [doc]  # never drops
    assert stats.events["pii:candidate_cap"] == 1 and stats.events["pii:candidates_not_analyzed"] > 0
    assert doc["pii_email"] == 30 and doc["pii_ssn"] == 30  # only phone candidates (costly) are capped
    assert 0 < doc["pii_phone"] < 60
    stats = StageStats()
    list(PiiScrub(PiiConfig()).run([{"text": text}], stats, []))
    assert "pii:candidate_cap" not in stats.events


def test_real_crawl_pages_equal_naive_presidio():
    """The real crawl WARCs (ingest → extract): the same findings as naive presidio on every page."""
    from gristmill.stages.extract import ExtractConfig
    from gristmill.stages.extract import TrafilaturaExtract
    from gristmill.stages.ingest import read_all

    docs = [d for path in sorted((DATA / "warc" / "real").glob("*.warc.gz")) for d in read_all(str(path))[0]]
    extracted = TrafilaturaExtract(ExtractConfig()).run(docs, StageStats(), [])
    texts = [d["text"] for d in extracted if d.get("text")]
    assert len(texts) >= 50
    differing = [t[:80] for t in texts if findings(t, ENTITIES) != findings(t, ENTITIES, prescreen=False)]
    assert not differing
    assert sum(bool(findings(t, ENTITIES)) for t in texts) >= 3  # pages with PII are among them (3 today)
