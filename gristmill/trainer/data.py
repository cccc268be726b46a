"""Resumable, seeded batches over a gristmill mixture (README "## Mixture"); numpy + torch only.

Packing: a split's shards, in order, form one token stream (documents in their shuffled order).
It is cut into rows of seq_len + 1 tokens advancing by seq_len (inputs = row[:-1], targets =
row[1:]), so every token after the first is a target once per epoch, except the last
(n_tokens - 1) % seq_len, which an epoch leaves out. A row may span documents and shards.

Global row g is row g % R of epoch g // R (R = rows_per_epoch). Rank r of W takes global rows
r, r + W, r + 2W, ...: ranks see disjoint rows and together the stream one process sees. Batch b
is a rank's next batch_size rows, and may cross an epoch boundary. Epoch 0 reads the shards in
the mixture's order, epoch e > 0 in a permutation seeded by (seed, e); documents inside a shard
keep their order. With loop=False there is one pass, cut at the last batch that every rank can
fill: each rank yields (R // W) // batch_size batches (capped by max_batches); the rows past them
are left out.

Ranks move in lockstep, so a position is one number, the global rows consumed: a state saved by W
ranks resumes on W' ranks when W' divides it, each continuing at position / W' (the same rows in
the same global order as W ranks would have read next).

Tokens are memory-mapped; a batch reads only its rows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from gristmill.core.data import TokenShard, read_tokens


@dataclass
class Batch:
    """One rank's batch; all tensors int64 [batch_size, seq_len]."""

    inputs: torch.Tensor  # token ids
    targets: torch.Tensor  # the token after each input
    sources: torch.Tensor  # source id (mix.json "sources"[i]["id"]) of each target's document
    doc_ids: torch.Tensor  # each input's document within its row: 0, 1, ... (an EOS ends its doc)

    def to(self, device: str | torch.device, non_blocking: bool = False) -> Batch:
        return Batch(*(getattr(self, f.name).to(device, non_blocking=non_blocking)
                       for f in dataclasses.fields(self)))


def _load_mix(mix_dir: str) -> dict:
    with open(os.path.join(mix_dir, "mix.json")) as f:
        return json.load(f)


class MixtureLoader:
    """Iterates a mixture split ("train" or "validation/<source>") as `Batch`es; see the module doc.

    A looping loader continues where it is; a non-looping one restarts at each `iter()`.
    `state_dict()` is the same on every rank (the global position), so rank 0's resumes all.
    """

    def __init__(self, mix_dir: str, split: str = "train", *, seq_len: int, batch_size: int,
                 rank: int = 0, world_size: int = 1, seed: int = 0, loop: bool = True,
                 max_batches: int | None = None):
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len ({seq_len}) and batch_size ({batch_size}) must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if max_batches is not None and loop:
            raise ValueError("max_batches applies to a non-looping loader (loop=False)")
        self.mix_dir, self.split, self.seq_len, self.batch_size = mix_dir, split, seq_len, batch_size
        self.rank, self.world_size, self.seed, self.loop = rank, world_size, seed, loop
        mix = _load_mix(mix_dir)
        self.source_names: list[str] = [s["name"] for s in sorted(mix["sources"], key=lambda s: s["id"])]
        self.vocab_size: int = mix["tokenizer"]["vocab_size"]
        self.tokenizer: dict = mix["tokenizer"]  # path, sha256, vocab_size, eos_id, dtype
        self.eos_id: int = mix["eos_id"]
        self.dtype: np.dtype = np.dtype(mix["dtype"]).newbyteorder("<")
        if split == "train":
            listed = mix["train"]["shards"]
        elif split.startswith("validation/") and split[11:] in mix["validation"]:
            listed = mix["validation"][split[11:]]["shards"]
        else:
            raise ValueError(f"unknown split {split!r}: use 'train' or one of "
                             f"{['validation/' + n for n in mix['validation']]}")
        self._shards = [self._open(s) for s in listed if s["tokens"]]  # empty shards skipped
        self._index = [i for i, s in enumerate(listed) if s["tokens"]]  # their place in mix.json
        self._lengths = np.array([len(s.tokens) for s in self._shards], dtype=np.int64)
        self.n_tokens = int(self._lengths.sum())
        self._fingerprint = hashlib.sha256(json.dumps(
            [mix["dtype"], mix["tokenizer"].get("sha256"), split,
             [[s["path"], s["docs"], s["tokens"]] for s in listed]]).encode()).hexdigest()[:16]
        if loop and self.rows_per_epoch == 0:
            raise ValueError(f"{split} of {mix_dir} holds {self.n_tokens} tokens: less than one row "
                             f"of seq_len + 1 = {seq_len + 1}")
        n = (self.rows_per_epoch // world_size) // batch_size
        self._n_batches = None if loop else n if max_batches is None else min(n, max_batches)
        self._row = 0  # rows this rank has consumed
        self._layouts: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _open(self, listed: dict) -> TokenShard:
        p = os.path.join(self.mix_dir, listed["path"])
        shard = read_tokens(p, self.dtype, with_sources=True)
        n, docs = len(shard.tokens), len(shard.sources)
        if (n != listed["tokens"] or docs != listed["docs"] or len(shard.offsets) != docs + 1
                or shard.offsets[0] != 0 or shard.offsets[-1] != n):
            raise ValueError(f"{p}: {n} tokens, {docs} docs, {len(shard.offsets)} offsets do not match "
                             f"mix.json ({listed['tokens']} tokens, {listed['docs']} docs)")
        return shard

    # --- sizes -----------------------------------------------------------------------------------

    @property
    def rows_per_epoch(self) -> int:
        """Rows (all ranks together) per epoch: (n_tokens - 1) // seq_len."""
        return max(self.n_tokens - 1, 0) // self.seq_len

    @property
    def tokens_per_epoch(self) -> int:
        """Target tokens per epoch (all ranks): rows_per_epoch * seq_len."""
        return self.rows_per_epoch * self.seq_len

    @property
    def epoch(self) -> int:
        """The epoch of this rank's next row."""
        return (self.rank + self._row * self.world_size) // max(self.rows_per_epoch, 1)

    def __len__(self) -> int:
        if self._n_batches is None:
            raise TypeError("a looping loader has no length")
        return self._n_batches

    # --- order -----------------------------------------------------------------------------------

    def shard_order(self, epoch: int) -> list[int]:
        """The non-empty shards in the order epoch reads them, as indices into mix.json's list."""
        return [self._index[i] for i in self._layout(epoch)[0]]

    def _layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """(order of self._shards, start of each in the epoch's stream + the total)."""
        if epoch not in self._layouts:
            n = len(self._shards)
            order = np.arange(n) if epoch == 0 else np.random.default_rng([self.seed, epoch]).permutation(n)
            if len(self._layouts) >= 2:  # a batch touches at most two epochs
                self._layouts.pop(next(iter(self._layouts)))
            self._layouts[epoch] = (order, np.concatenate([[0], np.cumsum(self._lengths[order])]))
        return self._layouts[epoch]

    def _read_row(self, g: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Global row g's seq_len + 1 (tokens, source per token, document number per token)."""
        epoch, k = divmod(g, self.rows_per_epoch)
        order, starts = self._layout(epoch)
        pos, end = k * self.seq_len, (k + 1) * self.seq_len + 1
        i = int(np.searchsorted(starts, pos, side="right")) - 1
        tokens, sources, docs, n_docs = [], [], [], 0
        while pos < end:  # one piece per shard the row touches
            shard, base = self._shards[order[i]], int(starts[i])
            a, b = pos - base, min(end, int(starts[i + 1])) - base
            doc = np.searchsorted(shard.offsets, np.arange(a, b), side="right") - 1
            tokens.append(shard.tokens[a:b])
            sources.append(shard.sources[doc[0]:doc[-1] + 1][doc - doc[0]])
            docs.append(doc - doc[0] + n_docs)  # a shard starts a new document
            n_docs = int(docs[-1][-1]) + 1
            pos, i = base + b, i + 1
        return tuple(np.concatenate(x).astype(np.int64) for x in (tokens, sources, docs))

    # --- iteration -------------------------------------------------------------------------------

    def __iter__(self) -> MixtureLoader:
        if not self.loop:
            self._row = 0
        return self

    def __next__(self) -> Batch:
        if self._n_batches is not None and self._row >= self._n_batches * self.batch_size:
            raise StopIteration
        rows = [self._read_row(self.rank + (self._row + j) * self.world_size) for j in range(self.batch_size)]
        self._row += self.batch_size
        tokens, sources, docs = (torch.from_numpy(np.stack(x)) for x in zip(*rows))
        return Batch(tokens[:, :-1], tokens[:, 1:], sources[:, 1:], docs[:, :-1])

    # --- resume ----------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Enough to resume exactly (JSON-serialisable); identical on all ranks in lockstep. `rows` is
        the position in the global row order; world_size and batch_size say who saved it."""
        return {"mix": self._fingerprint, "split": self.split, "seq_len": self.seq_len, "seed": self.seed,
                "rows": self._row * self.world_size, "world_size": self.world_size,
                "batch_size": self.batch_size, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        """Continue at `state`'s global position, on any world size that divides it; refuses a state
        of another mix, split, seq_len or seed, and a position this world size cannot continue."""
        mine = self.state_dict()
        for key in ("mix", "split", "seq_len", "seed"):
            if state.get(key) != mine[key]:
                what = "mixture content (shard list)" if key == "mix" else key
                raise ValueError(f"loader state is for another {what}: {state.get(key)!r}, this loader has "
                                 f"{mine[key]!r} ({self.mix_dir}, {self.split})")
        rows = int(state["rows"]) if "rows" in state else int(state["row"]) * int(state["world_size"])
        if rows % self.world_size:
            raise ValueError(f"loader state is at global row {rows} (saved with world_size "
                             f"{state['world_size']}), which world_size {self.world_size} cannot continue "
                             f"exactly: {rows} is not a multiple of {self.world_size}")
        self._row = rows // self.world_size


def validation_loaders(mix_dir: str, seq_len: int, batch_size: int, rank: int = 0, world_size: int = 1,
                       max_batches: int | None = None) -> dict[str, MixtureLoader]:
    """A non-looping loader per source with validation data, in source order. A source that holds
    less than one batch on every rank is skipped with a warning."""
    mix, loaders = _load_mix(mix_dir), {}
    for s in sorted(mix["sources"], key=lambda s: s["id"]):
        split = mix["validation"].get(s["name"])
        if not split or not split["tokens"]:
            continue
        loader = MixtureLoader(mix_dir, f"validation/{s['name']}", seq_len=seq_len, batch_size=batch_size,
                               rank=rank, world_size=world_size, loop=False, max_batches=max_batches)
        if len(loader) == 0 and max_batches != 0:
            warnings.warn(f"validation/{s['name']}: {split['tokens']} tokens fill no batch of {world_size} x "
                          f"{batch_size} rows of {seq_len + 1}; skipped")
            continue
        loaders[s["name"]] = loader
    return loaders
