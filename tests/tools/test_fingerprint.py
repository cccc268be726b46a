"""tools/fingerprint.py: what differs by nature (times, throughput, the code version) is dropped,
every other byte counts."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "tools"))
from fingerprint import compare, fingerprint  # noqa: E402


def write_run(out, seconds: float, text: str) -> None:
    (out / "run" / "docs").mkdir(parents=True)
    (out / "run" / "docs" / "part-00000.parquet").write_bytes(text.encode())
    (out / "run" / "manifest.json").write_text(json.dumps(
        {"status": "done", "seconds": seconds, "finished_at": f"2026-12-0{int(seconds)}", "documents": 3,
         "totals": {"ingest": {"docs_in": 3, "seconds": seconds}}, "code_version": str(seconds)}))
    (out / "train").mkdir()
    (out / "train" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"kind": "train", "step": 10, "loss": 5.0, "lr": 1e-3, "tokens_per_s": seconds},
        {"kind": "train", "step": 60, "loss": float(seconds)}]) + "\n")


def test_times_are_dropped_and_content_counts(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_run(a, 1.0, "docs")
    write_run(b, 2.0, "docs")  # other times, throughput, version, and a curve past step 50
    write_run(c, 1.0, "DOCS")
    assert compare(fingerprint(a, 50), fingerprint(b, 50)) == []
    assert compare(fingerprint(a, 50), fingerprint(c, 50)) == ["differs: run/docs/part-00000.parquet"]
    assert compare(fingerprint(a, 60), fingerprint(b, 60)) == ["differs: train/metrics.jsonl"]


def test_the_command_exits_1_on_a_difference(tmp_path):
    prints = []
    for name, text in (("a", "x"), ("b", "y")):
        write_run(tmp_path / name, 1.0, text)
        prints.append(tmp_path / f"{name}.json")
        r = subprocess.run([sys.executable, "tools/fingerprint.py", str(tmp_path / name)], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
        prints[-1].write_text(r.stdout)
    r = subprocess.run([sys.executable, "tools/fingerprint.py", "--compare", *map(str, prints)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "differs: run/docs/part-00000.parquet" in r.stdout


def test_two_clones_compare_alike_though_manifests_record_their_paths(tmp_path):
    """A manifest records absolute paths under its checkout; two checkouts differ only there."""
    prints = []
    for clone in ("one", "two"):
        out = tmp_path / clone / "out"
        write_run(out, 1.0, "docs")
        (out / "run" / "shard.json").write_text(json.dumps({"docs_part": f"{out}/run/docs/part-00000.parquet"}))
        prints.append(fingerprint(out, 50))
    assert compare(*prints) == []
    other = tmp_path / "three" / "out"
    write_run(other, 1.0, "docs")
    (other / "run" / "shard.json").write_text(json.dumps({"docs_part": "/elsewhere/run/docs/part-00000.parquet"}))
    assert compare(prints[0], fingerprint(other, 50)) == ["differs: run/shard.json"]
