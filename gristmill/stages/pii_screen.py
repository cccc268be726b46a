"""The PII stage's pre-screen and precision rules (used by stages/pii.py).

- `candidates`: cheap regexes find where an entity could be, and cheap checks drop what cannot be
  one before presidio sees it: an IPv6 candidate must parse with `ipaddress` and hold a digit
  (not '::' used as a separator, not a time like '01:28:22'); a run of digits is a phone
  candidate only with 8+ digits, or 5–7 after a phone word or a '+', and not as a date or a
  calendar row (what `refine` keeps anyway); an SSN needs the 3-2-4 shape and 'SSN' or 'social
  security' before it, a card 13 digits. A run never crosses a tab (no recognizer does), so the
  cells of a table are separate runs, not one long one that phonenumbers parses again and again.
- `screen` → `windows`: candidates in order, grouped while a group spans at most `GROUP_CHARS`;
  a group gets `window` characters each side (widened to whitespace), a phone number's run only
  `PHONE_MARGIN`. Groups may overlap; a result counts only in the window that owns a candidate
  it touches, for an entity type that candidate can be.
- `batches`: windows' texts joined with `SEPARATOR` (which no recognizer's pattern crosses) into
  calls of at most `BATCH_CHARS`: a page costs a few presidio calls instead of one per window,
  and no call is large enough for presidio's per-result scans (quadratic in a call) to matter.
  Time is linear in the document's length.
- `refine`: precision rules applied to presidio's results, with or without the pre-screen; the
  context rules (`not_a_phone`, `_not_a_card`, `ssn_context`) were tuned on hand-labelled hits on
  real pages (bench/pii_labels/, BENCHMARKS.md).
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator

DIGIT_ENTITIES = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "US_SSN", "IP_ADDRESS"})
PHONE_MARGIN = 1  # characters each side of a phone's run: phonenumbers rejects a number next to a letter
PIECE_CHARS = 100  # a longer candidate (a run of digits through a table) is cut into pieces
GROUP_CHARS = 2_000  # most characters between a window's first and last candidate
BATCH_CHARS = 6_000  # most characters in one presidio call (windows joined)
SEPARATOR = "\n;\n"  # between joined windows: no recognizer matches across a newline or ';'
MAX_PHONE_GROUPS = 12  # more groups of digits in one run: a calendar row or a table, not a phone number
_WIDEN = 40  # at most this many extra characters to reach whitespace at a window's edge

# The separators between digits are phonenumbers' (its _VALID_PUNCTUATION, "x" left out): the
# dashes, slashes, dots, brackets and spaces a phone number may be written with. Not tabs, line
# breaks or typographic spaces (U+2000–U+200A…): no recognizer matches across them, so a table's
# cells are separate runs. Every pattern starts on one literal or one class ('@', ':', a digit),
# which Python's regex engine skips to quickly; one alternation over all kinds runs ~10× slower.
_SEP = (" \u00a0\\-\u2010-\u2015\u2212\u30fc\uff0d-\uff0f\u00ad\u200b\u2060"
        "\u3000()\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e+")
_RUN_CHAR = re.compile(r"[\d" + _SEP + r"]")
_GROUP = re.compile(r"\d+")
_EXTENSION = re.compile(  # phonenumbers' extension patterns ('x123', 'ext. 45', ';ext=6')
    r"(?i)(?:;ext=\d{1,20}|[ \u00a0\t,]*(?:e?xt(?:ensi[oó]?n?)?|ｅ?ｘｔｎ?|доб|anexo|[xｘ#＃~～]|int|ｉｎｔ)"
    r"[:.．]?[ \u00a0\t,-]*\d{1,20}#?|[- ]+\d{1,6}#)?")
# as presidio's: a local part's end, '@', a word; '@' first, so the engine skips to it (a pattern
# that starts with the lookbehind is tried at every position: 35× slower)
_EMAIL = re.compile(r"@(?<=[!#$%&'*+\-/=?^_`{|}~\w]@)(?=\w)")
_IPV6 = re.compile(r"::|:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{1,4}:")  # '::' or 7 colons
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")
_IPV6_LONGEST = 45  # characters in the longest IPv6 address ('::ffff:' + a dotted quad included)
_DIGITS = re.compile(r"\d(?:(?<=[A-Za-z]{2}\d)(?P<iban>\d[ -]?[A-Za-z0-9]{4})"  # CC00 XXXX: an IBAN's start
                     r"|(?P<ipv4>\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3})"
                     r"|(?P<digits>(?:[" + _SEP + r"]{0,4}\d){4,}))")  # 5+ digits: phone, card, SSN
# presidio's PhoneRecognizer.CONTEXT, and the words and abbreviations pages use
_PHONE_WORD = re.compile(r"(?<!\w)(?:phone|telephone|tel|fax|cell|cellphone|mobile|call|number|"
                         r"telefon|téléphone|tél|handy)s?(?!\w)")
_PHONE_CONTEXT = 40  # characters before a short number searched for a phone word
# a date (30.01.2013, 08-29-1968, 2020-07-14, 03/095/2018), maybe with the hour ('22.04.2020 / 06',
# '29.12.2010 - 22'); a range of years
_DATE = re.compile(r"\[?(?:\d{1,2}[./-]\d{1,3}[./-](?:1[6-9]|20)\d\d"
                   r"|(?:1[6-9]|20)\d\d[./-]\d{1,2}[./-]\d{1,2})"
                   r"(?:[ \u00a0]*[/\-\u2013\u2014]?[ \u00a0]*\d\d?)?"
                   r"|(?:1[0-9]|20)\d\d ?[-\u2013\u2014] ?(?:1[0-9]|20)\d\d")
_SSN_WORD = re.compile(r"(?i)(?<!\w)(?:ssns?|ss#|social[ -]security|soc\.? ?sec\.?)(?!\w)")
_SSN_CONTEXT = 60  # characters before an SSN searched for one of those words
_SSN_SHAPE = re.compile(r"\d{3}([- .])\d{2}\1\d{4}")  # what `refine` keeps of presidio's SSN patterns
_SSN_NEIGHBOUR_BEFORE = re.compile(r"(?:\+\d{1,4}[ .\-]?|\d[.\-])$")  # '+81 ', '12-': part of a longer number
_SSN_NEIGHBOUR_AFTER = re.compile(r"[.\-]\d")
_LONGEST_PHONE = 64  # characters: phonenumbers' longest match is shorter


def digit_count(value: str) -> int:
    return sum(map(str.isdigit, value))


def ssn_context(text: str, start: int) -> bool:
    """'SSN' or 'social security' shortly before `start`: 3-2-4 digits are an SSN only then."""
    return _SSN_WORD.search(text, max(0, start - _SSN_CONTEXT), start) is not None


def phone_context(text: str, start: int) -> bool:
    """A phone word or a '+' shortly before `start`: a short number may then be a phone number."""
    before = text[max(0, start - _PHONE_CONTEXT):start]
    return before.rstrip().endswith("+") or _PHONE_WORD.search(before.lower()) is not None


def _ipv6_candidates(text: str) -> list[tuple[int, int, frozenset[str]]]:
    """Runs of hex digits, colons and dots around two close colons that parse as an IPv6 address
    with a digit in it: not '::' used as a separator, not a time such as '01:28:22'."""
    out, n, done = [], len(text), -1
    for m in _IPV6.finditer(text):
        if m.start() < done:
            continue
        start, end = m.start(), m.end()
        while start > 0 and m.start() - start < _IPV6_LONGEST and text[start - 1] in _IPV6_CHARS:
            start -= 1
        while end < n and end - m.end() < _IPV6_LONGEST and text[end] in _IPV6_CHARS:
            end += 1
        done = end
        run = text[start:end].strip(":.")
        if any(map(str.isdigit, run)):
            try:
                ipaddress.IPv6Address(run)
            except ValueError:
                continue
            out.append((start, end, frozenset({"IP_ADDRESS"})))
    return out


def candidates(text: str, entities: frozenset[str]) -> list[tuple[int, int, frozenset[str]]]:
    """(start, end, entity types it can be) for each place an entity could be, in text order."""
    found = []
    if "EMAIL_ADDRESS" in entities:
        found += [(m.start(), m.end(), frozenset({"EMAIL_ADDRESS"})) for m in _EMAIL.finditer(text)]
    if "IP_ADDRESS" in entities:
        found += _ipv6_candidates(text)
    for m in _DIGITS.finditer(text):
        kind = m.lastgroup
        if kind == "iban":
            wanted = frozenset({"IBAN_CODE"})
            start = m.start() - 2
        elif kind == "ipv4":
            wanted, start = DIGIT_ENTITIES, m.start()
        else:
            start, value = m.start(), m.group()
            wanted = _digit_run_entities(value, lambda: phone_context(text, start),
                                         lambda: ssn_context(text, start))
        wanted &= entities
        if wanted:
            found.append((start, m.end(), wanted))
    return sorted(found, key=lambda c: c[0])


def _digit_run_entities(value: str, phone_word_before: Callable[[], bool],
                        ssn_word_before: Callable[[], bool]) -> frozenset[str]:
    """What a run of 5+ digits (with phone separators) can be."""
    n = digit_count(value)
    wanted = set()
    if (n >= 8 or phone_word_before()) and not _DATE.fullmatch(value.strip()) \
            and len(_GROUP.findall(value)) <= MAX_PHONE_GROUPS:
        wanted.add("PHONE_NUMBER")
    if n >= 9 and _SSN_SHAPE.search(value) and ssn_word_before():
        wanted.add("US_SSN")
    if n >= 13:
        wanted.add("CREDIT_CARD")
    if "." in value:
        wanted.add("IP_ADDRESS")
    return frozenset(wanted)


def screen(text: str, entities: frozenset[str], window: int) -> list[list]:
    """The windows presidio sees, in two lists (each is batched on its own): the candidates for
    everything but phone numbers with `window` characters around them, then every phone candidate
    with `PHONE_MARGIN` characters around it (phonenumbers needs no more, and its matcher is what
    costs: it parses every number it sees, once per region)."""
    found = candidates(text, entities)
    phone = frozenset({"PHONE_NUMBER"})
    phones = [(*_whole_run(text, s, e), phone) for s, e, w in found if "PHONE_NUMBER" in w]
    return [windows(text, [(s, e, w - phone) for s, e, w in found if w - phone], window),
            windows(text, phones, PHONE_MARGIN, widen=False)]


def windows(text: str, found: list[tuple[int, int, frozenset[str]]], window: int,
            widen: bool = True) -> list[tuple[int, int, list[tuple[int, int, frozenset[str]]]]]:
    """(start, end, the candidates it owns): groups of nearby candidates with `window` characters
    around (widened to whitespace unless `widen` is off)."""
    groups: list[list] = []  # [start, end, candidates]
    for start, end, wanted in found:
        for piece in range(start, end, PIECE_CHARS):  # a long run of digits: pieces, each with its context
            cand = (piece, min(end, piece + PIECE_CHARS), wanted)
            last = groups[-1] if groups else None
            if last and cand[0] - window < last[1] + window and cand[1] - last[0] <= GROUP_CHARS:
                last[1] = max(last[1], cand[1])
                last[2].append(cand)
            else:
                groups.append([cand[0], cand[1], [cand]])
    n = len(text)
    spans = [(max(0, start - window), min(n, end + window), group) for start, end, group in groups]
    return [(*_widen(text, start, end), group) for start, end, group in spans] if widen else spans


def _widen(text: str, start: int, end: int) -> tuple[int, int]:
    """Move a window's edges outwards to whitespace, so no token is cut."""
    if start > 0:
        stop = max(0, start - _WIDEN)
        while start > stop and not text[start - 1].isspace():
            start -= 1
    if end < len(text):
        stop = min(len(text), end + _WIDEN)
        while end < stop and not text[end].isspace():
            end += 1
    return start, end


def batches(pieces: list[str]) -> Iterator[tuple[str, list[int], list[int]]]:
    """(joined text, offset of each piece in it, index of each piece) per presidio call: pieces
    joined with `SEPARATOR` up to `BATCH_CHARS`."""
    batch: list[int] = []
    size = 0
    for i, piece in enumerate(pieces):
        if batch and size + len(piece) > BATCH_CHARS:
            yield _join(pieces, batch)
            batch, size = [], 0
        batch.append(i)
        size += len(piece) + len(SEPARATOR)
    if batch:
        yield _join(pieces, batch)


def _join(pieces: list[str], batch: list[int]) -> tuple[str, list[int], list[int]]:
    offsets, offset = [], 0
    for i in batch:
        offsets.append(offset)
        offset += len(pieces[i]) + len(SEPARATOR)
    return SEPARATOR.join(pieces[i] for i in batch), offsets, batch


def owned(start: int, end: int, entity: str, cands: list[tuple[int, int, frozenset[str]]]) -> bool:
    """The result touches one of the window's own candidates that can be `entity`."""
    return any(c[0] < end and start < c[1] and entity in c[2] for c in cands)


def _whole_run(text: str, start: int, end: int) -> tuple[int, int]:
    """The run of digits and phone separators around a candidate (up to `_WIDEN` more characters
    each side) and an extension after it: phonenumbers judges a number by all of it."""
    stop = max(0, start - _WIDEN)
    while start > stop and _RUN_CHAR.match(text, start - 1):
        start -= 1
    stop = min(len(text), end + _WIDEN)
    while end < stop and _RUN_CHAR.match(text, end):
        end += 1
    return start, _EXTENSION.match(text, end).end()


def _run_groups(text: str, start: int, end: int) -> int:
    """Groups of digits in the run of digits and phone separators around text[start:end], up to
    `_LINE_CHARS` each side (a bound: a page-long run would be scanned once per result in it)."""
    lo, hi = max(0, start - _LINE_CHARS), min(len(text), end + _LINE_CHARS)
    while start > lo and _RUN_CHAR.match(text, start - 1):
        start -= 1
    while end < hi and _RUN_CHAR.match(text, end):
        end += 1
    return len(_GROUP.findall(text, start, end))


def _inside_longer(start: int, end: int, spans: list, span_starts: list[int]) -> bool:
    """A span of `spans` (sorted; none longer than `_LONGEST_PHONE`) holds start:end and more."""
    first = bisect_left(span_starts, start - _LONGEST_PHONE)
    last = bisect_right(span_starts, start)
    return any(s[1] >= end and s[1] - s[0] > end - start for s in spans[first:last])


# Numbers that look like phone numbers but are something else, by what is next to them.
_TIME_AFTER = re.compile(r"[:：]\d\d(?!\d)")  # '…2020 / 06' + ':15': the last group is an hour
_ID_LABEL = re.compile(  # a label for an identifier right before the number ('Steuer-Nr.: ', 'ISBN ')
    r"(?i)(?<![^\W\d_])(?:order|tracking|track|ref(?:erence)?|id|no|nr|n[º°]|isbn(?:-1[03])?|issn|doi"
    r"|sku|item|art(?:ikel)?|invoice|rechnung|bestell|kunden|kd|steuer|ust|vat|p\.\s?iva|iva|tax|account|konto"
    r"|ticket|serial|model|part|patent|lot|batch|case|ean|upc|gtin|asin|pzn|hrb|isin|wkn)"
    r"(?:[-\s.]*(?:nr|no|nummer|number|id|code|#))?[\s.:#№-]*$")
_LABEL_CHARS = 30  # characters before a number searched for an identifier's label
_OPENERS = frozenset(":：(（[［{<\"'«»„“”‚‘’+=")  # may touch a phone number ('Tel:0251…', '(0201) …')
_GLUE = frozenset(".;_-/\\|&?%")  # a number glued to a token with these continues it: not a phone
_AMOUNT = re.compile(r"[1-9]\d{0,2}([.,'])\d{3}(?:\1\d{3})+")  # '18.000.000', '1,121,319,953'
_ROW_NUMBERS = 6  # other numbers on a line, at least twice as many as words: a row of a table
_LINE_CHARS = 200  # characters each side of a number searched for its line
_TOKEN = re.compile(r"[^\s|]+")  # a table's cells are split by spaces, tabs or '|'
_CARD_RUN = re.compile(r"[\d .\-]")  # what a card number's run of digits is made of


def _glued_token(text: str, start: int) -> bool:
    """The number continues a token without a space: a URL or path ('…/books/0309071445'), a
    DOI or an article number ('j.xagr.2020.100002', 'annrheumdis-2014-205577', '2015;0961…'), a
    version ('0.0.0-20180720…'); not after an opener ('Tel:', '(') or a phone word ('Tel.')."""
    i, stop = start, max(0, start - _PHONE_CONTEXT)
    while i > stop and not text[i - 1].isspace():
        i -= 1
    prefix = text[i:start]
    if not prefix or prefix[-1] in _OPENERS or prefix[-1] not in _GLUE:
        return False
    if prefix[-1] == "/" and not any(ch.isalpha() for ch in prefix):
        return False  # '567 3351/542 5403': a second number
    return _PHONE_WORD.search(prefix.lower()) is None


def _labelled_id(text: str, start: int) -> bool:
    """An identifier's label right before the number ('Order #', 'Steuer-Nr.:', 'P.iva:'),
    unless a phone word comes before the label ('Tel.-Nr.', 'Phone No.')."""
    lo = max(0, start - _LABEL_CHARS)
    m = _ID_LABEL.search(text, lo, start)
    if m is None:
        return False
    return _PHONE_WORD.search(text[max(0, m.start() - 12):m.start()].lower()) is None


def _number_row(text: str, start: int, end: int) -> bool:
    """The number's line is a row of a table of numbers: `_ROW_NUMBERS` or more other tokens with
    digits and no letters on it, and at least twice as many of them as tokens with letters."""
    lo = text.rfind("\n", max(0, start - _LINE_CHARS), start) + 1 or max(0, start - _LINE_CHARS)
    hi = text.find("\n", end, end + _LINE_CHARS)
    hi = hi if hi >= 0 else min(len(text), end + _LINE_CHARS)
    numbers = words = 0
    for token in _TOKEN.findall(text[lo:start] + " " + text[end:hi]):
        if any(ch.isalpha() for ch in token):
            words += 1
        elif any(ch.isdigit() for ch in token):
            numbers += 1
    return numbers >= _ROW_NUMBERS and numbers >= 2 * words


def _short_groups(value: str) -> bool:
    """Three or more groups of one or two digits, the first not 0, no brackets: a row of scores or
    small figures ('18 22 13 17 — 70'); a phone number written so starts with 0 ('01 42 68 53 00')
    or a code in brackets ('(45) 33 73 66 66')."""
    groups = _GROUP.findall(value)
    return (len(groups) >= 3 and all(len(g) <= 2 for g in groups) and not groups[0].startswith("0")
            and "(" not in value)


def not_a_phone(text: str, start: int, end: int) -> bool:
    """What a phone-shaped number is instead, by its neighbours: a date with its hour, part of a
    longer token, a labelled identifier; without a phone word or '+' before it, an amount with
    thousands separators, a row of small figures, or a number in a row of a table."""
    value = text[start:end]
    if _TIME_AFTER.match(text, end) or _glued_token(text, start) or _labelled_id(text, start):
        return True
    if phone_context(text, start):
        return False
    return bool(_AMOUNT.fullmatch(value)) or _short_groups(value) or _number_row(text, start, end)


def _not_a_card(text: str, start: int, end: int) -> bool:
    """A card number is a run of its own: not part of a longer run of digits, not in a table row."""
    lo, hi = start, end
    while lo > max(0, start - _WIDEN) and _CARD_RUN.match(text, lo - 1):
        lo -= 1
    while hi < min(len(text), end + _WIDEN) and _CARD_RUN.match(text, hi):
        hi += 1
    longer = digit_count(text[lo:hi]) > digit_count(text[start:end])
    return longer or _number_row(text, start, end)


def refine(text: str, results: list[tuple[int, int, str, float]]) -> list[tuple[int, int, str, float]]:
    """presidio's results without its known false positives on web pages:
    - an IP address without a digit: `::` used as a separator (presidio's 'unspecified' IPv6);
    - an SSN that is not 3-2-4 digits with one separator (presidio's 'very weak' patterns, 0.05:
      any 9 digits, such as a licence number), or that is part of a longer number: after a
      country code ('+81 158-23-2012'), glued to other digits, or inside a longer phone number;
    - a phone number of fewer than 5 digits, or of 5–7 without a phone word or '+' before it
      (years, postcodes such as '094-0011', counts such as '330 000'), or that is a date
      ('30.01.2013', '08-29-1968') or a range of years ('1800 – 2000'), or that sits in a run of
      more than `MAX_PHONE_GROUPS` groups of digits (a calendar row: '01 02 03 … 31'), or that is
      something else by its neighbours (`not_a_phone`: dates with the hour, DOIs, URLs, versions,
      labelled identifiers, amounts, scores, table rows);
    - an SSN without 'SSN' or 'social security' in the 60 characters before it, or in a table row;
    - a card number inside a longer run of digits or in a table row.
    """
    out = []
    phones = sorted(r for r in results if r[2] == "PHONE_NUMBER")
    phone_starts = [p[0] for p in phones]
    for r in results:
        start, end, entity, score = r
        value = text[start:end]
        if entity == "IP_ADDRESS" and not any(ch.isdigit() for ch in value):
            continue
        if entity == "US_SSN" and (score < 0.5 or _SSN_NEIGHBOUR_BEFORE.search(text, max(0, start - 6), start)
                                   or _SSN_NEIGHBOUR_AFTER.match(text, end)
                                   or _inside_longer(start, end, phones, phone_starts)
                                   or not ssn_context(text, start) or _number_row(text, start, end)):
            continue
        if entity == "CREDIT_CARD" and _not_a_card(text, start, end):
            continue
        if entity == "PHONE_NUMBER":
            n = digit_count(value)
            if n < 5 or (n < 8 and not phone_context(text, start)) or _DATE.fullmatch(value) \
                    or _run_groups(text, start, end) > MAX_PHONE_GROUPS or not_a_phone(text, start, end):
                continue
        out.append(r)
    return out
