"""Toxicity filter: alt-profanity-check's model score, evaluated without sklearn.

The last of the three adult-content filters, after `url_blocklist` (filters/url_blocklist.py)
and `badwords` (filters/bad_words.py). Defaults and the measurements behind them:
bench/bench_toxicity.py, bench/results/toxicity.json.

`toxicity` (signal `toxicity_score` in [0, 1]; NaN for languages not scored; reason "score")
    Model: alt-profanity-check 1.9.1 (PyPI, MIT). TF-IDF over 15,442 English unigrams, then 5
    sigmoid-calibrated LinearSVCs, trained by its authors on t-davidson's hate-speech tweets and
    the Jigsaw/Kaggle Wikipedia comments. It runs offline: the weights ship in the wheel.
    Speed: the package's own `predict_prob` spends about 4 ms per call on sklearn input checks.
    This module evaluates the package's fitted vectorizer (token pattern, vocabulary, idf) and
    its five linear members directly. The probabilities are the same (tests check 1e-9); the
    cost is 0.02–0.04 ms per comment and 0.3–0.5 ms per 5 KB page. Those parameters are cached
    as plain arrays (2 MB .npz) next to the UT1 array, with the cache folder, lock and atomic
    write of filters/url_blocklist.py. Only the first process unpickles the package's model,
    which imports sklearn (1.4 s, ~200 MB peak RSS). Later processes load the arrays in 0.01 s
    and never import sklearn (46 MB).
    Languages: only `languages` (default en) are scored; others get NaN and are kept. The
    vocabulary is English: "die Katze" (German, "the cat") scores 0.94. Language codes are
    compared by base code, as `badwords` maps them (`base_language`).
    `unit`: "document" (default) scores the whole text; "line" takes the maximum over non-empty
    lines. On the comment benchmarks "line" gains little (surge F1 .642 against .620 at 0.5). On
    clean pages it drops far more: 6 of 113 news articles ("…he died in my hands"), and 13 of the
    sample run's 237 English pages against 1 for "document".
    A document is dropped when the score is above `threshold` (default 0.5, the calibrated
    decision point). The surge comments' precision is flat at 0.89–0.92 from 0.3 to 0.9 while
    recall falls from .57 to .24. At 0.5 no clean article is dropped, and 1 of the run's 237
    English pages is: a web-fiction chapter about a murder.
"""

from __future__ import annotations

import math
import re
import threading
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from gristmill.core import env
from gristmill.core.io import open_atomic
from gristmill.filters.bad_words import base_language
from gristmill.filters.base import DocFilter, FilterParams, Limit
from gristmill.filters.text import TextView

NAN = float("nan")
_LOCK = threading.Lock()

def _profanity_arrays() -> dict[str, np.ndarray]:
    """The fitted parameters of alt-profanity-check's model as plain arrays (imports sklearn)."""
    from profanity_check import profanity_check as pc  # unpickles the bundled joblib files

    vec, model = pc.vectorizer, pc.model
    if (vec.analyzer != "word" or vec.ngram_range != (1, 1) or vec.sublinear_tf or not vec.use_idf
            or vec.norm != "l2" or not vec.lowercase or vec.strip_accents or vec.preprocessor or vec.tokenizer):
        raise RuntimeError("alt-profanity-check's vectorizer changed: update filters/toxicity.py")
    members = model.calibrated_classifiers_
    if any(m.method != "sigmoid" or len(m.calibrators) != 1 or m.estimator.coef_.shape[0] != 1 for m in members):
        raise RuntimeError("alt-profanity-check's model changed: update filters/toxicity.py")
    words = np.empty(len(vec.vocabulary_), dtype=object)
    for word, j in vec.vocabulary_.items():
        words[j] = str(word)
    return {
        "words": words.astype(str),  # column j of the TF-IDF matrix
        "token_pattern": np.array(vec.token_pattern),
        "idf": np.asarray(vec.idf_, dtype=np.float64),
        # (V, k): a document is one gather + dot; then per member its intercept and sigmoid (a, b)
        "weights": np.ascontiguousarray(np.stack([m.estimator.coef_.ravel() for m in members], axis=1)),
        "intercepts": np.array([float(m.estimator.intercept_[0]) for m in members]),
        "a": np.array([float(m.calibrators[0].a_) for m in members]),
        "b": np.array([float(m.calibrators[0].b_) for m in members]),
    }


class ProfanityModel:
    """alt-profanity-check's TF-IDF + 5 sigmoid-calibrated LinearSVCs, evaluated directly.

    Same numbers as `profanity_check.predict_prob` (see tests), without sklearn's per-call checks
    and, once the arrays are cached, without importing sklearn. Tokens are sklearn's: lower-cased
    text, `token_pattern` matches. The vectorizer's English stop words need no handling: it built
    its vocabulary without them, so they are never found in it."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        self.token = re.compile(str(arrays["token_pattern"]))
        self.vocabulary: dict[str, int] = {str(w): j for j, w in enumerate(arrays["words"])}
        self.idf = arrays["idf"]
        self.weights, self.intercepts = arrays["weights"], arrays["intercepts"]
        self.a, self.b = arrays["a"], arrays["b"]

    def score(self, text: str) -> float:
        counts: dict[int, int] = {}
        vocab = self.vocabulary
        for token in self.token.findall(text.lower()):
            j = vocab.get(token)
            if j is not None:
                counts[j] = counts.get(j, 0) + 1
        if counts:
            idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
            tfidf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) * self.idf[idx]
            tfidf /= math.sqrt(float(tfidf @ tfidf))
            decision = tfidf @ self.weights[idx] + self.intercepts
        else:
            decision = self.intercepts
        return float(np.mean(1.0 / (1.0 + np.exp(self.a * decision + self.b))))


@lru_cache(maxsize=1)
def profanity_model() -> ProfanityModel:
    """The model, once per process. Its arrays are cached in `$GRISTMILL_CACHE/toxicity/`: the first
    process unpickles the package's model (importing sklearn, ~200 MB), later ones load 0.5 MB."""
    dist = metadata.distribution("alt-profanity-check")  # (importing profanity_check would load sklearn)
    model_file = Path(str(dist.locate_file("profanity_check/data/model.joblib")))
    stamp = f"{dist.version}-{model_file.stat().st_size}"
    cached = env.CACHE / "toxicity" / f"profanity-check-{stamp}.npz"
    with _LOCK:
        if cached.exists():
            with np.load(cached, allow_pickle=False) as f:
                return ProfanityModel({k: f[k] for k in f.files})
        arrays = _profanity_arrays()
        try:
            with open_atomic(str(cached)) as f:
                np.savez(f, **arrays)
        except OSError:
            pass
        return ProfanityModel(arrays)


class ToxicityParams(FilterParams):
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)  # drop when toxicity_score > threshold (bench)
    languages: list[str] = Field(default_factory=lambda: ["en"])  # scored; English-only model, others NaN
    unit: Literal["document", "line"] = "document"  # whole text, or the max over non-empty lines


class ToxicityScore(DocFilter):
    """alt-profanity-check probability that the text is offensive, for `languages` only."""

    name: ClassVar[str] = "toxicity"
    Params: ClassVar[type[FilterParams]] = ToxicityParams
    signals: ClassVar[tuple[str, ...]] = ("toxicity_score",)
    params: ToxicityParams

    def __init__(self, params: ToxicityParams, language: str):
        super().__init__(params, language)
        self.active = base_language(language) in {base_language(x) for x in params.languages}
        self.model = profanity_model() if self.active else None

    @classmethod
    def limits(cls, params: ToxicityParams) -> list[Limit]:
        return cls._limits(("toxicity_score", ">", params.threshold, "score"))

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        if self.model is None:
            return {"toxicity_score": NAN}, None
        if self.params.unit == "line":
            lines = [line for line in doc.lines if line.strip()]
            score = max((self.model.score(line) for line in lines), default=self.model.score(""))
        else:
            score = self.model.score(doc.text)
        return {"toxicity_score": score}, ("score" if score > self.params.threshold else None)
