"""Grouped-query attention with RoPE and document masking, all through torch's own kernels.

Three ways to attend, chosen once per batch by `build_attention_mask`:
- mask None          -> SDPA `is_causal=True` (flash / cuDNN on GPU; both take GQA natively).
- mask a bool Tensor -> SDPA with an explicit [B, 1, T, T] mask (causal & same document). Any
                        mask rules out flash and cuDNN; on GPU this is the mem-efficient kernel,
                        which has no GQA support, so k/v heads are repeated first.
- mask a BlockMask   -> FlexAttention (GPU only): fully masked blocks are skipped.
The mask is built once per forward and shared by every layer.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Union

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from torch.nn.attention.flex_attention import BlockMask

AttentionMask = Union[None, torch.Tensor, "BlockMask"]


# --- RoPE --------------------------------------------------------------------------------------


def rope_tables(head_dim: int, max_seq_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables [max_seq_len, head_dim // 2] in float32, as in Llama."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_seq_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of x [B, T, H, D]; cos/sin broadcast as [B|1, T, 1, D/2].

    Same result as Llama's complex form; computed in at least float32, returned in x's dtype.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    pairs = x.to(dtype).unflatten(-1, (-1, 2))
    x0, x1 = pairs[..., 0], pairs[..., 1]
    cos, sin = cos.to(dtype), sin.to(dtype)
    rotated = torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)


# --- document masks ----------------------------------------------------------------------------


def document_segments(doc_ids: torch.Tensor) -> torch.Tensor:
    """Segment index per token [B, T]: a new document starts wherever doc_ids changes along a row.

    So a label that reappears later in the row (e.g. ids reused per row) is still a new document.
    """
    starts = torch.zeros_like(doc_ids, dtype=torch.long)
    starts[:, 1:] = (doc_ids[:, 1:] != doc_ids[:, :-1]).long()
    return starts.cumsum(dim=1)


def positions_in_documents(segments: torch.Tensor) -> torch.Tensor:
    """RoPE positions [B, T] that restart at 0 at every document start (index - document's first index)."""
    index = torch.arange(segments.shape[1], device=segments.device).expand_as(segments)
    is_start = torch.ones_like(segments, dtype=torch.bool)
    is_start[:, 1:] = segments[:, 1:] != segments[:, :-1]
    doc_start = torch.where(is_start, index, torch.zeros_like(index)).cummax(dim=1).values
    return index - doc_start


def dense_document_mask(segments: torch.Tensor) -> torch.Tensor:
    """Boolean SDPA mask [B, 1, T, T], True = attend: causal and within the same document."""
    T = segments.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=segments.device).tril()
    same_doc = segments[:, :, None] == segments[:, None, :]
    return (same_doc & causal)[:, None]


@functools.cache
def _compiled_flex() -> tuple:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    return torch.compile(create_block_mask), torch.compile(flex_attention)


def flex_document_mask(segments: torch.Tensor) -> BlockMask:
    """FlexAttention BlockMask for causal & same-document attention (GPU only)."""
    if segments.device.type != "cuda":
        raise RuntimeError(
            "attention='flex' needs a CUDA device (FlexAttention has no CPU backward); "
            "use attention='sdpa' on CPU"
        )
    create_block_mask, _ = _compiled_flex()

    def causal_same_document(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (segments[b, q_idx] == segments[b, kv_idx])

    B, T = segments.shape
    return create_block_mask(causal_same_document, B, None, T, T, device=segments.device)


def build_attention_mask(
    doc_ids: torch.Tensor | None, attention: str
) -> tuple[AttentionMask, torch.Tensor | None]:
    """Once per batch: (mask for every layer, per-token RoPE positions or None for 0..T-1)."""
    if doc_ids is None:
        return None, None
    segments = document_segments(doc_ids)
    positions = positions_in_documents(segments)
    if attention == "flex":
        return flex_document_mask(segments), positions
    return dense_document_mask(segments), positions


# --- the module --------------------------------------------------------------------------------


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """[B, H_kv, T, D] -> [B, H_kv * n_rep, T, D], each kv head repeated for its query group."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


class Attention(nn.Module):
    """Multi-head attention with grouped-query k/v heads and RoPE on q and k; no biases."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int):
        super().__init__()
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = dim // n_heads
        self.wq = nn.Linear(dim, n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(dim, n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(n_heads * self.head_dim, dim, bias=False)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: AttentionMask
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
        gqa = self.n_kv_heads != self.n_heads
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        elif isinstance(mask, torch.Tensor):
            n_rep = self.n_heads // self.n_kv_heads
            out = F.scaled_dot_product_attention(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), attn_mask=mask)
        else:
            _, flex_attention = _compiled_flex()
            out = flex_attention(q, k, v, block_mask=mask, enable_gqa=gqa)
        return self.wo(out.transpose(1, 2).reshape(B, T, -1))


# --- backend selection for benchmarks -----------------------------------------------------------

SDPA_BACKEND_NAMES = ("auto", "flash", "cudnn", "efficient", "math")


@contextlib.contextmanager
def sdpa_backends(name: str) -> Iterator[None]:
    """Restrict SDPA to one backend by name; "auto" leaves torch's own choice. Raises if none fits."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }
    if name == "auto":
        yield
        return
    if name not in backends:
        raise ValueError(f"unknown SDPA backend {name!r}; choose one of {', '.join(SDPA_BACKEND_NAMES)}")
    with sdpa_kernel([backends[name]]):
        yield
