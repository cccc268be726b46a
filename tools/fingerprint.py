"""Fingerprint what `make pipeline` and `make train-sample` produce, to prove a refactor changes nothing.

    make pipeline && make train-sample ARGS="--set schedule.steps=50"
    python tools/fingerprint.py out > before.json          # at the old commit
    ... (the refactor; a fresh `rm -rf out` and the same two make commands)
    python tools/fingerprint.py out > after.json
    python tools/fingerprint.py --compare before.json after.json   # exit 1 on any difference

Every file under the run, mixture and training directories is hashed (sha256). JSON files
(manifests, stats, markers, mix.json, report.json) are hashed after dropping what differs from
one run to the next by nature: times, durations, throughput, the code version, and with the
checkout's own path written as `<checkout>` (two clones compare equal). The training
curve is kept as numbers (step, loss, loss per source, lr) for the first `--steps` steps.
Checkpoints are skipped (their bytes carry timestamps); report.html is skipped (it embeds the
times); the report's figures are in report.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

VOLATILE_KEYS = {"seconds", "code_version", "tokens_per_s", "mfu", "memory_gb", "eta", "elapsed"}
VOLATILE_SUFFIXES = ("_at", "_seconds", "_s", "_per_s")
SKIPPED = ("checkpoints/", "report.html", ".cache/")
CURVE_KEYS = ("kind", "step", "loss", "loss_by_source", "tokens", "tokens_by_source", "lr")


def stable(value: Any, checkout: str = "") -> Any:
    """`value` without the keys that change from one run to the next by nature, and with the
    checkout's own path (in the paths manifests record) written as `<checkout>`."""
    if isinstance(value, dict):
        return {k: stable(v, checkout) for k, v in value.items()
                if k not in VOLATILE_KEYS and not k.endswith(VOLATILE_SUFFIXES)}
    if isinstance(value, list):
        return [stable(v, checkout) for v in value]
    if isinstance(value, str) and checkout:
        return value.replace(checkout, "<checkout>")
    return value


def file_digest(path: Path, checkout: str = "") -> str:
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError):
            pass
        else:
            return hashlib.sha256(json.dumps(stable(data, checkout), sort_keys=True).encode()).hexdigest()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def training_curve(metrics: Path, steps: int) -> list[dict]:
    records = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return [{k: r[k] for k in CURVE_KEYS if k in r} for r in records
            if r.get("kind") in ("train", "validation") and r.get("step", 0) <= steps]


def fingerprint(out: Path, steps: int) -> dict:
    checkout = str(out.resolve().parent)  # out/ sits in the checkout whose configs wrote it
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if rel.endswith("metrics.jsonl"):
            files[rel] = training_curve(path, steps)
        elif not any(s in rel for s in SKIPPED):
            files[rel] = file_digest(path, checkout)
    return files


def compare(a: dict, b: dict) -> list[str]:
    problems = [f"only in the first: {k}" for k in sorted(a.keys() - b.keys())]
    problems += [f"only in the second: {k}" for k in sorted(b.keys() - a.keys())]
    problems += [f"differs: {k}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("paths", nargs="+", help="the output directory (out/), or with --compare two fingerprints")
    p.add_argument("--compare", action="store_true")
    p.add_argument("--steps", type=int, default=50, help="training steps of the curve kept (default 50)")
    args = p.parse_args()
    if args.compare:
        if len(args.paths) != 2:
            p.error("--compare takes two fingerprint files")
        a, b = (json.loads(Path(x).read_text()) for x in args.paths)
        problems = compare(a, b)
        print("\n".join(problems) or f"same: {len(a)} files")
        return 1 if problems else 0
    json.dump(fingerprint(Path(args.paths[0]), args.steps), sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
