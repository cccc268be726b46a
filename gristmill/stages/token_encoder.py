"""Text → token ids for a `tokenizer.json`: tiktoken where it gives HF `tokenizers`' ids exactly, else HF.

Both backends give the ids of HF `Tokenizer.encode(text, add_special_tokens=False)` with
`encode_special_tokens = True` (a special token's text in a page is ordinary text, never its id),
without truncation or padding; text that is not UTF-8-encodable (lone surrogates) first has them
replaced by U+FFFD, on both paths.

The fast path builds a `tiktoken.Encoding` (ranks = HF ids) when the tokenizer is a byte-level BPE
that tiktoken can run exactly: no normalizer, a pre-tokenizer that is GPT-2's `ByteLevel` regex or
`Sequence[Split(<known gap-free regex>, Isolated), ByteLevel(use_regex=False)]` (Llama 3 / GPT-4),
only special added tokens, and merges whose rule agrees with tiktoken's "lowest rank first":

* HF merges the adjacent pair that comes first in `merges`; tiktoken merges the adjacent pair whose
  concatenation has the lowest rank. With ranks = ids, the two agree on merges if the ids of merge
  results rise strictly along `merges` (checked). They can still differ where tiktoken joins two
  tokens u, v into a token z by a split that is not z's merge. If a run's first difference is such
  a join, the same join happens when the bytes of z are encoded alone (the merges inside z's span
  depend only on that span), so `_merge_disagreement` runs tiktoken's rule on every token's bytes
  and falls back if any step is not an HF merge (and, without `ignore_merges`, if a token does not
  come back as itself, since tiktoken takes a piece that is a whole token as is).

The regex engines differ (Oniguruma in HF, fancy-regex in tiktoken); for the two accepted patterns
the tests compare them on every code point. A document whose regex match exceeds fancy-regex's
backtracking limit (a ~1M-character whitespace run) is encoded by HF instead.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING

import fsspec
import numpy as np
import regex
from tokenizers import Tokenizer

if TYPE_CHECKING:
    import tiktoken

# Pre-tokenizer regexes known to match every character (each is \s, \p{L}, \p{N} or none of these,
# and each class has an alternative), so tiktoken, which drops unmatched text, keeps it all.
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
GAP_FREE_PATTERNS = {GPT2_PATTERN: "gpt2", LLAMA3_PATTERN: "llama3"}
NO_SPECIAL: frozenset[str] = frozenset()  # special tokens tiktoken may split out of text: none


class NotRepresentable(Exception):
    """The tokenizer cannot be run exactly by tiktoken; the message says why."""


def utf8_safe(text: str) -> str:
    """`text`, with surrogate pairs joined and lone surrogates replaced by U+FFFD (as tiktoken does)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


@dataclass
class TokenEncoder:
    """Encodes documents with `backend` ("tiktoken" or "tokenizers"); `why` says why not tiktoken."""

    hf: Tokenizer
    backend: str
    why: str = ""
    tiktoken_encoding: tiktoken.Encoding | None = field(default=None, repr=False)

    def encode(self, text: str) -> list[int]:
        ids, _ = self.encode_batch([text])
        return ids.tolist()

    def encode_batch(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids of all texts, one after another, uint32; number of ids of each text, int64)."""
        if self.tiktoken_encoding is None:
            return self._encode_batch_hf(texts)
        arrays = [self._encode_tiktoken(text) for text in texts]
        lengths = np.fromiter(map(len, arrays), dtype=np.int64, count=len(arrays))
        ids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint32)
        return ids, lengths

    def _encode_tiktoken(self, text: str) -> np.ndarray:
        # Not encode_ordinary: on a regex error it panics (a BaseException) where this raises ValueError.
        try:
            return np.frombuffer(self.tiktoken_encoding._core_bpe.encode_to_tiktoken_buffer(text, NO_SPECIAL),
                                 dtype=np.uint32)
        except UnicodeEncodeError:
            return self._encode_tiktoken(utf8_safe(text))
        except ValueError:  # fancy-regex's backtracking limit (a run of ~1M spaces): HF's engine has none
            return np.asarray(self.hf.encode(text, add_special_tokens=False).ids, dtype=np.uint32)

    def _encode_batch_hf(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        try:
            encodings = self.hf.encode_batch(texts, add_special_tokens=False)
        except TypeError:  # a text PyO3 cannot pass to Rust: lone surrogates
            encodings = self.hf.encode_batch([utf8_safe(t) for t in texts], add_special_tokens=False)
        id_lists = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.uint32, count=int(lengths.sum()))
        return ids, lengths


_CACHE: dict[str, TokenEncoder] = {}


def load_encoder(tokenizer_json_path: str) -> TokenEncoder:
    """The fastest exact encoder for a tokenizer.json (local or fsspec URL); cached per file content."""
    with fsspec.open(tokenizer_json_path, "rb") as f:
        raw = f.read()
    key = hashlib.sha256(raw).hexdigest()
    if key not in _CACHE:
        _CACHE.clear()  # one tokenizer per worker is the norm; do not hoard vocabularies
        _CACHE[key] = encoder_from_json(raw.decode("utf-8"))
    return _CACHE[key]


def encoder_from_json(tokenizer_json: str) -> TokenEncoder:
    hf = Tokenizer.from_str(tokenizer_json)
    hf.encode_special_tokens = True  # "<|endoftext|>" in a page is text, not a document boundary
    hf.no_truncation()
    hf.no_padding()
    try:
        encoding = tiktoken_encoding(json.loads(tokenizer_json))
    except NotRepresentable as e:
        return TokenEncoder(hf, "tokenizers", why=str(e))
    return TokenEncoder(hf, "tiktoken", tiktoken_encoding=encoding)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte → printable character map, the alphabet of byte-level vocabularies."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


CHAR_TO_BYTE = {c: b for b, c in bytes_to_unicode().items()}


def tiktoken_encoding(cfg: dict) -> tiktoken.Encoding:
    """A tiktoken.Encoding with exactly the HF tokenizer's ids, or NotRepresentable(why)."""
    import tiktoken

    model = cfg.get("model") or {}
    _check_model_and_normalizer(cfg, model)
    pattern = _pre_tokenizer_pattern(cfg.get("pre_tokenizer"))
    specials = {t["content"]: t["id"] for t in cfg.get("added_tokens") or []}
    plain = [t["content"] for t in cfg.get("added_tokens") or [] if not t.get("special")]
    if plain:
        raise NotRepresentable(f"added tokens that are not special (HF splits them out of text): {plain[:3]}")
    vocab: dict[str, int] = model["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges") or []]
    ranks = _byte_ranks(vocab, specials)
    ignore_merges = bool(model.get("ignore_merges"))
    _check_merge_order(vocab, merges)
    merge_pairs = {(_to_bytes(a), _to_bytes(b)) for a, b in merges}
    if not ignore_merges:  # tokens no merge makes: HF never outputs them; tiktoken must not either
        made = {a + b for a, b in merge_pairs}
        ranks = {t: r for t, r in ranks.items() if len(t) == 1 or t in made}
    if problem := _merge_disagreement(ranks, merge_pairs, whole_tokens_must_survive=not ignore_merges):
        raise NotRepresentable(problem)
    if ignore_merges:  # HF takes a piece found in its model vocab as is: specials must never be one
        splitter = regex.compile(pattern)
        whole = [s for s in specials if s in vocab and splitter.findall(s) == [s]]
        if whole:
            raise NotRepresentable(f"special tokens {whole[:3]} are model tokens and one pre-token each")
    try:
        return tiktoken.Encoding("hf-bpe", pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials)
    except Exception as e:  # noqa: BLE001 (e.g. two tokens sharing an id)
        raise NotRepresentable(f"tiktoken refused the vocabulary: {e}") from e


def _pre_tokenizer_pattern(pre: dict | None) -> str:
    """The regex tiktoken must split with, for the pre-tokenizers it can reproduce."""
    if pre and pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    if pre and pre.get("type") == "ByteLevel":
        _check_byte_level(pre, use_regex=True)
        return GPT2_PATTERN
    steps = pre.get("pretokenizers", []) if pre and pre.get("type") == "Sequence" else []
    if [s.get("type") for s in steps] != ["Split", "ByteLevel"]:
        raise NotRepresentable(f"pre-tokenizer {_describe(pre)} is not ByteLevel or [Split, ByteLevel]")
    split, byte_level = steps
    _check_byte_level(byte_level, use_regex=False)
    pattern = (split.get("pattern") or {}).get("Regex")
    if split.get("behavior") != "Isolated" or split.get("invert"):
        raise NotRepresentable(f"Split behavior {split.get('behavior')}, invert {split.get('invert')}")
    if pattern not in GAP_FREE_PATTERNS:
        raise NotRepresentable(f"Split pattern {split.get('pattern')} is not a known gap-free regex")
    return pattern


def _check_byte_level(step: dict, use_regex: bool) -> None:
    if step.get("add_prefix_space"):
        raise NotRepresentable("ByteLevel add_prefix_space=true")
    if step.get("use_regex", True) != use_regex:
        raise NotRepresentable(f"ByteLevel use_regex={step.get('use_regex', True)} in this position")


def _check_model_and_normalizer(cfg: dict, model: dict) -> None:
    if model.get("type") != "BPE":
        raise NotRepresentable(f"model {model.get('type')}, not BPE")
    for key, no_op in (("dropout", (None, 0, 0.0)), ("byte_fallback", (None, False)),
                       ("continuing_subword_prefix", (None, "")), ("end_of_word_suffix", (None, ""))):
        if model.get(key) not in no_op:
            raise NotRepresentable(f"BPE {key}={model.get(key)!r}")
    if not _is_no_op_normalizer(cfg.get("normalizer")):
        raise NotRepresentable(f"normalizer {_describe(cfg.get('normalizer'))}")


def _is_no_op_normalizer(normalizer: dict | None) -> bool:
    if normalizer is None:
        return True
    return normalizer.get("type") == "Sequence" and all(map(_is_no_op_normalizer, normalizer["normalizers"]))


def _describe(step: dict | None) -> str:
    if not step:
        return "none"
    inner = step.get("pretokenizers") or step.get("normalizers")
    return f"{step.get('type')}[{', '.join(map(_describe, inner))}]" if inner else str(step.get("type"))


def _to_bytes(token: str) -> bytes:
    """The bytes a byte-level token stands for; UnicodeEncodeError if it is not byte-level."""
    return token.translate(_TO_LATIN1).encode("latin-1")


# byte-level character → the latin-1 character of its byte; other characters below 256 → one latin-1 lacks
_TO_LATIN1 = {**dict.fromkeys(range(256), 0x100), **{ord(c): b for c, b in CHAR_TO_BYTE.items()}}


def _byte_ranks(vocab: dict[str, int], specials: dict[str, int]) -> dict[bytes, int]:
    """Byte string → id of each model token (special tokens apart); all 256 bytes must be there."""
    try:
        ranks = {_to_bytes(token): token_id for token, token_id in vocab.items() if token not in specials}
    except UnicodeEncodeError as e:
        raise NotRepresentable(f"vocabulary is not byte-level (token {e.object!r})") from None
    missing = 256 - sum(len(t) == 1 for t in ranks)
    if missing:
        raise NotRepresentable(f"{missing} of the 256 byte tokens are missing (HF would emit unk or drop)")
    return ranks


def _check_merge_order(vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    """tiktoken's order (lowest id first) is HF's (first in `merges`) iff result ids rise along merges."""
    previous = -1
    for i, (a, b) in enumerate(merges):
        made = vocab.get(a + b)
        if made is None or a not in vocab or b not in vocab:
            raise NotRepresentable(f"merge {i} ({a!r}, {b!r}) uses or makes a token outside the vocab")
        if made <= previous:
            raise NotRepresentable(f"merge {i} ({a!r}, {b!r}) makes id {made}, not above the previous one's")
        previous = made


def _merge_disagreement(ranks: dict[bytes, int], merge_pairs: set[tuple[bytes, bytes]],
                        whole_tokens_must_survive: bool) -> str | None:
    """Run tiktoken's rule on each token's bytes; the first place it does what HF's merges would not."""
    no_rank = float("inf")
    for token in ranks:
        if len(token) < 2:
            continue
        parts = [token[i:i + 1] for i in range(len(token))]
        pair_ranks = [ranks.get(parts[i] + parts[i + 1], no_rank) for i in range(len(parts) - 1)]
        while pair_ranks and (best_rank := min(pair_ranks)) != no_rank:
            i = pair_ranks.index(best_rank)  # the leftmost, as tiktoken and HF both take
            if (parts[i], parts[i + 1]) not in merge_pairs:
                return f"tiktoken joins {parts[i]!r}+{parts[i + 1]!r}, not an HF merge (in {token!r})"
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
            del pair_ranks[i]
            if i > 0:
                pair_ranks[i - 1] = ranks.get(parts[i - 1] + parts[i], no_rank)
            if i < len(pair_ranks):
                pair_ranks[i] = ranks.get(parts[i] + parts[i + 1], no_rank)
        if whole_tokens_must_survive and len(parts) != 1:
            return f"token {token!r} is not rebuilt by its merges (HF splits it; tiktoken keeps it whole)"
    return None
