"""Downstream evaluation in the report: per-task curves from a training run's eval records (only
when it has some), the comparison of training runs (`gristmill eval --compare --out`) with its
verdicts, one colour per source or task across plots and tables, hostile names inert. Small
hand-written metrics.jsonl fixtures, no training; the comparison file is made by the trainer's own
`compare` (so the report reads what the trainer writes)."""

from __future__ import annotations

import json
import re
from html import unescape
from pathlib import Path

import jsonschema
import pytest

from gristmill.core.config import ConfigError
from gristmill.pipeline.cli import main
from gristmill.report import SCHEMA, plots, report_data, training_curves, write_report
from gristmill.report.evals import eval_curves, read_eval_compare
from gristmill.report.page import render, series_names
from gristmill.report.text import BIDI
from gristmill.trainer.evals.compare import compare
from tests.report.test_report import loss_records

TASKS = [f"task_{i:02d}:rc_0shot" for i in range(12)]  # more than 11: the small multiples must stay readable
HOSTILE_TASK = "<img src=x onerror=\"window.__pwned=1\">$x$\u202e:rc"
HOSTILE_GROUP = "<script>window.__pwned=2</script>\"'&"
HOSTILE_DIR = "run<img src=x onerror=alert(3)>"


def task_result(acc: float, bpb: float, metric: str = "acc_raw") -> dict:
    return {"acc_raw": acc, "acc_per_char": acc + 0.01, "prob_correct": acc - 0.01, "bpb": bpb,
            "primary_metric": metric, "primary": acc if metric == "acc_raw" else acc + 0.01, "questions": 40,
            "unscorable": 0}


def training_run(path: Path, tasks: list[str] | None = TASKS, final: bool = True, offset: float = 0.0) -> Path:
    """metrics.jsonl as the trainer writes it: train and validation records, and (with `tasks`) an
    in-loop eval record every 50 steps (the last task only from step 100), then `gristmill eval`'s
    record (`in_loop: false`); evals/in-loop/step-N.json as the trainer writes them."""
    path.mkdir(parents=True)
    lines = []
    for record in loss_records(300, ("english", "code"), (60, 70, 65), offset):
        lines.append(record)
        step = record["step"]
        if record["kind"] == "validation" and tasks:
            results = {t: task_result(0.2 + step / 3000 + i / 100 + offset, 4 - step / 200 - i / 50 - offset,
                                      "acc_per_char" if i % 2 else "acc_raw")
                       for i, t in enumerate(tasks) if step >= 100 or t != tasks[-1]}
            lines.append({"kind": "eval", "step": step, "tasks": results, "seconds": 1.0})
            (path / "evals" / "in-loop").mkdir(parents=True, exist_ok=True)
            (path / "evals" / "in-loop" / f"step-{step:06d}.json").write_text(json.dumps(
                {"step": step, "in_loop": True, "limit": 40, "tasks": results}))
    if tasks and final:
        lines.append({"kind": "eval", "step": 300, "in_loop": False, "seconds": 2.0,
                      "tasks": {t: task_result(0.35, 2.4, "acc_per_char" if i % 2 else "acc_raw")
                                for i, t in enumerate(tasks)}})
    (path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def data_run(path: Path) -> Path:
    """A data run that kept nothing: enough for a report with training sections."""
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps({"run": "r", "status": "succeeded", "totals": {}, "documents": 0}))
    return path


@pytest.fixture
def comparison(tmp_path) -> Path:
    """Three arms: A (baseline, 2 seeds), a hostile-named B (2 seeds, one of them in a hostile
    directory) better on the primary metric and worse on probability, C (1 seed)."""
    a = [training_run(tmp_path / f"a{s}", TASKS[:2], False, s / 100) for s in range(2)]
    b = [training_run(tmp_path / f"b{s}" if s else tmp_path / HOSTILE_DIR, TASKS[:2], False, 0.2 + s / 100)
         for s in range(2)]
    c = [training_run(tmp_path / "c0", TASKS[:2], False, 0.005)]
    for run in b:  # B: much better on the primary metric, worse on prob_correct; bpb within A's range
        for f in (run / "evals" / "in-loop").glob("*.json"):
            d = json.loads(f.read_text())
            for t in d["tasks"].values():
                t["prob_correct"] -= 0.5
                t["bpb"] += 0.2 - 0.005
            f.write_text(json.dumps(d))
    result = compare({"A": [str(r) for r in a], HOSTILE_GROUP: [str(r) for r in b], "C": [str(r) for r in c]})
    path = tmp_path / "compare.json"
    path.write_text(json.dumps(result))
    return path


def section(page: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">.*?</section>', page, re.S)
    return m[0] if m else ""


def test_eval_curves_per_task_from_the_eval_records(tmp_path):
    records = [json.loads(line) for line in (training_run(tmp_path / "t") / "metrics.jsonl").read_text().splitlines()]
    ev = eval_curves(records)
    assert ev["step"] == [50, 100, 150, 200, 250, 300]  # in-loop only
    assert list(ev["tasks"]) == sorted(TASKS)
    first, last = ev["tasks"][TASKS[0]], ev["tasks"][TASKS[-1]]
    assert first["primary_metric"] == "acc_raw" and last["primary_metric"] == "acc_per_char"
    assert first["primary"][0] == pytest.approx(0.2 + 50 / 3000) and first["bpb"][-1] == pytest.approx(2.5)
    assert last["primary"][0] is None and last["primary"][1] is not None  # not evaluated at step 50
    assert ev["after"] == [{"step": 300, "tasks": {t: {"primary": pytest.approx(0.35 + 0.01 * (i % 2)), "bpb": 2.4}
                                                   for i, t in enumerate(TASKS)}}]
    assert eval_curves([r for r in records if r["kind"] != "eval"]) is None
    assert "evals" not in training_curves(str(training_run(tmp_path / "plain", tasks=None)))


def test_eval_curves_appear_when_the_run_evaluated_and_not_otherwise(tmp_path):
    run = data_run(tmp_path / "run")
    data = report_data(str(run), training=str(training_run(tmp_path / "t")))
    _, html = write_report(data, str(tmp_path / "out"))  # validates against schema.json
    page = Path(html).read_text()
    evals = section(page, "evals")
    assert evals.count("<svg") == 2 and "Primary metric per task" in evals and "Bits per byte" in evals
    assert page.index('id="training"') < page.index('id="evals"')  # after the loss curves
    for t in TASKS:
        assert evals.count(f"<title>{t}</title>") == 2  # one panel in each figure
    assert evals.count('<g class="final">') == 2 * len(TASKS)  # gristmill eval's points, as markers
    assert "gristmill eval: metric / bpb" in evals
    plain = report_data(str(run), training=str(training_run(tmp_path / "plain", tasks=None)))
    write_report(plain, str(tmp_path / "out2"))
    page = (tmp_path / "out2" / "report.html").read_text()
    assert "evals" not in plain["training"] and 'id="evals"' not in page and 'id="training"' in page
    assert 'id="eval-compare"' not in page


def test_the_compare_section_renders_the_verdicts(tmp_path, comparison):
    data = report_data(str(data_run(tmp_path / "run")), eval_compare=str(comparison))
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    rows = {r["label"]: r for r in data["eval_compare"]["rows"]}
    assert rows[f"{TASKS[0]} acc_raw"]["name"] == TASKS[0] and rows["english loss"]["name"] == "english"
    page = section(render(data), "eval-compare")
    table = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    by_row = {(unescape(re.sub(r"<[^>]+>", "", cells[0])), re.sub(r"<[^>]+>", "", cells[1]).split()[0]): cells
              for row in table if len(cells := re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)) == 7}
    assert len(by_row) == 8  # 2 tasks × (primary, prob_correct, bpb) and 2 sources
    # columns: name, metric, A, B, B − A (and B's verdict), C, C − A (and C's verdict)
    assert "▲ better" in by_row[(TASKS[0], "acc_raw")][4] and 'class="up"' in by_row[(TASKS[0], "acc_raw")][4]
    assert "▼ worse" in by_row[(TASKS[0], "prob_correct")][4]
    assert "≈ inside" in by_row[(TASKS[0], "bpb")][4]
    assert all("? no band" in cells[6] for cells in by_row.values())  # C: one seed
    assert "▼ worse" in by_row[("english", "loss")][4] and "↓ lower" in by_row[("english", "loss")][1]
    assert by_row[(TASKS[0], "acc_raw")][4].startswith("+0.2")  # the difference of the means
    assert by_row[(TASKS[0], "acc_raw")][3].startswith("0.5050<br>") and "[0.5000, 0.5100] ×2" in \
        by_row[(TASKS[0], "acc_raw")][3]  # B's mean and seed range
    assert "better on 2</span>, <span class=\"down\">worse on 4" in page  # the summary of B against A
    assert "Evaluated at step 300" in page and "one run only" in page
    for run in (*json.loads(comparison.read_text())["groups"]["A"], "c0"):
        assert run in page  # which runs make each group


def test_runs_evaluated_at_different_steps_are_flagged(tmp_path, comparison):
    data = json.loads(comparison.read_text())
    data["steps"], data["same_step"] = [200, 300], False
    comparison.write_text(json.dumps(data))
    page = render(report_data(str(data_run(tmp_path / "run")), eval_compare=str(comparison)))
    assert "WARNING:</strong> the runs were evaluated at different steps (200, 300" in page


def test_not_a_comparison_is_a_one_line_error(tmp_path, capsys):
    run, bad = data_run(tmp_path / "run"), tmp_path / "bad.json"
    for content in ('{"groups": {"A": ["x"]}}', "not json"):
        bad.write_text(content)
        assert main(["report", str(run), "--eval-compare", str(bad), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gristmill: --eval-compare:") and err.count("\n") == 1
    with pytest.raises(ConfigError, match="not a comparison .* at rows/0/groups/B/verdict"):
        read_eval_compare(_wrong_verdict(tmp_path))


def _wrong_verdict(tmp_path: Path) -> str:
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps({"groups": {"A": ["a"], "B": ["b"]}, "steps": [1], "same_step": True, "kinds": [],
                                "rows": [{"label": "t acc_raw", "kind": "task", "metric": "acc_raw",
                                          "higher_is_better": True, "baseline": "A",
                                          "groups": {"A": {"mean": 1, "min": 1, "max": 1, "seeds": 1},
                                                     "B": {"mean": 1, "min": 1, "max": 1, "seeds": 1,
                                                           "verdict": "maybe"}}}]}))
    return str(path)


def test_a_name_has_one_colour_in_every_plot_and_table(tmp_path, comparison):
    data = report_data(str(data_run(tmp_path / "run")), training=str(training_run(tmp_path / "t")),
                       eval_compare=str(comparison))
    page = render(data)
    expected = plots.palette(series_names(data))
    assert set(expected) == {"english", "code", *TASKS}  # sources and tasks: one mapping
    drawn: dict[str, set[str]] = {}
    plots_of: dict[str, set[int]] = {}
    for i, svg in enumerate(re.findall(r"<svg.*?</svg>", page, re.S)):
        for name, colour in re.findall(r'<g class="series"><title>([^<]*)</title>.*?(#[0-9a-f]{6})', svg, re.S):
            drawn.setdefault(unescape(name), set()).add(colour)
            plots_of.setdefault(unescape(name), set()).add(i)
    swatches = re.findall(r'<span class="sw" style="background:(#[0-9a-f]{6})"></span>([^<]*)<', page)
    assert len(swatches) == len(TASKS) + len(json.loads(comparison.read_text())["rows"])  # both tables
    for colour, name in swatches:
        drawn.setdefault(unescape(name), set()).add(colour)
    assert drawn == {**{n: {expected[n]} for n in expected}, "all sources": {plots.ALL}}
    assert all(len(plots_of[t]) == 2 for t in TASKS) and len(plots_of["english"]) == 2  # both figures; both losses
    assert len(set(expected.values())) == len(expected)  # 14 names, 14 colours


def test_palette_is_stable_and_spreads_names():
    names = ["english", "code", *TASKS]
    colours = plots.palette(names)
    assert colours == plots.palette(reversed(names))  # order does not matter
    assert plots.palette(names + ["zzz"]) == colours | {"zzz": plots.palette(names + ["zzz"])["zzz"]}  # nor a later name
    many = plots.palette(f"source-{i}" for i in range(40))
    uses = [list(many.values()).count(c) for c in plots.PALETTE]
    assert max(uses) - min(uses) <= 1  # past 16 names the colours are reused evenly


def test_hostile_names_are_escaped(tmp_path, comparison):
    t = training_run(tmp_path / "t", tasks=[HOSTILE_TASK, "ok:rc"])
    data = report_data(str(data_run(tmp_path / "run")), training=str(t), eval_compare=str(comparison))
    _, html = write_report(data, str(tmp_path / "out"))
    page = Path(html).read_text()
    for raw in ("<script>window.__pwned", "<img src=x", HOSTILE_DIR):  # no tag: quotes in text are inert
        assert raw not in page
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;&quot;&#x27;&amp;" in page  # the group, shown as text
    assert "run&lt;img src=x onerror=alert(3)&gt;" in page  # the run's directory
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;$x$\\u202e:rc" in page  # the task, bidi shown
    assert not BIDI.search(page)
    assert section(page, "evals").count("<svg") == 2
    assert render(data) == page  # deterministic: the same report twice is the same file


@pytest.mark.heavy
def test_in_chromium_the_eval_sections_read_and_nothing_runs(tmp_path, comparison):
    from tests.browser import open_page
    from tests.report.test_report import assert_plot_text_fits_and_reads

    run = data_run(tmp_path / "run")
    t = training_run(tmp_path / "t", tasks=[*TASKS[:-1], HOSTILE_TASK])
    out = tmp_path / "out"
    assert main(["report", str(run), "--training", str(t), "--eval-compare", str(comparison), "--out", str(out)]) == 0
    with open_page(str(out / "report.html")) as (page, log):
        for sid in ("training", "evals", "eval-compare"):
            box = page.locator(f"section#{sid}").bounding_box()
            assert box and box["height"] > 100, sid
        assert HOSTILE_GROUP in page.locator("section#eval-compare").inner_text()
        assert page.evaluate("() => window.__pwned === undefined")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
        assert_plot_text_fits_and_reads(page)  # 12 panels a figure, every label readable and inside
    assert not log.console_errors and not log.page_errors and not log.dialogs
    assert set(log.requests) == {f"file://{out / 'report.html'}"}
