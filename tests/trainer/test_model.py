"""trainer/model.py and trainer/attention.py on CPU: document masking, GQA, tying, init, FLOPs, training."""

from __future__ import annotations

import math

import pytest
import torch

from gristmill.trainer.attention import document_segments, positions_in_documents, sdpa_backends
from gristmill.trainer.model import SIZES, ModelConfig, Transformer, model_config

VOCAB = 256
DOC_LENGTHS = [(37, 50, 41), (60, 20, 48)]  # two packed rows of 128 tokens, three documents each


def tiny(**overrides) -> Transformer:
    torch.manual_seed(0)
    model = Transformer(model_config("tiny", vocab_size=VOCAB, max_seq_len=256, **overrides))
    model.init_weights(seed=0)
    return model.eval()


def packed_batch(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, VOCAB, (len(DOC_LENGTHS), sum(DOC_LENGTHS[0])), generator=gen)
    rows = [torch.repeat_interleave(torch.arange(len(n)), torch.tensor(n)) for n in DOC_LENGTHS]
    doc_ids = torch.stack(rows)
    return tokens, doc_ids


def test_document_masking_matches_each_document_alone():
    model = tiny(doc_masking=True)
    tokens, doc_ids = packed_batch()
    with torch.no_grad():
        packed = model(tokens, doc_ids)
        unmasked = tiny(doc_masking=False)(tokens, doc_ids)
    for row, lengths in enumerate(DOC_LENGTHS):
        start = 0
        for n, length in enumerate(lengths):
            with torch.no_grad():
                alone = model(tokens[row : row + 1, start : start + length])[0]  # positions 0.., causal
            torch.testing.assert_close(packed[row, start : start + length], alone, atol=1e-5, rtol=0)
            if n > 0:  # without the mask a later document sees the earlier ones and RoPE runs on
                gap = (unmasked[row, start : start + length] - alone).abs().max().item()
                assert gap > 1e-3, f"doc masking off should change document {n}'s logits, gap {gap}"
            start += length


def test_positions_restart_at_every_document_and_reused_ids_split():
    doc_ids = torch.tensor([[7, 7, 7, 3, 3, 7, 7]])  # id 7 comes back: still a new document
    assert positions_in_documents(document_segments(doc_ids)).tolist() == [[0, 1, 2, 0, 1, 0, 1]]


def test_grouped_query_attention_shapes():
    tokens, doc_ids = packed_batch()
    grouped, full = tiny(n_kv_heads=2), tiny(n_kv_heads=4)
    assert grouped.layers["0"].attention.wk.weight.shape == (2 * 16, 64)
    assert full.layers["0"].attention.wk.weight.shape == (4 * 16, 64)
    for model in (grouped, full):
        for ids in (doc_ids, None):  # explicit-mask path and is_causal path (enable_gqa)
            with torch.no_grad():
                assert model(tokens, ids).shape == (*tokens.shape, VOCAB)


def expected_params(c: ModelConfig) -> int:
    q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    per_layer = c.dim * q + 2 * c.dim * kv + q * c.dim + 3 * c.dim * c.ffn_hidden + 2 * c.dim
    tables = (1 if c.tie_embeddings else 2) * c.vocab_size * c.dim
    return c.n_layers * per_layer + tables + c.dim


@pytest.mark.parametrize("size", list(SIZES))
def test_parameter_count_of_each_size(size):
    config = model_config(size, vocab_size=32000, max_seq_len=2048)
    with torch.device("meta"):
        model = Transformer(config)
    print(size, model.describe())
    assert model.num_params() == expected_params(config)
    assert model.num_params(exclude_embedding=True) == expected_params(config) - 32000 * config.dim
    assert config.head_dim in (64, 128) or size == "tiny"


def test_known_totals_and_unknown_size():
    totals = {"125m": 134_105_856, "350m": 373_867_520, "1b": 1_123_117_056}
    for size, total in totals.items():
        with torch.device("meta"):
            assert Transformer(model_config(size, 32000, 2048)).num_params() == total
    with pytest.raises(ValueError, match="tiny, 125m, 350m, 1b"):
        model_config("7b", 32000, 2048)


def test_tied_embeddings_share_one_tensor():
    tied, untied = tiny(tie_embeddings=True), tiny(tie_embeddings=False)
    assert tied.output.weight is tied.tok_embeddings.weight
    assert untied.output.weight is not untied.tok_embeddings.weight
    table = VOCAB * 64
    assert untied.num_params() - tied.num_params() == table
    assert sum(1 for p in tied.parameters() if p.shape == (VOCAB, 64)) == 1
    assert sum(1 for p in untied.parameters() if p.shape == (VOCAB, 64)) == 2


@pytest.mark.parametrize("doc_masking", [True, False])
def test_future_tokens_do_not_change_earlier_logits(doc_masking):
    model = tiny(doc_masking=doc_masking)
    tokens, doc_ids = packed_batch()
    changed = tokens.clone()
    changed[:, 70:] = (changed[:, 70:] + 1) % VOCAB
    with torch.no_grad():
        before, after = model(tokens, doc_ids), model(changed, doc_ids)
    torch.testing.assert_close(before[:, :70], after[:, :70], atol=0, rtol=0)
    assert not torch.allclose(before[:, 70:], after[:, 70:])


@pytest.mark.parametrize("tie", [False, True])
def test_meta_build_to_empty_init_is_finite_and_seeded(tie):
    config = model_config("tiny", vocab_size=VOCAB, max_seq_len=256, tie_embeddings=tie)
    models = []
    for _ in range(2):
        with torch.device("meta"):
            model = Transformer(config)
        model.to_empty(device="cpu")
        model.init_weights(seed=123)
        models.append(model)
    a, b = models
    assert a.state_dict().keys() == b.state_dict().keys()
    assert "rope_cos" not in a.state_dict() and "layers.1.attention.wq.weight" in a.state_dict()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name
    assert (a.output.weight is a.tok_embeddings.weight) == tie
    reference = Transformer(config)
    torch.testing.assert_close(a.rope_cos, reference.rope_cos, atol=0, rtol=0)
    tokens, doc_ids = packed_batch()
    with torch.no_grad():
        assert torch.isfinite(a(tokens, doc_ids)).all()
    a.init_weights(seed=124)
    assert not torch.equal(a.layers["0"].attention.wq.weight, b.layers["0"].attention.wq.weight)
    wo_std = a.layers["0"].attention.wo.weight.std().item()
    assert abs(wo_std - 0.02 / math.sqrt(2 * config.n_layers)) < 0.002


def test_flops_per_token_by_hand():
    # tiny, vocab 256: dim 64, 2 layers, 4 heads of 16, 2 kv heads, ffn 192
    layer = 64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 192 + 2 * 64
    n_untied = 2 * layer + 64 + 256 * 64  # input table excluded, output projection kept
    attention = 12 * 2 * 4 * 16 * 128
    assert tiny().flops_per_token(128) == 6 * n_untied + attention
    # tied: the table is the output projection, so it stays in N
    assert tiny(tie_embeddings=True).flops_per_token(128) == 6 * n_untied + attention


def test_tiny_model_overfits_one_batch_through_the_document_mask():
    model = tiny(doc_masking=True).train()
    tokens, doc_ids = packed_batch()
    inputs, targets, ids = tokens[:, :-1], tokens[:, 1:], doc_ids[:, :-1]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    losses = []
    for _ in range(60):
        logits = model(inputs, ids)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0], losses[::10]


def test_flex_attention_refuses_cpu_and_backend_names():
    model = tiny(attention="flex")
    tokens, doc_ids = packed_batch()
    with pytest.raises(RuntimeError, match="CUDA"):
        model(tokens, doc_ids)
    with torch.no_grad(), sdpa_backends("math"):
        assert model(tokens).shape == (*tokens.shape, VOCAB)  # no doc_ids: plain causal SDPA
    with pytest.raises(ValueError, match="flash"):
        with sdpa_backends("fastest"):
            pass
