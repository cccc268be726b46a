"""The tokenize stage: tokenizer training (byte-level BPE on a sample of kept text), then one
token shard (core/data.py) per docs part. Documents keep the order of their docs part, so row i
of the part is tokens[idx[i]:idx[i+1]].
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import fsspec
import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from pydantic import Field

from gristmill.core import layout
from gristmill.core.config import Strict
from gristmill.core.data import read_tokens
from gristmill.core.io import exists, open_atomic, read_json, read_parquet, write_json_atomic
from gristmill.stages.base import RunContext, final_documents
from gristmill.stages.token_encoder import load_encoder


class TokenizeConfig(Strict):
    tokenizer: str | None = None  # path of a tokenizer.json; None trains a byte-level BPE
    vocab_size: int = Field(default=32_000, ge=300, le=4_294_967_295)
    train_sample_bytes: int = Field(default=200_000_000, ge=1)  # text sampled to train the BPE
    eos_token: str = "<|endoftext|>"




def resolve_paths(raw: dict, resolve: Callable[[Any], Any]) -> None:
    """A given tokenizer, relative to the config file."""
    if isinstance(raw.get("tokenizer"), str):
        raw["tokenizer"] = resolve(raw["tokenizer"])


ENCODE_BATCH = 256


def run_stage(ctx: RunContext) -> list[dict]:
    """Train (unless given) the tokenizer, then write the token shards not yet written; returns
    the failures."""
    tcfg: TokenizeConfig = ctx.stages.tokenize
    run_dir = ctx.run_dir
    t0 = time.perf_counter()
    parts = [layout.docs_path(run_dir, s.part) for s in ctx.shards]
    tok_path = tcfg.tokenizer or layout.tokenizer_path(run_dir)
    if tcfg.tokenizer is None and not exists(tok_path):
        final = final_documents(ctx.stats)
        total = final.bytes_out if final else 0
        if failed := ctx.execute(train_tokenizer, [(parts, total, tcfg, tok_path)], "tokenizer")[1]:
            return [{"stage": "tokenizer_training", "part": None, "input": None, "error": failed[0][1]}]
    prefixes = [layout.tokens_prefix(run_dir, s.source, s.index) for s in ctx.shards]
    todo = [(part, tok_path, prefix, s.source, tcfg.eos_token)
            for part, prefix, s in zip(parts, prefixes, ctx.shards)
            if not exists(prefix + ".json")]
    _, failed = ctx.execute(tokenize_part, todo, "tokenize")
    if failed:
        return [{"stage": "tokenize", "part": a[0], "input": a[0], "error": err} for a, err in failed]
    st = ctx.stats.stage("tokenize")
    for prefix in prefixes:
        meta = read_json(prefix + ".json")
        st.docs_in += meta["n_docs"]
        st.docs_out += meta["n_docs"]
        st.bytes_in += meta["text_bytes"]
        st.events["tokens"] += meta["n_tokens"]
    st.seconds += time.perf_counter() - t0
    ctx.outputs.update(tokenizer=tok_path, tokens=f"{run_dir}/tokens")
    return []


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
    meta = read_json(prefix + ".json")
    tokens, offsets, _ = read_tokens(prefix, meta["dtype"])
    return tokens, offsets, meta
