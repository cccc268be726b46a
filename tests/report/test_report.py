"""The data-mix report: report.json against its schema, report.html in headless Chromium (every
section, plots drawn, no console error, hostile crawled text inert, every plot text inside its SVG
and readable, bidi controls shown as escapes), one colour per source, sane axes for an empty run,
two runs compared."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import jsonschema
import pytest
import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from gristmill.report import SCHEMA, plots, report_data
from gristmill.report.collect import PII_TYPES
from gristmill.report.page import render, series_names
from gristmill.report.text import BIDI
from tests.browser import open_page
from tests.conftest import ROOT, WARC, make_config, require

pytestmark = pytest.mark.slow

HOSTILE = (
    "<html><head><title>Hostile</title></head><body><article><h1>Escaping, explained</h1>"
    + "<p>A tutorial quotes markup as text: &lt;script&gt;window.__pwned = 1; alert(1)&lt;/script&gt; is what an "
      "attacker writes, and so is &lt;img src=x onerror=\"window.__pwned = 2\"&gt; or a closing "
      "&lt;/textarea&gt;&lt;script&gt;alert(3)&lt;/script&gt; and &lt;/pre&gt;&lt;/details&gt;&lt;script&gt;alert(4)"
      "&lt;/script&gt; inside a sentence.</p>"
    + "".join(f"<p>Paragraph {i} of ordinary prose explains why every page must be escaped before it is shown, "
              f"since crawled text is written by strangers and some of them are hostile.</p>" for i in range(12))
    + "</article></body></html>")
LONG_LINE = "<html><body><article><p>" + "x" * 1_000_000 + "</p><p>" + "Some more words here. " * 40 \
    + "</p></article></body></html>"
BIDI_URL = "http://hostile.example/\u202egnp.exe"  # shows as ".../exe.png" where the override works
SECTIONS = ["funnel", "drops", "languages", "domains", "lengths", "signals", "dedup", "pii", "throughput",
            "mixture", "training", "samples"]


PLOT_TEXT = """() => [...document.querySelectorAll('svg')].flatMap(svg => {
  const vb = svg.viewBox.baseVal, inv = svg.getScreenCTM().inverse();
  return [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox(), screen = t.getScreenCTM(), m = inv.multiply(screen);
    const p = [[b.x, b.y], [b.x + b.width, b.y], [b.x, b.y + b.height], [b.x + b.width, b.y + b.height]]
      .map(([x, y]) => new DOMPoint(x, y).matrixTransform(m));
    return {text: t.textContent, x0: Math.min(...p.map(q => q.x)) - vb.x, x1: Math.max(...p.map(q => q.x)) - vb.x,
            y0: Math.min(...p.map(q => q.y)) - vb.y, y1: Math.max(...p.map(q => q.y)) - vb.y, w: vb.width,
            h: vb.height, px: parseFloat(getComputedStyle(t).fontSize) * Math.hypot(screen.a, screen.b)};
  });
})"""  # every plot text: its box in its SVG's viewBox units, and its size as rendered in CSS px
TICK = re.compile(r'<g id="[xy]tick_\d+">(?:(?!<g id="[xy]tick_).)*?<text[^>]*>([^<]*)</text>', re.S)
NUMBER = re.compile(r"[−-]?\d+(\.\d+)?[pnµmkMG]?")  # a numeric tick label, as EngFormatter writes it
SANE_TICK = re.compile(r"\d+(\.\d+)?[kMG]?")  # 0, 1, 2.5k: no minus, no milli-documents


def assert_plot_text_fits_and_reads(page) -> None:
    """No plot text (tick, label, title, legend, note) outside its SVG's viewBox (where it would be
    clipped) or under 10 CSS px as rendered (the SVG scaled to its box, at a 1280 px viewport)."""
    texts = page.evaluate(PLOT_TEXT)
    assert texts
    outside = [t["text"] for t in texts
               if min(t["x0"], t["y0"]) < -0.5 or t["x1"] > t["w"] + 0.5 or t["y1"] > t["h"] + 0.5]
    small = [(t["text"], round(t["px"], 2)) for t in texts if t["px"] < 10]
    assert not outside and not small, (outside, small)


def assert_sane_axes(page: str) -> None:
    """Every numeric tick label of every plot ≥ 0 and not a fraction of a unit (−40m … 40m)."""
    for svg in re.findall(r"<svg.*?</svg>", page, re.S):
        ticks = [t for t in TICK.findall(svg) if NUMBER.fullmatch(t)]  # not the categories' names
        assert ticks and all(SANE_TICK.fullmatch(t) for t in ticks), ticks


def series_colours(page: str) -> list[tuple[int, str, str]]:
    """(plot, series name, colour) for each named series drawn: lines and source-coloured bars."""
    return [(i, unescape(name), colour) for i, svg in enumerate(re.findall(r"<svg.*?</svg>", page, re.S))
            for name, colour in re.findall(r'<g class="series"><title>([^<]*)</title>.*?(#[0-9a-f]{6})', svg, re.S)]


def hostile_warc(path: Path) -> Path:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    quoting = 'http://hostile.example/q?a="><script>alert(5)</script>'
    for url, body in [("http://hostile.example/escaping", HOSTILE), ("http://hostile.example/long-line", LONG_LINE),
                      (quoting, HOSTILE.replace("Escaping", "Quoting")),
                      (BIDI_URL, HOSTILE.replace("Escaping", "Reversing"))]:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body.encode()), http_headers=http))
    path.write_bytes(buf.getvalue())
    return path


def gristmill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def run_config(work: Path, name: str, **sets) -> Path:
    inputs = {"cc": [str(require(WARC / "real")) + "/*.warc.gz"], "hostile": [str(hostile_warc(work / "hostile.warc.gz"))]}
    raw = make_config(work, inputs, name=name, filters={"default": {"gopher_repetition": {}, "gopher_quality": {},
                                                                    "c4": {}, "fineweb": {}}},
                      pii={}, dedup={}, tokenize={"vocab_size": 2000})
    raw["stages"] = {k: raw["stages"][k] for k in ("ingest", "extract", "lid", "filters", "pii", "dedup", "write",
                                                   "tokenize")}
    raw["stages"]["lid"].update(sets.pop("lid", {}))
    raw["mixture"] = {"name": f"{name}-mix", "budget": 40_000, "validation": 0.1, "shard_tokens": 10_000,
                      "sources": sets.pop("sources", [
                          {"name": "english", "weight": 2, "max_epochs": 20, "where": {"language": "en"}},
                          {"name": "rest", "weight": 1, "max_epochs": 20}])}
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = gristmill("run", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    return work / "out" / name


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("report")
    a = run_config(work, "a")
    b = run_config(work, "b", lid={"languages": ["en"]}, sources=[  # English only: long and short pages
        {"name": "english", "weight": 2, "max_epochs": 20, "where": {"tokens": {"min": 800}}},
        {"name": "short", "weight": 1, "max_epochs": 20}])
    return a, b


def loss_records(steps: int, sources: tuple[str, str], slopes: tuple[float, float, float],
                 offset: float = 0.0) -> list[dict]:
    """metrics.jsonl's train records every 10 steps and validation records every 50, as
    trainer/metrics.py writes them, for two sources whose losses fall by step / slope."""
    a, b = sources
    lines = []
    for step in range(10, steps + 10, 10):
        by_source = {a: 8 - step / slopes[0] + offset, b: 8.5 - step / slopes[1] + offset}
        lines.append({"kind": "train", "step": step, "loss": 8 - step / slopes[2], "loss_by_source": by_source,
                      "tokens_by_source": {a: 1000 * step, b: 500 * step}, "tokens": 1500 * step,
                      "lr": 1e-3, "tokens_per_s": 5000.0, "mfu": None, "memory_gb": 0.7})
        if step % 50 == 0:
            lines.append({"kind": "validation", "step": step, "loss": 8.2 - step / slopes[2],
                          "loss_by_source": by_source, "tokens_by_source": {a: 900, b: 400}})
    return lines


def training_run(path: Path) -> Path:
    """A training run's metrics.jsonl as trainer/metrics.py writes it (tests/trainer/test_train.py runs the trainer)."""
    path.mkdir(parents=True)
    lines = loss_records(100, ("english", "rest"), (30, 40, 35))
    (path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


@pytest.fixture(scope="module")
def report(runs) -> tuple[dict, Path]:
    a, _ = runs
    training = training_run(a.parent / "a-training")
    r = gristmill("report", str(a), str(a.parent / "a-mix"), "--samples", "100", "--training", str(training))
    assert r.returncode == 0, r.stdout + r.stderr
    assert str(a / "report.html") in r.stdout
    return json.loads((a / "report.json").read_text()), a / "report.html"


def test_report_json_follows_its_schema_and_the_run(runs, report):
    data, _ = report
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    manifest = json.loads((runs[0] / "manifest.json").read_text())
    assert [r["stage"] for r in data["funnel"]] == list(manifest["totals"])
    assert sum(r["docs"] for r in data["drops"]) == sum(sum(s["dropped"].values()) for s in manifest["totals"].values())
    assert sum(lang["docs"] for lang in data["languages"]) == manifest["documents"]
    counts = data["lengths"]["tokens"]["counts"]["kept"]
    assert sum(counts) == manifest["documents"] == sum(data["lengths"]["chars"]["counts"]["kept"])
    by_column = {s["column"]: s for s in data["signals"]}
    assert any(lim["reason"] == "gopher_quality:gopher_short_doc" for lim in by_column["gopher_word_count"]["limits"])
    for s in data["signals"]:
        assert len(s["edges"]) == len(s["counts"]["kept"]) + 1
    assert data["dedup"]["docs_in"] == manifest["totals"]["dedup"]["docs_in"]
    assert {s["name"] for s in data["mixture"]["sources"]} == {"english", "rest"}
    assert data["training"]["train"]["step"][-1] == 100 and set(data["training"]["validation"]["by_source"]) == \
        {"english", "rest"}
    groups = set(data["samples"])
    assert "kept" in groups and {f"{r['stage']}:{r['reason']}" for r in data["drops"]} <= groups
    texts = " ".join(d["text"] for g in data["samples"].values() for d in g)
    assert "<script>window.__pwned = 1" in texts  # the hostile page is among the samples


def test_report_in_chromium_every_section_rendered_nothing_runs(report, tmp_path):
    data, html = report
    with open_page(str(html)) as (page, log):
        for sid in SECTIONS:
            box = page.locator(f"section#{sid}").bounding_box()
            assert box and box["height"] > 40 and box["width"] > 300, sid
        sizes = page.evaluate("() => [...document.querySelectorAll('svg')].map(s => {"
                              "const r = s.getBoundingClientRect(); return [r.width, r.height]; })")
        assert len(sizes) == html.read_text().count("<svg") >= 5 + len(data["signals"])
        assert all(w > 50 and h > 50 for w, h in sizes)
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        text = page.inner_text("body")
        assert "<script>window.__pwned = 1; alert(1)</script>" in text  # shown as text…
        assert page.evaluate("() => window.__pwned === undefined")  # …and never run
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280  # the 1 MB line wraps
        assert "http://hostile.example/\\u202egnp.exe" in text and not BIDI.search(text)  # the override shown
        assert_plot_text_fits_and_reads(page)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert not log.console_errors and not log.page_errors and not log.dialogs
    assert set(log.requests) == {f"file://{html}"}  # nothing fetched: one self-contained file


def test_compare_two_runs(runs):
    a, b = runs
    out = a / "compare"
    r = gristmill("report", str(a), str(a.parent / "a-mix"), "--compare", str(b), "--compare-mix",
                  str(b.parent / "b-mix"), "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads((out / "report.json").read_text())
    other = data["compare"]["data"]
    assert other["run"]["run"] == "b" and other["mixture"]["name"] == "b-mix"
    assert {(r["stage"], r["reason"]) for r in other["drops"]} != {(r["stage"], r["reason"]) for r in data["drops"]}
    assert [s["edges"] for s in other["signals"]] == [s["edges"] for s in data["signals"] if s["column"] in
                                                      {o["column"] for o in other["signals"]}]
    with open_page(str(out / "report.html")) as (page, log):
        section = page.locator("section#compare")
        assert "lid: language" in section.inner_text() and "share A" in section.inner_text()
        assert section.locator("svg").count() >= 2
        assert_plot_text_fits_and_reads(page)
    assert not log.console_errors and not log.page_errors


def test_stages_that_did_not_run_are_left_out(report):
    data, _ = report
    lean = {k: v for k, v in data.items() if k not in ("dedup", "pii", "mixture", "training")}
    lean["signals"] = []
    page = render(lean)
    for sid in ("dedup", "pii", "mixture", "training", "signals"):
        assert f'id="{sid}"' not in page
    assert 'id="funnel"' in page and 'id="samples"' in page


def test_report_of_a_run_without_mixture_or_filters(runs, tmp_path):
    data = report_data(str(runs[1]), None, samples=1)
    assert "mixture" not in data and data["signals"]
    html = render(data)
    assert 'id="mixture"' not in html and html.count("<svg") >= 5


def test_bidi_controls_shown_as_escapes(report):
    data, html = report
    assert any(d["url"] == BIDI_URL for g in data["samples"].values() for d in g)  # report.json keeps the data
    page = html.read_text()
    assert not BIDI.search(page)  # not in a link, a title, a table, a sample's text or a plot
    assert ">http://hostile.example/\\u202egnp.exe</a>" in page  # shown escaped, and percent-encoded in the link:
    assert 'href="http://hostile.example/%E2%80%AEgnp.exe"' in page
    shown = render({**data, "drops": [{"stage": "filters", "reason": "r\u2067eason\u2069\u200f\u061c", "docs": 1,
                                        "share_of_stage_input": 0.1}]})
    assert not BIDI.search(shown) and shown.count("r\\u2067eason\\u2069\\u200f\\u061c") >= 2  # table and plot


def test_a_source_has_one_colour_in_every_plot(report):
    data, html = report
    # as drawn, and with a source the training run lacks (sorted first) and validation on one source
    other = json.loads(json.dumps(data))
    other["mixture"]["sources"].insert(0, {**other["mixture"]["sources"][0], "name": "aaa"})
    other["training"]["validation"]["by_source"] = {"rest": other["training"]["validation"]["by_source"]["rest"]}
    for d, page in ((data, html.read_text()), (other, render(other))):
        drawn = series_colours(page)
        colours: dict[str, set[str]] = {}
        for _, name, colour in drawn:
            colours.setdefault(name, set()).add(colour)
        expected = plots.palette(series_names(d)) | {"all sources": plots.ALL}
        assert colours == {name: {c} for name, c in expected.items()}
        assert len({c for cs in colours.values() for c in cs}) == len(colours)  # different names, different colours
        for name in ("english", "rest"):  # the mixture's bars and the training and validation lines
            assert len({i for i, n, _ in drawn if n == name}) == (3 if name == "rest" or d is data else 2)


def test_long_labels_wrap_with_their_full_text_kept(report, tmp_path):
    data, _ = report
    reason = "a_reason_whose_name_goes_on_" * 6
    data = {**data, "drops": [{"stage": "filters", "reason": reason, "docs": 10**6, "share_of_stage_input": 0.5},
                              *data["drops"]]}
    path = tmp_path / "long.html"
    path.write_text(render(data))
    assert f"<title>filters: {reason}</title>" in path.read_text()  # the tooltip of the shortened label
    with open_page(str(path)) as (page, log):
        assert_plot_text_fits_and_reads(page)
    assert not log.console_errors and not log.page_errors


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory) -> Path:
    """A run that read nothing (an empty WARC), through every stage but the mixture."""
    work = tmp_path_factory.mktemp("empty")
    (work / "empty.warc.gz").write_bytes(b"")
    raw = make_config(work, {"nothing": [str(work / "empty.warc.gz")]}, name="empty",
                      filters={"default": {"gopher_quality": {}, "c4": {}}}, pii={}, dedup={},
                      tokenize={"vocab_size": 2000})
    raw["stages"] = {k: raw["stages"][k] for k in ("ingest", "extract", "lid", "filters", "pii", "dedup", "write",
                                                   "tokenize")}
    (work / "empty.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    r = gristmill("run", str(work / "empty.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    return work / "out" / "empty"


def test_an_empty_run_has_sane_axes(empty_run):
    r = gristmill("report", str(empty_run))
    assert r.returncode == 0, r.stdout + r.stderr
    data, page = json.loads((empty_run / "report.json").read_text()), (empty_run / "report.html").read_text()
    assert data["run"]["documents"] == 0 and "no documents read" in page and "<svg" in page
    assert_sane_axes(page)
    none_found = render({**data, "pii": {t: {"found": 0, "docs": 0} for t in PII_TYPES}})  # looked, found none
    assert "No PII found" in none_found
    assert_sane_axes(none_found)
    for svg in (plots.hbar(["a", "b"], {"n": [0, 0]}, "t", "documents"),
                plots.hbar(["a", "b"], {"n": [0, 0], "m": [0, 0]}, "t", "documents / s", log=True, count=False),
                plots.hbar([], {"n": []}, "t", "documents"),
                plots.histogram([0, 1, 2], {"kept": [0, 0], "dropped": [0, 0]}, "t", "x", lines=[(1, "> 1")]),
                plots.histogram([0, 1, 2], {"A kept": [0, 0]}, "t", "x", normalise=True, small=True),
                plots.bars([], [], "t", "clusters", "size", logy=True), plots.bars([2], [0], "t", "clusters", "size"),
                plots.lines([], {"all": []}, "t", "step", "loss"),
                plots.lines([10], {"a": [None]}, "t", "step", "loss")):
        assert_sane_axes(svg)
        assert "none found" in svg or "no documents" in svg or "no points" in svg
    assert_sane_axes(plots.lines([10], {"a": [3.0]}, "t", "step", "loss"))  # one step: 9 … 11, not 9.99 … 10.01
