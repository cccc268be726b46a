"""Downstream evaluation in the report: each task's primary metric and bits per byte over training
steps (the `kind: eval` records of a training run's metrics.jsonl), and a comparison of training
runs (`gristmill eval --compare … --out FILE`, read as JSON: the report does not import the trainer).

    eval_curves(records) → dict | None          report.json's training.evals
    read_eval_compare(path) → dict              report.json's eval_compare (checked against schema.json)
    render_evals(data, colors), render_eval_compare(data, colors) → a section or None
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from gristmill.core.config import ConfigError
from gristmill.core.io import read_json
from gristmill.report import plots
from gristmill.report.markup import plot, table
from gristmill.report.text import escape

MARK = {"outside": ("▲ better", "▼ worse"), "inside": "≈ inside", "no band": "? no band"}


def _num(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def eval_curves(records: list[dict]) -> dict | None:
    """Per task: its primary metric (as the latest record names it) and bpb at each in-loop
    evaluation step (None where the task was not evaluated); `after`: the evaluations of
    `gristmill eval` (`in_loop: false`), one per step, the latest kept. None without eval records."""
    evals = [r for r in records if r.get("kind") == "eval"]
    if not evals:
        return None
    loop = {r["step"]: r for r in evals if r.get("in_loop", True)}  # a step evaluated twice: the latest
    after = {r["step"]: r for r in evals if not r.get("in_loop", True)}
    loop_records = [loop[s] for s in sorted(loop)]
    tasks: dict[str, dict] = {}
    for name in sorted({t for r in evals for t in r.get("tasks", {})}):
        last = [r["tasks"][name] for r in evals if name in r.get("tasks", {})][-1]
        metric = str(last.get("primary_metric", "primary"))
        tasks[name] = {
            "primary_metric": metric,
            "primary": [_num(r["tasks"].get(name, {}).get(metric)) for r in loop_records],
            "bpb": [_num(r["tasks"].get(name, {}).get("bpb")) for r in loop_records],
            "questions": last.get("questions") if isinstance(last.get("questions"), int) else None,
        }
    return {"step": sorted(loop), "tasks": tasks,
            "after": [{"step": s, "tasks": {name: {"primary": _num(t.get(tasks[name]["primary_metric"])),
                                                   "bpb": _num(t.get("bpb"))}
                                            for name, t in sorted(after[s].get("tasks", {}).items())}}
                      for s in sorted(after)]}


def read_eval_compare(path: str) -> dict:
    """A comparison file, checked against the schema (a ConfigError names what is wrong), each row
    given the `name` of its task or source (its label less the metric)."""
    import jsonschema

    try:
        data = read_json(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"--eval-compare: cannot read {path}: {e}") from None
    schema = json.loads(Path(__file__).with_name("schema.json").read_text())
    try:
        jsonschema.validate(data, {"$defs": schema["$defs"], "$ref": "#/$defs/eval_compare"})
    except jsonschema.ValidationError as e:
        where = "/".join(map(str, e.absolute_path)) or "the top level"
        raise ConfigError(f"--eval-compare: {path} is not a comparison (`gristmill eval --compare … --out FILE`): "
                          f"at {where}: {e.message}") from None
    for row in data["rows"]:
        if row["baseline"] not in data["groups"] or not set(row["groups"]) <= set(data["groups"]):
            raise ConfigError(f"--eval-compare: {path}: row {row['label']!r} names groups the file does not list")
        suffix = f" {row['metric']}"
        row["name"] = row["label"][:-len(suffix)] if row["label"].endswith(suffix) else row["label"]
    return {"file": path, **data}


def eval_names(data: dict) -> set[str]:
    """The tasks and sources the evaluation sections show (they share the report's colours)."""
    ev = (data.get("training") or {}).get("evals") or {}
    rows = (data.get("eval_compare") or {}).get("rows", [])
    return set(ev.get("tasks", {})) | {r.get("name", r["label"]) for r in rows}


def swatch(color: str | None) -> str:
    """A small square in a name's colour (colours come from the palette, never from the data)."""
    return f'<span class="sw" style="background:{color}"></span>' if color else ""


def _g(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def render_evals(d: dict, colors: dict[str, str]):
    """Small multiples of each task's primary metric and bpb over steps, and a table of both."""
    ev = (d.get("training") or {}).get("evals")
    if not ev or not ev["tasks"]:
        return None
    steps, tasks, after = ev["step"], ev["tasks"], ev["after"]
    names = list(tasks)
    marks = {key: {n: [(a["step"], a["tasks"][n][key]) for a in after if n in a["tasks"]] for n in names}
             for key in ("primary", "bpb")}
    after_note = (f' Hollow diamonds: <code>gristmill eval</code> after training (step '
                  f'{", ".join(str(a["step"]) for a in after)}).') if after else ""
    where = f"in the training loop at {len(steps)} steps ({steps[0]}–{steps[-1]})" if steps else "not in the loop"
    questions = sorted({t["questions"] for t in tasks.values() if t["questions"]})
    per_task = "" if not questions else f", {questions[0]} questions per task" if len(questions) == 1 else \
        f", {questions[0]}–{questions[-1]} questions per task"
    parts = [f"<p>{len(names)} tasks evaluated {where}{per_task}.{after_note} "
             '<span class="note">Each task in its colour, on its own y scale.</span></p>']
    parts.append(plot(plots.small_multiples(
        steps, {n: t["primary"] for n, t in tasks.items()}, "Primary metric per task (higher is better)",
        "accuracy (0–1)", colors, marks["primary"], "gristmill eval",
        panel_ylabels={n: t["primary_metric"] for n, t in tasks.items()}, min_span=0.1)))
    parts.append(plot(plots.small_multiples(
        steps, {n: t["bpb"] for n, t in tasks.items()}, "Bits per byte of the correct answer, per task "
        "(lower is better)", "bits per byte", colors, marks["bpb"], "gristmill eval", min_span=0.1)))
    rows = []
    for n, t in tasks.items():
        first = next((v for v in t["primary"] if v is not None), None)
        last = next((v for v in reversed(t["primary"]) if v is not None), None)
        bpb_first = next((v for v in t["bpb"] if v is not None), None)
        bpb_last = next((v for v in reversed(t["bpb"]) if v is not None), None)
        final = [a["tasks"][n] for a in after if n in a["tasks"]]
        rows.append([swatch(colors.get(n)) + escape(n), escape(t["primary_metric"]), _g(first), _g(last),
                     _g(bpb_first), _g(bpb_last)]
                    + ([f"{_g(final[-1]['primary'])} / {_g(final[-1]['bpb'])}" if final else "—"] if after else [])
                    + [str(t["questions"]) if t["questions"] else "—"])
    head = "first in-loop", "last in-loop", "bpb first", "bpb last"
    parts.append(table(["task", "primary metric", *head, *(["gristmill eval: metric / bpb"] if after else []),
                        "questions"], rows))
    return "evals", "Downstream evaluation", "".join(parts)


def _cell(s: dict | None) -> str:
    if s is None:
        return "—"
    band = f"[{s['min']:.4f}, {s['max']:.4f}] " if s["seeds"] > 1 else ""
    return f'{s["mean"]:.4f}<br><span class="note">{band}×{s["seeds"]}</span>'


def _verdict(s: dict) -> str:
    if s.get("verdict") == "outside":
        better, worse = MARK["outside"]
        return f'<span class="up">{better}</span>' if s.get("better") else f'<span class="down">{worse}</span>'
    return f'<span class="note">{MARK.get(s.get("verdict"), "—")}</span>'


def _summary(c: dict, group: str) -> str:
    """One line for a non-baseline group: on how many metrics it is better, worse, inside, unjudged."""
    base = next((r["baseline"] for r in c["rows"]), next(iter(c["groups"])))
    judged = [(r, r["groups"][group]) for r in c["rows"] if group in r["groups"]]
    better = [r["label"] for r, s in judged if s.get("verdict") == "outside" and s.get("better")]
    worse = [r["label"] for r, s in judged if s.get("verdict") == "outside" and not s.get("better")]
    inside = sum(s.get("verdict") == "inside" for _, s in judged)
    unjudged = sum(s.get("verdict") == "no band" for _, s in judged)
    text = (f"<b>{escape(group)}</b> against <b>{escape(base)}</b>: "
            f'<span class="up">better on {len(better)}</span>, <span class="down">worse on {len(worse)}</span> '
            f"(outside the seed ranges), inside the ranges on {inside}, no band on {unjudged}, "
            f"of {len(judged)} metrics.")
    for kind, labels in (("better", better), ("worse", worse)):
        if labels:
            text += f" {kind.capitalize()}: " + ", ".join(escape(label) for label in labels) + "."
    return f"<li>{text}</li>"


def render_eval_compare(d: dict, colors: dict[str, str]):
    """The groups, their runs and steps, a summary per group and the table of every metric."""
    c = d.get("eval_compare")
    if not c:
        return None
    groups = list(c["groups"])
    base = next((r["baseline"] for r in c["rows"]), groups[0])
    members = table(["group", "seeds", "runs"],
                    [[escape(g) + (' <span class="note">(baseline)</span>' if g == base else ""),
                      str(len(runs)), "<br>".join(escape(r) for r in runs)] for g, runs in c["groups"].items()],
                    left=(0, 2))
    steps = ", ".join(str(s) for s in c["steps"])
    when = (f"<p>Evaluated at step {steps} ({escape(', '.join(c['kinds']))} results).</p>" if c["same_step"] else
            f'<p class="down"><strong>WARNING:</strong> the runs were evaluated at different steps ({steps}; '
            f"{escape(', '.join(c['kinds']))} results): a difference mixes the arms with training length.</p>")
    one_seed = [g for g in groups if len(c["groups"][g]) < 2]
    noise = (f'<p class="down">{", ".join(f"<b>{escape(g)}</b>" for g in one_seed)}: one run only, so no seed '
             "range: no difference can be told from seed noise (verdict “no band”).</p>") if one_seed else ""
    summary = "<ul>" + "".join(_summary(c, g) for g in groups if g != base) + "</ul>"
    headers = ["task or source", "metric (better when)"]
    for g in groups:
        headers += [g] + ([] if g == base else [f"{g} − {base}"])
    rows = []
    for r in c["rows"]:
        name = r.get("name", r["label"])
        metric = r["metric"] if name != r["label"] else ""
        cells = [swatch(colors.get(name)) + escape(name),
                 escape(metric) + (" ↑ higher" if r["higher_is_better"] else " ↓ lower")]
        for g in groups:
            s = r["groups"].get(g)
            cells.append(_cell(s))
            if g != base:
                cells.append(f"{s['difference']:+.4f}<br>{_verdict(s)}" if s and s.get("difference") is not None
                             else "—")
        rows.append(cells)
    legend = ('<p class="note">Per group: the mean over its runs (one per seed), under it [lowest, highest] of '
              "its runs and ×runs. "
              f"Against {escape(base)}: ▲ better / ▼ worse = the two seed ranges do not overlap (the worst run of "
              "the better arm beats the best of the other); ≈ inside = they overlap, the difference is within "
              f"seed noise; ? no band = a group of one run. <span class=\"note\">{escape(c.get('file', ''))}</span></p>")
    return "eval-compare", "Downstream evaluation: runs compared", (
        members + when + noise + summary + legend + f'<div class="wide">{table(headers, rows)}</div>')
