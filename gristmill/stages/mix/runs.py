"""The finished runs a mixture reads: their docs parts, token shards and columns, checked up front.

Row i of `docs/part-NNNNN.parquet` is document i of `tokens/<source>/shard-NNNNN` (core/data.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import fsspec
import pyarrow.parquet as pq

from gristmill.core.config import ConfigError
from gristmill.core.io import exists, is_local, protocol, read_json
from gristmill.stages.mix.config import VIRTUAL_COLUMNS, MixConfig


@dataclass(frozen=True)
class PartRef:
    """One docs part of one run, and its token shard."""

    run: int  # index into the mixture's runs
    run_name: str
    part: int  # NNNNN of part-NNNNN
    docs: str  # path of the Parquet part
    tokens: str  # token shard prefix (.bin/.idx/.json)

    @property
    def key(self) -> str:
        return f"r{self.run:03d}-part-{self.part:05d}"


@dataclass(frozen=True)
class Runs:
    paths: list[str]
    names: list[str]
    parts: list[PartRef]
    columns: dict[str, str]  # column → arrow type name, over every run (and the virtual columns)
    tokenizer: dict  # path, sha256, vocab_size, eos_id, dtype
    identity: list[dict]  # per run: path, name, documents, tokens, shards (what the mixture read)
    manifests: list[dict]  # per run: its manifest's status, code version, times


def open_runs(mix: MixConfig, finishing: str | None = None) -> Runs:
    """Every run finished (or `finishing`: the run whose last step this is) and tokenized with one
    tokenizer; its parts paired with their shards."""
    parts: list[PartRef] = []
    columns: dict[str, str] = dict(VIRTUAL_COLUMNS)
    tokenizers: dict[str, tuple[int, dict]] = {}
    names, identity, manifests = [], [], []
    for i, run_dir in enumerate(mix.runs):
        where = f"mixture.runs.{i}"
        if not exists(f"{run_dir}/manifest.json"):
            raise ConfigError(f"{where}: {run_dir!r} is not a run directory (no manifest.json)")
        manifest = read_json(f"{run_dir}/manifest.json")
        if manifest.get("status") != "done" and run_dir != finishing:
            raise ConfigError(f"{where}: run {run_dir!r} is not finished (status: {manifest.get('status')})")
        if "tokens" not in manifest.get("outputs", {}) and run_dir != finishing:
            raise ConfigError(f"{where}: run {run_dir!r} has no token shards (its config has no tokenize stage)")
        fs, root = fsspec.core.url_to_fs(run_dir)
        prefix_url = "" if is_local(fs) else f"{protocol(fs)}://"
        shard_metas = sorted(fs.glob(f"{root}/tokens/*/shard-*.json"))
        run_parts, n_docs, n_tokens = [], 0, 0
        for meta_path in shard_metas:
            n = int(re.search(r"shard-(\d+)\.json$", meta_path).group(1))
            meta = read_json(prefix_url + meta_path)
            prefix = prefix_url + meta_path[: -len(".json")]
            docs = f"{run_dir}/docs/part-{n:05d}.parquet"
            run_parts.append(PartRef(i, manifest["run"], n, docs, prefix))
            tok = {"sha256": meta["tokenizer_sha256"], "vocab_size": meta["vocab_size"],
                   "eos_id": meta["eos_id"], "dtype": meta["dtype"], "path": meta["tokenizer"]}
            tokenizers.setdefault(tok["sha256"], (i, tok))
            n_docs, n_tokens = n_docs + meta["n_docs"], n_tokens + meta["n_tokens"]
        if not run_parts:
            raise ConfigError(f"{where}: run {run_dir!r} has no token shards under tokens/")
        if len(tokenizers) > 1:
            (a, ta), (b, tb) = list(tokenizers.values())[:2]
            raise ConfigError(f"mixture.runs: {mix.runs[a]!r} and {mix.runs[b]!r} were tokenized with different "
                              f"tokenizers (sha256 {ta['sha256']} vs {tb['sha256']}); a mixture needs one tokenizer")
        with fsspec.open(run_parts[0].docs, "rb") as f:
            schema = pq.read_schema(f)
        for field in schema:
            columns.setdefault(field.name, str(field.type))
        parts += run_parts
        names.append(manifest["run"])
        identity.append({"path": run_dir, "name": manifest["run"], "documents": n_docs, "tokens": n_tokens,
                         "shards": len(run_parts)})
        manifests.append({k: manifest.get(k) for k in ("status", "code_version", "started_at", "finished_at")})
    return Runs(list(mix.runs), names, parts, columns, next(iter(tokenizers.values()))[1], identity, manifests)


def check_columns(mix: MixConfig, columns: dict[str, str]) -> None:
    """Every predicate names a column some run has, with a condition its type allows."""
    for i, src in enumerate(mix.sources):
        for column, cond in src.where.items():
            where = f"mixture.sources.{i}.where.{column}"
            if column not in columns:
                raise ConfigError(f"{where}: no run has a column {column!r} "
                                  f"(columns: {', '.join(sorted(columns))})")
            kind = columns[column]
            is_text = kind in ("string", "large_string")
            if (cond.min is not None or cond.max is not None) and is_text:
                raise ConfigError(f"{where}: min/max need a numeric column; {column!r} is {kind}")
            if cond.matches is not None and not is_text:
                raise ConfigError(f"{where}: matches needs a string column; {column!r} is {kind}")
            for key, values in (("in", cond.in_), ("not_in", cond.not_in)):
                if values and is_text != all(isinstance(v, str) for v in values):
                    raise ConfigError(f"{where}.{key}: values {values!r} do not fit the {kind} column {column!r}")
