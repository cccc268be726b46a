"""MinHash signatures of word n-gram shingles, vectorised over a batch of documents.

The maths is datasketch's (2.0, scheme `affine32`): each shingle has a 32-bit hash h, then per
permutation i the value `a_i * fmix32(h) + b_i mod 2^32`, with (a, b) from
`datasketch.MinHash(num_perm, seed).permutations`; a signature is the minimum per permutation.
`shingle_hash32` is the shingle hash as a plain function, so `datasketch.MinHash(num_perm, seed,
hashfunc=shingle_hash32).update_batch(shingles(text))` gives the very same signature.

What is vectorised: a batch of normalised texts is one byte array. A polynomial hash of every
shingle's bytes comes from one prefix sum (mod 2^64, with powers of the inverse of an odd base),
so no Python code runs per shingle; the permutations run as (shingles × num_perm) uint32 blocks.

Normalisation (for shingles and for exact dedup): NFKC, casefold, words are runs of `\\w` joined
by single spaces; kana and Han runs are cut into pseudo-words of about two characters, so a CJK
passage weighs what a passage of spaced words does. Case, punctuation, whitespace and Unicode
compatibility forms do not change a document's shingles or its exact hash.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xxhash

WORD = re.compile(r"\w+")
CJK_RANGES = ((0x3040, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))  # kana, Han: no spaces
CJK = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in CJK_RANGES)  # as a regex class
HAS_CJK = re.compile(f"[{CJK}]")
PAIR_MULTIPLIER = np.uint32(0x9E3779B1)
BASE = np.uint64(0x100000001B3)  # odd, so invertible mod 2^64
BASE_INV = np.uint64(pow(int(BASE), -1, 1 << 64))
MAX32 = np.uint32(0xFFFFFFFF)
CHUNK = 1024  # shingles per (CHUNK × num_perm) block: fits in L2
MAX_BATCH_CHARS = 1 << 19  # text hashed at once: its uint64 arrays take 8 bytes per byte of text
NORMALISATION = "nfkc-casefold-words-cjkpairs-v2"  # recorded in the index; change it when the above changes


def normalise(text: str) -> str:
    """Words joined by single spaces. Chinese and Japanese, written without spaces, are cut into
    pseudo-words of two characters on average (`cjk_words`), so that a passage weighs about what
    its translation would, whatever the script."""
    text = unicodedata.normalize("NFKC", text).casefold()
    words = " ".join(WORD.findall(text))
    if words.isascii() or not HAS_CJK.search(words):  # isascii is O(1) in CPython
        return words
    return cjk_words(words)


def cjk_words(words: str) -> str:
    """Runs of kana and Han cut into pseudo-words, and cut off from letters and digits next to
    them. A cut falls between two such characters when a hash of the pair has its top bit clear
    (half the time): the cuts depend on the text only, not on where it starts, so an edit moves
    only the cuts beside it, and a run of m characters makes about m/2 words, about as many as
    a Chinese word of 1.5-2 characters on average would make."""
    code = np.frombuffer(words.encode("utf-32-le", "surrogatepass"), np.uint32)
    cjk = np.zeros(len(code), bool)
    for lo, hi in CJK_RANGES:
        cjk |= (code >= lo) & (code <= hi)
    left, right = code[:-1], code[1:]
    pair_hash = fmix32(left * PAIR_MULTIPLIER + right)
    inside = cjk[:-1] & cjk[1:]
    script_change = (cjk[:-1] != cjk[1:]) & (left != 32) & (right != 32)
    cuts = np.flatnonzero((inside & (pair_hash < np.uint32(1 << 31))) | script_change) + 1
    return np.insert(code, cuts, np.uint32(32)).tobytes().decode("utf-32-le", "surrogatepass")


def exact_hash(normalised: str) -> int:
    """64-bit hash of a normalised text (exact dedup)."""
    return xxhash.xxh3_64_intdigest(normalised.encode("utf-8"))


def fmix64(h: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xFF51AFD7ED558CCD)
        h = h ^ (h >> np.uint64(33))
        h = h * np.uint64(0xC4CEB9FE1A85EC53)
        return h ^ (h >> np.uint64(33))


def fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, as datasketch applies it before its permutations."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def shingle_hash32(shingle: bytes) -> int:
    """The hash of one shingle's UTF-8 bytes, written plainly (the vectorised code's reference)."""
    h = 0
    for byte in shingle:
        h = (h * int(BASE) + byte) & 0xFFFFFFFFFFFFFFFF
    return int(fmix64(np.array([h], np.uint64))[0] >> np.uint64(32))


def shingles(normalised: str, n: int) -> list[bytes]:
    """The word n-grams of a normalised text; a text of fewer than n words is one shingle."""
    words = normalised.split()
    if not words:
        return []
    return [" ".join(words[i:i + n]).encode() for i in range(max(len(words) - n + 1, 1))]


@lru_cache(maxsize=2)
def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^i and BASE^-i mod 2^64 for i < n."""
    with np.errstate(over="ignore"):
        pw = np.cumprod(np.full(n, BASE, np.uint64), dtype=np.uint64)
        inv = np.cumprod(np.full(n, BASE_INV, np.uint64), dtype=np.uint64)
    one = np.ones(1, np.uint64)
    return np.concatenate([one, pw[:-1]]), np.concatenate([one, inv[:-1]])


def powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << max(int(n - 1).bit_length(), 16)  # a few sizes only, so the cache stays useful
    pw, inv = _powers(size)
    return pw[:n], inv[:n]


def shingle_hashes(normalised: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 hash per shingle, index of its document), shingles grouped by document in order."""
    joined = np.frombuffer("\n".join(normalised).encode("utf-8"), np.uint8)
    size = len(joined)
    if size == 0:
        return np.zeros(0, np.uint32), np.zeros(0, np.int64)
    pw, inv = powers(size)
    with np.errstate(over="ignore"):
        prefix = np.zeros(size + 1, np.uint64)
        np.cumsum(joined * inv, dtype=np.uint64, out=prefix[1:])
    seps = np.flatnonzero((joined == 32) | (joined == 10))
    starts = np.concatenate([[0], seps + 1])
    ends = np.concatenate([seps, [size]])
    doc = np.cumsum(np.concatenate([[True], joined[seps] == 10])) - 1
    word = ends > starts  # an empty document is one empty "word"
    starts, ends, doc = starts[word], ends[word], doc[word]
    n_words = np.bincount(doc, minlength=len(normalised))
    first = np.cumsum(n_words) - n_words
    g = np.arange(max(len(starts) - n + 1, 0))
    g = g[doc[g] == doc[g + n - 1]]  # n-grams that stay inside one document
    s_start, s_end, s_doc = starts[g], ends[g + n - 1], doc[g]
    short = np.flatnonzero((n_words > 0) & (n_words < n))
    if len(short):  # documents of fewer than n words: one shingle each
        s_start = np.concatenate([s_start, starts[first[short]]])
        s_end = np.concatenate([s_end, ends[first[short] + n_words[short] - 1]])
        s_doc = np.concatenate([s_doc, short])
        order = np.argsort(s_doc, kind="stable")
        s_start, s_end, s_doc = s_start[order], s_end[order], s_doc[order]
    with np.errstate(over="ignore"):
        h = pw[s_end - 1] * (prefix[s_end] - prefix[s_start])  # sum c_j BASE^(end-1-j)
    return (fmix64(h) >> np.uint64(32)).astype(np.uint32), s_doc


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed).permutations
    return a.astype(np.uint32), b.astype(np.uint32)


def signatures(hashes: np.ndarray, doc: np.ndarray, n_docs: int, num_perm: int, seed: int) -> np.ndarray:
    """(n_docs × num_perm) uint32 MinHash signatures; a document without shingles gets all 2^32-1
    (datasketch's empty MinHash)."""
    a, b = permutations(num_perm, seed)
    sig = np.full((n_docs, num_perm), MAX32, np.uint32)
    hv = fmix32(hashes)
    block = np.empty((CHUNK, num_perm), np.uint32)
    for i in range(0, len(hv), CHUNK):
        h, d = hv[i:i + CHUNK], doc[i:i + CHUNK]
        x = block[:len(h)]
        np.multiply(h[:, None], a[None, :], out=x)
        x += b[None, :]
        bounds = np.flatnonzero(np.concatenate([[True], d[1:] != d[:-1]]))
        docs = d[bounds]
        sig[docs] = np.minimum(sig[docs], np.minimum.reduceat(x, bounds, axis=0))
    return sig


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n_docs × bands) uint64: a hash of each band's `rows` signature values."""
    n = len(sig)
    out = np.empty((n, bands), np.uint64)
    width = 4 * rows
    for j in range(bands):
        raw = np.ascontiguousarray(sig[:, j * rows:(j + 1) * rows]).tobytes()
        out[:, j] = [xxhash.xxh3_64_intdigest(raw[i * width:(i + 1) * width]) for i in range(n)]
    return out


@dataclass(frozen=True)
class LshParams:
    num_perm: int
    seed: int
    ngram: int
    bands: int
    rows: int

    @classmethod
    def choose(cls, threshold: float, num_perm: int, seed: int, ngram: int,
               weights: tuple[float, float], bands: int | None, rows: int | None) -> LshParams:
        """Bands × rows as datasketch's MinHashLSH picks them for `threshold` (weighted false
        positive and false negative areas), unless both are given."""
        if bands is None or rows is None:
            from datasketch import MinHashLSH

            lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=tuple(weights))
            bands, rows = lsh.b, lsh.r
        return cls(num_perm, seed, ngram, bands, rows)

    def probability(self, jaccard: float) -> float:
        """Chance that two documents of this Jaccard similarity share a bucket."""
        return 1 - (1 - jaccard ** self.rows) ** self.bands


def sign(texts: list[str], params: LshParams | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """For a batch of raw texts: (exact hash uint64, band hashes or None, has_words bool)."""
    norm = [normalise(t) for t in texts]
    exact = np.fromiter((exact_hash(t) for t in norm), np.uint64, len(norm))
    has_words = np.fromiter((bool(t) for t in norm), bool, len(norm))
    if params is None:
        return exact, None, has_words
    sig = np.empty((len(norm), params.num_perm), np.uint32)
    for lo, hi in _slices(norm):
        h, doc = shingle_hashes(norm[lo:hi], params.ngram)
        sig[lo:hi] = signatures(h, doc, hi - lo, params.num_perm, params.seed)
    return exact, band_hashes(sig, params.bands, params.rows), has_words


def _slices(texts: list[str], max_chars: int = MAX_BATCH_CHARS) -> list[tuple[int, int]]:
    """Consecutive runs of texts of at most `max_chars` together (or one longer text alone), so
    the byte-level arrays of `shingle_hashes` stay small."""
    out, lo, size = [], 0, 0
    for i, t in enumerate(texts):
        if size and size + len(t) > max_chars:
            out.append((lo, i))
            lo, size = i, 0
        size += len(t) + 1
    return out + [(lo, len(texts))] if texts else out
