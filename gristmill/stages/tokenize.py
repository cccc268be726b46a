"""Tokenizer training (byte-level BPE on a sample of kept text) and token shards.

Token shard, one per docs part: `<prefix>.bin` (token ids, each document followed by EOS; uint16
when the vocabulary fits, else uint32), `<prefix>.idx` (int64 start offsets, n_docs + 1) and
`<prefix>.json` (metadata, written last: it marks the shard complete). Documents keep the order
of their docs part, so row i of the part is tokens[idx[i]:idx[i+1]].
"""

from __future__ import annotations

import hashlib

import fsspec
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from gristmill.pipeline.config import TokenizeConfig
from gristmill.stages.token_encoder import load_encoder
from gristmill.core.io import open_atomic, read_json, read_parquet, write_json_atomic

ENCODE_BATCH = 256


def _in_sample(doc_id: str, fraction: float) -> bool:
    """Deterministic, order-independent sample: by hash of the document id."""
    h = int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "big")
    return h / 2**64 < fraction


def sample_texts(parts: list[str], total_bytes: int, budget: int):
    fraction = 1.0 if total_bytes <= budget else budget / total_bytes
    for part in parts:
        table = read_parquet(part, ["id", "text"])
        for doc_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist()):
            if _in_sample(doc_id, fraction):
                yield text


def train_tokenizer(parts: list[str], total_bytes: int, cfg: TokenizeConfig, out_path: str) -> dict:
    """Train a byte-level BPE (exact round trip: decode(encode(t)) == t) and save it atomically."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=[cfg.eos_token],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(sample_texts(parts, total_bytes, cfg.train_sample_bytes), trainer)
    with open_atomic(out_path, "w") as f:
        f.write(tok.to_str())
    return {"vocab_size": tok.get_vocab_size(), "path": out_path}


def tokenizer_hash(path: str) -> str:
    with fsspec.open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def load_tokenizer(path: str) -> Tokenizer:
    with fsspec.open(path, "r") as f:
        return Tokenizer.from_str(f.read())


def tokenize_part(part: str, tokenizer_path: str, prefix: str, source: str, eos_token: str) -> dict:
    """Encode one docs part into `<prefix>.{bin,idx,json}`; returns the metadata.

    Ids are those of HF `tokenizers` (tiktoken computes them when it can do so exactly, see
    stages/token_encoder.py); a special token's text inside a document is encoded as text.
    """
    encoder = load_encoder(tokenizer_path)
    eos = encoder.hf.token_to_id(eos_token)
    if eos is None:
        raise ValueError(f"tokenizer {tokenizer_path} has no EOS token {eos_token!r}")
    vocab = encoder.hf.get_vocab_size()
    dtype = np.uint16 if vocab <= 2**16 else np.uint32
    texts = read_parquet(part, ["text"])["text"].to_pylist()
    doc_ends = [np.zeros(1, dtype=np.int64)]
    with open_atomic(prefix + ".bin") as f:  # the .json, written last, marks the shard complete
        for i in range(0, len(texts), ENCODE_BATCH):
            ids, lengths = encoder.encode_batch(texts[i:i + ENCODE_BATCH])
            if ids.size and ids.max() > np.iinfo(dtype).max:
                raise ValueError(f"{tokenizer_path}: id {ids.max()} does not fit {np.dtype(dtype).name}")
            ends = np.cumsum(lengths)
            f.write(np.insert(ids, ends, eos).astype(dtype).tobytes())  # EOS after each document
            doc_ends.append(doc_ends[-1][-1] + ends + np.arange(1, len(ends) + 1))
    offsets = np.concatenate(doc_ends)
    with open_atomic(prefix + ".idx") as f:
        f.write(offsets.tobytes())
    meta = {
        "source": source,
        "docs_part": part,
        "tokenizer": tokenizer_path,
        "tokenizer_sha256": tokenizer_hash(tokenizer_path),
        "encoder": encoder.backend,
        "eos_id": eos,
        "vocab_size": vocab,
        "dtype": np.dtype(dtype).name,
        "n_docs": len(texts),
        "n_tokens": int(offsets[-1]),
        "text_bytes": sum(len(t.encode("utf-8")) for t in texts),
    }
    write_json_atomic(prefix + ".json", meta)
    return meta


def read_shard(prefix: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """(tokens, offsets, metadata) of a token shard: memory-mapped on local disk, read elsewhere."""
    from gristmill.stages.mix.runs import load_tokens

    meta = read_json(prefix + ".json")
    tokens, offsets = load_tokens(prefix, meta["dtype"])
    return tokens, offsets, meta
