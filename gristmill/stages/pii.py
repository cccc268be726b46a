"""PII scrubbing: presidio's pattern recognizers, offline, behind a regex pre-screen.

- The analyzer is built once per worker process (`analyzer_engine`): a blank spaCy English
  pipeline made in-process (tokenizer only, nothing loaded from disk or the network) and an
  explicit registry of six recognizers (email, phone, IPv4/IPv6, Luhn-checked credit card,
  checksummed IBAN, US SSN). The email recognizer's domain check uses tldextract's bundled
  suffix list, never a download. Why blank rather than a real model: the six entities are found
  by patterns and checksums; a NER model (en-core-web-sm, the one PyPI ships) would only add
  names and places, which we do not scrub, at ~7× the cost per page (437 ms against 58 ms
  per 5 KB page, measured on one core when the stage was built).
- Speed: a naive analyzer call over a whole page costs ~14 ms per 5 KB, most of it the
  phone matcher (python-phonenumbers parses every number it sees, once per region) and spaCy's
  tokenizer; its cost grows faster than the page when PII is dense. The pre-screen
  (pii_screen.py) finds candidates with cheap regexes and drops what cannot be an entity
  before presidio sees it; the rest are analyzed in a few batched calls of bounded size, phone
  candidates on tight slices, on `lean_engine` (no spaCy pass, no context step). Every entity
  contains its own candidate, so after `refine` the findings equal a whole-document call
  (checked on both gold sets in tests/stages/test_pii.py and on every page in bench/bench_pii.py).
  Time is linear in the page's length; past `max_phone_candidates` a page's remaining phone
  candidates are counted (`pii:candidate_cap`, `pii:candidates_not_analyzed`), not analyzed.
- Precision (`refine`, applied with or without the pre-screen): no '::' separators as IPs, no
  9-digit licence numbers, parts of foreign phone numbers or numbers without 'SSN' before them as
  SSNs, no postcodes, dates and times, DOIs, URLs, versions, labelled identifiers (order, tax,
  ISBN), amounts, scores or table rows as phone numbers, no card number inside a longer run of
  digits or a table row. Measured on hand-labelled hits on real pages (bench/pii_labels/).
- Context words: presidio raises a score when one of its context words ("phone", "ssn"…) is
  among the five tokens before a match; 50 characters each side hold those. With a blank spaCy
  pipeline, though, every lemma is empty, so presidio's context enhancement never fires (for
  the naive call either): scores are the recognizers' base scores.
- Replacement: overlapping results keep the higher score, then the longer span; allowed values
  are kept; the rest are replaced right to left on `str` offsets, so the text around them
  (any script, emoji) is untouched. Never drops a document.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from bisect import bisect_right
from collections import Counter
from functools import lru_cache
from typing import Literal

import pyarrow as pa

import gristmill.core.env  # noqa: F401  (caches under GRISTMILL_CACHE, hubs offline)
from pydantic import Field, field_validator

from gristmill.core.config import Strict
from gristmill.stages.base import DocStage
from gristmill.stages.pii_screen import batches, owned, refine, screen


PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")
PiiEntity = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN"]


class PiiConfig(Strict):
    """PII scrubbing with presidio's pattern recognizers (stages/pii.py); never drops documents."""

    entities: list[PiiEntity] = Field(default=list(PII_ENTITIES), min_length=1)
    replacement: Literal["placeholder", "fake"] = "placeholder"  # <EMAIL>… or consistent fake values
    fake_key: str = "gristmill"  # key of the hash that picks fake values (same value → same fake)
    allow_list: list[str] = []  # exact values kept as they are (public contact addresses…)
    allow_patterns: list[str] = []  # regexes; a value that fully matches one is kept
    keep_documentation_ips: bool = True  # keep 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32
    score_threshold: float = Field(default=0.0, ge=0, le=1)  # presidio's minimum score
    prescreen: bool = True  # analyze only windows around regex candidates (False: whole documents)
    window_chars: int = Field(default=50, ge=20)  # text kept each side of a candidate (see stages/pii.py)
    max_phone_candidates: int = Field(default=2_000, ge=1)  # per document; past it: counted, not analyzed

    @field_validator("allow_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"allow pattern {pattern!r} does not compile: {e}") from None
        return v

PLACEHOLDERS = {
    "EMAIL_ADDRESS": "<EMAIL>",
    "PHONE_NUMBER": "<PHONE>",
    "IP_ADDRESS": "<IP>",
    "CREDIT_CARD": "<CREDIT_CARD>",
    "IBAN_CODE": "<IBAN>",
    "US_SSN": "<SSN>",
}
COLUMNS = {
    "EMAIL_ADDRESS": "pii_email",
    "PHONE_NUMBER": "pii_phone",
    "IP_ADDRESS": "pii_ip",
    "CREDIT_CARD": "pii_credit_card",
    "IBAN_CODE": "pii_iban",
    "US_SSN": "pii_ssn",
}
DOCUMENTATION_NETS = [ipaddress.ip_network(n) for n in
                      ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]

@lru_cache(maxsize=1)
def analyzer_engine():
    """presidio's AnalyzerEngine with a blank spaCy pipeline and the six recognizers, once per process."""
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer, UsSsnRecognizer,
    )

    offline_tld = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)  # the bundled snapshot

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld(pattern_text).fqdn != ""

    nlp_engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    nlp_engine.nlp = {"en": spacy.blank("en")}  # set directly: `load()` would spacy.load / download
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (OfflineEmailRecognizer, PhoneRecognizer, IpRecognizer, CreditCardRecognizer,
                       IbanRecognizer, UsSsnRecognizer):
        registry.add_recognizer(recognizer())
    engine = AnalyzerEngine(nlp_engine=nlp_engine, registry=registry, supported_languages=["en"])
    engine.analyze(text=WARM_UP, language="en")  # loads what the recognizers load lazily (tldextract's list)
    return engine


@lru_cache(maxsize=1)
def lean_engine():
    """The same registry and recognizers without the spaCy pass and the context step, which change
    nothing with a blank pipeline (see the module's docstring) and cost most of a small call:
    presidio scans every token for every result to find its context (quadratic in a call)."""
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_analyzer.nlp_engine import NlpArtifacts

    class NoContext(ContextAwareEnhancer):
        def __init__(self):
            super().__init__(context_similarity_factor=0, min_score_with_context_similarity=0,
                             context_prefix_count=0, context_suffix_count=0)

        def enhance_using_context(self, text, raw_results, nlp_artifacts, recognizers, context=None):
            return raw_results

    stock = analyzer_engine()
    engine = AnalyzerEngine(nlp_engine=stock.nlp_engine, registry=stock.registry, supported_languages=["en"],
                            context_aware_enhancer=NoContext())
    no_tokens = NlpArtifacts(entities=[], tokens=[], tokens_indices=[], lemmas=[],
                             nlp_engine=stock.nlp_engine, language="en")
    return engine, no_tokens


WARM_UP = ("mail jan@example.com, call +1 212-555-0143, host 192.168.1.2 or fe80::1, "
           "card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, social security number 536-22-8726")


def candidate_windows(text: str, entities: frozenset[str],
                      window: int) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, entity types) of the windows presidio would see, for tests and inspection."""
    return [(start, end, frozenset().union(*(c[2] for c in own)))
            for wins in screen(text, frozenset(entities), window) for start, end, own in wins]


def analyze(text: str, entities: list[str] | frozenset[str], score_threshold: float = 0.0,
            prescreen: bool = True, window: int = 50,
            max_phone_candidates: int | None = None) -> tuple[list[tuple[int, int, str, float]], int]:
    """(start, end, entity, score) results on `text`, overlaps not resolved, and how many phone
    candidates were left unanalyzed past `max_phone_candidates` (0 unless the cap was hit). The cap
    bounds a page's cost: a phone candidate costs up to a few phonenumbers parses per region; every
    other candidate, a few regex steps."""
    engine = analyzer_engine()
    entities = frozenset(entities)
    if not prescreen:
        found = engine.analyze(text=text, language="en", entities=sorted(entities),
                               score_threshold=score_threshold)
        return sorted((r.start, r.end, r.entity_type, r.score) for r in found), 0
    engine, no_tokens = lean_engine()
    other_windows, phone_windows = screen(text, entities, window)
    skipped = 0
    if max_phone_candidates is not None:
        budget = max_phone_candidates
        for i, (_, _, own) in enumerate(phone_windows):
            budget -= len(own)
            if budget < 0:
                skipped = sum(len(w[2]) for w in phone_windows[i:])
                phone_windows = phone_windows[:i]
                break
    out: set[tuple[int, int, str, float]] = set()
    for wins in (other_windows, phone_windows):
        pieces = [(text[start:end], frozenset().union(*(c[2] for c in own))) for start, end, own in wins]
        for (start, _, own), found in zip(wins, _analyze_pieces(engine, no_tokens, pieces, score_threshold)):
            for piece_start, piece_end, entity, score in found:
                if owned(start + piece_start, start + piece_end, entity, own):
                    out.add((start + piece_start, start + piece_end, entity, score))
    return sorted(out), skipped


_SEEN: dict[tuple[str, frozenset[str], float], list[tuple[int, int, str, float]]] = {}
_SEEN_PIECE_CHARS = 200  # short pieces (a phone number, a table's repeated cell) are remembered
_SEEN_MAX = 20_000  # pieces remembered per process (a few MB)


def forget_seen_pieces() -> None:
    """Start from an empty memory of analyzed pieces, as a fresh worker does (benchmarks)."""
    _SEEN.clear()


def _analyze_pieces(engine, no_tokens, pieces: list[tuple[str, frozenset[str]]],
                    score_threshold: float) -> list[list[tuple[int, int, str, float]]]:
    """presidio's results on each (text, entity types) piece, offsets within the piece. Pieces are
    analyzed together in a few calls; a short piece seen before (on this page or an earlier one:
    the same number in every row or footer) is not analyzed again."""
    keys = [(piece, wanted, score_threshold) for piece, wanted in pieces]
    todo = list(dict.fromkeys(k for k in keys if k not in _SEEN))
    fresh: dict[tuple, list] = {k: [] for k in todo}
    by_entities: dict[frozenset[str], list[tuple]] = {}
    for k in todo:
        by_entities.setdefault(k[1], []).append(k)
    for wanted, group in by_entities.items():
        for joined, offsets, indices in batches([k[0] for k in group]):
            found = engine.analyze(text=joined, language="en", entities=sorted(wanted),
                                   score_threshold=score_threshold, nlp_artifacts=no_tokens)
            for r in found:
                i = bisect_right(offsets, r.start) - 1
                key, offset = group[indices[i]], offsets[i]
                if r.end - offset <= len(key[0]):
                    fresh[key].append((r.start - offset, r.end - offset, r.entity_type, r.score))
    out = [fresh[k] if k in fresh else _SEEN[k] for k in keys]
    if len(_SEEN) > _SEEN_MAX:
        _SEEN.clear()
    _SEEN.update((k, v) for k, v in fresh.items() if len(k[0]) <= _SEEN_PIECE_CHARS)
    return out


def findings(text: str, entities: list[str] | frozenset[str], prescreen: bool = True,
             score_threshold: float = 0.0) -> list[tuple[int, int, str, float]]:
    """What the stage replaces before its allow-list: `analyze`, then `refine`, overlaps resolved."""
    return resolve_overlaps(refine(text, analyze(text, entities, score_threshold, prescreen)[0]))


def resolve_overlaps(results: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """Non-overlapping results, preferring the higher score, then the longer span, then the earlier.
    The kept spans stay sorted, so each result is checked against its two neighbours only."""
    kept: list[tuple[int, int, str, float]] = []
    starts: list[int] = []
    for r in sorted(results, key=lambda r: (-r[3], r[0] - r[1], r[0])):
        i = bisect_right(starts, r[0])
        if (i and kept[i - 1][1] > r[0]) or (i < len(kept) and kept[i][0] < r[1]):
            continue
        kept.insert(i, r)
        starts.insert(i, r[0])
    return kept


def is_documentation_ip(value: str) -> bool:
    try:
        address = ipaddress.ip_interface(value.split("%")[0]).ip
    except ValueError:
        return False
    return any(address.version == net.version and address in net for net in DOCUMENTATION_NETS)


def _luhn_ok(number: str) -> bool:
    digits = [int(ch) for ch in number if ch.isdigit()][::-1]
    return sum(d if i % 2 == 0 else (d * 2 - 9 if d > 4 else d * 2) for i, d in enumerate(digits)) % 10 == 0


class FakeValues:
    """Fake values from a keyed hash of (entity, value): the same value always gets the same fake.
    Digits stay digits, letters letters, separators stay; emails go to example.com, IPs to the
    private 10.0.0.0/8 and fd00::/8 ranges, SSNs to the never-issued 9xx area, card numbers fail Luhn."""

    def __init__(self, key: str):
        self.key = key.encode("utf-8")

    def _stream(self, entity: str, value: str) -> bytes:
        msg = f"{entity}\x00{value}".encode("utf-8")
        return b"".join(hmac.new(self.key, msg + bytes([i]), hashlib.blake2b).digest() for i in range(2))

    def __call__(self, entity: str, value: str) -> str:
        h = self._stream(entity, value)
        if entity == "EMAIL_ADDRESS":
            local = value.partition("@")[0]
            letters = "".join("abcdefghijklmnopqrstuvwxyz"[b % 26] for b in h[: max(4, min(12, len(local)))])
            return f"{letters}@example.com"
        if entity == "IP_ADDRESS":
            if ":" in value:
                return f"fd{h[0]:02x}:" + ":".join(f"{h[i] << 8 | h[i + 1]:x}" for i in range(1, 14, 2))
            return f"10.{h[0]}.{h[1]}.{h[2]}"
        out, i = [], 0
        for ch in value:
            if ch.isdigit():
                out.append(str(h[i % len(h)] % 10))
                i += 1
            elif ch.isalpha() and not (entity == "IBAN_CODE" and len(out) < 2):  # keep the country code
                out.append("ABCDEFGHIJKLMNOPQRSTUVWXYZ"[h[i % len(h)] % 26] if ch.isupper() else
                           "abcdefghijklmnopqrstuvwxyz"[h[i % len(h)] % 26])
                i += 1
            else:
                out.append(ch)
        fake = "".join(out)
        if entity == "CREDIT_CARD" and _luhn_ok(fake):  # a fake card never passes Luhn: it cannot be real
            last = max(j for j, ch in enumerate(fake) if ch.isdigit())
            fake = fake[:last] + str((int(fake[last]) + 1) % 10) + fake[last + 1:]
        if entity == "US_SSN":
            first = next(j for j, ch in enumerate(fake) if ch.isdigit())
            fake = fake[:first] + "9" + fake[first + 1:]
        return fake


class PiiScrub(DocStage):
    name = "pii"

    def __init__(self, cfg: PiiConfig):
        self.cfg = cfg
        self.entities = frozenset(cfg.entities)
        self.allow = set(cfg.allow_list)
        self.allow_patterns = [re.compile(p) for p in cfg.allow_patterns]
        self.fake = FakeValues(cfg.fake_key) if cfg.replacement == "fake" else None
        self.events = Counter()  # replaced by the stats' counter in `run`
        analyzer_engine()  # build it now, once per worker, not on the first document

    def columns(self) -> list[pa.Field]:
        return [pa.field(COLUMNS[e], pa.int32()) for e in self.cfg.entities]

    def allowed(self, entity: str, value: str) -> bool:
        if value in self.allow or any(p.fullmatch(value) for p in self.allow_patterns):
            return True
        return entity == "IP_ADDRESS" and self.cfg.keep_documentation_ips and is_documentation_ip(value)

    def find(self, text: str) -> list[tuple[int, int, str, float]]:
        """The results that will be replaced: overlaps resolved, allowed values left out."""
        cfg = self.cfg
        found, skipped = analyze(text, self.entities, cfg.score_threshold, cfg.prescreen, cfg.window_chars,
                                 cfg.max_phone_candidates)
        if skipped:
            self.events["pii:candidate_cap"] += 1
            self.events["pii:candidates_not_analyzed"] += skipped
        return [r for r in resolve_overlaps(refine(text, found)) if not self.allowed(r[2], text[r[0]:r[1]])]

    def scrub(self, text: str) -> tuple[str, dict[str, int]]:
        counts = dict.fromkeys(self.cfg.entities, 0)
        found = self.find(text)
        if not found:
            return text, counts
        pieces, tail = [], len(text)
        for start, end, entity, _ in reversed(found):  # right to left on str offsets: earlier ones stay valid
            value = text[start:end]
            new = self.fake(entity, value) if self.fake is not None else PLACEHOLDERS[entity]
            pieces += [text[end:tail], new]
            tail = start
            counts[entity] += 1
        pieces.append(text[:tail])
        return "".join(reversed(pieces)), counts

    def apply(self, doc: dict) -> str | None:
        text = doc.get("text") or ""
        if text:
            text, counts = self.scrub(text)
            doc["text"] = text
        else:
            counts = dict.fromkeys(self.cfg.entities, 0)
        for entity, n in counts.items():
            doc[COLUMNS[entity]] = n
            if n:
                self.events[f"pii:{entity}"] += n
        if any(counts.values()):
            self.events["pii:docs_scrubbed"] += 1
        return None
