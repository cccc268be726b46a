"""Dedup: signature speed, memory against corpus size, and precision/recall on a ground truth.

    python bench/bench_dedup.py [--copies 1 4 16 64] [--out bench/results/dedup.json]

1. Signatures per second on one core, on the extracted benchmark pages (ingest → trafilatura),
   128 permutations, word 5-grams, all on the same documents in the same run: ours (normalise,
   shingle, MinHash, band hashes and the exact hash), datasketch's per-shingle `MinHash.update`
   loop, its `update_batch` (sha1, then xxh32), and datatrove's MinhashDedupSignature
   (`get_shingles` + `get_signature`, 16 buckets × 8 hashes).
2. Memory: the pages and mutated copies of them (1×, 4×, … the sample), in parts of one copy
   each, through every dedup step with a small task budget; each task in a fresh process, its
   peak RSS recorded. Against it: datasketch's in-memory MinHashLSH over the same corpus.
3. The whole stage on one core, ours against datatrove's four MinHash stages, same documents.
4. Ground truth: copies of every page with realistic edits at known Jaccard (bench/dedup_corpus.py);
   precision/recall of LSH candidates (documents sharing a bucket) and of the final clusters; and
   the same with the normalisation before issue #9 (a kana or Han character per word), for comparison.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import gristmill.core.env  # noqa: F401  (offline hub, HF_HOME: before datatrove)
import numpy as np
import xxhash
from datasketch import MinHash

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import (  # noqa: E402
    DATA_DIR, FreshProcesses, machine_notes, markdown_table, measured, pin_to_core, write_json,
)
from bench.dedup_corpus import (  # noqa: E402
    bucket_pairs, character_words, cluster_pairs, clusters_from_rejects, near_duplicate_set, normalised_by,
    pair_scores, replicated_corpus, write_parts,
)
from gristmill.core.stats import StageStats  # noqa: E402
from gristmill.pipeline.config import parse_config  # noqa: E402
from gristmill.stages.dedup import run_dedup, run_in_process  # noqa: E402
from gristmill.stages.extract import ExtractConfig  # noqa: E402
from gristmill.stages.dedup.minhash import (  # noqa: E402
    HAS_CJK, LshParams, normalise, shingle_hashes, shingles, sign, signatures,
)
from gristmill.stages.extract import TrafilaturaExtract  # noqa: E402
from gristmill.stages.ingest import read_all  # noqa: E402

NUM_PERM = 128
BATCH = 512


def page_texts() -> list[str]:
    docs = []
    for path in sorted((DATA_DIR / "warc" / "packed").glob("*.warc.gz")):
        docs += read_all(str(path))[0]
    return [d["text"] for d in TrafilaturaExtract(ExtractConfig(timeout_s=60)).run(docs, StageStats(), [])]


def rate(fn, texts: list[str], repeat: int = 3) -> float:
    """Documents per second: the median of `repeat` passes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(texts)
        times.append(time.perf_counter() - t0)
    return len(texts) / statistics.median(times)


def ours(texts: list[str], lsh: LshParams) -> None:
    for i in range(0, len(texts), BATCH):
        sign(texts[i:i + BATCH], lsh)


def ours_signature_only(texts: list[str], normalised=normalise) -> None:
    for i in range(0, len(texts), BATCH):
        norm = [normalised(t) for t in texts[i:i + BATCH]]
        h, doc = shingle_hashes(norm, 5)
        signatures(h, doc, len(norm), NUM_PERM, 1)


def datasketch_update(texts: list[str]) -> None:
    for t in texts:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        for s in shingles(normalise(t), 5):
            m.update(s)


def datasketch_batch(texts: list[str], hashfunc=None) -> None:
    for t in texts:
        m = MinHash(num_perm=NUM_PERM, seed=1, **({"hashfunc": hashfunc} if hashfunc else {}))
        m.update_batch(shingles(normalise(t), 5))


def datatrove_signature():
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

    step = MinhashDedupSignature(tempfile.mkdtemp(), MinhashConfig(num_buckets=16, hashes_per_bucket=8))

    def run(texts: list[str]) -> None:
        for t in texts:
            step.get_signature(step.get_shingles(t))
    return run


def signatures_step(texts: list[str]) -> float:
    """Documents per second of the whole signatures task: Parquet part in, sorted index out."""
    from gristmill.stages.dedup.signatures import sign_part

    out = Path(tempfile.mkdtemp())
    lsh = LshParams.choose(0.8, NUM_PERM, 1, 5, (0.5, 0.5), None, None)
    write_parts(str(out), ((str(i), t) for i, t in enumerate(texts)), len(texts))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        sign_part(str(out), 0, lsh, True, [{"column": "warc_date", "order": "min"}])
        times.append(time.perf_counter() - t0)
    shutil.rmtree(out)
    return len(texts) / statistics.median(times)


def rensa_rminhash(texts: list[str]) -> None:
    """rensa's Rust MinHash (not a dependency: measured when installed, `pip install rensa==0.5.0`)."""
    from rensa import RMinHash

    for t in texts:
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update([s.decode() for s in shingles(normalise(t), 5)])
        m.digest()


def speed(texts: list[str]) -> dict:
    lsh = LshParams.choose(0.8, NUM_PERM, 1, 5, (0.5, 0.5), None, None)
    dt = datatrove_signature()
    results = {
        "gristmill signatures task (Parquet part in, sorted index files out)": signatures_step(texts),
        "gristmill (signature + bands + exact hash)": rate(lambda t: ours(t, lsh), texts, 5),
        "gristmill (signature only)": rate(ours_signature_only, texts, 5),
        "gristmill (signature only), a kana or Han character per word (before issue #9)":
            rate(lambda t: ours_signature_only(t, character_words), texts, 5),
        "datasketch MinHash.update per shingle (sha1)": rate(datasketch_update, texts, 1),
        "datasketch update_batch (sha1)": rate(datasketch_batch, texts, 3),
        "datasketch update_batch (xxh32)": rate(lambda t: datasketch_batch(t, xxhash.xxh32_intdigest), texts, 3),
        "datatrove MinhashDedupSignature": rate(dt, texts, 1),
    }
    try:
        results["rensa 0.5.0 RMinHash (optional, shingles from our normalisation)"] = rate(rensa_rminhash, texts, 3)
    except ImportError:
        pass
    return {name: round(v, 1) for name, v in results.items()}


# --- the whole stage ------------------------------------------------------------------------------


def whole_stage(texts: list[str], copies: int) -> dict:
    """Documents per second of the whole dedup, on one core: ours in process (signatures →
    buckets → components → remove, Parquet in and out) against datatrove's four MinHash stages
    (JSONL in and out, LocalPipelineExecutor with one worker), same documents, same b × r."""
    import gzip
    import json

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    docs = list(replicated_corpus(texts, copies))
    per_part = len(texts)
    n_parts = copies
    work = Path(tempfile.mkdtemp())
    cfg = parse_config({"run": {"name": "ours", "output": str(work)}, "inputs": [{"name": "x", "paths": [__file__]}],
                        "stages": {"ingest": {}, "extract": {}, "dedup": {}, "write": {}}})
    parts = write_parts(cfg.run_dir, docs, per_part)
    t0 = time.perf_counter()
    stats, failures = run_dedup(cfg, parts, run_in_process)
    ours_s = time.perf_counter() - t0
    assert not failures

    lsh = LshParams.choose(0.8, NUM_PERM, 1, 5, (0.5, 0.5), None, None)
    mh = MinhashConfig(n_grams=5, num_buckets=lsh.bands, hashes_per_bucket=lsh.rows, seed=1)
    src = work / "jsonl"
    src.mkdir()
    for p in range(n_parts):
        with gzip.open(src / f"part-{p:05d}.jsonl.gz", "wt", encoding="utf-8") as f:
            for doc_id, text in docs[p * per_part:(p + 1) * per_part]:
                f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
    dt = work / "datatrove"
    stages = [
        LocalPipelineExecutor([JsonlReader(str(src)), MinhashDedupSignature(str(dt / "sigs"), config=mh)],
                              tasks=n_parts, workers=1, logging_dir=str(dt / "logs/1")),
        LocalPipelineExecutor([MinhashDedupBuckets(str(dt / "sigs"), str(dt / "buckets"), config=mh)],
                              tasks=mh.num_buckets, workers=1, logging_dir=str(dt / "logs/2")),
        LocalPipelineExecutor([MinhashDedupCluster(str(dt / "buckets"), str(dt / "remove"), config=mh)],
                              tasks=1, workers=1, logging_dir=str(dt / "logs/3")),
        LocalPipelineExecutor([JsonlReader(str(src)), MinhashDedupFilter(str(dt / "remove")),
                               JsonlWriter(str(dt / "out"))], tasks=n_parts, workers=1, logging_dir=str(dt / "logs/4")),
    ]
    t0 = time.perf_counter()
    for stage in stages:
        stage.run()
    datatrove_s = time.perf_counter() - t0
    kept = sum(1 for f in (dt / "out").glob("*.jsonl.gz") for _ in gzip.open(f, "rt"))
    shutil.rmtree(work)
    return {
        "documents": len(docs),
        "gristmill": {"docs_per_s": round(len(docs) / ours_s, 1), "seconds": round(ours_s, 2),
                      "dropped": sum(stats.dropped.values())},
        "datatrove": {"docs_per_s": round(len(docs) / datatrove_s, 1), "seconds": round(datatrove_s, 2),
                      "dropped": len(docs) - kept},
        "ratio": round(datatrove_s / ours_s, 2),
    }


# --- memory --------------------------------------------------------------------------------------


def _dedup_step(desc: str) -> str:
    step = desc.split()[1]
    return "components" if step in ("large-star", "small-star") else step


def _noop() -> None:
    import gristmill.stages.dedup  # noqa: F401  (what a task imports)


def in_memory_lsh_mb(texts_file: str, copies: int) -> float:
    """What datasketch's MinHashLSH holding the corpus' signatures allocates (tracemalloc, MiB),
    in a fresh process: the single-machine in-memory way, for contrast."""
    code = f"""
import json, sys, tracemalloc
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from datasketch import MinHashLSH, LeanMinHash
from bench.dedup_corpus import replicated_corpus
from gristmill.stages.dedup.minhash import normalise, shingle_hashes, signatures
texts = json.load(open({texts_file!r}))
lsh = MinHashLSH(threshold=0.8, num_perm=128)
held = 0
def insert(batch):
    global held
    norm = [normalise(t) for _, t in batch]
    h, d = shingle_hashes(norm, 5)
    sigs = signatures(h, d, len(norm), 128, 1)
    tracemalloc.start()
    for (i, _), s in zip(batch, sigs):
        lsh.insert(i, LeanMinHash(seed=1, hashvalues=s, scheme="affine32"))
    held += tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
batch = []
for doc in replicated_corpus(texts, {copies}):
    batch.append(doc)
    if len(batch) == 512:
        insert(batch)
        batch = []
insert(batch)
print(held / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return round(float(out), 1)


def memory(texts: list[str], copies_list: list[int], budget_mb: float) -> list[dict]:
    import json

    rows = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    texts_file = f.name
    with ProcessPoolExecutor(1, mp_context=get_context("forkserver"), max_tasks_per_child=1) as pool:
        baseline = pool.submit(measured, _noop, ()).result()[1]
    for copies in copies_list:
        out = Path(tempfile.mkdtemp())
        cfg = parse_config({"run": {"name": "m", "output": str(out)}, "inputs": [{"name": "x", "paths": [__file__]}],
                            "stages": {"ingest": {}, "extract": {}, "dedup": {"task_memory_mb": budget_mb}, "write": {}}})
        parts = write_parts(cfg.run_dir, replicated_corpus(texts, copies), len(texts))
        corpus_mb = sum(p.stat().st_size for p in Path(cfg.run_dir, "pre_dedup").glob("*.parquet")) / 2**20
        execute = FreshProcesses(step=_dedup_step)
        t0 = time.perf_counter()
        stats, failures = run_dedup(cfg, parts, execute)
        assert not failures, failures
        rows.append({
            "copies": copies,
            "documents": stats.docs_in,
            "text_mb": round(stats.bytes_in / 2**20, 1),
            "parquet_mb": round(corpus_mb, 1),
            "dropped": sum(stats.dropped.values()),
            "hash_ranges": stats.events["hash_ranges"],
            "graph_partitions": stats.events["graph_partitions"],
            "cc_rounds": stats.events["cc_rounds"],
            "wall_s": round(time.perf_counter() - t0, 1),
            "task_baseline_rss_mb": baseline,
            "peak_rss_mb": dict(execute.peaks),
            "datasketch_in_memory_lsh_heap_mb": in_memory_lsh_mb(texts_file, copies),
        })
        execute.pool.shutdown()
        shutil.rmtree(out)
        print(rows[-1], flush=True)
    return rows


# --- ground truth --------------------------------------------------------------------------------


def ground_truth(texts: list[str]) -> dict:
    docs = near_duplicate_set(texts)
    out = Path(tempfile.mkdtemp())
    cfg = parse_config({"run": {"name": "gt", "output": str(out)}, "inputs": [{"name": "x", "paths": [__file__]}],
                        "stages": {"ingest": {}, "extract": {}, "dedup": {}, "write": {}}})
    parts = write_parts(cfg.run_dir, [(d.id, d.text) for d in docs], 500)
    stats, _ = run_dedup(cfg, parts, run_in_process)
    lsh = LshParams.choose(0.8, NUM_PERM, 1, 5, (0.5, 0.5), None, None)
    result = {
        "documents": len(docs),
        "originals": sum(d.kind == "original" for d in docs),
        "originals_with_kana_or_han": sum(bool(HAS_CJK.search(d.text)) for d in docs if d.kind == "original"),
        "bands_x_rows": f"{lsh.bands} x {lsh.rows}",
        "candidate_probability": {j: round(lsh.probability(j), 3) for j in (0.7, 0.75, 0.8, 0.825, 0.85, 0.9, 0.95)},
        "lsh_candidates": pair_scores(docs, bucket_pairs(cfg.run_dir, parts), 0.8),
        "clusters": pair_scores(docs, cluster_pairs(clusters_from_rejects(cfg.run_dir)), 0.8),
        "dropped": dict(stats.dropped),
    }
    shutil.rmtree(out)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 4, 16, 64])
    ap.add_argument("--budget-mb", type=float, default=4.0, help="dedup task_memory_mb for the memory runs")
    ap.add_argument("--skip", nargs="*", default=[], choices=["speed", "memory", "truth", "stage"])
    ap.add_argument("--stage-copies", type=int, default=4, help="copies of the pages for the whole-stage timing")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "dedup.json"))
    args = ap.parse_args()
    texts = page_texts()
    result = {"machine": machine_notes(["datasketch", "datatrove", "numpy", "xxhash"]), "pages": len(texts),
              "mean_chars": round(float(np.mean([len(t) for t in texts]))),
              "date": time.strftime("%Y-%m-%d")}
    if "truth" not in args.skip:
        result["ground_truth"] = ground_truth(texts)
        print(result["ground_truth"], flush=True)
        with normalised_by(character_words):  # the same, with a kana or Han character per word (v1)
            result["ground_truth_character_words"] = ground_truth(texts)
        print(result["ground_truth_character_words"], flush=True)
    if "memory" not in args.skip:
        result["memory"] = memory(texts, args.copies, args.budget_mb)
        result["memory_budget_mb"] = args.budget_mb
    if "speed" not in args.skip:
        pin_to_core()
        result["speed_docs_per_s_one_core"] = speed(texts)
        base = result["speed_docs_per_s_one_core"]["datasketch MinHash.update per shingle (sha1)"]
        print(markdown_table(["signatures", "docs/s/core", "vs datasketch per shingle"],
                             [(k, v, f"{v / base:.1f}x") for k, v in result["speed_docs_per_s_one_core"].items()]))
    if "stage" not in args.skip:
        pin_to_core()
        result["whole_stage_one_core"] = whole_stage(texts, args.stage_copies)
        print(result["whole_stage_one_core"])
    write_json(args.out, result)


if __name__ == "__main__":
    main()
