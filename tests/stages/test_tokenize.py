"""Tokenizer training and token shards, without Ray."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gristmill.stages.tokenize import TokenizeConfig
from gristmill.stages.tokenize import load_tokenizer, read_shard, tokenize_part, train_tokenizer

TEXTS = [
    "Zażółć gęślą jaźń — a Polish pangram.\n\nSecond paragraph.",
    "日本語のテキストです。改行も\nあります。",
    "Emoji 👋🏽 and combining marks: é (e\u0301), tabs\tand  double  spaces.  ",
    "",
    "The same sentence twice. The same sentence twice.",
] * 20


def write_part(path, texts):
    ids = [f"{i:020d}" for i in range(len(texts))]
    pq.write_table(pa.table({"id": ids, "text": texts}), path)


def test_trained_tokenizer_round_trips_and_shards_hold_documents(tmp_path):
    part = str(tmp_path / "part-00000.parquet")
    write_part(part, TEXTS)
    cfg = TokenizeConfig(vocab_size=400)
    tok_path = str(tmp_path / "tokenizer.json")
    info = train_tokenizer([part], total_bytes=10_000, cfg=cfg, out_path=tok_path)
    assert info["vocab_size"] <= 400
    meta = tokenize_part(part, tok_path, str(tmp_path / "tokens" / "src" / "shard-00000"), "src", cfg.eos_token)
    tokens, offsets, meta2 = read_shard(str(tmp_path / "tokens" / "src" / "shard-00000"))
    assert meta == meta2 and meta["n_docs"] == len(TEXTS) and meta["dtype"] == "uint16"
    tok = load_tokenizer(tok_path)
    eos = tok.token_to_id(cfg.eos_token)
    assert offsets[0] == 0 and np.all(np.diff(offsets) >= 1)  # an empty document still gets its EOS
    for i, text in enumerate(TEXTS):
        ids = tokens[offsets[i]:offsets[i + 1]].tolist()
        assert ids[-1] == eos
        assert tok.decode(ids[:-1], skip_special_tokens=False) == text


def test_a_given_tokenizer_is_used_as_is(tmp_path):
    """tokenize.tokenizer: a path — another run's tokenizer gives identical shards."""
    part = str(tmp_path / "p.parquet")
    write_part(part, TEXTS)
    cfg = TokenizeConfig(vocab_size=300)
    tok_path = str(tmp_path / "given.json")
    train_tokenizer([part], 10_000, cfg, tok_path)
    a = tokenize_part(part, tok_path, str(tmp_path / "a"), "s", cfg.eos_token)
    b = tokenize_part(part, tok_path, str(tmp_path / "b"), "s", cfg.eos_token)
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()
    assert a["tokenizer_sha256"] == b["tokenizer_sha256"]


def test_training_sample_is_deterministic(tmp_path):
    part = str(tmp_path / "p.parquet")
    write_part(part, TEXTS)
    cfg = TokenizeConfig(vocab_size=300, train_sample_bytes=2_000)  # a fraction of the text
    for name in ("x.json", "y.json"):
        train_tokenizer([part], total_bytes=10_000, cfg=cfg, out_path=str(tmp_path / name))
    assert (tmp_path / "x.json").read_bytes() == (tmp_path / "y.json").read_bytes()
