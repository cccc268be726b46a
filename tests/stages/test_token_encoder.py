"""The fast encoder gives HF `tokenizers`' ids exactly, or falls back to HF and says why."""

from __future__ import annotations

import gzip
import json
import random
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tiktoken
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from gristmill.stages.token_encoder import (CHAR_TO_BYTE, GPT2_PATTERN, LLAMA3_PATTERN, TokenEncoder, encoder_from_json,
                                            load_encoder, utf8_safe)
from gristmill.stages.tokenize import read_shard, tokenize_part
from tests.conftest import DATA, require

EOS = "<|endoftext|>"
SENTENCES_PER_LANGUAGE = 25

EDGE_TEXTS = [
    "",
    "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 👩🏿‍💻 ❤️‍🔥 🇩🇪🇯🇵 1️⃣ 🫠",  # skin tones, ZWJ sequences, flags, keycaps
    "nul\x00esc\x1b[31mred\x1b[0m bell\x07 del\x7f \x1c\x1d\x1e\x1f end",
    "crlf\r\nline\rcr\n\ntab\t\tsep\u2028para\u2029nel\x85nbsp\xa0ideographic\u3000zwsp\u200bbom\ufeff",
    "e\u0301 a\u0308\u0304 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇ क्षि ﷺ \u0301leading mark",
    " " * 5000 + "x" + "\n" * 300 + "\t \t" * 700 + "y   \n  ",
    "1" * 3000 + " 3.14159 1,000,000 ٣٤٥ ߁߂ ⅫⅣ ½ 2024-11-22 0x1F",
    "it's I'm you're we've they'll he'd don't IT'S I'M YOU'RE WE'VE THEY'LL HE'D DON'T 'S 'T ''s x's",
    f"page text {EOS} more text{EOS}{EOS} <|endoftext|",
    "mixed: Straße İstanbul ﬁnance ǅemal Ωmega µ K Å ℌ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ＦＵＬＬ",
]
SURROGATE_TEXTS = ["lone \ud800 high", "lone \udfff low", "pair \ud83d\ude00 joined", "end \ud800"]


def lingua_by_language() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    with gzip.open(require(DATA / "langid" / "lingua_sentences.tsv.gz"), "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            lang, text = line.rstrip("\n").split("\t", 1)
            if len(by_lang[lang]) < SENTENCES_PER_LANGUAGE:
                by_lang[lang].append(text)
    return dict(by_lang)


@pytest.fixture(scope="module")
def lingua() -> dict[str, list[str]]:
    return lingua_by_language()


def train(pre_tokenizer, corpus: list[str], vocab_size: int = 1500) -> dict:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    return json.loads(tok.to_str())


GPT2_STYLE = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
LLAMA3_STYLE = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
])


@pytest.fixture(scope="module")
def trained(lingua) -> dict[str, str]:
    """Tokenizer JSONs trained here: GPT-2 style, Llama 3 style, and Llama 3's ignore_merges=true."""
    corpus = [s for sentences in lingua.values() for s in sentences] + EDGE_TEXTS
    llama3 = train(LLAMA3_STYLE, corpus)
    ignoring = {**llama3, "model": {**llama3["model"], "ignore_merges": True}}
    return {"gpt2": json.dumps(train(GPT2_STYLE, corpus)), "llama3": json.dumps(llama3),
            "llama3_ignore_merges": json.dumps(ignoring)}


def reference(tokenizer_json: str) -> Tokenizer:
    hf = Tokenizer.from_str(tokenizer_json)
    hf.encode_special_tokens = True
    return hf


@pytest.mark.parametrize("style", ["gpt2", "llama3", "llama3_ignore_merges"])
def test_fast_path_ids_equal_hf_on_every_language_and_edge_case(trained, lingua, style):
    encoder, hf = encoder_from_json(trained[style]), reference(trained[style])
    assert encoder.backend == "tiktoken" and encoder.why == ""
    texts = [s for sentences in lingua.values() for s in sentences] + EDGE_TEXTS + ["\n".join(EDGE_TEXTS)]
    ids, lengths = encoder.encode_batch(texts)
    expected = [e.ids for e in hf.encode_batch(texts, add_special_tokens=False)]
    assert lengths.tolist() == [len(e) for e in expected]
    assert ids.tolist() == [i for e in expected for i in e]
    assert len(lingua) >= 75  # every language of the sample docs (de en es ja pl fr pt it ru zh …) and more


@pytest.mark.parametrize("style", ["gpt2", "llama3"])
@pytest.mark.heavy
def test_every_code_point_is_split_and_merged_as_hf_does(trained, style):
    """Unicode classes (\\s, \\p{L}, \\p{N}) of HF's regex engine and tiktoken's agree on each character."""
    encoder, hf = encoder_from_json(trained[style]), reference(trained[style])
    code_points = [c for c in range(0x30000) if not 0xD800 <= c < 0xE000] + list(range(0xE0000, 0xE0080))
    text = "".join(f"a{chr(c)}1{chr(c)} " for c in code_points)
    assert encoder.encode(text) == hf.encode(text, add_special_tokens=False).ids


def test_special_token_text_is_not_the_special_token(trained):
    for tokenizer_json in (trained["gpt2"], trained["llama3"]):
        encoder, hf = encoder_from_json(tokenizer_json), reference(tokenizer_json)
        eos = hf.token_to_id(EOS)
        for text in (EOS, f"a{EOS}b", f"{EOS}{EOS}"):
            ids = encoder.encode(text)
            assert eos not in ids and len(ids) > 1
            assert ids == hf.encode(text, add_special_tokens=False).ids
            assert hf.decode(ids) == text


def test_lone_surrogates_become_u_fffd_on_both_paths(trained):
    fast = encoder_from_json(trained["gpt2"])
    slow = TokenEncoder(fast.hf, "tokenizers", why="forced for the test")
    assert utf8_safe("a\ud800b") == "a\ufffdb" and utf8_safe("\ud83d\ude00") == "😀"
    for text in SURROGATE_TEXTS:
        expected = fast.hf.encode(utf8_safe(text), add_special_tokens=False).ids
        assert fast.encode(text) == slow.encode(text) == expected
    batch = SURROGATE_TEXTS + ["plain"]
    for got, want in zip(fast.encode_batch(batch), slow.encode_batch(batch)):
        assert np.array_equal(got, want)


def handmade_bpe(merges: list[str], ignore_merges: bool = False, shuffle_ids: bool = False) -> str:
    """A byte-level BPE with the given merges; ids: EOS, 256 bytes, then merge results in order."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {EOS: 0, **{c: i + 1 for i, c in enumerate(sorted(alphabet))}}
    made = [m.replace(" ", "") for m in merges]
    ids = list(range(len(vocab), len(vocab) + len(made)))
    if shuffle_ids:
        ids.reverse()
    for token, token_id in zip(made, ids):
        vocab.setdefault(token, token_id)
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [{"id": 0, "content": EOS, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": ignore_merges, "vocab": vocab, "merges": merges},
    })


def test_a_handmade_vocab_in_merge_order_takes_the_fast_path():
    tokenizer_json = handmade_bpe(["t h", "th e", "Ġ the", "e e"])
    encoder = encoder_from_json(tokenizer_json)
    assert encoder.backend == "tiktoken", encoder.why
    for text in ("the", " the thee", "theeee the  the"):
        assert encoder.encode(text) == reference(tokenizer_json).encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("ignore_merges", [False, True])
def test_vocab_where_lowest_rank_differs_from_merge_order_falls_back(ignore_merges):
    """'the' is made as t+he, but 'th' merges before 'he': HF stops at [x, th, e]; tiktoken joins them."""
    tokenizer_json = handmade_bpe(["t h", "h e", "t he"], ignore_merges=ignore_merges)
    encoder = encoder_from_json(tokenizer_json)
    assert encoder.backend == "tokenizers" and "not an HF merge" in encoder.why
    vocab = json.loads(tokenizer_json)["model"]["vocab"]
    ranks = {bytes(CHAR_TO_BYTE[c] for c in t): i for t, i in vocab.items() if t != EOS}
    naive = tiktoken.Encoding("naive", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={})
    hf_ids = reference(tokenizer_json).encode("xthe", add_special_tokens=False).ids
    assert encoder.encode("xthe") == hf_ids == [vocab["x"], vocab["th"], vocab["e"]]
    assert naive.encode_ordinary("xthe") == [vocab["x"], vocab["the"]]  # what the check guards against


def test_random_vocabularies_on_the_fast_path_give_hf_ids():
    """Property check of the merge-order argument: random merge lists over a tiny alphabet (where
    tiktoken's rule and HF's merges collide most), random strings; fast path ⇒ same ids."""
    rng = random.Random(7)
    on_fast_path = 0
    for _ in range(150):
        tokens, merges = ["a", "b"], []
        for _ in range(rng.randint(1, 20)):
            a, b = rng.choice(tokens), rng.choice(tokens)
            if a + b not in tokens and len(a + b) <= 8:
                merges.append(f"{a} {b}")
                tokens.append(a + b)
        tokenizer_json = handmade_bpe(merges, ignore_merges=rng.random() < 0.5)
        encoder = encoder_from_json(tokenizer_json)
        if encoder.backend != "tiktoken":
            continue
        on_fast_path += 1
        hf = reference(tokenizer_json)
        texts = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 24))) for _ in range(20)]
        assert encoder.encode_batch(texts)[0].tolist() == [i for t in texts for i in hf.encode(t).ids], merges
    assert on_fast_path >= 40


def test_a_whitespace_run_past_tiktokens_regex_limit_is_encoded_by_hf(trained):
    """fancy-regex gives up on ~1M-character whitespace runs; that document alone goes through HF."""
    encoder = encoder_from_json(trained["gpt2"])
    text = "a" + " " * 1_000_001 + "b"
    assert encoder.backend == "tiktoken"
    assert encoder.encode(text) == reference(trained["gpt2"]).encode(text, add_special_tokens=False).ids


def test_merge_results_out_of_id_order_fall_back():
    encoder = encoder_from_json(handmade_bpe(["t h", "h e", "th e"], shuffle_ids=True))
    assert encoder.backend == "tokenizers" and "not above the previous one" in encoder.why


@pytest.mark.parametrize("change, why", [
    (lambda c: c["model"].update(dropout=0.1), "dropout"),
    (lambda c: c["model"].update(byte_fallback=True), "byte_fallback"),
    (lambda c: c.update(normalizer={"type": "Lowercase"}), "normalizer Lowercase"),
    (lambda c: c["pre_tokenizer"].update(add_prefix_space=True), "add_prefix_space"),
    (lambda c: c["added_tokens"].append({**c["added_tokens"][0], "id": 9999, "content": "<extra>",
                                         "special": False}), "not special"),
    (lambda c: c.update(pre_tokenizer={"type": "Whitespace"}), "pre-tokenizer Whitespace"),
])
def test_non_representable_settings_fall_back_with_a_reason(trained, change, why):
    cfg = json.loads(trained["gpt2"])
    change(cfg)
    tokenizer_json = json.dumps(cfg)
    encoder = encoder_from_json(tokenizer_json)
    assert encoder.backend == "tokenizers" and why in encoder.why
    if "dropout" not in why:  # dropout makes HF itself random
        text = f"Hello World <extra> {EOS} " + EDGE_TEXTS[1] + SURROGATE_TEXTS[0]
        ids = encoder.encode(text)
        assert ids == reference(tokenizer_json).encode(utf8_safe(text), add_special_tokens=False).ids
        assert encoder.hf.token_to_id(EOS) not in ids


def test_wordpiece_and_unknown_split_patterns_fall_back(trained):
    wp = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1, "##b": 2}, unk_token="[UNK]"))
    wp.normalizer, wp.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    encoder = encoder_from_json(wp.to_str())
    assert encoder.backend == "tokenizers" and "WordPiece" in encoder.why
    assert encoder.encode("Ab a") == [1, 2, 1]
    cfg = json.loads(trained["llama3"])
    cfg["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {"Regex": r"\p{L}+"}  # drops every other character
    assert "not a known gap-free regex" in encoder_from_json(json.dumps(cfg)).why


def test_tokenize_part_is_byte_identical_to_the_hf_path_and_keeps_boundaries(trained, lingua, tmp_path):
    texts = [s for sentences in lingua.values() for s in sentences[:3]] + EDGE_TEXTS
    part = str(tmp_path / "part.parquet")
    pq.write_table(pa.table({"id": [f"{i:020d}" for i in range(len(texts))], "text": texts}), part)
    tok_path = tmp_path / "tokenizer.json"
    tok_path.write_text(trained["llama3"])
    meta = tokenize_part(part, str(tok_path), str(tmp_path / "shard"), "src", EOS)
    assert meta["encoder"] == "tiktoken" and load_encoder(str(tok_path)).backend == "tiktoken"
    hf = reference(trained["llama3"])
    eos = hf.token_to_id(EOS)
    encodings = hf.encode_batch(texts, add_special_tokens=False)
    expected = [np.asarray(e.ids + [eos], dtype=np.uint16) for e in encodings]
    assert (tmp_path / "shard.bin").read_bytes() == np.concatenate(expected).tobytes()
    tokens, offsets, _ = read_shard(str(tmp_path / "shard"))
    assert offsets.tolist() == np.concatenate([[0], np.cumsum([len(e) for e in expected])]).tolist()
    assert int((tokens == eos).sum()) == len(texts) == meta["n_docs"]  # page text never adds a boundary
