"""Near-duplicate corpora from real page text, for dedup's tests and benchmarks.

- `near_duplicate_set`: per real document, edited copies of the kinds crawls are full of —
  changed boilerplate, inserted ads, truncation, re-ordered paragraphs, word edits, and changes of
  case / whitespace / Unicode form / quotes — each aimed at a Jaccard
  similarity to the original. Every pair's true Jaccard is computed exactly from its shingles.
- `pair_scores`: precision and recall of a clustering against those true similarities.
- `replicated_corpus`: the same documents copied and mutated N times, for memory scaling.

Only the standard library and stages.dedup.minhash (for the shingles the true Jaccard is of).
"""

from __future__ import annotations

import json
import random
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from gristmill.stages.dedup.minhash import CJK, normalise, shingles

BOILERPLATE = [
    "Home", "News", "Sport", "Business", "Culture", "Opinion", "Sign in", "Subscribe now",
    "Accept all cookies", "Manage preferences", "We use cookies to improve your experience on our site",
    "Share on Facebook", "Share on Twitter", "Copy link", "Related articles", "Most read",
    "Follow us on Instagram", "Contact us", "Privacy policy", "Terms of use", "Advertise with us",
    "All rights reserved", "Newsletter: the best of the week in your inbox", "Read more",
    "Skip to main content", "Back to top", "Login / Register", "Search this site",
]
AD_PRODUCTS = ["running shoes", "noise-cancelling headphones", "a smart watch", "travel insurance",
               "a standing desk", "organic coffee", "a VPN subscription", "kitchen knives", "solar panels"]
AD_LINES = [
    "Save {p}% on {x} this weekend only. Shop now!",
    "Sponsored: thousands of readers switched to {x}. See why they love it.",
    "Advertisement. Looking for {x}? Compare prices from {p} trusted stores.",
    "Limited offer: get {x} with free delivery and {p} days to return it.",
]
KINDS = ("boilerplate", "ads", "truncate", "reorder", "word_edits", "format")


def character_words(text: str) -> str:
    """The normalisation before issue #9 (`nfkc-casefold-words-cjkchars-v1`): every kana or Han
    character a word of its own. For comparisons only."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.findall(f"[{CJK}]|[^\\W{CJK}]+", text))


@contextmanager
def normalised_by(fn: Callable[[str], str]) -> Iterator[None]:
    """Run dedup and this module's Jaccard with another normalisation (dedup in process only)."""
    import gristmill.stages.dedup.minhash as minhash

    module = sys.modules[__name__]
    saved = minhash.normalise, module.normalise
    minhash.normalise = module.normalise = fn
    try:
        yield
    finally:
        minhash.normalise, module.normalise = saved


def jaccard(a: str, b: str, n: int = 5) -> float:
    sa, sb = set(shingles(normalise(a), n)), set(shingles(normalise(b), n))
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n") if p.strip()]


def edit(text: str, kind: str, amount: float, rng: random.Random) -> str:
    """One kind of edit at a strength in [0, 1] (about the share of the text it touches)."""
    paras = paragraphs(text)
    words = text.split()
    if kind == "boilerplate":  # a site's menus and footer, more of it as amount grows
        n = int(len(words) * amount)
        menu = []
        while sum(len(m.split()) for m in menu) < n:
            menu.append(rng.choice(BOILERPLATE))
        cut = rng.randrange(len(menu) + 1)
        return "\n".join(menu[:cut] + paras + menu[cut:])
    if kind == "ads":  # ad paragraphs between the text's paragraphs
        out = list(paras)
        added = 0
        while added < len(words) * amount:
            ad = rng.choice(AD_LINES).format(p=rng.randint(5, 60), x=rng.choice(AD_PRODUCTS))
            out.insert(rng.randrange(len(out) + 1), ad)
            added += len(ad.split())
        return "\n".join(out)
    if kind == "truncate":  # a cut-off capture: the last part is missing
        keep = max(1, int(len(words) * (1 - amount)))
        return " ".join(words[:keep])
    if kind == "reorder":  # paragraphs moved, and sentences within some of them
        out = list(paras)
        rng.shuffle(out)
        for i in rng.sample(range(len(out)), int(len(out) * amount)):
            sentences = out[i].split(". ")
            rng.shuffle(sentences)
            out[i] = ". ".join(sentences)
        return "\n".join(out)
    if kind == "word_edits":  # typos, swapped words, small rewrites
        out = list(words)
        for _ in range(int(len(words) * amount / 5)):
            i = rng.randrange(len(out))
            op = rng.random()
            if op < 0.4:
                out[i] = rng.choice(words)
            elif op < 0.7 and len(out) > 1:
                del out[i]
            else:
                out.insert(i, rng.choice(words))
        return " ".join(out)
    if kind == "format":  # what normalisation removes: case, whitespace, Unicode form, quotes
        out = unicodedata.normalize("NFD", text).replace("’", "'").replace("“", '"').replace("”", '"')
        out = out.replace(" ", rng.choice(["  ", "\u00a0", " \t"]), len(words) // 3)
        out = out.replace("\n", "\r\n\r\n")
        return out.upper() if rng.random() < 0.5 else out.lower()
    raise ValueError(kind)


def aimed_edit(text: str, kind: str, target: float, rng: random.Random) -> tuple[str, float]:
    """The edit of this kind whose Jaccard to `text` comes nearest `target` (a search over strength)."""
    lo, hi = 0.0, 1.0
    best = (text, 1.0)
    original = set(shingles(normalise(text), 5))
    for _ in range(7):
        mid = (lo + hi) / 2
        out = edit(text, kind, mid, random.Random(rng.random()))
        edited = set(shingles(normalise(out), 5))
        j = len(original & edited) / len(original | edited)
        if abs(j - target) < abs(best[1] - target):
            best = (out, j)
        lo, hi = (mid, hi) if j > target else (lo, mid)
    return best


@dataclass
class Doc:
    id: str
    family: int
    kind: str  # "original" or the edit
    text: str
    jaccard: float  # to its family's original


def near_duplicate_set(texts: list[str], seed: int = 0, targets: tuple[float, ...] = (0.95, 0.85, 0.75, 0.6),
                       min_words: int = 100) -> list[Doc]:
    """Originals (real texts of at least `min_words`, no two of them near each other) and, per
    original, one copy per edit kind at a Jaccard drawn from `targets` (format edits: 1.0)."""
    rng = random.Random(seed)
    originals: list[str] = []
    seen: list[set] = []
    for text in texts:
        sh = set(shingles(normalise(text), 5))
        if len(text.split()) < min_words or any(len(sh & s) / len(sh | s) > 0.3 for s in seen):
            continue
        originals.append(text)
        seen.append(sh)
    docs = []
    for f, text in enumerate(originals):
        docs.append(Doc(f"f{f:04d}-original", f, "original", text, 1.0))
        for kind in KINDS:
            if kind == "format":
                out, j = edit(text, kind, 1.0, rng), None
                j = jaccard(text, out)
            else:
                out, j = aimed_edit(text, kind, rng.choice(targets), rng)
            docs.append(Doc(f"f{f:04d}-{kind}", f, kind, out, j))
    return docs


def pair_scores(docs: list[Doc], found: set[frozenset], threshold: float) -> dict:
    """Precision and recall of found pairs (ids) against true Jaccard >= threshold. True pairs are
    looked for within families (originals were chosen far apart); found pairs across families
    are checked exactly."""
    by_id = {d.id: d for d in docs}
    families: dict[int, list[Doc]] = {}
    for d in docs:
        families.setdefault(d.family, []).append(d)
    truth = {}
    for members in families.values():
        for a, b in combinations(members, 2):
            truth[frozenset((a.id, b.id))] = jaccard(a.text, b.text)
    for pair in found - truth.keys():
        a, b = sorted(pair)
        truth[pair] = jaccard(by_id[a].text, by_id[b].text)
    tp = sum(1 for p in found if truth[p] >= threshold)
    positives = sum(1 for j in truth.values() if j >= threshold)
    bins = [(threshold, 0.85), (0.85, 0.9), (0.9, 0.95), (0.95, 1.0), (1.0, 1.01)]
    recall_by_jaccard, pairs_by_jaccard = {}, {}
    for lo, hi in bins:
        pairs = [p for p, j in truth.items() if lo <= j < hi]
        if pairs:
            recall_by_jaccard[f"{lo:.2f}-{min(hi, 1):.2f}"] = round(sum(p in found for p in pairs) / len(pairs), 4)
            pairs_by_jaccard[f"{lo:.2f}-{min(hi, 1):.2f}"] = len(pairs)
    kinds: dict[str, list[int]] = {}
    for p, j in truth.items():
        a, b = (by_id[i] for i in sorted(p))
        if j >= threshold and "original" in (a.kind, b.kind) and a.family == b.family:
            kind = b.kind if a.kind == "original" else a.kind
            kinds.setdefault(kind, [0, 0])[p in found] += 1
    below = sorted(truth[p] for p in found if truth[p] < threshold)
    return {
        "false_positive_jaccard": {"min": round(below[0], 3), "median": round(below[len(below) // 2], 3)}
        if below else None,
        "true_pairs": positives,
        "found_pairs": len(found),
        "precision": round(tp / len(found), 4) if found else 1.0,
        "recall": round(tp / positives, 4) if positives else 1.0,
        "recall_by_jaccard": recall_by_jaccard,
        "pairs_by_jaccard": pairs_by_jaccard,
        "recall_by_edit": {k: round(v[1] / sum(v), 4) for k, v in sorted(kinds.items())},
    }


def cluster_pairs(clusters: Iterable[Iterable[str]]) -> set[frozenset]:
    return {frozenset(p) for c in clusters for p in combinations(sorted(c), 2)}


def replicated_corpus(texts: list[str], copies: int, seed: int = 0) -> Iterable[tuple[str, str]]:
    """(id, text): the texts, then `copies - 1` rounds of mutated copies of all of them (light word
    edits and some boilerplate: Jaccard mostly 0.6-0.95 to the original), as repeated crawls of
    the same pages would give."""
    rng = random.Random(seed)
    for c in range(copies):
        for i, text in enumerate(texts):
            if c:
                text = edit(edit(text, "word_edits", rng.uniform(0.02, 0.3), rng), "boilerplate",
                            rng.uniform(0.0, 0.1), rng)
            yield f"d{i:06d}-{c}", text


def scrapinghub_bodies(data_dir: Path) -> list[str]:
    """The gold article bodies of the scrapinghub pages in ../shared/data (real news text)."""
    with open(data_dir / "extraction" / "scrapinghub" / "ground-truth.json", encoding="utf-8") as f:
        return [v["articleBody"] for _, v in sorted(json.load(f).items())]


def write_parts(run_dir: str, docs: Iterable[tuple[str, str]], per_part: int, extra: dict | None = None) -> list[int]:
    """Write (id, text) documents as a run's pre_dedup parts of `per_part` rows; their indexes."""
    from gristmill.core.data import schemas
    from gristmill.core.io import PartWriter

    schema, _ = schemas([])
    parts, writer = [], None
    for i, (doc_id, text) in enumerate(docs):
        if i % per_part == 0:
            if writer:
                writer.commit()
            parts.append(len(parts))
            writer = PartWriter(f"{run_dir}/pre_dedup/part-{parts[-1]:05d}.parquet", schema)
        writer.append({"id": doc_id, "source": "bench", "text": text, **(extra or {})})
    if writer:
        writer.commit()
    return parts


def bucket_pairs(run_dir: str, parts: list[int]) -> set[frozenset]:
    """Document-id pairs that share a bucket in any band (or the exact hash): LSH's candidates."""
    import numpy as np
    import pyarrow.parquet as pq

    from gristmill.stages.dedup import records
    from gristmill.stages.dedup.layout import Layout

    lay = Layout(run_dir)
    ids = {p: pq.read_table(lay.ids_file(p))["id"].to_pylist() for p in parts}
    found: set[frozenset] = set()
    for family_dir in sorted(Path(lay.root, "index").iterdir()):
        if family_dir.name in ("docs", "done"):
            continue
        rec = np.concatenate([records.read(lay.band_file(family_dir.name, p), records.BAND) for p in parts])
        rec = rec[np.argsort(rec["hash"], kind="stable")]
        starts = np.flatnonzero(np.concatenate([[True], rec["hash"][1:] != rec["hash"][:-1], [True]]))
        for a, b in zip(starts[:-1], starts[1:]):
            if b - a > 1:
                keys = rec["key"][a:b]
                names = [ids[int(k >> 32)][int(k & 0xFFFFFFFF)] for k in keys]
                found |= {frozenset(p) for p in combinations(names, 2)}
    return found


def datasketch_clusters(texts: dict, threshold: float = 0.8, num_perm: int = 128) -> list[set]:
    """Clusters of more than one key by datasketch alone: its in-memory MinHashLSH over
    `MinHash(hashfunc=shingle_hash32)` signatures, every document queried, results unioned."""
    from datasketch import MinHash, MinHashLSH

    from gristmill.stages.dedup.minhash import shingle_hash32

    lsh, minhashes = MinHashLSH(threshold=threshold, num_perm=num_perm), {}
    for key, text in texts.items():
        m = MinHash(num_perm=num_perm, seed=1, hashfunc=shingle_hash32)
        m.update_batch(shingles(normalise(text), 5))
        lsh.insert(key, m)
        minhashes[key] = m
    parent = {key: key for key in texts}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for key, m in minhashes.items():
        for other in lsh.query(m):
            parent[find(other)] = find(key)
    clusters: dict = {}
    for key in texts:
        clusters.setdefault(find(key), set()).add(key)
    return [c for c in clusters.values() if len(c) > 1]


def clusters_from_rejects(run_dir: str) -> list[set[str]]:
    """Clusters of more than one document, from dedup's rejects (each names the kept document)."""
    import pyarrow.dataset as ds

    rejects = ds.dataset(f"{run_dir}/rejects", format="parquet").to_table(columns=["id", "reject_stage", "duplicate_of"])
    clusters: dict[str, set[str]] = {}
    for r in rejects.to_pylist():
        if r["reject_stage"] == "dedup":
            clusters.setdefault(r["duplicate_of"], {r["duplicate_of"]}).add(r["id"])
    return list(clusters.values())
