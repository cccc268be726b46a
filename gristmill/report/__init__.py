"""The data-mix report: `report.json` (figures, checked against schema.json) and `report.html`
(one self-contained page: inline SVG plots and styles, no script, no network).

    report_data(run_dir, mix_dir) → dict        collect.py streams the run (evals.py: downstream evaluation)
    write_report(data, out_dir, compare=None)   page.py renders it (plots.py draws)
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from gristmill.core.io import open_atomic, read_json
from gristmill.report.collect import collect_documents, filter_limits, read_mix, signal_columns, token_lengths

FORMAT = "gristmill-report/1"
SCHEMA = Path(__file__).with_name("schema.json")


def report_data(run_dir: str, mix_dir: str | None = None, seed: int = 0, samples: int = 3,
                edges: dict[str, list[float]] | None = None, training: str | None = None,
                eval_compare: str | None = None) -> dict:
    """Every figure of the report for one run (and its mixture). `edges`: signal histogram bins
    to use (another report's, to compare the two); `training`: a training run's directory (loss
    and evaluation curves); `eval_compare`: a `gristmill eval --compare --out` file."""
    t0 = time.perf_counter()
    run_dir = run_dir.rstrip("/")
    manifest = read_json(f"{run_dir}/manifest.json")
    totals = manifest.get("totals", {})
    signals = signal_columns(run_dir) if "filters" in totals else []
    docs = collect_documents(run_dir, seed, samples, signals, edges or {})
    filters_dropped = totals.get("filters", {}).get("dropped", {})
    filters_in = totals.get("filters", {}).get("docs_in", 0)
    limits = filter_limits(manifest.get("config", {})) if signals else []
    owner = _signal_owner()
    data = {
        "format": FORMAT,
        "run": {k: manifest.get(k) for k in ("run", "status", "code_version", "started_at", "finished_at",
                                            "seconds", "documents")} | {"dir": run_dir},
        "funnel": [_stage_row(name, s) for name, s in totals.items()],
        "drops": sorted(({"stage": name, "reason": reason, "docs": n,
                          "share_of_stage_input": n / s["docs_in"] if s["docs_in"] else 0.0}
                         for name, s in totals.items() for reason, n in s["dropped"].items()),
                        key=lambda d: -d["docs"]),
        "languages": [dict(item, share=item["docs"] / docs["kept"]) for item in docs["languages"]] if docs["kept"] else [],
        "domains": docs["domains"],
        "lengths": {"chars": docs["chars"].to_dict()},
        "signals": [{
            "column": column, "filter": owner.get(column), **hist.to_dict(),
            "limits": [dict(lim, drops=filters_dropped.get(lim["reason"], 0),
                            share=filters_dropped.get(lim["reason"], 0) / filters_in if filters_in else 0.0)
                       for lim in limits if lim["signal"] == column],
        } for column, hist in docs["signals"].items()],
        "samples": docs["samples"],
        "seed": seed,
    }
    if (tokens := token_lengths(run_dir)) is not None:
        data["lengths"]["tokens"] = tokens.to_dict()
    if "dedup" in totals:
        d = totals["dedup"]
        data["dedup"] = {
            "docs_in": d["docs_in"], "removed": d["docs_in"] - d["docs_out"],
            "rate": (d["docs_in"] - d["docs_out"]) / d["docs_in"] if d["docs_in"] else 0.0,
            "by_reason": d["dropped"],
            "cluster_sizes": [{"size": k, "clusters": v} for k, v in sorted(docs["clusters"].items())],
            "largest": docs["largest"],
        }
    if "pii" in totals:
        data["pii"] = docs["pii"]
    if (mix := read_mix(mix_dir)) is not None:
        data["mixture"] = _mixture(mix, mix_dir)
    if training is not None:
        data["training"] = training_curves(training)
    if eval_compare is not None:
        from gristmill.report.evals import read_eval_compare

        data["eval_compare"] = read_eval_compare(eval_compare)
    data["seconds"] = round(time.perf_counter() - t0, 2)
    return data


def training_curves(train_dir: str) -> dict:
    """Loss per source over steps, train and validation, and each task's evaluation over steps
    (`evals`, when the run evaluated), from a training run's metrics.jsonl."""
    from gristmill.report.evals import eval_curves

    records = [json.loads(line) for line in Path(train_dir, "metrics.jsonl").read_text().splitlines() if line]
    out: dict = {"dir": train_dir}
    for kind in ("train", "validation"):
        rs = [r for r in records if r["kind"] == kind]
        sources = list(dict.fromkeys(k for r in rs for k in r["loss_by_source"]))
        out[kind] = {"step": [r["step"] for r in rs], "loss": [r["loss"] for r in rs],
                     "by_source": {s: [r["loss_by_source"].get(s) for r in rs] for s in sources}}
    train = [r for r in records if r["kind"] == "train"]
    if train:
        last = train[-1]
        out["tokens"] = last["tokens"]
        out["tokens_by_source"] = last["tokens_by_source"]
        out["tokens_per_s"] = sorted(r["tokens_per_s"] for r in train)[len(train) // 2]
        mfu = sorted(r["mfu"] for r in train if r.get("mfu") is not None)
        out["mfu"] = mfu[len(mfu) // 2] if mfu else None
    if (evals := eval_curves(records)) is not None:
        out["evals"] = evals
    return out


def _stage_row(name: str, s: dict) -> dict:
    return {"stage": name, "docs_in": s["docs_in"], "docs_out": s["docs_out"],
            "dropped": sum(s["dropped"].values()), "bytes_in": s["bytes_in"], "bytes_out": s["bytes_out"],
            "seconds": round(s["seconds"], 3),
            "docs_per_s": s["docs_in"] / s["seconds"] if s["seconds"] else None}


def _signal_owner() -> dict[str, str]:
    from gristmill.filters import FILTERS

    return {sig: name for name, cls in FILTERS.items() for sig in cls.signals}


def _mixture(mix: dict, mix_dir: str) -> dict:
    return {
        "dir": mix_dir, "name": mix["name"], "budget": mix["budget"], "seed": mix["seed"],
        "train_tokens": mix["train"]["tokens"],
        "sources": [{"name": s["name"], "weight": s["weight"], "target_tokens": s["target_tokens"],
                     "realised_tokens": s["realised"]["tokens"], "share": s["realised"]["share"],
                     "epochs": s["epochs"], "short_by_tokens": s["short_by_tokens"],
                     "available_tokens": s["available"]["tokens"], "validation_tokens": s["validation"]["tokens"],
                     "validation_docs": s["validation"]["docs"], "where": s["where"]}
                    for s in mix["sources"]],
        "warnings": mix.get("warnings", []),  # a mix.json made before mixtures warned has none
    }


def validate(data: dict) -> None:
    """Raise jsonschema.ValidationError if `data` does not follow schema.json."""
    import jsonschema

    jsonschema.validate(data, json.loads(SCHEMA.read_text()))


def write_report(data: dict, out_dir: str, compare: dict | None = None) -> tuple[str, str]:
    """report.json and report.html under `out_dir`, atomically; their paths."""
    from gristmill.report.page import render

    if compare is not None:
        data = {**data, "compare": {"run": compare["run"], "data": compare}}
    validate(data)
    json_path, html_path = f"{out_dir}/report.json", f"{out_dir}/report.html"
    with open_atomic(json_path, "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
    with open_atomic(html_path, "w") as f:
        f.write(render(data))
    return json_path, html_path
