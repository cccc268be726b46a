"""The data-mix report: report.json against its schema, report.html in headless Chromium (every
section, plots drawn, no console error, hostile crawled text inert), two runs compared."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.report import SCHEMA, report_data
from pipeline.report.page import render
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
SECTIONS = ["funnel", "drops", "languages", "domains", "lengths", "signals", "dedup", "pii", "throughput",
            "mixture", "training", "samples"]


def hostile_warc(path: Path) -> Path:
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=True)
    for url, body in [("http://hostile.example/escaping", HOSTILE), ("http://hostile.example/long-line", LONG_LINE),
                      ('http://hostile.example/q?a="><script>alert(5)</script>', HOSTILE.replace("Escaping", "Quoting"))]:
        http = StatusAndHeaders("200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1")
        w.write_record(w.create_warc_record(url, "response", payload=io.BytesIO(body.encode()), http_headers=http))
    path.write_bytes(buf.getvalue())
    return path


def gristmill(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True,
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
                          {"name": "english", "weight": 2, "max_epochs": 4, "where": {"language": "en"}},
                          {"name": "rest", "weight": 1, "max_epochs": 4}])}
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
        {"name": "english", "weight": 2, "max_epochs": 4, "where": {"tokens": {"min": 800}}},
        {"name": "short", "weight": 1, "max_epochs": 4}])
    return a, b


def training_run(path: Path) -> Path:
    """A training run's metrics.jsonl as trainer/metrics.py writes it (tests/test_train.py runs the trainer)."""
    path.mkdir(parents=True)
    lines = []
    for step in range(10, 110, 10):
        by_source = {"english": 8 - step / 30, "rest": 8.5 - step / 40}
        lines.append({"kind": "train", "step": step, "loss": 8 - step / 35, "loss_by_source": by_source,
                      "tokens_by_source": {"english": 1000 * step, "rest": 500 * step}, "tokens": 1500 * step,
                      "lr": 1e-3, "tokens_per_s": 5000.0, "mfu": None, "memory_gb": 0.7})
        if step % 50 == 0:
            lines.append({"kind": "validation", "step": step, "loss": 8.2 - step / 35, "loss_by_source": by_source,
                          "tokens_by_source": {"english": 900, "rest": 400}})
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
