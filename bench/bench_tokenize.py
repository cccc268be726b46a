"""Tokenize stage speed on one core: ours (tiktoken where exact) against the old HF path and datatrove.

    python bench/bench_tokenize.py [--tokenizer out/sample/tokenizer.json] [--reps 3]
                                   [--out bench/results/tokenize.json]

Same texts, same tokenizer.json, one pinned core, repetitions interleaved (the order rotates each
repetition, so all three see the same load on a shared machine); MB/s of the texts' UTF-8 bytes:
(a) `stages.tokenize.tokenize_part` (Parquet part in, .bin/.idx/.json out) with the fast encoder,
(b) the same stage as it was before (HF `encode_batch`, 256 docs a batch, one array per document),
(c) datatrove 0.10.1's `DocumentTokenizer` (EOS through its post-processor, `shuffle_documents=False`)
    writing to a temp dir. Its tokenizer load is not timed, nor is ours (cached per worker).
Checked: (a) and (b) write identical bytes; (a)'s token count is datatrove's (equal unless a page
holds a special token's text, which datatrove turns into the special id). Also: the fast path's
per-document latency (p50/p99/max) and its time on pathological pieces (1 MB runs of one class).
Corpora: the sample run's docs (`out/sample/docs`, from `make pipeline`), and those plus the lingua
sentences (75 languages, 50 a document) and the scrapinghub gold article bodies from ../shared/data.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import gristmill.core.env  # noqa: F401  (offline hub, HF_HOME: before datatrove)
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench` when run as a script
from bench.common import DATA_DIR, machine_notes, markdown_table, pin_to_core, write_json  # noqa: E402
from gristmill.stages.token_encoder import load_encoder  # noqa: E402
from gristmill.stages.tokenize import load_tokenizer, tokenize_part  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DOCS = ROOT / "out" / "sample" / "docs"
EOS = "<|endoftext|>"
OLD_BATCH = 256


def sample_texts() -> list[str]:
    parts = sorted(SAMPLE_DOCS.glob("part-*.parquet"))
    if not parts:
        sys.exit(f"no docs parts under {SAMPLE_DOCS}: run `make pipeline` first")
    return [t for p in parts for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]


def shared_texts(per_doc: int = 50) -> list[str]:
    by_lang: dict[str, list[str]] = defaultdict(list)
    with gzip.open(DATA_DIR / "langid" / "lingua_sentences.tsv.gz", "rt", encoding="utf-8") as f:
        next(f)
        for line in f:
            lang, text = line.rstrip("\n").split("\t", 1)
            by_lang[lang].append(text)
    docs = [" ".join(s[i:i + per_doc]) for s in by_lang.values() for i in range(0, len(s), per_doc)]
    gold_path = DATA_DIR / "extraction" / "scrapinghub" / "ground-truth.json"
    gold = json.loads(gold_path.read_text(encoding="utf-8"))
    return docs + [g["articleBody"] for g in gold.values()]


def old_tokenize_part(part: str, tokenizer_path: str, prefix: str) -> None:
    """The stage before the fast encoder: HF encode_batch, one numpy array and write per document."""
    tok = load_tokenizer(tokenizer_path)
    eos = tok.token_to_id(EOS)
    dtype = np.uint16 if tok.get_vocab_size() <= 2**16 else np.uint32
    texts = pq.read_table(part, columns=["text"])["text"].to_pylist()
    offsets = [0]
    with open(prefix + ".bin", "wb") as f:
        for i in range(0, len(texts), OLD_BATCH):
            for enc in tok.encode_batch(texts[i:i + OLD_BATCH], add_special_tokens=False):
                ids = np.asarray(enc.ids + [eos], dtype=dtype)
                f.write(ids.tobytes())
                offsets.append(offsets[-1] + len(ids))
    with open(prefix + ".idx", "wb") as f:
        f.write(np.asarray(offsets, dtype=np.int64).tobytes())


def datatrove_step(tokenizer_path: str, out_dir: str):
    from datatrove.pipeline.tokens.tokenizer import DocumentTokenizer

    step = DocumentTokenizer(output_folder=out_dir, tokenizer_name_or_path=tokenizer_path, eos_token=EOS,
                             shuffle_documents=False, save_final_metadata=False)
    _ = step.tokenizer  # load outside the timing
    return step


def compare(texts: list[str], tokenizer_path: str, reps: int, work: Path) -> dict:
    from datatrove.data import Document

    part = str(work / "part.parquet")
    pq.write_table(pa.table({"id": [f"{i:020d}" for i in range(len(texts))], "text": texts}), part)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    docs = [Document(text=t, id=str(i)) for i, t in enumerate(texts)]
    load_encoder(tokenizer_path)  # built once per worker; timed apart in main()
    runs = {
        "ours": lambda r: tokenize_part(part, tokenizer_path, str(work / f"ours{r}"), "bench", EOS),
        "hf_old": lambda r: old_tokenize_part(part, tokenizer_path, str(work / f"old{r}")),
        "datatrove": None,
    }
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, float] = dict.fromkeys(runs, 0.0)
    order = list(runs)
    for r in range(reps):
        for name in order[r % 3:] + order[:r % 3]:
            step = datatrove_step(tokenizer_path, str(work / f"dt{r}")) if name == "datatrove" else None
            t0, c0 = time.perf_counter(), time.process_time()
            if step is not None:
                step.run(iter(docs), rank=0, world_size=1)
            else:
                runs[name](r)
            seconds[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
    ours_bin, old_bin = (work / "ours0.bin").read_bytes(), (work / "old0.bin").read_bytes()
    dt_files = list((work / "dt0").glob("*.ds"))
    ours_meta = json.loads((work / "ours0.json").read_text())
    dt_tokens = sum(p.stat().st_size for p in dt_files) // np.dtype(ours_meta["dtype"]).itemsize
    mbps = {n: {"best": round(n_bytes / min(s) / 1e6, 2),
                "median": round(n_bytes / statistics.median(s) / 1e6, 2),
                "seconds": [round(x, 3) for x in s], "cpu_over_wall": round(cpu[n] / sum(s), 2)}
            for n, s in seconds.items()}
    return {
        "docs": len(texts), "text_mb": round(n_bytes / 1e6, 2), "tokens": ours_meta["n_tokens"],
        "encoder": ours_meta["encoder"], "mb_per_s": mbps,
        "ratio_vs_datatrove": {n: round(mbps[n]["median"] / mbps["datatrove"]["median"], 2) for n in mbps},
        "ratio_vs_hf_old": round(mbps["ours"]["median"] / mbps["hf_old"]["median"], 2),
        "ours_bytes_identical_to_hf_old": ours_bin == old_bin and
        (work / "ours0.idx").read_bytes() == (work / "old0.idx").read_bytes(),
        "datatrove_tokens": dt_tokens, "same_token_count_as_datatrove": dt_tokens == ours_meta["n_tokens"],
        "same_bytes_as_datatrove": len(dt_files) == 1 and dt_files[0].read_bytes() == ours_bin,
    }


def latencies(texts: list[str], tokenizer_path: str) -> dict:
    """Per-document time of the fast encoder (one text per call)."""
    encoder = load_encoder(tokenizer_path)
    s = []
    for text in texts:
        t0 = time.perf_counter()
        encoder.encode_batch([text])
        s.append(time.perf_counter() - t0)
    order = np.argsort(s)
    return {"p50_ms": round(1e3 * float(np.median(s)), 3),
            "p99_ms": round(1e3 * float(np.quantile(s, 0.99)), 2), "max_ms": round(1e3 * max(s), 1),
            "largest_doc_kb": round(max(len(t.encode()) for t in texts) / 1e3),
            "slowest_doc_kb": round(len(texts[order[-1]].encode()) / 1e3)}


def pathological(tokenizer_path: str, size: int = 1_000_000) -> dict:
    """Seconds for one document that is a single 1 MB pre-token (no quadratic blow-up on either path)."""
    encoder, hf = load_encoder(tokenizer_path), load_tokenizer(tokenizer_path)
    out = {}
    for name, text in {"spaces": " " * size, "han": "漢" * (size // 3), "digits": "7" * size,
                       "letters": "a" * size}.items():
        t0 = time.perf_counter()
        fast = encoder.encode(text)
        t1 = time.perf_counter()
        slow = hf.encode(text, add_special_tokens=False).ids
        out[name] = {"ours_s": round(t1 - t0, 3), "hf_s": round(time.perf_counter() - t1, 3),
                     "same": fast == slow}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokenizer", default=str(ROOT / "out" / "sample" / "tokenizer.json"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tokenize.json"))
    args = ap.parse_args()
    pin_to_core()
    t0 = time.perf_counter()
    encoder = load_encoder(args.tokenizer)
    build_s = time.perf_counter() - t0
    print(f"encoder: {encoder.backend} {encoder.why} (built in {build_s:.2f}s)", flush=True)
    sample = sample_texts()
    corpora = {"sample docs": sample, "sample + lingua + scrapinghub": sample + shared_texts()}
    results, rows = {}, []
    for name, texts in corpora.items():
        with tempfile.TemporaryDirectory() as tmp:
            r = results[name] = compare(texts, args.tokenizer, args.reps, Path(tmp))
        r["latency"] = latencies(texts, args.tokenizer)
        m, lat = r["mb_per_s"], r["latency"]
        rows.append([name, r["docs"], r["text_mb"], m["ours"]["median"], m["hf_old"]["median"],
                     m["datatrove"]["median"], f"{r['ratio_vs_datatrove']['ours']}×",
                     f"{r['ratio_vs_hf_old']}×",
                     f"{lat['p50_ms']} / {lat['p99_ms']} / {lat['max_ms']}",
                     r["ours_bytes_identical_to_hf_old"], r["same_token_count_as_datatrove"]])
        print(name, r, flush=True)
    print("\n## Tokenize, one core, MB/s of text (median of interleaved repetitions)\n")
    print(markdown_table(["corpus", "docs", "MB", "ours", "HF encode_batch (old)", "datatrove",
                          "ours / datatrove", "ours / old", "ours ms/doc p50 / p99 / max",
                          "ids = old", "tokens = datatrove"], rows))
    stress = pathological(args.tokenizer)
    print("\n## One 1 MB pre-token\n")
    print(markdown_table(["text", "ours (s)", "HF (s)", "same ids"],
                         [[k, v["ours_s"], v["hf_s"], v["same"]] for k, v in stress.items()]))
    write_json(args.out, {"machine": machine_notes(["tiktoken", "tokenizers", "datatrove", "numpy"]),
                          "date": time.strftime("%Y-%m-%d"), "tokenizer": args.tokenizer,
                          "encoder": {"backend": encoder.backend, "why": encoder.why,
                                      "build_s": round(build_s, 3)},
                          "corpora": results, "one_mb_pre_token": stress})


if __name__ == "__main__":
    main()
