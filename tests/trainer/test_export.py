"""trainer/export.py: a DCP checkpoint written as a Hugging Face Llama directory, checked by
transformers itself (LlamaForCausalLM's logits, AutoTokenizer's ids) on real text through a real
byte-level BPE trained on the scrapinghub gold article bodies in ../shared/data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.distributed.checkpoint as dcp
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from gristmill.core.config import ConfigError
from gristmill.trainer import export
from gristmill.trainer.checkpoint import load_model, write_model_card
from gristmill.trainer.export import export_hf
from gristmill.trainer.model import Transformer, model_config
from tests.conftest import DATA, require

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:torch.distributed is disabled")]

EOS = "<|endoftext|>"
SEQ = 128
TRAIN_DOCS = 60  # tokenizer trained on these articles; the logits are compared on the others


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Tokenizer, list[str]]:
    """A 512-token byte-level BPE (as stages/tokenize.py trains it) saved as JSON, and the texts."""
    gold = require(DATA / "extraction" / "scrapinghub" / "ground-truth.json")
    texts = [v["articleBody"] for _, v in sorted(json.loads(gold.read_text(encoding="utf-8")).items())]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts[:TRAIN_DOCS], trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    path.write_text(tok.to_str())
    return path, tok, texts[TRAIN_DOCS:]


def make_run(root: Path, tok_path: Path, tok: Tokenizer, tied: bool) -> tuple[Path, Transformer]:
    """A run directory with one DCP checkpoint (step 1) of a tiny GQA model (4 heads, 2 kv) whose
    norms are perturbed off 1, and its model card naming the tokenizer."""
    config = model_config("tiny", vocab_size=tok.get_vocab_size(), max_seq_len=SEQ, tie_embeddings=tied)
    assert (config.n_heads, config.n_kv_heads) == (4, 2)
    model = Transformer(config)
    model.init_weights(seed=3)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=gen))
    run = root / "run"
    ckpt = run / "checkpoints" / "step-000001"
    dcp.save({"model": model.state_dict()}, checkpoint_id=str(ckpt))
    (ckpt / "train_state.json").write_text(json.dumps({"step": 1}))
    (run / "checkpoints" / "latest").write_text(ckpt.name)
    card_tok = {"path": str(tok_path), "sha256": hashlib.sha256(tok_path.read_bytes()).hexdigest()[:16],
                "vocab_size": tok.get_vocab_size(), "eos_id": tok.token_to_id(EOS), "dtype": "uint16"}
    write_model_card(str(run), config, str(root / "mix.json"), card_tok)
    return run, model.eval()


def token_rows(tok: Tokenizer, texts: list[str], rows: int) -> torch.Tensor:
    """Real text through the real tokenizer, documents joined by EOS, cut into rows of SEQ tokens."""
    ids: list[int] = []
    for text in texts:
        ids += tok.encode(text).ids + [tok.token_to_id(EOS)]
        if len(ids) >= rows * SEQ:
            break
    return torch.tensor(ids[: rows * SEQ]).view(rows, SEQ)


def hf_logits(out: Path, tokens: torch.Tensor) -> torch.Tensor:
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    hf = AutoModelForCausalLM.from_pretrained(out, local_files_only=True, dtype=torch.float32).eval()
    assert isinstance(hf, LlamaForCausalLM)
    with torch.no_grad():
        return hf(tokens).logits


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_transformers_computes_our_logits_and_ids(corpus, tmp_path, tied):
    """LlamaForCausalLM on the export gives our Transformer's logits (doc_ids=None: causal,
    positions 0..T-1) on 4 rows of 128 real tokens to within 1e-4 (measured: max |diff| ~ 2e-7 to
    4e-7, logits up to ~1.6), and AutoTokenizer gives our tokenizer's ids, with EOS and no BOS."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok_path, tok, texts = corpus
    run, model = make_run(tmp_path, tok_path, tok, tied)
    loaded, _ = load_model(run / "checkpoints" / "step-000001")
    torch.testing.assert_close(loaded.state_dict(), model.state_dict(), atol=0, rtol=0)
    (tmp_path / "hf").mkdir()  # an existing empty directory is fine
    out = export_hf(run, tmp_path / "hf")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "gristmill.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    assert not list(tmp_path.glob(".tmp-*"))
    assert json.loads((out / "gristmill.json").read_text())["step"] == 1
    assert (out / "tokenizer.json").read_bytes() == tok_path.read_bytes()

    tokens = token_rows(tok, texts, rows=4)
    with torch.no_grad():
        ours = model(tokens)
    theirs = hf_logits(out, tokens)
    gap = (ours - theirs).abs().max().item()
    assert gap <= 1e-4, f"max |logit difference| {gap}"
    assert ours.abs().max().item() > 0.1  # not a vacuous comparison

    hf_tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert isinstance(hf_tok, PreTrainedTokenizerFast)
    assert (hf_tok.eos_token, hf_tok.eos_token_id, hf_tok.bos_token) == (EOS, tok.token_to_id(EOS), None)
    assert hf_tok.model_max_length == SEQ
    text = texts[-1][:2000]
    assert hf_tok(text)["input_ids"] == tok.encode(text).ids
    assert hf_tok.decode(tok.encode(text).ids) == text


def test_rope_permutation_is_needed(corpus, tmp_path, monkeypatch):
    """Without the per-head q/k permutation transformers' logits differ: the check above has teeth."""
    tok_path, tok, texts = corpus
    run, model = make_run(tmp_path, tok_path, tok, tied=False)
    monkeypatch.setattr(export, "interleaved_to_halves", lambda w, n_heads: w)
    tokens = token_rows(tok, texts, rows=2)
    with torch.no_grad():
        ours = model(tokens)
    assert (ours - hf_logits(export_hf(run, tmp_path / "hf"), tokens)).abs().max().item() > 1e-3


def test_refuses_non_empty_target_and_failure_leaves_nothing(corpus, tmp_path, monkeypatch):
    tok_path, tok, _ = corpus
    run, _ = make_run(tmp_path, tok_path, tok, tied=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        export_hf(run, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    def half_write(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(export, "save_file", half_write)
    with pytest.raises(OSError, match="disk full"):
        export_hf(run, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_refuses_a_replaced_tokenizer(corpus, tmp_path):
    tok_path, tok, _ = corpus
    own = tmp_path / "tokenizer.json"
    own.write_bytes(tok_path.read_bytes())
    run, _ = make_run(tmp_path, own, tok, tied=False)
    own.write_text(own.read_text().replace(EOS, "<|eot|>"))
    with pytest.raises(ConfigError, match="sha256"):
        export_hf(run, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
