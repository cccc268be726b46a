"""A Llama-style decoder: RMSNorm, RoPE, grouped-query attention, SwiGLU, optional tied embeddings.

Built for the FSDP2 flow: construct on the meta device, shard, `to_empty(device=...)`, then
`init_weights()`. Layers live in a ModuleDict keyed "0", "1", ... so checkpoint FQNs stay stable.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gristmill.trainer.attention import Attention, AttentionMask, build_attention_mask, rope_tables


@dataclass
class ModelConfig:
    dim: int = 768
    n_layers: int = 12
    n_heads: int = 12
    n_kv_heads: int | None = None  # None: = n_heads (no grouping)
    ffn_hidden: int | None = None  # None: Llama's int(2/3 * 4 * dim) rounded up to multiple_of
    multiple_of: int = 256
    vocab_size: int = 32000
    max_seq_len: int = 2048
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    tie_embeddings: bool = False
    attention: str = "sdpa"  # "sdpa" | "flex" (flex: GPU only)
    doc_masking: bool = True  # with doc_ids given: attend within documents, RoPE restarts per document

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.ffn_hidden is None:
            hidden = int(2 * (4 * self.dim) / 3)
            self.ffn_hidden = self.multiple_of * math.ceil(hidden / self.multiple_of)
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError(f"need n_heads | dim and n_kv_heads | n_heads, got {self}")
        if self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if self.attention not in ("sdpa", "flex"):
            raise ValueError(f"attention must be 'sdpa' or 'flex', got {self.attention!r}")

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


# Totals at vocab 32000, untied; in brackets without the 32000 x dim input table (the N of 6N):
#   tiny: 64 x 2L, 4 heads, 2 kv      ->     4,194,624 (2,146,624; vocab dominates, tests use a small one)
#   125m: 768 x 12L, 12 heads (MHA)   ->   134,105,856 (109,529,856)    ~ GPT-2 small with Llama blocks
#   350m: 1024 x 24L, 16 heads (MHA)  ->   373,867,520 (341,099,520)    ~ GPT-2 medium
#   1b:   2048 x 22L, 32 heads, 8 kv  -> 1,123,117,056 (1,057,581,056)  ~ TinyLlama 1.1B (it has 4 kv)
# Tied embeddings subtract one 32000 x dim table from the total.
SIZES: dict[str, dict] = {
    "tiny": dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, multiple_of=32),  # head_dim 16, ffn 192
    "125m": dict(dim=768, n_layers=12, n_heads=12, n_kv_heads=12),  # head_dim 64, ffn 2048
    "350m": dict(dim=1024, n_layers=24, n_heads=16, n_kv_heads=16),  # head_dim 64, ffn 2816
    "1b": dict(dim=2048, n_layers=22, n_heads=32, n_kv_heads=8),  # head_dim 64, ffn 5632
}


def model_config(size: str, vocab_size: int, max_seq_len: int, **overrides) -> ModelConfig:
    """The named size with the tokenizer's vocab and the run's sequence length; overrides win."""
    if size not in SIZES:
        raise ValueError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    return ModelConfig(**{**SIZES[size], "vocab_size": vocab_size, "max_seq_len": max_seq_len, **overrides})


class FeedForward(nn.Module):
    """SwiGLU: w2(silu(w1 x) * w3 x)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)), then + feed_forward(norm(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.attention = Attention(config.dim, config.n_heads, config.n_kv_heads)
        self.ffn_norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.feed_forward = FeedForward(config.dim, config.ffn_hidden)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: AttentionMask
    ) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos, sin, mask)
        return x + self.feed_forward(self.ffn_norm(x))


class Transformer(nn.Module):
    """Token embedding -> n_layers TransformerBlocks -> RMSNorm -> output projection to the vocab."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleDict({str(i): TransformerBlock(config) for i in range(config.n_layers)})
        self.norm = nn.RMSNorm(config.dim, eps=config.norm_eps)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        # Derived from the config, so not saved; init_weights() rebuilds them after to_empty().
        cos, sin = rope_tables(config.head_dim, config.max_seq_len, config.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, tokens: torch.Tensor, doc_ids: torch.Tensor | None = None, *,
                mask: torch.Tensor | None = None, positions: torch.Tensor | None = None,
                select: torch.Tensor | None = None) -> torch.Tensor:
        """tokens, doc_ids: [B, T] -> logits [B, T, vocab] (in the compute dtype).

        Or, instead of doc_ids, an explicit boolean `mask` [B, 1, T, T] (True = attend) with each
        token's RoPE `positions` [B, T] (evaluation's packed questions); `select` (flat indices into
        B * T) computes the logits [len(select), vocab] of those positions only.
        """
        T = tokens.shape[1]
        if T > self.config.max_seq_len:
            raise ValueError(f"sequence length {T} exceeds max_seq_len {self.config.max_seq_len}")
        if mask is None:
            mask, positions = build_attention_mask(
                doc_ids if self.config.doc_masking else None, self.config.attention
            )
        if positions is None:  # plain causal: positions 0..T-1, broadcast over the batch
            cos, sin = self.rope_cos[None, :T], self.rope_sin[None, :T]
        else:
            cos, sin = self.rope_cos[positions], self.rope_sin[positions]
        cos, sin = cos[:, :, None], sin[:, :, None]  # [B|1, T, 1, head_dim/2]: broadcast over heads
        h = self.tok_embeddings(tokens)
        for layer in self.layers.values():
            h = layer(h, cos, sin, mask)
        if select is not None:
            h = h.flatten(0, 1)[select]
        return self.output(self.norm(h))

    @torch.no_grad()
    def init_weights(self, seed: int | None = None) -> None:
        """Explicit init, valid after to_empty(): normal(0, 0.02) for embeddings and linears, the
        residual-stream projections (wo, w2) scaled by 1/sqrt(2 * n_layers) as in GPT-2, norms to 1.

        seed: reseed torch's RNG for the draw (inside fork_rng, so the caller's RNG is untouched).
        """
        config = self.config
        self.tie_embeddings()
        device = self.tok_embeddings.weight.device
        fork = contextlib.nullcontext()
        if seed is not None:
            devices = [device] if device.type not in ("cpu", "meta") else []
            fork = torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda")
        with fork:
            if seed is not None:
                torch.manual_seed(seed)
            std, residual_std = 0.02, 0.02 / math.sqrt(2 * config.n_layers)
            nn.init.normal_(self.tok_embeddings.weight, std=std)
            for layer in self.layers.values():
                attn, ffn = layer.attention, layer.feed_forward
                for linear in (attn.wq, attn.wk, attn.wv, ffn.w1, ffn.w3):
                    nn.init.normal_(linear.weight, std=std)
                nn.init.normal_(attn.wo.weight, std=residual_std)
                nn.init.normal_(ffn.w2.weight, std=residual_std)
                layer.attention_norm.reset_parameters()
                layer.ffn_norm.reset_parameters()
            self.norm.reset_parameters()
            if not config.tie_embeddings:
                nn.init.normal_(self.output.weight, std=std)
        self.init_rope()

    def tie_embeddings(self) -> None:
        """With tied embeddings, one table again (to_empty() gives each module its own copy)."""
        if self.config.tie_embeddings and self.output.weight is not self.tok_embeddings.weight:
            self.output.weight = self.tok_embeddings.weight

    @torch.no_grad()
    def init_rope(self) -> None:
        """The RoPE tables, derived from the config and never saved (after to_empty())."""
        cos, sin = rope_tables(self.config.head_dim, self.config.max_seq_len, self.config.rope_theta)
        self.rope_cos.copy_(cos)
        self.rope_sin.copy_(sin)

    def num_params(self, exclude_embedding: bool = False) -> int:
        """Parameter count, tied weights once; exclude_embedding drops the token-embedding table
        (when tied that table is also the output projection)."""
        total = sum(p.numel() for p in self.parameters())  # parameters() yields shared tensors once
        return total - self.tok_embeddings.weight.numel() if exclude_embedding else total

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward), torchtitan's formula:

            6 * N + 12 * L * H * Q * T

        N = parameters without the embedding table (kept when tied: it is then the output matmul),
        L layers, H query heads, Q head_dim, T = seq_len. Assumes no causal or document-mask
        discount on attention and counts no activation recompute (MFU, not HFU).
        """
        c = self.config
        n = self.num_params(exclude_embedding=not c.tie_embeddings)
        return 6.0 * n + 12.0 * c.n_layers * c.n_heads * c.head_dim * seq_len

    def describe(self) -> str:
        c = self.config
        return (
            f"Transformer {self.num_params() / 1e6:.1f}M params "
            f"({self.num_params(exclude_embedding=True) / 1e6:.1f}M non-embedding): dim {c.dim}, "
            f"{c.n_layers} layers, {c.n_heads} heads / {c.n_kv_heads} kv (head_dim {c.head_dim}), "
            f"ffn {c.ffn_hidden}, vocab {c.vocab_size}, seq {c.max_seq_len}, attention {c.attention}, "
            f"doc_masking {'on' if c.doc_masking else 'off'}, "
            f"embeddings {'tied' if c.tie_embeddings else 'untied'}"
        )
