"""trainer/data.py over tiny mixtures written here (and a smoke check on out/sample-mix if built)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gristmill.trainer.data import Batch, MixtureLoader, validation_loaders

EOS = 0
SPAN = 100  # source s writes tokens in [base + s * SPAN, base + (s + 1) * SPAN)
SAMPLE = Path(__file__).resolve().parents[2] / "out" / "sample-mix"


def _write_shard(prefix: Path, docs: list[tuple[int, np.ndarray]], dtype: str) -> dict:
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tokens = np.concatenate([d for _, d in docs]).astype(dtype) if docs else np.empty(0, dtype)
    offsets = np.concatenate([[0], np.cumsum([len(d) for _, d in docs])]).astype(np.int64)
    tokens.tofile(f"{prefix}.bin")
    offsets.tofile(f"{prefix}.idx")
    np.array([s for s, _ in docs], dtype=np.uint16).tofile(f"{prefix}.src")
    np.zeros((len(docs), 3), dtype=np.int32).tofile(f"{prefix}.origin")
    meta = {"n_docs": len(docs), "n_tokens": len(tokens)}
    Path(f"{prefix}.json").write_text(json.dumps(meta))
    return meta


def write_tiny_mix(mix_dir: Path, docs_per_source: list[int], n_shards: int = 4, dtype: str = "uint16",
                   base: int = 1, val_docs: list[int] | None = None, seed: int = 0) -> list[np.ndarray]:
    """Write a mixture of len(docs_per_source) sources (documents of 1..30 tokens in their source's range,
    then EOS), shuffled into n_shards train shards plus an empty one; returns each train shard's tokens."""
    rng = np.random.default_rng(seed)

    def make(s: int) -> tuple[int, np.ndarray]:
        body = rng.integers(base + s * SPAN, base + (s + 1) * SPAN, size=int(rng.integers(1, 31)))
        return s, np.append(body, EOS)

    docs = [make(s) for s, n in enumerate(docs_per_source) for _ in range(n)]
    docs = [docs[i] for i in rng.permutation(len(docs))]
    cuts = np.linspace(0, len(docs), n_shards + 1).astype(int)
    groups = [docs[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    groups.insert(1, [])  # an empty shard, skipped by the loader
    names = [f"s{i}" for i in range(len(docs_per_source))]
    train, shards = [], []
    for i, g in enumerate(groups):
        meta = _write_shard(mix_dir / f"train/shard-{i:05d}", g, dtype)
        train.append({"path": f"train/shard-{i:05d}", "docs": meta["n_docs"], "tokens": meta["n_tokens"]})
        shards.append(np.concatenate([d for _, d in g]) if g else np.empty(0, np.int64))
    validation = {}
    for s, n in enumerate(val_docs or []):
        path = f"validation/{names[s]}/shard-00000"
        meta = _write_shard(mix_dir / path, [make(s) for _ in range(n)], dtype)
        entry = {"docs": meta["n_docs"], "tokens": meta["n_tokens"]}
        validation[names[s]] = {**entry, "shards": [{"path": path, **entry}]}
    mix = {"format": "gristmill-mix/1", "name": "tiny", "seed": seed, "dtype": dtype, "eos_id": EOS,
           "tokenizer": {"sha256": "x", "vocab_size": base + SPAN * len(names), "eos_id": EOS},
           "sources": [{"id": i, "name": n} for i, n in enumerate(names)],
           "train": {"docs": len(docs), "tokens": int(sum(t["tokens"] for t in train)), "shards": train},
           "validation": validation}
    (mix_dir / "mix.json").write_text(json.dumps(mix))
    return shards


def rows(batches: list[Batch], field: str = "inputs") -> list[np.ndarray]:
    return [r.numpy() for b in batches for r in getattr(b, field)]


def take(loader: MixtureLoader, n: int) -> list[Batch]:
    return [next(loader) for _ in range(n)]


def same(a: list[Batch], b: list[Batch]) -> bool:
    return all(torch.equal(getattr(x, f), getattr(y, f))
               for x, y in zip(a, b, strict=True) for f in ("inputs", "targets", "sources", "doc_ids"))


@pytest.fixture
def mix(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    return tmp_path / "mix", write_tiny_mix(tmp_path / "mix", [40, 30, 20], val_docs=[10, 0, 3])


def test_rows_reconstruct_the_stream(mix):
    mix_dir, shards = mix
    stream = np.concatenate(shards)
    T = 16
    loader = MixtureLoader(str(mix_dir), seq_len=T, batch_size=1, loop=False)
    assert loader.n_tokens == len(stream) and loader.rows_per_epoch == (len(stream) - 1) // T
    assert loader.tokens_per_epoch == loader.rows_per_epoch * T and len(loader) == loader.rows_per_epoch
    batches = list(loader)
    inputs, targets = np.concatenate(rows(batches)), np.concatenate(rows(batches, "targets"))
    n = loader.tokens_per_epoch
    assert np.array_equal(inputs, stream[:n]) and np.array_equal(targets, stream[1:n + 1])
    for b in batches:
        assert b.inputs.dtype == torch.int64 and b.inputs.shape == (1, T)
        assert torch.equal(b.targets[:, :-1], b.inputs[:, 1:])
    assert loader.source_names == ["s0", "s1", "s2"] and loader.eos_id == EOS
    assert loader.vocab_size == 301 and loader.dtype == np.dtype("uint16")


def test_rows_cross_shard_boundaries(mix):
    mix_dir, shards = mix
    bounds = np.cumsum([len(s) for s in shards if len(s)])[:-1]
    T = 64  # longer than some documents, rows straddle shard ends
    loader = MixtureLoader(str(mix_dir), seq_len=T, batch_size=2, loop=False)
    stream = np.concatenate(shards)
    batches, crossing = list(loader), 0
    for k, (x, d) in enumerate(zip(rows(batches), rows(batches, "doc_ids"))):
        assert np.array_equal(x, stream[k * T:(k + 1) * T])
        inside = bounds[(bounds > k * T) & (bounds < (k + 1) * T)] - k * T
        crossing += len(inside)
        assert all(d[j] == d[j - 1] + 1 for j in inside)  # a shard starts a new document
    assert crossing >= 2


def test_sources_and_doc_ids(mix):
    mix_dir, _ = mix
    loader = MixtureLoader(str(mix_dir), seq_len=32, batch_size=4, loop=False)
    for b in loader:
        body = b.targets != EOS
        assert torch.equal(b.sources[body], (b.targets[body] - 1) // SPAN)  # token ranges encode the source
        # an EOS target has the source of the document it ends: its input's, when that is no EOS
        eos = (b.targets == EOS) & (b.inputs != EOS)
        assert torch.equal(b.sources[eos], (b.inputs[eos] - 1) // SPAN)
        assert (b.doc_ids[:, 0] == 0).all()
        step = b.doc_ids[:, 1:] - b.doc_ids[:, :-1]
        assert torch.equal(step, (b.inputs[:, :-1] == EOS).long())


def test_ranks_partition_the_stream(mix):
    mix_dir, _ = mix
    kw = dict(seq_len=8, batch_size=3, seed=5)
    one = MixtureLoader(str(mix_dir), **kw)
    n = 2 * one.rows_per_epoch // 3 + 2  # past the first epoch boundary
    single = rows(take(one, 2 * n))
    per_rank = [rows(take(MixtureLoader(str(mix_dir), rank=r, world_size=2, **kw), n)) for r in range(2)]
    for r in range(2):
        assert all(np.array_equal(a, b) for a, b in zip(per_rank[r], single[r::2], strict=True))


def test_resume_mid_epoch_and_across_epochs(mix):
    mix_dir, _ = mix
    kw = dict(seq_len=8, batch_size=4, seed=3, rank=1, world_size=2)
    ref = MixtureLoader(str(mix_dir), **kw)
    per_epoch = ref.rows_per_epoch // 8  # batches per epoch per rank, about
    for stop in (3, per_epoch - 1, per_epoch + 2):  # mid-epoch, just before and just after epoch 0 ends
        a = MixtureLoader(str(mix_dir), **kw)
        take(a, stop)
        state = json.loads(json.dumps(a.state_dict()))  # survives a JSON checkpoint
        expected = take(a, 6)
        b = MixtureLoader(str(mix_dir), **kw)
        b.load_state_dict(state)
        assert b.epoch == state["epoch"]
        assert same(take(b, 6), expected)
    assert a.epoch == 1


def test_epoch_shard_order_is_seeded(mix):
    mix_dir, shards = mix
    kw = dict(seq_len=8, batch_size=1)
    a, a2, b = (MixtureLoader(str(mix_dir), seed=s, **kw) for s in (0, 0, 1))
    assert a.shard_order(0) == [0, 2, 3, 4] == b.shard_order(0)  # shard 1 is empty
    orders = [a.shard_order(e) for e in range(1, 6)]
    assert orders == [a2.shard_order(e) for e in range(1, 6)]
    assert orders != [b.shard_order(e) for e in range(1, 6)]
    assert all(sorted(o) == [0, 2, 3, 4] for o in orders) and len({tuple(o) for o in orders}) > 1
    # epoch 1's rows are the stream of its shard order
    stream = np.concatenate([shards[i] for i in a.shard_order(1)])
    R = a.rows_per_epoch
    take(a, R)
    assert a.epoch == 1
    got = np.concatenate(rows(take(a, R), "targets"))
    assert np.array_equal(got, stream[1:R * 8 + 1])


def test_uint32(tmp_path):
    shards = write_tiny_mix(tmp_path, [10, 10], n_shards=2, dtype="uint32", base=70_000)
    loader = MixtureLoader(str(tmp_path), seq_len=16, batch_size=2, loop=False)
    assert loader.dtype == np.dtype("uint32")
    batches = list(loader)
    got = np.concatenate(rows(batches))
    assert np.array_equal(got, np.concatenate(shards)[:len(got)]) and got.max() >= 70_000
    for b in batches:
        body = b.targets != EOS
        assert torch.equal(b.sources[body], (b.targets[body] - 70_000) // SPAN)


def test_validation_loaders_stop(mix):
    mix_dir, _ = mix
    loaders = validation_loaders(str(mix_dir), seq_len=8, batch_size=2)
    assert list(loaders) == ["s0", "s2"]  # s1 has no validation documents
    first = list(loaders["s0"])
    assert len(first) == len(loaders["s0"]) > 0 and same(list(loaders["s0"]), first)  # each pass restarts
    assert len(validation_loaders(str(mix_dir), seq_len=8, batch_size=2, max_batches=1)["s0"]) == 1
    ranked = [validation_loaders(str(mix_dir), seq_len=8, batch_size=2, rank=r, world_size=2)
              for r in range(2)]
    assert len(ranked[0]["s0"]) == len(ranked[1]["s0"]) == len(loaders["s0"]) // 2
    with pytest.warns(UserWarning, match="fill no batch") as caught:
        assert validation_loaders(str(mix_dir), seq_len=64, batch_size=8) == {}
    assert ["s0" in str(w.message) for w in caught] == [True, False]
    with pytest.raises(ValueError, match="less than one row"):
        MixtureLoader(str(mix_dir), "validation/s2", seq_len=10_000, batch_size=1)
    with pytest.raises(ValueError, match="unknown split"):
        MixtureLoader(str(mix_dir), "validation/nope", seq_len=8, batch_size=1)


def test_mismatched_state_refused(mix, tmp_path):
    mix_dir, _ = mix
    state = MixtureLoader(str(mix_dir), seq_len=8, batch_size=2, world_size=2).state_dict()
    write_tiny_mix(tmp_path / "other", [40, 30, 21])
    for other, match in [(dict(seq_len=16, world_size=2), "seq_len"), (dict(seq_len=8, world_size=2, seed=1), "seed")]:
        with pytest.raises(ValueError, match=match):
            MixtureLoader(str(mix_dir), batch_size=2, **other).load_state_dict(state)
    one = MixtureLoader(str(mix_dir), seq_len=8, batch_size=3)  # another world_size continues where the
    next(one)                                                   # global row count divides, not here (3 rows)
    with pytest.raises(ValueError, match="world_size 2 cannot continue"):
        MixtureLoader(str(mix_dir), seq_len=8, batch_size=3, world_size=2).load_state_dict(one.state_dict())
    with pytest.raises(ValueError, match="mixture content"):
        MixtureLoader(str(tmp_path / "other"), seq_len=8, batch_size=2, world_size=2).load_state_dict(state)
    MixtureLoader(str(mix_dir), seq_len=8, batch_size=4, rank=1, world_size=2).load_state_dict(state)  # fine


@pytest.mark.skipif(not (SAMPLE / "mix.json").exists(), reason="out/sample-mix not built")
def test_sample_mix_smoke():
    loader = MixtureLoader(str(SAMPLE), seq_len=256, batch_size=2)
    b = next(loader)
    assert b.inputs.shape == b.sources.shape == (2, 256)
    assert 0 <= b.inputs.min() and b.inputs.max() < loader.vocab_size
    assert 0 <= b.sources.min() and b.sources.max() < len(loader.source_names)
    assert len(validation_loaders(str(SAMPLE), seq_len=256, batch_size=2, max_batches=2)) >= 1
