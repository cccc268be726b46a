"""A read-only view of one document's text, with the splits filters share computed once.

Word splitting
--------------
`TextView.words` are the word *and punctuation* tokens of the text, the unit datatrove's Gopher, C4
and FineWeb heuristics count in (`line_words`: the same per line; `words_without_punctuation`:
the words as the papers count them). Those heuristics' thresholds were
tuned with spaCy's rule-based tokenizers (what datatrove uses), so `tokenize` follows the parts
of spaCy's rules that move the counts, with one precompiled regular expression per language and
no spaCy on the hot path (about 1 ms for a 5,000-character page, ten times faster):

- whitespace separates tokens; punctuation, quotes, brackets and symbols at either end of a
  whitespace-separated chunk are split off one character at a time ("(word)." -> "(", "word",
  ")", "."), an ellipsis "..." staying one token and a few emoticons (":)") one too;
- inside a chunk, characters split it only where spaCy splits: a comma between letters, "/" ":"
  "=" before a letter, "lower.Upper", an operator between digits, and (per language) a hyphen
  between letters: split for en, it, ru, pl and the default, kept for de, es, fr, pt, nl and the
  Nordic languages ("E-Mail" is one German word); so numbers ("3.5", "1.000,50", "10:30"),
  URLs, domain names and "U.S." stay whole;
- a final "." is split off, except after a lone capital ("A.", "U.S."), in "z.B."-like runs of
  single letters, after a digit in German ("3. Oktober"), and in a short per-language list of
  common abbreviations ("Dr.", "bzw.", "etc."); Polish splits it always;
- "%", currency and common units are split off a number ("10%" -> "10", "%");
- English splits contractions ("don't" -> "do", "n't"; "it's" -> "it", "'s"), French and
  Italian split elision ("l'eau" -> "l'", "eau");
- Han, kana and other CJK characters are one word each, in every language: Chinese and
  Japanese are written without spaces, and a character is the unit of spaCy's default Chinese
  segmenter. (datatrove's Japanese tokenizer needs SudachiPy, which is not installed here; its
  "zh" resolves to spaCy's multi-language tokenizer, which leaves a run of Chinese characters as
  one word. Neither is reproduced.) Every character beyond the BMP (emoji…) is a token too.

Any other language gets the default (spaCy's base) rules; no language raises. Against spaCy on
our 702-page sample, 85% of the pages get exactly spaCy's token list and the rest differ by a few
tokens (spaCy's longer exception lists); tests/filters/test_heuristic_filters.py measures the effect on
the filters' decisions.

Stop words
----------
`stop_words(language)` is a small fixed set of very frequent function words, matched
case-sensitively against the tokens (as the Gopher rule does). English is Gopher's own list; the
others were written for this project: ten frequent function words per language, chosen by hand
and checked against token frequencies in our sample of crawled pages (for zh and ja, whose words
here are single characters, frequent function characters). They are common words, not copied
from any third-party list. A language without a list gets an empty set (the rule is skipped).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property, lru_cache
from itertools import chain

# --- stop words ---------------------------------------------------------------------------------

GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")

_STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": " ".join(GOPHER_STOP_WORDS),
        "de": "der die und in den von zu das mit ist",
        "es": "de la que el en y los se del las",
        "fr": "de la le et les des en un du une",
        "pl": "w i na z się do nie że jest to",
        "ru": "и в не на что с по это как он",
        "pt": "de o que e do da em um para com",
        "it": "di e il che la in per un è del",
        "nl": "de het een en van in is dat op te",
        "zh": "的 了 是 在 不 和 有 这 我 也",
        "ja": "の に は を た が で て と し",
    }.items()
}
_NO_STOP_WORDS: frozenset[str] = frozenset()


def stop_words(language: str | None) -> frozenset[str]:
    """The language's stop words; empty for a language without a list (the rule is then skipped)."""
    return _STOP_WORDS.get(_base_language(language), _NO_STOP_WORDS)


@lru_cache(maxsize=1024)
def _base_language(language: str | None) -> str:
    """"de", "de_Latn", "de-AT" -> "de"."""
    if not language:
        return "unknown"
    return re.split(r"[_\-]", language, maxsplit=1)[0].lower()


# --- shared character sets ----------------------------------------------------------------------

# Unicode's Sentence_Terminal characters ("." "!" "?" "。" "।" "؟" …): a line or sentence ends
# with one of these.
SENTENCE_TERMINALS: frozenset[str] = frozenset(
    chr(c) for lo, hi in (
        (0x21, 0x21), (0x2E, 0x2E), (0x3F, 0x3F), (0x589, 0x589), (0x61D, 0x61F), (0x6D4, 0x6D4),
        (0x700, 0x702), (0x7F9, 0x7F9), (0x837, 0x837), (0x839, 0x839), (0x83D, 0x83E), (0x964, 0x965),
        (0x104A, 0x104B), (0x1362, 0x1362), (0x1367, 0x1368), (0x166E, 0x166E), (0x1735, 0x1736),
        (0x17D4, 0x17D5), (0x1803, 0x1803), (0x1809, 0x1809), (0x1944, 0x1945), (0x1AA8, 0x1AAB),
        (0x1B5A, 0x1B5B), (0x1B5E, 0x1B5F), (0x1B7D, 0x1B7E), (0x1C3B, 0x1C3C), (0x1C7E, 0x1C7F),
        (0x203C, 0x203D), (0x2047, 0x2049), (0x2E2E, 0x2E2E), (0x2E3C, 0x2E3C), (0x2E53, 0x2E54),
        (0x3002, 0x3002), (0xA4FF, 0xA4FF), (0xA60E, 0xA60F), (0xA6F3, 0xA6F3), (0xA6F7, 0xA6F7),
        (0xA876, 0xA877), (0xA8CE, 0xA8CF), (0xA92F, 0xA92F), (0xA9C8, 0xA9C9), (0xAA5D, 0xAA5F),
        (0xAAF0, 0xAAF1), (0xABEB, 0xABEB), (0xFE52, 0xFE52), (0xFE56, 0xFE57), (0xFF01, 0xFF01),
        (0xFF0E, 0xFF0E), (0xFF1F, 0xFF1F), (0xFF61, 0xFF61), (0x17D6, 0x17D6), (0x17D9, 0x17DA),
        (0x10A56, 0x10A57), (0x10F55, 0x10F59), (0x10F86, 0x10F89), (0x11047, 0x11048), (0x110BE, 0x110C1),
        (0x11141, 0x11143), (0x111C5, 0x111C6), (0x111CD, 0x111CD), (0x111DE, 0x111DF), (0x11238, 0x11239),
        (0x1123B, 0x1123C), (0x112A9, 0x112A9), (0x1144B, 0x1144C), (0x115C2, 0x115C3), (0x115C9, 0x115D7),
        (0x11641, 0x11642), (0x1173C, 0x1173E), (0x11944, 0x11944), (0x11946, 0x11946), (0x11A42, 0x11A43),
        (0x11A9B, 0x11A9C), (0x11C41, 0x11C42), (0x11EF7, 0x11EF8), (0x11F43, 0x11F44), (0x16A6E, 0x16A6F),
        (0x16AF5, 0x16AF5), (0x16B37, 0x16B38), (0x16B44, 0x16B44), (0x16E98, 0x16E98), (0x1BC9F, 0x1BC9F),
        (0x1DA88, 0x1DA88))
    for c in range(lo, hi + 1))


# Quotation marks that close a quote in some language ("„…“" in German, "«…»" in French, "»…«" in
# Danish): a line ending in one ends a sentence as much as one ending in "." does.
CLOSING_QUOTES: frozenset[str] = frozenset('"\'”’“»«」』')
# What ends a sentence at the end of a line, as the papers count it (datatrove: SENTENCE_TERMINALS).
SENTENCE_ENDS: frozenset[str] = SENTENCE_TERMINALS | CLOSING_QUOTES

# A regex class body holding every sentence terminal (and, for speed, every astral character).
SENTENCE_TERMINALS_CLASS = re.escape("".join(sorted(c for c in SENTENCE_TERMINALS if c <= "\uffff"))) \
    + "\U00010000-\U0010ffff"


def _char_class(pred, ranges) -> str:
    """The characters in `ranges` satisfying `pred`, as a regex class body (runs collapsed)."""
    codes = [c for lo, hi in ranges for c in range(lo, hi + 1) if pred(chr(c))]
    out, i = [], 0
    while i < len(codes):
        j = i
        while j + 1 < len(codes) and codes[j + 1] == codes[j] + 1:
            j += 1
        out.append(re.escape(chr(codes[i])) + ("-" + re.escape(chr(codes[j])) if j > i else ""))
        i = j + 1
    return "".join(out)


_LETTER = r"[^\W\d_]"
_BMP = ((0, 0xFFFF),)
# Punctuation, symbols and control characters (Unicode categories P*, S*, Cc; emoji blocks).


def _is_symbol(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] in "PS" or (category == "Cc" and not ch.isspace())


_SYMBOL_CHARS = _char_class(_is_symbol, _BMP) + "\U0001F000-\U0001FAFF"
_PUNCT_CHARS = _char_class(lambda ch: unicodedata.category(ch)[0] == "P", _BMP)
# Over tokens joined with "\n": those made only of punctuation and symbols, those with a letter.
SYMBOL_TOKENS = re.compile(f"^[{_SYMBOL_CHARS}]+$", re.MULTILINE)
_SYMBOL_TOKEN = re.compile(f"[{_SYMBOL_CHARS}]+")
ALPHA_TOKENS = re.compile(f"^[^\\n]*?{_LETTER}", re.MULTILINE)
_ALL_PUNCT = re.compile(f"[{_PUNCT_CHARS}]+")


def is_punct(token: str) -> bool:
    """Every character is punctuation (Unicode category P*)."""
    return _ALL_PUNCT.fullmatch(token) is not None


# --- the tokenizer ---------------------------------------------------------------------------------

# Cased alphabets: Latin (basic, Latin-1, Extended-A/B), Greek, Cyrillic.
_CASED = ((0x41, 0x24F), (0x370, 0x3FF), (0x400, 0x52F))
_UPPER = _char_class(str.isupper, _CASED)
_LOWER = _char_class(str.islower, _CASED)
# Han (with extensions and compatibility), kana, CJK symbols' letters: one word per character.
_CJK = (r"\u3005\u3007\u3021-\u3029\u3031-\u3035\u3038-\u303C\u3041-\u3096\u309D-\u309F"
        r"\u30A1-\u30FA\u30FC-\u30FF\u3400-\u4DBF\u4E00-\u9FFF\uF900-\uFAFF\uFF66-\uFF9D")
# Punctuation split off either end of a chunk (ASCII and the common CJK/other-script marks).
_PUNCT = re.escape(",:;!?()[]{}<>_#*&¿¡…") + "。？！，、；：～·।،۔؛٪؟"
_QUOTES = re.escape("'\"`") + "“”‘’´‚„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧"
_CURRENCY = r"$£€¥฿₽﷼₴\u20a0-\u20bf"
# Pictographs and other symbols that are always a token of their own, even inside a chunk; so is
# every character beyond the BMP (emoji, rare CJK), kept as one range for the regex engine's sake.
_ICONS = (r"\u00a6\u00a9\u00ae\u00b0\u2100\u2101\u2103-\u2106\u2108\u2109\u2114\u2116\u2117\u211e-\u2123"
          r"\u2195-\u2199\u219c-\u219f\u21a1\u21a2\u21a4\u21a5\u21a7-\u21ad\u21af-\u21cd\u21d0\u21d1"
          r"\u21d3\u21d5-\u21f3\u2300-\u2307\u230c-\u231f\u2322-\u2328\u232b-\u237b\u237d-\u239a"
          r"\u23b4-\u23db\u23e2-\u2426\u2440-\u244a\u249c-\u24e9\u2500-\u25b6\u25b8-\u25c0\u25c2-\u25f7"
          r"\u2600-\u266e\u2670-\u2767\u2794-\u27bf\u2800-\u28ff\u2b00-\u2b2f\u2b45\u2b46\u2b4d-\u2b73"
          r"\u2b76-\u2b95\u2b98-\u2bc8\u2bca-\u2bfe\u3004\u3012\u3013\u3020\u3036\u3037\u303e\u303f"
          r"\u3200-\u321e\u322a-\u3247\u3250\u3260-\u327f\u328a-\u32b0\u32c0-\u32fe\u3300-\u33ff"
          r"\ufffc\ufffd\U00010000-\U0010ffff")
_UNITS = ("km²|km³|km/h|kmh|km|m²|m³|m/s|dm|cm²|cm|mm²|mm|µm|nm|ha|yd|ft|in|kg|mg|µg|g|t|lb|oz|mph|"
          "hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|m|T|G|M|K|км|м|см|мм|кг|г|мг|%|\\+")

# Characters split off the start of a chunk, and those split off its end (besides "." and
# what follows a number, handled apart).
_PREFIX = _PUNCT + _QUOTES + _ICONS + _CURRENCY + r"§%=\u2014\u2013"
_SUFFIX = _PUNCT + _QUOTES + _ICONS + r"\u2014\u2013"


class _Rules:
    """What differs between languages (after spaCy's per-language punctuation rules)."""

    def __init__(self, infix: str = "base", hyphen: bool = True, digit_hyphen: bool = True,
                 percent: bool = True, s_suffix: bool = True, contractions: bool = False,
                 elision: bool = False, abbreviations: str = ""):
        self.infix = infix  # which set of in-word split rules: base, en, de, pl
        self.hyphen = hyphen  # split a hyphen between letters ("well-known")
        self.digit_hyphen = digit_hyphen  # split a hyphen between digits ("2020-2021")
        self.percent = percent  # split "%" off a number
        self.s_suffix = s_suffix  # split a final "'s"
        self.contractions = contractions  # English "n't", "'m", "'re", "'ve", "'ll", "'d", "cannot"
        self.elision = elision  # French/Italian "l'", "d'", "qu'"… split off the next word
        self.abbreviations = abbreviations.split()  # words that keep their "." ("Dr.", "bzw.")


# Common abbreviations that keep their final period, per language (written for this project).
_ABBR = {
    "en": "Mr Mrs Ms Dr Prof St Mt Jr Sr Inc Ltd Co Corp Bros vs Gen Gov Sen Rep Rev Sgt Capt Col "
          "Lt Fig Vol Ave Blvd approx dept Calif Minn Mass Fla Jan Feb Mar Apr Jun Jul Aug Sep Sept "
          "Oct Nov Dec",
    "de": "bzw ca Nr Dr Prof St Co Jr etc ggf Bd Bde Mio Mrd Abs Abb usw vgl bspw min max Str Tel Hr "
          "Hrn Fr evtl inkl zzgl exkl sog ff Hrsg Aufl Jh Jhd Std Tsd geb gest Inh Ziff lt ebd allg "
          "ehem gem Verf Anm Kap Mr Mrs al vs Vol usf Mo Di Mi Do Sa So Jan Feb Apr Jun Jul Aug Sep Sept "
          "Okt Nov Dez",
    "fr": "M MM Mme Mmes Mlle Mlles Dr Mr St Ste etc av apr env cf ex art vol chap fig",
    "es": "Sr Sra Srta Sres Dr Dra Ud Uds etc pág núm art aprox Av Avda Dña Excmo ej vol",
    "it": "Sig Sigg Dott Prof Avv Ing ecc pag art vol",
    "pt": "Sr Sra Dr Dra Jr etc pág art vol Av nº",
    "ru": "ст г гг т д др им ул тыс млн млрд руб коп см стр рис пр проф",
    "hu": "kb stb pl ill ún vö ld sz út u dr",
}
_DEFAULT_RULES = _Rules()
_RULES: dict[str, _Rules] = {
    "en": _Rules(infix="en", contractions=True, abbreviations=_ABBR["en"]),
    "de": _Rules(infix="de", hyphen=False, s_suffix=False, abbreviations=_ABBR["de"]),
    "es": _Rules(hyphen=False, digit_hyphen=False, percent=False, s_suffix=False, abbreviations=_ABBR["es"]),
    "pl": _Rules(infix="pl", s_suffix=False),
    "fr": _Rules(hyphen=False, s_suffix=False, elision=True, abbreviations=_ABBR["fr"]),
    "it": _Rules(elision=True, abbreviations=_ABBR["it"]),
    "pt": _Rules(hyphen=False, digit_hyphen=False, abbreviations=_ABBR["pt"]),
    "ru": _Rules(abbreviations=_ABBR["ru"]),
    **{lang: _Rules(hyphen=False, digit_hyphen=False, s_suffix=False)
       for lang in ("nb", "no", "da", "sv", "fi")},
    **{lang: _Rules(hyphen=False, digit_hyphen=False, percent=False, s_suffix=False,
                    abbreviations=_ABBR.get(lang, ""))
       for lang in ("nl", "hu", "el")},
}
# Emoticons and doubled quotes that stay one token though made of split-off characters.
_EMOTICONS = sorted("8) ): (: :) :( ;) (; :-) :-( ;-) :/ :] [: =) (= =( :> :)) :(( :* :-/ :| :-| '' ’’ "
                    ":'( :')".split(), key=len, reverse=True)
_FAST_LETTERS = "a-zA-Z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u0370-\u03ff\u0400-\u052f"
_FR_HYPHEN_SUFFIX = "ce|clés|elle|en|il|ils|je|là|moi|nous|on|t|vous"


def _build(rules: _Rules) -> re.Pattern:
    """One regex whose matches, left to right, are the tokens (see the module docstring)."""
    L, AN, LO, UP = _LETTER, r"[^\W_]", f"[{_LOWER}]", f"[{_UPPER}]"
    at_end = f"(?=[{_SUFFIX}.]*(?!\\S))"  # only split-off characters left before the next space
    brackets = "‘’´`\"“”„»«)\\](\\["  # quotes (not the apostrophe) and brackets
    quotes = _QUOTES

    # Where a token starts inside a chunk ("infixes"): (the characters such a token can start
    # with, the pattern consuming it). Lookbehinds come after the first character so that the
    # regex engine rejects most positions on that character alone.
    if rules.infix == "de":
        splits = [(".", f"\\.(?<={LO}\\.)(?={UP})"), ("’", f"’s(?<={L}’s){at_end}"),
                  (",!?:<>=" + brackets, f"[,!?:<>={brackets}](?<={L}.)(?={L})"),
                  ("/", f"/(?<={AN}/)(?={AN})"), ("-", f"--(?<={L}--)(?={L})"), ("-", r"-(?<=\d-)(?=\d)")]
    elif rules.infix == "pl":
        splits = [("-–—~", "[-–—~]"), (".", f"\\.(?<={AN}\\.)(?=[\\d{_UPPER}])"),
                  (",!?:<>=/", f"[,!?:<>=/](?<={L}.)(?={L})"),
                  (brackets, f"[{brackets}](?<={L}.)(?=[-{L[1:-1]}])")]
    else:
        ops = "-+*^" if rules.digit_hyphen else "+*^"
        splits = [(ops, f"[{re.escape(ops)}](?<=\\d.)(?=[\\d-])"),
                  (".", f"\\.(?<=[{_LOWER}{quotes}]\\.)(?=[{_UPPER}{quotes}])"),
                  (",", f",(?<={L},)(?={L})"), (":<>=/", f"[:<>=/](?<={AN}.)(?={L})")]
        if rules.hyphen:
            splits.append(("-–—~", f"(?<={AN if rules.infix == 'en' else L})(?:---|--|——|[-–—~])(?={L})"))
    if rules.elision:  # "a-t-il" -> "a", "-t", "-il"
        hs = f"[-‐‑–—](?:{_FR_HYPHEN_SUFFIX}|{_FR_HYPHEN_SUFFIX.upper()})"
        splits.insert(0, ("-‐‑–—", f"(?<={L}){hs}(?=(?:{hs})*[{_SUFFIX}.]*(?!\\S))"))
    if rules.contractions:  # "n't", "cannot" & co. are split after matching (_split_contractions)
        splits.append(("'’", f"['’](?<=\\S.)(?:[sSmMdD]|re|RE|ve|VE|ll|LL){at_end}"))
    elif rules.s_suffix:
        splits.append(("'’", f"['’](?<=\\S.)[sS]{at_end}"))
    first = re.escape("".join(sorted({c for chars, _ in splits for c in chars})))
    # "10km", "5€", "10%": a unit or currency right after a number, at the chunk's end.
    times = r"|[ap]m|[ap]\.m\." if rules.contractions else ""  # English "4pm" -> "4", "pm"
    units = _UNITS if rules.percent else _UNITS.replace("|%", "")
    units = f"(?<=\\d)(?:{units}{times}|[{_CURRENCY}])(?=(?:[{_SUFFIX}]|(?<=[{_LOWER}%²])\\.)*(?!\\S))"
    split_tok = f"(?=[{first}])(?:{'|'.join(p for _, p in splits)})|{units}"

    # A core (a chunk's middle, once its ends are split off) is a run of characters that stops
    # where a split token or an ellipsis starts. Letters (except right after a digit or an
    # apostrophe, where units and elision split) and digits skip that test: it is what makes
    # this fast; so do characters no split can start with.
    stops = [split_tok, r"\.\.", "…", f"[{_ICONS}{_CJK}]"]
    if rules.elision:
        stops.append(f"(?<={L}['’])(?={L})")  # "aujourd'hui" -> "aujourd'", "hui"
    step = (f"(?<![\\d'’])[{_FAST_LETTERS}]+|\\d+"
            f"|[^\\s{first}{_FAST_LETTERS}\\d.…%+{_CURRENCY}{_ICONS}{_CJK}]"
            f"|(?!{'|'.join(stops)})\\S")
    # The core does not end in a character split off a chunk's end. A final "." stays after a
    # lone capital ("U.S.", "A.", but not "°C."); in German also after a digit ("3. Oktober");
    # in Polish never.
    ends = [f"(?<=[^\\s{_SUFFIX}.{'/' if rules.infix == 'de' else ''}])"]
    if rules.infix != "pl":
        ends.append(f"(?<={UP}\\.)(?<![{_UPPER}°]{UP}\\.)")
    if rules.infix == "de":
        ends.append(r"(?<=\d\.)")
    if rules.elision:
        ends.append(f"(?<={L}['’])(?={L})")
    start = f"(?:[^\\s{_PREFIX}{_CJK}+]|\\+(?=\\d))"  # "+" is split off unless a number follows
    core = f"{start}(?>{step})*(?:{'|'.join(ends)})"

    slash = "/" if rules.infix == "de" else ""  # German splits a final "/" (even off a URL)
    tokens = [f"[{_CJK}]",  # URLs and domain names ("example.com/a-b") whole
              f"(?:[a-zA-Z][a-zA-Z0-9+.\\-]*://|www\\.)\\S*?(?=[{_SUFFIX}.{slash}]*(?!\\S))",
              f"(?<![^\\s{_PREFIX}])(?:[^\\W_][\\w-]*\\.)+[a-z]{{2,6}}(?:/\\S*?)?{at_end}"]
    if rules.elision:
        tokens.append(f"(?<![^\\s{_PREFIX}])(?:[dlnjmstcDLNJMSTC]|qu|Qu|QU)['’](?={L})")
    elif rules.infix == "de":  # "Côte d’Ivoire"
        tokens.append(f"(?<![^\\s{_PREFIX}])d’(?={L})")
    # Abbreviations keep their period: listed words, single letters and "z.B."-like runs.
    if rules.infix != "pl":
        abbr = "|".join(["(?:[a-zA-Z]\\.)*[a-zA-Z]"] + [re.escape(a) for a in rules.abbreviations])
        tokens.append(f"(?<![^\\s{_PREFIX}])(?=[^\\s.]{{1,8}}\\.)(?:{abbr})\\.{at_end}")
    tokens += ["|".join(re.escape(e) for e in _EMOTICONS), r"\.\.+", "……", "…", split_tok, core, r"\S"]
    return re.compile("|".join(f"(?:{t})" for t in tokens))


_PATTERNS: dict[str, re.Pattern] = {}


def _pattern(language: str | None) -> re.Pattern:
    lang = _base_language(language)
    pat = _PATTERNS.get(lang)
    if pat is None:
        rules = _RULES.get(lang, _DEFAULT_RULES)
        pat = _PATTERNS.setdefault(lang, _build(rules))
    return pat


_EN_SPLIT = re.compile(r"^(.+?)(n['’]t)$|^([Cc]an)(not)$|^([Gg]ot)(ta)$|^([Gg]on|[Ww]an)(na)$")
_EN_SPLIT_HINT = re.compile(r"n['’]t|[Cc]annot|[Gg]otta|[Gg]onna|[Ww]anna")


def _split_contractions(tokens: list[str]) -> list[str]:
    """English "don't" -> "do", "n't"; "cannot" -> "can", "not"; "gonna" -> "gon", "na"."""
    out = []
    for t in tokens:
        m = _EN_SPLIT.match(t) if len(t) > 3 else None
        if m is None:
            out.append(t)
        else:
            out.extend(g for g in m.groups() if g)
    return out


def tokenize(text: str, language: str | None = None) -> list[str]:
    """Word and punctuation tokens of `text` (see the module docstring), never whitespace."""
    lang = _base_language(language)
    tokens = _pattern(lang).findall(text)
    if lang == "en" and _EN_SPLIT_HINT.search(text):
        tokens = _split_contractions(tokens)
    return tokens


class TextView:
    def __init__(self, text: str, language: str | None = None, url: str = ""):
        self.text = text
        self.language = language or "unknown"
        self.url = url

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def words(self) -> list[str]:
        """Word and punctuation tokens, split the way the language needs (see filters/text.py)."""
        return list(chain.from_iterable(self.line_words))  # no token crosses a line

    @cached_property
    def words_without_punctuation(self) -> list[str]:
        """`words` less the tokens made only of punctuation and symbols: words as the papers count."""
        return [w for w in self.words if not _SYMBOL_TOKEN.fullmatch(w)]

    @cached_property
    def line_words(self) -> list[list[str]]:
        """The tokens of each line of `text.splitlines()` (which splits on more than "\\n")."""
        pattern, lang = _pattern(self.language), _base_language(self.language)
        lines = [pattern.findall(line) for line in self.text.splitlines()]
        if lang == "en" and _EN_SPLIT_HINT.search(self.text):
            lines = [_split_contractions(tokens) for tokens in lines]
        return lines

    @cached_property
    def stop_words(self) -> frozenset[str]:
        """The language's stop words (empty where there is no list for it)."""
        return stop_words(self.language)

