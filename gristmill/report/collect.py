"""The report's figures from a finished run, streaming: one pass over the documents and the
rejects by record batch, bounded memory whatever the run's size (histograms with fixed bins,
bounded counters, bottom-k samples by a seeded hash of the id).

Sources: manifest.json (the funnel: per-stage totals the run already counted), docs/ and
rejects/ (languages, domains, lengths, signals, dedup clusters, PII, samples), tokens/*.idx
(token lengths), the filters' configured limits (thresholds), mix.json when given.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections import Counter
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from gristmill.core.io import exists, read_json

BATCH_ROWS = 1024  # documents per record batch: bounds memory (a batch of 1 MB pages is 1 GB)
MAX_DISTINCT = 200_000  # a counter past this many keys keeps its top half (counts become lower bounds)
LENGTH_EDGES = np.concatenate([[0], np.logspace(0, 8, 81)])  # 1 … 10^8, 10 bins per decade
SIGNAL_BINS = 40
SAMPLE_TEXT_CHARS = 20_000  # a sample document's text kept in report.json (the rest counted)
BASE_COLUMNS = {"id", "source", "url", "domain", "warc_record_id", "warc_date", "charset", "html_bytes", "text",
                "language", "language_score", "filter_flag", "reject_stage", "reject_reason", "duplicate_of"}


class BoundedCounter(Counter):
    def add_counts(self, values: pa.Array) -> None:
        for item in pc.value_counts(values.drop_null()).to_pylist():
            self[item["values"]] += item["counts"]
        if len(self) > MAX_DISTINCT:
            keep = self.most_common(MAX_DISTINCT // 2)
            self.clear()
            self.update(dict(keep))


@dataclass
class Histogram:
    edges: np.ndarray
    counts: dict[str, np.ndarray] = field(default_factory=dict)  # series → counts per bin

    def add(self, series: str, values: np.ndarray) -> None:
        values = values[np.isfinite(values)]
        counts = np.histogram(np.clip(values, self.edges[0], self.edges[-1]), self.edges)[0]
        self.counts[series] = self.counts.get(series, 0) + counts

    def to_dict(self) -> dict:
        out = {"edges": [float(e) for e in self.edges],
               "counts": {k: [int(c) for c in v] for k, v in self.counts.items()}}
        for k, v in self.counts.items():
            out.setdefault("quantiles", {})[k] = _quantiles(self.edges, v)
        return out


def _quantiles(edges: np.ndarray, counts: np.ndarray) -> dict:
    total = int(counts.sum())
    if not total:
        return {}
    cum = np.cumsum(counts)
    return {f"p{q}": float(edges[min(int(np.searchsorted(cum, total * q / 100)) + 1, len(edges) - 1)])
            for q in (50, 90, 99)}


class Sampler:
    """Bottom-k by a seeded hash of the id, per group: a seeded sample that does not depend on
    file order, kept as (key, file, row) until the documents are read at the end."""

    def __init__(self, k: int, seed: int):
        self.k, self.seed = k, str(seed).encode()
        self.heaps: dict[str, list] = {}

    def offer(self, group: str, ids: list[str], path: str, first_row: int) -> None:
        heap = self.heaps.setdefault(group, [])
        for i, doc_id in enumerate(ids):
            key = int.from_bytes(hashlib.blake2b(self.seed + doc_id.encode(), digest_size=8).digest(), "big")
            item = (-key, path, first_row + i)
            if len(heap) < self.k:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)

    def chosen(self) -> dict[str, list[tuple[str, int]]]:
        return {g: [(p, r) for _, p, r in sorted(h, reverse=True)] for g, h in self.heaps.items()}


def _files(run_dir: str, sub: str, suffix: str = ".parquet") -> list[str]:
    fs, root = fsspec.core.url_to_fs(f"{run_dir}/{sub}")
    proto = "" if fs.protocol in ("file", "local") or "file" in fs.protocol else f"{fs.protocol[0]}://"
    return sorted(proto + p for p in fs.glob(f"{root}/part-*{suffix}"))  # never a `.tmp-*` being written


def _batches(path: str, wanted: list[str]):
    """(first row, batch) over the columns of `wanted` that the file has, one row group at a time
    (pyarrow's `iter_batches` holds far more than a batch: 600 MiB on a 20 MB part)."""
    with fsspec.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        cols = [c for c in wanted if c in names]
        row = 0
        for g in range(pf.num_row_groups):
            for batch in pf.read_row_group(g, columns=cols).to_batches(max_chunksize=BATCH_ROWS):
                yield row, batch
                row += batch.num_rows


def signal_columns(run_dir: str) -> list[str]:
    """Numeric document columns that are filter signals (not ids, PII counts or dedup's count)."""
    files = _files(run_dir, "docs")
    if not files:
        return []
    with fsspec.open(files[0], "rb") as f:
        schema = pq.read_schema(f)
    return [f.name for f in schema if f.name not in BASE_COLUMNS and not f.name.startswith("pii_")
            and f.name != "duplicates" and pa.types.is_floating(f.type)]


def _column_ranges(files: list[str], columns: list[str]) -> dict[str, tuple[float, float]]:
    """Min and max of each column from the files' row-group statistics (footers only, no data)."""
    lo, hi = dict.fromkeys(columns, math.inf), dict.fromkeys(columns, -math.inf)
    for path in files:
        with fsspec.open(path, "rb") as f:
            meta = pq.ParquetFile(f).metadata
        names = meta.schema.names
        for column in columns:
            if column not in names:
                continue
            idx = names.index(column)
            for g in range(meta.num_row_groups):
                st = meta.row_group(g).column(idx).statistics
                if st is not None and st.has_min_max and math.isfinite(st.min) and math.isfinite(st.max):
                    lo[column], hi[column] = min(lo[column], st.min), max(hi[column], st.max)
    return {c: (lo[c], hi[c]) for c in columns if lo[c] <= hi[c]}


def signal_edges(lo: float, hi: float) -> np.ndarray:
    if lo >= 0 and hi > 1000:  # counts with a long tail: log bins from 1, and a bin for zero
        return np.concatenate([[0], np.logspace(0, math.log10(hi) + 1e-9, SIGNAL_BINS)])
    if hi == lo:
        hi = lo + 1
    return np.linspace(lo, hi, SIGNAL_BINS + 1)


def collect_documents(run_dir: str, seed: int, samples: int, signals: list[str],
                      edges: dict[str, list[float]]) -> dict:
    """Everything that needs the documents and rejects, in one streaming pass over each."""
    docs, rejects = _files(run_dir, "docs"), _files(run_dir, "rejects")
    filter_rejects = [p for p in rejects if not p.endswith(".dedup.parquet")]
    ranges = _column_ranges(docs + filter_rejects, [s for s in signals if s not in edges])
    sig_hist = {s: Histogram(np.asarray(edges[s]) if s in edges else signal_edges(*ranges[s]))
                for s in signals if s in edges or s in ranges}
    lengths = Histogram(LENGTH_EDGES)
    languages, language_chars = Counter(), Counter()
    domains_kept, domains_dropped = BoundedCounter(), BoundedCounter()
    pii, pii_docs = Counter(), Counter()
    clusters: Counter = Counter()
    largest: list[tuple[int, str, str]] = []
    sampler = Sampler(samples, seed)
    kept = 0
    for path in docs:
        for row, b in _batches(path, ["id", "url", "domain", "language", "text", "duplicates", *signals,
                                      *[f"pii_{t}" for t in PII_TYPES]]):
            kept += b.num_rows
            chars = pc.utf8_length(b["text"]).to_numpy(zero_copy_only=False).astype(np.float64)
            lengths.add("kept", chars)
            lang = b["language"] if "language" in b.schema.names else pa.nulls(b.num_rows, pa.string())
            by_lang = pa.table({"language": pc.fill_null(lang, "unknown"), "chars": chars}).group_by("language") \
                .aggregate([("chars", "sum"), ("chars", "count")]).to_pylist()
            for item in by_lang:
                languages[item["language"]] += item["chars_count"]
                language_chars[item["language"]] += int(item["chars_sum"])
            domains_kept.add_counts(b["domain"])
            for s in sig_hist:
                if s in b.schema.names:
                    sig_hist[s].add("kept", b[s].to_numpy(zero_copy_only=False).astype(np.float64))
            for t in PII_TYPES:
                if f"pii_{t}" in b.schema.names:
                    v = pc.fill_null(b[f"pii_{t}"], 0).to_numpy(zero_copy_only=False)
                    pii[t] += int(v.sum())
                    pii_docs[t] += int((v > 0).sum())
            if "duplicates" in b.schema.names:
                dup = pc.fill_null(b["duplicates"], 0).to_numpy(zero_copy_only=False)
                clusters.update((dup[dup > 0] + 1).tolist())
                for i in np.flatnonzero(dup > 0):
                    item = (int(dup[i]), b["id"][i].as_py(), b["url"][i].as_py())
                    (heapq.heappush if len(largest) < 10 else heapq.heappushpop)(largest, item)
            sampler.offer("kept", b["id"].to_pylist(), path, row)
    dropped_reasons: Counter = Counter()
    members: dict[str, list[str]] = {doc_id: [] for _, doc_id, _ in largest}
    for path in rejects:
        for row, b in _batches(path, ["id", "url", "domain", "reject_stage", "reject_reason", "duplicate_of", *signals]):
            reasons = [f"{s}:{r}" for s, r in zip(b["reject_stage"].to_pylist(), b["reject_reason"].to_pylist())]
            dropped_reasons.update(reasons)
            domains_dropped.add_counts(b["domain"])
            for i, (doc_id, reason) in enumerate(zip(b["id"].to_pylist(), reasons)):
                sampler.offer(reason, [doc_id], path, row + i)
            if path.endswith(".dedup.parquet"):
                for dup_of, url in zip(b["duplicate_of"].to_pylist(), b["url"].to_pylist()):
                    if dup_of in members and len(members[dup_of]) < 20:
                        members[dup_of].append(url)
            elif "reject_stage" in b.schema.names:
                is_filter = pc.equal(b["reject_stage"], "filters")
                for s in sig_hist:
                    if s in b.schema.names:
                        sig_hist[s].add("dropped", pc.filter(b[s], is_filter).to_numpy(zero_copy_only=False)
                                        .astype(np.float64))
    return {
        "kept": kept,
        "languages": [{"language": k, "docs": v, "chars": int(language_chars[k])} for k, v in languages.most_common()],
        "domains": {"kept": [{"domain": k, "docs": v} for k, v in domains_kept.most_common(25)],
                    "dropped": [{"domain": k, "docs": v} for k, v in domains_dropped.most_common(25)],
                    "exact": len(domains_kept) < MAX_DISTINCT // 2 and len(domains_dropped) < MAX_DISTINCT // 2},
        "chars": lengths,
        "signals": sig_hist,
        "pii": {t: {"found": pii[t], "docs": pii_docs[t]} for t in PII_TYPES if t in pii},
        "clusters": clusters,
        "largest": [{"kept_id": i, "kept_url": u, "size": d + 1, "urls": members.get(i, [])}
                    for d, i, u in sorted(largest, reverse=True)],
        "samples": read_samples(sampler.chosen(), signals),
    }


PII_TYPES = ("email", "phone", "ip", "credit_card", "iban", "ssn")


def read_samples(chosen: dict[str, list[tuple[str, int]]], signals: list[str]) -> dict[str, list[dict]]:
    """The chosen rows, read by row group: id, url, text (cut), reason and signal values."""
    out: dict[str, list[dict]] = {}
    for group, picks in chosen.items():
        docs = []
        for path, row in picks:
            with fsspec.open(path, "rb") as f:
                pf = pq.ParquetFile(f)
                g, first = _row_group_of(pf.metadata, row)
                rec = pf.read_row_group(g).slice(row - first, 1).to_pylist()[0]
            text = rec.get("text") or ""
            docs.append({
                "id": rec.get("id"), "url": rec.get("url"), "source": rec.get("source"),
                "language": rec.get("language"), "reason": rec.get("reject_reason"),
                "duplicate_of": rec.get("duplicate_of"), "chars": len(text),
                "text": text[:SAMPLE_TEXT_CHARS],
                "signals": {s: _num(rec.get(s)) for s in signals if _num(rec.get(s)) is not None},
            })
        out[group] = docs
    return out


def _num(v) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _row_group_of(meta: pq.FileMetaData, row: int) -> tuple[int, int]:
    first = 0
    for g in range(meta.num_row_groups):
        n = meta.row_group(g).num_rows
        if row < first + n:
            return g, first
        first += n
    raise IndexError(row)


def token_lengths(run_dir: str) -> Histogram | None:
    """Tokens per kept document (EOS included), from the token shards' offsets."""
    fs, root = fsspec.core.url_to_fs(f"{run_dir}/tokens")
    idx = sorted(fs.glob(f"{root}/*/shard-*.idx"))
    if not idx:
        return None
    hist = Histogram(LENGTH_EDGES)
    for p in idx:
        with fs.open(p, "rb") as f:
            offsets = np.frombuffer(f.read(), dtype=np.int64)
        hist.add("kept", np.diff(offsets).astype(np.float64))
    return hist


def filter_limits(config: dict) -> list[dict]:
    """Every configured threshold that maps one signal to one drop reason (the default chain;
    `other_languages` lists the languages with chains of their own)."""
    from gristmill.filters import FILTERS
    from gristmill.stages.filters import FiltersConfig

    raw = config.get("stages", {}).get("filters")
    if not raw:
        return []
    fcfg = FiltersConfig.model_validate(raw, strict=False)  # a JSON snapshot: n-gram keys are strings
    out = []
    for name, params in fcfg.default.items():
        cls = FILTERS[name]
        if "compat" in cls.Params.model_fields and "compat" not in params:
            params = {**params, "compat": fcfg.compat}
        out += [{"filter": name, "signal": lim.signal, "op": lim.op, "value": lim.value, "reason": lim.reason,
                 "other_languages": sorted(fcfg.languages)}
                for lim in cls.limits(cls.Params.model_validate(params, strict=False))]
    return out


def read_mix(mix_dir: str | None) -> dict | None:
    if mix_dir is None or not exists(f"{mix_dir}/mix.json"):
        return None
    return read_json(f"{mix_dir}/mix.json")

