"""`export_hf`: one checkpoint as a Hugging Face Llama model directory.

    <out>/config.json              LlamaForCausalLM config (transformers 5.x keys, plus 4.x's)
    <out>/model.safetensors        the weights under transformers' names, float32
    <out>/tokenizer.json           the run's tokenizer, byte for byte
    <out>/tokenizer_config.json    PreTrainedTokenizerFast: EOS, no BOS, model_max_length
    <out>/gristmill.json           which run, checkpoint and step the weights come from

`AutoModelForCausalLM.from_pretrained(out)` then computes the logits of our `Transformer` (plain
causal attention, positions 0..T-1). Our RoPE rotates interleaved pairs (x[2i], x[2i+1]), as Meta's
Llama does, and transformers rotates halves (x[i], x[i + D/2]), so wq and wk are permuted per head as
in transformers' convert_llama_weights_to_hf.py. The directory is built under a temporary sibling
name and renamed into place last: a failed export leaves no `<out>`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import fsspec
import torch
from fsspec.implementations.local import LocalFileSystem
from safetensors.torch import save_file
from tokenizers import Tokenizer

from gristmill.core.config import ConfigError
from gristmill.core.io import commit, temp_path
from gristmill.trainer.checkpoint import find_checkpoint, load_model, read_train_state
from gristmill.trainer.model import ModelConfig, Transformer

FORMAT = "gristmill-hf-export/1"

# Our per-layer module names -> transformers' (under layers.N / model.layers.N).
LAYER_NAMES = {
    "attention.wq": "self_attn.q_proj",
    "attention.wk": "self_attn.k_proj",
    "attention.wv": "self_attn.v_proj",
    "attention.wo": "self_attn.o_proj",
    "feed_forward.w1": "mlp.gate_proj",
    "feed_forward.w3": "mlp.up_proj",
    "feed_forward.w2": "mlp.down_proj",
    "attention_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def interleaved_to_halves(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Permute the output rows of a q/k projection [n_heads * head_dim, dim] from interleaved RoPE
    pairs to rotate_half order: within each head, the even rows first, then the odd ones."""
    out, dim = w.shape
    head_dim = out // n_heads
    return w.view(n_heads, head_dim // 2, 2, dim).transpose(1, 2).reshape(out, dim)


def hf_state_dict(model: Transformer) -> dict[str, torch.Tensor]:
    """The model's weights under transformers' LlamaForCausalLM names (tied: no lm_head.weight)."""
    c = model.config
    tensors = {"model.embed_tokens.weight": model.tok_embeddings.weight,
               "model.norm.weight": model.norm.weight}
    if not c.tie_embeddings:
        tensors["lm_head.weight"] = model.output.weight
    for i, layer in model.layers.items():
        for ours, theirs in LAYER_NAMES.items():
            w = layer.get_submodule(ours).weight
            if ours == "attention.wq":
                w = interleaved_to_halves(w, c.n_heads)
            elif ours == "attention.wk":
                w = interleaved_to_halves(w, c.n_kv_heads)
            tensors[f"model.layers.{i}.{theirs}.weight"] = w
    return {k: v.detach().to(torch.float32).contiguous().clone() for k, v in tensors.items()}


def hf_config(c: ModelConfig, eos_id: int | None) -> dict:
    """config.json for LlamaForCausalLM. transformers 5.x reads `rope_parameters` and `dtype`;
    the legacy `rope_theta` and `torch_dtype` are kept for 4.x readers (5.x folds them in)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": c.dim,
        "intermediate_size": c.ffn_hidden,
        "num_hidden_layers": c.n_layers,
        "num_attention_heads": c.n_heads,
        "num_key_value_heads": c.n_kv_heads,
        "head_dim": c.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": c.norm_eps,
        "rope_parameters": {"rope_type": "default", "rope_theta": c.rope_theta},
        "rope_theta": c.rope_theta,
        "max_position_embeddings": c.max_seq_len,
        "vocab_size": c.vocab_size,
        "tie_word_embeddings": c.tie_embeddings,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "mlp_bias": False,
        "initializer_range": 0.02,
        "bos_token_id": None,
        "eos_token_id": eos_id,
        "pad_token_id": None,
        "use_cache": True,
        "dtype": "float32",
        "torch_dtype": "float32",
    }


def tokenizer_files(card_tokenizer: dict, max_seq_len: int) -> tuple[bytes, dict, int | None]:
    """The tokenizer's bytes (checked against the card's sha256), its tokenizer_config.json and the
    EOS id; ConfigError when the card names no readable tokenizer or a different one."""
    path = card_tokenizer.get("path")
    if not path:
        raise ConfigError("the run's model card names no tokenizer path; cannot export a tokenizer")
    try:
        with fsspec.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the run's tokenizer ({e})") from None
    sha = card_tokenizer.get("sha256") or ""
    if sha and not hashlib.sha256(data).hexdigest().startswith(sha):
        raise ConfigError(f"{path}: sha256 differs from the run's ({sha}); the tokenizer was replaced")
    eos_id = card_tokenizer.get("eos_id")
    eos = Tokenizer.from_str(data.decode("utf-8")).id_to_token(eos_id) if eos_id is not None else None
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": eos,
        "bos_token": None,
        "unk_token": None,
        "pad_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": max_seq_len,
        "clean_up_tokenization_spaces": False,
    }
    return data, config, eos_id


def export_hf(checkpoint: Path, out_dir: Path) -> Path:
    """Write the checkpoint (a checkpoint directory, or a run directory for its latest) as a Hugging
    Face Llama model directory at out_dir; returns out_dir. ConfigError (one line) when out_dir exists
    and is not empty, or the checkpoint, its model card or its tokenizer is missing."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ConfigError(f"{out_dir}: exists and is not empty; export into a new or empty directory")
    ckpt = find_checkpoint(str(checkpoint))
    model, card = load_model(ckpt)
    tok_bytes, tok_config, eos_id = tokenizer_files(card.get("tokenizer") or {}, model.config.max_seq_len)
    provenance = {
        "format": FORMAT,
        "run": str(ckpt.parent.parent.resolve()),
        "checkpoint": str(ckpt.resolve()),
        "step": read_train_state(ckpt).get("step"),
        "mixture": card.get("mixture"),
        "tokenizer": card.get("tokenizer"),
        "model": card["model"],
    }
    final = out_dir.resolve()
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(temp_path(str(final)))
    tmp.mkdir()
    try:
        save_file(hf_state_dict(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "tokenizer.json").write_bytes(tok_bytes)
        for name, obj in (("config.json", hf_config(model.config, eos_id)),
                          ("tokenizer_config.json", tok_config), ("gristmill.json", provenance)):
            (tmp / name).write_text(json.dumps(obj, indent=1) + "\n")
        if final.exists():
            final.rmdir()  # empty (checked above); a file put there since makes this fail
        commit(LocalFileSystem(), str(tmp), str(final))  # a rename: tmp is a sibling
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
