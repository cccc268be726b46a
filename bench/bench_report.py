"""The report against corpus size: time and peak memory on the sample run and on it replicated.

    python bench/bench_report.py [--copies 1 16] [--out bench/results/report.json]

The sample run (`make pipeline` first: out/sample) is replicated k times as one run (ids prefixed
per copy, the manifest's totals multiplied): as k times the parts, and as the same 22 parts k times
longer (the sample's parts hold 30 documents each, so the first measures per-file costs). `gristmill report` runs on it in a fresh process, which records its wall time
and peak RSS. Baseline, measured the same way: the in-memory way, every docs and rejects part read
whole into one pyarrow table (the columns the report needs), as a notebook would.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from multiprocessing import get_context
from pathlib import Path

import gristmill.core.env  # noqa: F401
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.common import machine_notes, markdown_table, measured, write_json  # noqa: E402
from gristmill.core.io import ROWS_PER_GROUP  # noqa: E402

SAMPLE = ROOT / "out" / "sample"


def replicate(copies: int, out: Path, merged: bool) -> Path:
    """The sample run `copies` times over: as that many more parts, or (`merged`) in the same 22
    parts made `copies` times longer (per-row cost, not per-file cost)."""
    import numpy as np
    import pyarrow as pa

    run = out / f"sample-x{copies}{'-merged' if merged else ''}"
    parts = sorted(int(p.stem.split("-")[1]) for p in SAMPLE.glob("docs/part-*.parquet"))
    n = max(parts) + 1
    groups = [[(c, c * n + p) for c in range(copies)] for p in parts] if not merged else \
        [[(c, p) for c in range(copies)] for p in parts]
    for p, group in zip(parts, groups):
        for sub, suffix in [("docs", ".parquet"), ("rejects", ".parquet"), ("rejects", ".dedup.parquet")]:
            src = SAMPLE / sub / f"part-{p:05d}{suffix}"
            if not src.exists():
                continue
            table = pq.read_table(src)
            (run / sub).mkdir(parents=True, exist_ok=True)
            copies_of = [(q, table.set_column(0, "id", pc.binary_join_element_wise(f"x{c:03d}-", table["id"], "")))
                         for c, q in group]
            if merged:  # row groups as the pipeline writes them (stages/write.py)
                pq.write_table(pa.concat_tables([t for _, t in copies_of]), run / sub / f"part-{p:05d}{suffix}",
                               row_group_size=ROWS_PER_GROUP)
            else:
                for q, t in copies_of:
                    pq.write_table(t, run / sub / f"part-{q:05d}{suffix}", row_group_size=ROWS_PER_GROUP)
        for meta in SAMPLE.glob(f"tokens/*/shard-{p:05d}.json"):
            dest = run / "tokens" / meta.parent.name
            dest.mkdir(parents=True, exist_ok=True)
            idx = np.fromfile(str(meta)[:-5] + ".idx", dtype=np.int64)
            for c, q in group if not merged else group[:1]:
                k = copies if merged else 1
                lengths = np.tile(np.diff(idx), k)
                np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64).tofile(dest / f"shard-{q:05d}.idx")
                shutil.copyfile(meta, dest / f"shard-{q:05d}.json")
    manifest = json.loads((SAMPLE / "manifest.json").read_text())
    for s in manifest["totals"].values():
        for k in ("docs_in", "docs_out", "bytes_in", "bytes_out", "seconds"):
            s[k] *= copies
        s["dropped"] = {r: v * copies for r, v in s["dropped"].items()}
    manifest["documents"] *= copies
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def gristmill_report(run: str) -> tuple[float, float]:
    """(seconds computing the figures, seconds drawing and writing the page)."""
    from gristmill.report import report_data, write_report

    t0 = time.perf_counter()
    data = report_data(run)
    t1 = time.perf_counter()
    write_report(data, run)
    return t1 - t0, time.perf_counter() - t1


def in_memory(run: str) -> float:
    import pyarrow.dataset as ds

    t0 = time.perf_counter()
    tables = [ds.dataset(f"{run}/{sub}", format="parquet").to_table() for sub in ("docs", "rejects")]
    assert sum(t.num_rows for t in tables) > 0
    return time.perf_counter() - t0


def fresh(fn, *args) -> tuple[float, int]:
    with ProcessPoolExecutor(1, mp_context=get_context("forkserver")) as pool:
        return pool.submit(measured, fn, args).result()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 16])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "report.json"))
    args = ap.parse_args()
    if not (SAMPLE / "manifest.json").exists():
        sys.exit("bench_report: run `make pipeline` first (it writes out/sample)")
    rows = []
    for copies, merged in [(c, m) for c in args.copies for m in ((False, True) if c > 1 else (False,))]:
        tmp = Path(tempfile.mkdtemp())
        run = replicate(copies, tmp, merged)
        (figures_s, page_s), rss = fresh(gristmill_report, str(run))
        base_seconds, base_rss = fresh(in_memory, str(run))
        data = json.loads((run / "report.json").read_text())
        rows.append({"copies": copies, "parts": "22" if merged or copies == 1 else f"{22 * copies}",
                     "documents": data["run"]["documents"],
                     "parquet_mb": round(sum(p.stat().st_size for p in run.rglob("*.parquet")) / 2**20, 1),
                     "figures_s": round(figures_s, 1), "page_s": round(page_s, 1), "report_peak_rss_mb": rss,
                     "in_memory_read_s": round(base_seconds, 1), "in_memory_peak_rss_mb": base_rss,
                     "report_html_kb": round((run / "report.html").stat().st_size / 1024)})
        print(rows[-1], flush=True)
        shutil.rmtree(tmp)
    print(markdown_table(["copies", "docs parts", "documents", "Parquet", "figures", "page (plots, HTML)", "report peak RSS",
                          "in-memory read: time", "in-memory peak RSS"],
                         [[r["copies"], r["parts"], f"{r['documents']:,}", f"{r['parquet_mb']} MB", f"{r['figures_s']} s",
                           f"{r['page_s']} s",
                           f"{r['report_peak_rss_mb']} MiB", f"{r['in_memory_read_s']} s",
                           f"{r['in_memory_peak_rss_mb']} MiB"] for r in rows]))
    write_json(args.out, {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "machine": machine_notes(["pyarrow", "matplotlib"]), "rows": rows})


if __name__ == "__main__":
    main()
