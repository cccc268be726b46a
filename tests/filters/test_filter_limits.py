"""`DocFilter.limits`: the thresholds each filter declares (for the data-mix report) match what
the filter does, on its defaults and on real pages from ../shared/data."""

from __future__ import annotations

import csv
import gzip
import inspect
import json
import math
import re
from collections import Counter
from dataclasses import replace

import pytest

from gristmill.filters import FILTERS
from gristmill.filters.base import DocFilter, FilterParams, Limit
from gristmill.filters.text import TextView
from tests.conftest import DATA, require

COMPAT = ("paper", "datatrove")
# Reasons of rules that are not a Limit, which may fire whatever the Limits say (c4's two come
# first whatever the sentence count; "empty" is a text with no line).
OTHER_REASONS = {"c4": {"lorem_ipsum", "curly_bracket"}, "gopher_repetition": {"empty"}, "fineweb": {"empty"}}
# The parameter behind each Limit: a field, or (field, n) for the per-n dicts.
PARAM: dict[str, str | tuple[str, int]] = {
    "gopher_quality:gopher_short_doc": "min_doc_words",
    "gopher_quality:gopher_long_doc": "max_doc_words",
    "gopher_quality:gopher_below_avg_threshold": "min_avg_word_length",
    "gopher_quality:gopher_above_avg_threshold": "max_avg_word_length",
    "gopher_quality:gopher_too_many_hashes": "max_symbol_word_ratio",
    "gopher_quality:gopher_too_many_ellipsis": "max_symbol_word_ratio",
    "gopher_quality:gopher_too_many_bullets": "max_bullet_lines_ratio",
    "gopher_quality:gopher_too_many_end_ellipsis": "max_ellipsis_lines_ratio",
    "gopher_quality:gopher_below_alpha_threshold": "min_alpha_words_ratio",
    "gopher_quality:gopher_few_stop_words": "min_stop_words",
    "gopher_repetition:dup_para_frac": "dup_para_frac",
    "gopher_repetition:dup_para_char_frac": "dup_para_char_frac",
    "gopher_repetition:dup_line_frac": "dup_line_frac",
    "gopher_repetition:dup_line_char_frac": "dup_line_char_frac",
    **{f"gopher_repetition:top_{n}_gram": ("top_ngram_char_frac", n) for n in (2, 3, 4)},
    **{f"gopher_repetition:duplicated_{n}_n_grams": ("dup_ngram_char_frac", n) for n in range(5, 11)},
    "c4:too_few_sentences": "min_num_sentences",
    "fineweb:line_punct_ratio": "line_punct_thr",
    "fineweb:short_line_ratio": "short_line_thr",
    "fineweb:char_dup_ratio": "char_duplicates_ratio",
    "fineweb:list_ratio": "new_line_ratio",
    "badwords:ratio": "threshold",
    "toxicity:score": "threshold",
    "quality_model:low_score": "threshold",
}
EXTRA_OFF = {"c4": {"filter_lorem_ipsum": False, "filter_curly_bracket": False}}  # rules without a Limit


def default_params(cls: type[DocFilter], compat: str = "paper") -> dict:
    """The defaults (quality_model: a threshold, which it has none by default, and a path)."""
    raw = {"path": "unused.bin", "threshold": 0.5} if cls.name == "quality_model" else {}
    return {**raw, "compat": compat} if "compat" in cls.Params.model_fields else raw


ALL_CASES = [(cls, c) for cls in FILTERS.values()
             for c in (COMPAT if "compat" in cls.Params.model_fields else ("paper",))]
CASES = [(cls, c) for cls, c in ALL_CASES if cls.name != "url_blocklist"]  # (it has no Limit)


# --- (a) the contract ---------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "compat"), ALL_CASES, ids=lambda x: getattr(x, "name", x))
def test_limits_name_signals_and_reasons_of_the_filter(cls, compat):
    limits = cls.limits(cls.Params.model_validate(default_params(cls, compat)))
    returned = inspect.getsource(cls.__call__)  # the reasons it can return, as literals or f-strings
    for limit in limits:
        assert isinstance(limit, Limit) and limit.op in ("<", "<=", ">", ">=") and math.isfinite(limit.value)
        assert limit.signal in cls.signals, limit
        name, _, reason = limit.reason.partition(":")
        assert name == cls.name and f'"{re.sub(r"[0-9]+", "{n}", reason)}"' in returned, limit
        assert limit.reason in PARAM, limit  # (c) knows how to move it
    assert len({limit.reason for limit in limits}) == len(limits)
    assert bool(limits) == (cls.name != "url_blocklist")


def test_limits_follow_the_params():
    from gristmill.filters.c4 import C4Quality
    from gristmill.filters.fineweb import FineWebQuality
    from gristmill.filters.gopher_quality import GopherQuality
    from gristmill.filters.gopher_repetition import GopherRepetition

    def values(cls, **raw) -> dict[str, tuple[str, float]]:
        return {lim.reason.partition(":")[2]: (lim.op, lim.value) for lim in cls.limits(cls.Params(**raw))}

    assert values(GopherQuality)["gopher_short_doc"] == ("<", 50)
    assert "gopher_short_doc" not in values(GopherQuality, min_doc_words=None)  # None: the rule is off
    rep = values(GopherRepetition, top_ngram_char_frac={3: 0.25}, dup_ngram_char_frac={})
    assert rep["top_3_gram"] == (">", 0.25) and not {"top_2_gram", "duplicated_5_n_grams"} & set(rep)
    assert values(C4Quality)["too_few_sentences"] == ("<", 3)
    assert values(C4Quality, compat="datatrove")["too_few_sentences"] == ("<", 5)
    assert values(C4Quality, compat="datatrove", min_num_sentences=4)["too_few_sentences"] == ("<", 4)
    assert values(FineWebQuality)["char_dup_ratio"] == (">", 0.1)
    assert values(FineWebQuality, compat="datatrove")["char_dup_ratio"] == (">", 0.01)
    assert "line_punct_ratio" not in values(FineWebQuality, line_punct_exclude_zero=True)
    assert FILTERS["quality_model"].limits(FILTERS["quality_model"].Params(path="m.bin")) == []


# --- real documents -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    """~500 texts: whole pages (boilerplate and all), gold article bodies, bare boilerplate
    snippets, toxic and clean comments, and two empty texts."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding
    from resiliparse.parse.html import HTMLTree

    ext = require(DATA / "extraction")
    pages = []
    html = sorted((ext / "scrapinghub" / "html").glob("*.html.gz")) + \
        sorted((ext / "trafilatura" / "html").glob("*.html.gz"))[:80]
    for path in html:
        raw = gzip.decompress(path.read_bytes())
        pages.append(extract_plain_text(HTMLTree.parse(bytes_to_str(raw, detect_encoding(raw))),
                                        main_content=False, alt_texts=False))
    with open(ext / "scrapinghub" / "ground-truth.json", encoding="utf-8") as f:
        bodies = [v["articleBody"] for v in json.load(f).values()]
    with open(ext / "trafilatura" / "evaldata.json", encoding="utf-8") as f:
        boilerplate = ["\n".join(v["without"]) for v in list(json.load(f).values())[:60]]
    with open(require(DATA / "toxicity" / "surge_toxicity_en.csv"), encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    comments = [r["text"] for r in rows if r["is_toxic"] == "Toxic"][:60]
    comments += [r["text"] for r in rows if r["is_toxic"] == "Not Toxic"][:60]
    return {"pages": pages, "bodies": bodies, "boilerplate": boilerplate, "comments": comments,
            "empty": ["", "\n\n"]}


@pytest.fixture(scope="module")
def views(corpus) -> list[TextView]:
    """Every text of the corpus, tagged English (a view caches its words across filters)."""
    return [TextView(t, "en", "") for texts in corpus.values() for t in texts]


@pytest.fixture(scope="module")
def quality_model_path(corpus, tmp_path_factory) -> str:
    """A tiny fastText quality model (about a second): gold article bodies against boilerplate."""
    from gristmill.filters.quality_model import HQ, LQ, _train_fasttext, normalize

    d = tmp_path_factory.mktemp("qm")
    lines = [f"{label} {normalize(t)}\n" for label, group in ((HQ, "bodies"), (LQ, "boilerplate"))
             for t in corpus[group]]
    (d / "train.txt").write_text("".join(lines), encoding="utf-8")
    _train_fasttext({"input": str(d / "train.txt"), "dim": 16, "epoch": 10, "lr": 0.5, "thread": 1,
                     "verbose": 0, "seed": 0}, str(d / "q.bin"))
    return str(d / "q.bin")


def build(cls: type[DocFilter], raw: dict, qm_path: str) -> tuple[DocFilter, list[Limit]]:
    if cls.name == "quality_model":
        raw = {**raw, "path": qm_path}
    params = cls.Params.model_validate(raw)
    return cls(params, "en"), cls.limits(params)


@pytest.fixture(scope="module")
def results(views, quality_model_path) -> dict[tuple[str, str], list[tuple[dict, str | None]]]:
    """(filter, compat) -> (signals, full reason or None) per view, at the defaults."""
    out = {}
    for cls, compat in CASES:
        f, _ = build(cls, default_params(cls, compat), quality_model_path)
        out[cls.name, compat] = [(s, r and f"{cls.name}:{r}") for s, r in map(f, views)]
    return out


# --- (b) the decisions on real pages ------------------------------------------------------------

@pytest.mark.parametrize(("cls", "compat"), CASES, ids=lambda x: getattr(x, "name", x))
@pytest.mark.heavy
def test_decisions_follow_the_limits(results, quality_model_path, cls, compat):
    """A document dropped for a Limit's reason violates that Limit; the rules are checked in the
    order of `limits()`, so the reason is the first violated Limit's, unless a rule with no Limit
    (OTHER_REASONS) fired; with no Limit violated, only such a rule can drop it."""
    _, limits = build(cls, default_params(cls, compat), quality_model_path)
    by_reason = {lim.reason: lim for lim in limits}
    other = {f"{cls.name}:{r}" for r in OTHER_REASONS.get(cls.name, ())}
    seen = Counter()
    for i, (signals, reason) in enumerate(results[cls.name, compat]):
        if reason in by_reason:
            assert by_reason[reason].violated(signals), (i, reason, signals)
        first = next((lim for lim in limits if lim.violated(signals)), None)
        assert reason == (first and first.reason) or reason in other, (i, reason, first, signals)
        seen[reason] += 1
    print(f"\n{cls.name} ({compat}): {dict(seen)}")
    assert seen[None] and sum(n for r, n in seen.items() if r in by_reason)  # keeps some, drops some


# --- (c) exactly at the threshold ---------------------------------------------------------------

def _set(raw: dict, param: str | tuple[str, int], value: float | None) -> dict:
    if isinstance(param, tuple):
        field, n = param
        return {**raw, field: {**raw[field], n: value}}
    return {**raw, param: value}


def _alone(cls: type[DocFilter], base: dict, param: str | tuple[str, int]) -> dict:
    """`base` with every rule off but those set by `param` (c4's line rules off too)."""
    raw = {**base, **EXTRA_OFF.get(cls.name, {})}
    for other in {PARAM[lim.reason] for lim in cls.limits(cls.Params.model_validate(base))} - {param}:
        raw = {**raw, other[0]: {}} if isinstance(other, tuple) else {**raw, other: None}
    return raw


def _beyond(limit: Limit, s: float, is_int: bool) -> float:
    """The nearest threshold past the signal `s`, in the direction that makes `limit` catch it."""
    up = limit.op in ("<", "<=")
    return int(s) + (1 if up else -1) if is_int else math.nextafter(s, math.inf if up else -math.inf)


LIMIT_CASES = [(cls, compat, lim.reason) for cls, compat in CASES
               for lim in cls.limits(cls.Params.model_validate(default_params(cls, compat)))]


@pytest.mark.parametrize(("cls", "compat", "reason"), LIMIT_CASES, ids=lambda x: getattr(x, "name", x))
def test_value_at_the_threshold(views, results, quality_model_path, cls, compat, reason):
    """One Limit with the filter's other rules off, set exactly to a real document's signal: the
    document is dropped for it only if the operator includes equality; with the threshold moved
    past the signal by the smallest step, it is dropped for it."""
    base = cls.Params.model_validate(default_params(cls, compat)).model_dump()
    limits = cls.limits(cls.Params.model_validate(base))
    (limit,) = [lim for lim in limits if lim.reason == reason]
    param = PARAM[reason]
    is_int = isinstance(param, str) and isinstance(base[param], int)
    raw = _alone(cls, base, param)
    siblings = [o for o in limits if o != limit and PARAM[o.reason] == param]  # gopher's hashes/ellipsis

    def fits(signals: dict) -> bool:
        """A signal both thresholds can be set to, and no sibling on the same parameter fires first."""
        s = signals[limit.signal]
        if not (math.isfinite(s) and s > 0):
            return False
        try:
            cls.Params.model_validate(_set(raw, param, _beyond(limit, s, is_int)))
        except ValueError:
            return False
        return not any(replace(o, value=_beyond(limit, s, is_int)).violated(signals) for o in siblings)

    rows = [(abs(sig[limit.signal] - limit.value), i)
            for i, (sig, _) in enumerate(results[cls.name, compat]) if fits(sig)]
    assert rows, f"no document to test {limit} on"
    view = views[min(rows)[1]]  # the one nearest the default threshold
    s = build(cls, raw, quality_model_path)[0](view)[0][limit.signal]  # (c4's count depends on raw)
    at = int(s) if is_int else s
    for value, dropped in ((at, limit.op.endswith("=")), (_beyond(limit, s, is_int), True)):
        f, moved = build(cls, _set(raw, param, value), quality_model_path)
        (lim,) = [m for m in moved if m.reason == reason]
        signals, got = f(view)
        assert signals[limit.signal] == s and lim.value == value
        assert lim.violated(signals) == dropped, (lim, s)
        assert (got is not None and f"{cls.name}:{got}" == reason) == dropped, (lim, s, got)


def test_params_base_class():
    assert DocFilter.limits(FilterParams()) == []
