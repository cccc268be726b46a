"""`gristmill eval --compare`: training runs side by side, differences judged against seed noise.

Runs come in groups, one group per arm of a decision (a mixture, a filter setting), each with one
run per seed: `--compare A=runA-s0,runA-s1 B=runB-s0,runB-s1`. For every task metric (each task's
primary metric, `prob_correct` and `bpb`) and every source's validation loss, a group's value is
the mean over its seeds and its band the seeds' range (min..max). Each group is set against the
first: the difference of the means is *outside* the noise when the two bands do not overlap (the
worst seed of the better arm beats the best seed of the other), else *inside*; with one seed in a
group there is no band to judge by ("no band"). This is DataDecide's rule of thumb made
mechanical: a decision is only as sure as the spread between seeds allows.

A run's figures are its last results: the latest `evals/step-N.json` (`gristmill eval`) if there
is one, else the latest in-loop results; and its last validation record.
"""

from __future__ import annotations

import json
from pathlib import Path

from gristmill.core.config import ConfigError

HIGHER_IS_BETTER = {"acc_raw": True, "acc_per_char": True, "prob_correct": True, "bpb": False, "loss": False}


def parse_groups(specs: list[str]) -> dict[str, list[str]]:
    """["A=run1,run2", "B=run3"] → {"A": [run1, run2], "B": [run3]}; a bare run is its own group."""
    groups: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, runs = spec.partition("=")
        if not sep:
            name, runs = Path(spec.rstrip("/")).name, spec
        if not name or not runs or name in groups:
            raise ConfigError(f"--compare {spec!r}: write NAME=RUN[,RUN...] with a new NAME")
        groups[name] = [r for r in runs.split(",") if r]
    if len(groups) < 2:
        raise ConfigError("--compare: give two or more groups (NAME=RUN[,RUN...]) to compare")
    return groups


def run_figures(run: str) -> dict:
    """A run's last evaluated step, task metrics and validation loss per source."""
    root = Path(run)
    if not (root / "metrics.jsonl").exists():
        raise ConfigError(f"--compare: {run} is not a training run (no metrics.jsonl)")
    files = sorted((root / "evals").glob("step-*.json")) or sorted((root / "evals" / "in-loop").glob("step-*.json"))
    if not files:
        raise ConfigError(f"--compare: {run} has no evaluation results (train with eval.tasks, or run gristmill eval)")
    results = json.loads(files[-1].read_text())
    validation = [r for r in map(json.loads, (root / "metrics.jsonl").read_text().splitlines())
                  if r.get("kind") == "validation"]
    return {"run": run, "step": results["step"], "in_loop": results["in_loop"], "limit": results.get("limit"),
            "tasks": results["tasks"], "loss_by_source": validation[-1]["loss_by_source"] if validation else {}}


def compare(groups: dict[str, list[str]]) -> dict:
    """Every metric: each group's mean and band, and each group's difference from the first."""
    figures = {name: [run_figures(r) for r in runs] for name, runs in groups.items()}
    every = [f for runs in figures.values() for f in runs]
    tasks = sorted(set.intersection(*(set(f["tasks"]) for f in every)))
    sources = sorted(set.intersection(*(set(k for k, v in f["loss_by_source"].items() if v is not None)
                                        for f in every)))
    rows = []
    for task in tasks:
        primary = every[0]["tasks"][task]["primary_metric"]
        for metric in (primary, "prob_correct", "bpb"):
            if all(f["tasks"][task].get(metric) is not None for f in every):  # None: nothing scored
                rows.append(_row(f"{task} {metric}", "task", metric, figures, lambda f: f["tasks"][task][metric]))
    for source in sources:
        rows.append(_row(f"{source} loss", "source", "loss", figures, lambda f: f["loss_by_source"][source]))
    steps = sorted({f["step"] for f in every})
    return {"groups": {name: [f["run"] for f in runs] for name, runs in figures.items()},
            "steps": steps, "same_step": len(steps) == 1,
            "kinds": sorted({"in-loop" if f["in_loop"] else "gristmill eval" for f in every}),
            "rows": rows}


def _row(label: str, kind: str, metric: str, figures: dict, value) -> dict:
    stats = {}
    for name, runs in figures.items():
        values = [float(value(f)) for f in runs]
        stats[name] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values),
                       "seeds": len(values), "values": values}
    base_name = next(iter(stats))
    base = stats[base_name]
    for name, s in stats.items():
        if name == base_name:
            continue
        s["difference"] = s["mean"] - base["mean"]
        better = (s["difference"] > 0) == HIGHER_IS_BETTER[metric]
        if s["seeds"] < 2 or base["seeds"] < 2:
            s["verdict"] = "no band"
        elif s["min"] > base["max"] or s["max"] < base["min"]:
            s["verdict"] = "outside"
        else:
            s["verdict"] = "inside"
        s["better"] = better if s["verdict"] == "outside" else None
    return {"label": label, "kind": kind, "metric": metric, "higher_is_better": HIGHER_IS_BETTER[metric],
            "baseline": base_name, "groups": stats}


def format_table(result: dict) -> str:
    """The comparison as text: one line per metric, each group's mean [band], the verdict."""
    names = list(result["groups"])
    lines = ["groups: " + "; ".join(f"{n} = {len(r)} run(s)" for n, r in result["groups"].items())
             + f" | step(s) {', '.join(map(str, result['steps']))} | {', '.join(result['kinds'])}"]
    if not result["same_step"]:
        lines.append("note: the runs were evaluated at different steps")
    width = max([len(r["label"]) for r in result["rows"]] + [6])
    lines.append(f"{'metric':<{width}}  " + "  ".join(f"{n:>28}" for n in names))
    for row in result["rows"]:
        cells = []
        for n in names:
            s = row["groups"][n]
            cell = f"{s['mean']:.4f} [{s['min']:.4f}, {s['max']:.4f}]"
            if "verdict" in s:
                mark = {"outside": "better" if s["better"] else "worse", "inside": "~", "no band": "?"}[s["verdict"]]
                cell += f" {mark}"
            cells.append(f"{cell:>28}")
        lines.append(f"{row['label']:<{width}}  " + "  ".join(cells))
    lines.append(f"(mean [seed range]; against {names[0]}: better/worse = outside the seed ranges, "
                 "~ = inside, ? = a group of one seed)")
    return "\n".join(lines)
