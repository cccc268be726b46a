"""A fastText quality classifier: training it from reference text, and scoring documents with it.

`train_quality_model` learns two labels, `__label__hq` (the positive set: text like the text you
want) and `__label__lq` (the negative set: typically random documents from a crawl), the recipe
of DCLM's OpenHermes+ELI5-vs-crawl classifier. `QualityModel` is the filter that scores each
document with P(hq) and, given a threshold, drops the documents below it.

Inputs. Each set is a list of fsspec paths, globs or directories (a directory is searched for
the supported files below, skipping hidden `.tmp-*` parts), in any compression fsspec infers:
- `.parquet`: the `text` column (only that column is read, one row group at a time), e.g. a
  gristmill run's `docs/`;
- `.jsonl` / `.ndjson`: one JSON object per line, its `"text"` field;
- `.txt`: one document per line (use JSONL or Parquet for documents that span lines).
Empty texts, and texts shorter than `min_chars` once normalised, are skipped and counted.

Normalisation (`normalize`, the same at training and at inference): lowercase, split into word
runs (`\\w+`) and single punctuation characters, joined by single spaces, so the whole document
is one line and "word," and "word" share a token. Lowercasing trades the signal of capitals for
a vocabulary that generalises from a few thousand documents. Line structure is not kept (fastText
reads one line per example). The literal `__label__` is taken out of the text so that a document
can never smuggle in a label. Languages written without spaces (Chinese, Japanese, Thai) come out
as one token per run of characters: train such a model on pre-segmented text, or not at all.

Sampling. Each set is sampled down to `max_docs_per_class` documents by bottom-k hashing (keep the
k documents whose normalised text hashes lowest): the sample does not depend on file order,
memory stays bounded while every input is read through, and exact duplicates collapse to one.
A text in both sets is dropped from both. Then the larger set is cut to the size of the smaller
(same hash order), so the two labels are balanced and P(hq) = 0.5 is the natural threshold.

Validation. A fixed share of documents (`validation_fraction`, 10%) is held out by a hash of the
text, independent of the seed, so retraining on the same data validates on the same documents.
The saved model is the one trained without them: the metrics describe the file you get.

Determinism. Training lines are shuffled with `seed` and fastText runs with that seed and one
thread: the same inputs and parameters give the same model file. One thread is the price: about
a million tokens a second at dim 100, so 2 × 200k documents of ~700 tokens for 5 epochs take
~25 minutes. `threads` > 1 trains faster (Hogwild SGD) but no two runs give the same model.

Outputs: the model (`out`, written under a temp name then renamed) and a JSON sidecar beside it
(`out` + ".json": sources, counts, parameters, validation metrics). Model size is about
(vocabulary + `bucket`) × `dim` × 4 bytes: the fastText defaults (2M buckets, dim 100) make an
800 MB file that every worker process loads once; the defaults here make a ~200 MB one.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import fasttext
import fsspec
from fsspec.utils import infer_compression
from pydantic import Field

from gristmill.core.io import copy_atomic, is_local, write_json_atomic
from gristmill.filters.base import DocFilter, FilterParams, Limit
from gristmill.filters.text import TextView

fasttext.FastText.eprint = lambda *a, **k: None  # silence the load_model deprecation banner

HQ, LQ = "__label__hq", "__label__lq"
FORMAT = "gristmill-quality-model/1"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_KINDS = {".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}


class QualityModelError(ValueError):
    """Inputs or parameters that cannot make a model; the message says which."""


def normalize(text: str) -> str:
    """The text as fastText sees it, at training and at inference alike (see the module doc)."""
    return " ".join(_TOKEN.findall(text.replace("__label__", " ").lower()))


# ---------------------------------------------------------------------------------------------
# Reading the reference sets


def _kind(path: str) -> str | None:
    name = path.rsplit("/", 1)[-1].lower()
    if infer_compression(name):
        name = name.rsplit(".", 1)[0]
    return next((k for suffix, k in _KINDS.items() if name.endswith(suffix)), None)


def _hidden(path: str) -> bool:
    """Temp parts (`.tmp-*`) and markers (`_SUCCESS`) are no input."""
    return path.rsplit("/", 1)[-1].startswith((".", "_"))


def expand(patterns: Iterable[str]) -> list[str]:
    """Paths, globs and directories → the sorted supported files (full fsspec URLs)."""
    files: list[str] = []
    for pattern in patterns:
        fs, p = fsspec.core.url_to_fs(pattern)
        if fsspec.core.has_magic(p):
            found = [f for f in fs.glob(p) if not _hidden(f) and not fs.isdir(f)]
        elif fs.isdir(p):
            found = [f for f in fs.find(p) if _kind(f) and not _hidden(f)]
        elif fs.exists(p):
            found = [p]
        else:
            raise QualityModelError(f"no such file: {pattern}")
        if not found:
            raise QualityModelError(f"{pattern} matches no files")
        for f in sorted(found):
            if _kind(f) is None:
                raise QualityModelError(f"{f}: unsupported file type (use .parquet, .jsonl or .txt)")
            files.append(fs.unstrip_protocol(f))
    return files


def read_texts(path: str) -> Iterator[str | None]:
    """The documents of one file (None for a row or line without text)."""
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        with fsspec.open(path, "rb") as f:
            pf = pq.ParquetFile(f)
            if "text" not in pf.schema_arrow.names:
                raise QualityModelError(f"{path}: no `text` column")
            for i in range(pf.num_row_groups):
                yield from pf.read_row_group(i, columns=["text"]).column(0).to_pylist()
        return
    with fsspec.open(path, "rt", compression="infer", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if kind == "txt":
                yield line.rstrip("\r\n")
                continue
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise QualityModelError(f"{path}:{n}: not JSON ({e})") from None
            yield obj.get("text") if isinstance(obj, dict) else None


def _hash(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class _Sample:
    """Bottom-k sample of normalised texts by hash: deterministic, order-free, bounded, deduplicated."""

    def __init__(self, k: int, min_chars: int):
        self.k, self.min_chars = k, min_chars
        self.heap: list[tuple[int, str]] = []  # (-key, text): the largest kept key on top
        self.keys: set[int] = set()
        self.counts = {"files": 0, "read": 0, "no_text": 0, "too_short": 0}

    def add_file(self, path: str) -> None:
        self.counts["files"] += 1
        for text in read_texts(path):
            self.counts["read"] += 1
            if not text or not isinstance(text, str):
                self.counts["no_text"] += 1
                continue
            norm = normalize(text)
            if len(norm) < self.min_chars:
                self.counts["too_short"] += 1
                continue
            key = int.from_bytes(_hash(norm)[:8], "big")
            if key in self.keys:
                continue  # a duplicate (or, at 2^-64, a collision)
            if len(self.heap) < self.k:
                heapq.heappush(self.heap, (-key, norm))
                self.keys.add(key)
            elif key < -self.heap[0][0]:
                dropped, _ = heapq.heapreplace(self.heap, (-key, norm))
                self.keys.discard(-dropped)
                self.keys.add(key)

    def texts(self) -> dict[int, str]:
        return dict(sorted((-k, t) for k, t in self.heap))


def _in_validation(text: str, fraction: float) -> bool:
    return int.from_bytes(_hash(text)[8:12], "big") < fraction * 2**32


# ---------------------------------------------------------------------------------------------
# Training


def hq_probabilities(model, texts: list[str]) -> list[float]:
    """P(hq) of already normalised texts."""
    labels, probs = model.predict(texts, k=-1, threshold=0.0)
    return [next((min(float(p), 1.0) for lab, p in zip(ls, ps) if lab == HQ), 0.0) if t else 0.0
            for t, ls, ps in zip(texts, labels, probs)]


def binary_metrics(scores: list[float], truth: list[bool], threshold: float = 0.5) -> dict:
    """Precision/recall/F1 of the hq label at `threshold`, accuracy, and ROC AUC."""
    tp = sum(s >= threshold and t for s, t in zip(scores, truth))
    fp = sum(s >= threshold and not t for s, t in zip(scores, truth))
    fn = sum(s < threshold and t for s, t in zip(scores, truth))
    tn = len(scores) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    n_pos = tp + fn
    n_neg = len(scores) - n_pos
    return {
        "documents": len(scores), "positives": n_pos, "negatives": n_neg, "threshold": threshold,
        "accuracy": (tp + tn) / len(scores) if scores else None,
        "precision": precision, "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "auc": roc_auc(scores, truth), "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def roc_auc(scores: list[float], truth: list[bool]) -> float | None:
    """The chance that a random positive outscores a random negative (ties count half)."""
    n_pos = sum(truth)
    n_neg = len(truth) - n_pos
    if not n_pos or not n_neg:
        return None
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum, i = 0.0, 0
    while i < len(order):  # 1-based ranks, ties sharing their mean rank
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        rank_sum += sum(truth[k] for k in order[i:j + 1]) * (i + j + 2) / 2
        i = j + 1
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


# fastText trains in a fresh process whose malloc returns zero-filled memory (glibc's
# MALLOC_PERTURB_=255 fills each allocation with 255 ^ 0xff = 0). This fastText build reads memory
# it never initialised while training (upstream's `DenseMatrix::uniform` with one thread fills only
# the first tenth of the input matrix; here the rest is evidently left as malloc returned it), so in
# a process whose heap has been used before, the same inputs give "Encountered NaN" or another
# model: 4 of 8 trainings in one process failed on the test data, and all of them with
# MALLOC_PERTURB_=1. Zeroed memory gives the same model every time, at no measurable cost. Without
# glibc (macOS), the fresh process alone still gets fresh, zeroed pages for the large matrices.
_TRAIN_CHILD = ("import json, sys, fasttext; a = json.loads(sys.argv[1]); "
                "fasttext.train_supervised(**a['params']).save_model(a['out'])")


def _train_fasttext(params: dict, out: str) -> None:
    env = {**os.environ, "MALLOC_PERTURB_": "255"}  # glibc: allocations come back zero-filled
    r = subprocess.run([sys.executable, "-c", _TRAIN_CHILD, json.dumps({"params": params, "out": out})],
                       env=env, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        hint = " (the learning rate is too high: lower lr)" if "NaN" in tail else ""
        raise QualityModelError(f"fastText training failed: {tail}{hint}")


def train_quality_model(
    positives: list[str],
    negatives: list[str],
    out_path: str,
    *,
    epochs: int = 5,
    lr: float = 0.1,
    word_ngrams: int = 2,
    dim: int = 100,
    bucket: int = 500_000,
    min_count: int = 1,
    seed: int = 0,
    max_docs_per_class: int = 200_000,
    min_chars: int = 100,
    validation_fraction: float = 0.1,
    balance: bool = True,
    threads: int = 1,
    log=None,
) -> dict:
    """Train `__label__hq` (positives) vs `__label__lq` (negatives), save it to `out_path` and a
    sidecar to `out_path + ".json"`; return the sidecar's content (see the module doc)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    positives = [positives] if isinstance(positives, str) else list(positives)
    negatives = [negatives] if isinstance(negatives, str) else list(negatives)
    if not positives or not negatives:
        raise QualityModelError("need at least one positive and one negative input")
    for name, value, ok in [("epochs", epochs, epochs >= 1), ("lr", lr, lr > 0),
                            ("word_ngrams", word_ngrams, word_ngrams >= 1), ("dim", dim, dim >= 1),
                            ("bucket", bucket, bucket >= (1 if word_ngrams > 1 else 0)),  # 0: a crash
                            ("min_count", min_count, min_count >= 1), ("threads", threads, threads >= 1),
                            ("max_docs_per_class", max_docs_per_class, max_docs_per_class >= 2),
                            ("min_chars", min_chars, min_chars >= 0),
                            ("validation_fraction", validation_fraction, 0 <= validation_fraction < 1)]:
        if not ok:
            raise QualityModelError(f"{name}={value!r} is out of range")
    started = time.time()
    samples = {}
    for label, patterns in ((HQ, positives), (LQ, negatives)):
        sample = _Sample(max_docs_per_class, min_chars)
        for path in expand(patterns):
            sample.add_file(path)
        samples[label] = sample
        log(f"{label}: {sample.counts['read']} documents read from {sample.counts['files']} files, "
            f"{len(sample.heap)} sampled")
    pos, neg = samples[HQ].texts(), samples[LQ].texts()
    conflicts = pos.keys() & neg.keys()
    for key in conflicts:
        del pos[key], neg[key]
    if balance:
        n = min(len(pos), len(neg))
        pos, neg = dict(list(pos.items())[:n]), dict(list(neg.items())[:n])

    train: list[str] = []
    valid: list[tuple[str, bool]] = []
    counts = {}
    for label, texts, counter in ((HQ, pos, samples[HQ].counts), (LQ, neg, samples[LQ].counts)):
        n_train = n_valid = 0
        for text in texts.values():
            if _in_validation(text, validation_fraction):
                valid.append((text, label == HQ))
                n_valid += 1
            else:
                train.append(f"{label} {text}")
                n_train += 1
        if n_train < 1:
            raise QualityModelError(f"no {label.removeprefix('__label__')} documents to train on "
                                    f"(read {counter['read']}, of which too short: {counter['too_short']})")
        counts[label.removeprefix("__label__")] = {
            **counter, "sampled": len(samples[label].heap), "in_both_sets": len(conflicts),
            "used": len(texts), "train": n_train, "validation": n_valid}
    random.Random(seed).shuffle(train)

    params = {"epochs": epochs, "lr": lr, "word_ngrams": word_ngrams, "dim": dim, "bucket": bucket,
              "min_count": min_count, "seed": seed, "max_docs_per_class": max_docs_per_class,
              "min_chars": min_chars, "validation_fraction": validation_fraction, "balance": balance,
              "threads": threads}
    del pos, neg
    log(f"training on {len(train)} documents, validating on {len(valid)}")
    with tempfile.TemporaryDirectory(prefix="gristmill-quality-") as d:
        with open(f"{d}/train.txt", "w", encoding="utf-8") as f:
            f.writelines(line + "\n" for line in train)
        del train
        _train_fasttext({"input": f"{d}/train.txt", "epoch": epochs, "lr": lr, "wordNgrams": word_ngrams,
                         "dim": dim, "bucket": bucket, "minCount": min_count, "seed": seed, "thread": threads,
                         "loss": "softmax", "verbose": 0}, f"{d}/model.bin")
        model = fasttext.load_model(f"{d}/model.bin")
        validation = None
        if valid:
            texts, truth = zip(*valid)
            scores = hq_probabilities(model, list(texts))
            validation = binary_metrics(scores, list(truth))
            if max(scores) - min(scores) < 0.1:
                log("warning: validation scores barely move from their mean; the model is undertrained: "
                    "raise epochs or lr (small sets need e.g. 25 epochs at lr 0.5)")
        copy_atomic(f"{d}/model.bin", out_path)
    meta = {
        "format": FORMAT,
        "model": out_path,
        "labels": {"hq": HQ, "lq": LQ},
        "normalisation": "lowercase; \\w+ runs and single punctuation characters joined by spaces",
        "sources": {"positives": list(positives), "negatives": list(negatives)},
        "counts": counts,
        "params": params,
        "validation": validation,
        "vocabulary": len(model.words),
        "seconds": round(time.time() - started, 2),
    }
    write_json_atomic(out_path + ".json", meta)
    return meta


# ---------------------------------------------------------------------------------------------
# Inference


def _local_copy(path: str) -> str:
    """fastText loads local files only: a remote model is downloaded once a machine into the temp
    dir, under a name that changes when the file does (fsspec's `ukey`)."""
    fs, p = fsspec.core.url_to_fs(path)
    if is_local(fs):
        return p
    key = f"{path} {fs.ukey(p)}"
    local = Path(tempfile.gettempdir()) / "gristmill-models" / (
        hashlib.sha1(key.encode()).hexdigest()[:16] + "-" + p.rsplit("/", 1)[-1])
    if not local.exists():
        copy_atomic(path, str(local))
    return str(local)


@functools.lru_cache(maxsize=None)
def load_model(path: str):
    """One model per process and path, however many filters (workers × languages) use it."""
    model = fasttext.load_model(_local_copy(path))
    if HQ not in model.labels:
        raise QualityModelError(f"{path} is not a quality model: its labels are {model.labels[:5]}")
    return model


class QualityModel(DocFilter):
    """`quality_model_score` = P(hq) under a model made by `gristmill train-quality`; with a
    `threshold`, documents scoring below it are dropped as `quality_model:low_score`."""

    name = "quality_model"

    class Params(FilterParams):
        path: str  # the .bin model (absolute by the time it gets here; any fsspec URL)
        threshold: float | None = Field(default=None, ge=0, le=1)  # None: annotate, drop nothing

    signals = ("quality_model_score",)

    def __init__(self, params: Params, language: str):
        super().__init__(params, language)
        self.model = load_model(params.path)

    @classmethod
    def limits(cls, params: Params) -> list[Limit]:
        return cls._limits(("quality_model_score", "<", params.threshold, "low_score"))

    def score(self, text: str) -> float:
        return hq_probabilities(self.model, [normalize(text)])[0]

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        score = self.score(doc.text)
        threshold = self.params.threshold
        drop = threshold is not None and score < threshold
        return {"quality_model_score": score}, ("low_score" if drop else None)
