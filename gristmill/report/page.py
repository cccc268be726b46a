"""report.json → report.html: one file, styles and SVG inline, no script; crawled text escaped
(bidi controls shown as escapes, text.py). A source or a task has one colour in every plot and
table (`plots.palette` over `series_names`).

A Content-Security-Policy forbids scripts, frames and any fetch, so hostile text that slipped
past escaping still could not run or call out. Sections of stages that did not run are left out.
"""

from __future__ import annotations

from gristmill.report import plots
from gristmill.report.compare import render_compare
from gristmill.report.evals import eval_names, render_eval_compare, render_evals
from gristmill.report.markup import number, percent, plot, table
from gristmill.report.text import escape, href

PREVIEW_CHARS = 600  # a sample's text shown at once; the rest behind a <details>

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2530;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px 64px}
header{background:#1d2530;color:#fff;padding:16px 24px}header h1{margin:0 0 4px;font-size:22px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #dde;padding:6px 24px;z-index:1;
    display:flex;flex-wrap:wrap;gap:4px 14px;font-size:13px}
nav a{color:#2b7bba;text-decoration:none}
section{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:12px 18px;margin:16px 0;overflow:hidden}
h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 6px}
table{border-collapse:collapse;margin:8px 0;font-size:13px;max-width:100%}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:right;vertical-align:top}
th{background:#fafbfc}td:first-child,th:first-child{text-align:left}
td.l{text-align:left;word-break:break-all;max-width:600px}
.plot svg{max-width:100%;height:auto}.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid .plot{flex:0 1 340px}.note{color:#5a6570;font-size:12px}
.doc{border-left:3px solid #2b7bba;padding:4px 10px;margin:10px 0;background:#fbfcfd}
.doc.dropped{border-color:#d1495b}
.doc pre{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;max-height:28em;overflow:auto;
    background:#f3f4f6;padding:6px;margin:4px 0;font-size:12px}
.sig{font-family:ui-monospace,monospace;font-size:11px;color:#44505c;overflow-wrap:anywhere}
.up{color:#1a7f37}.down{color:#d1495b}
.sw{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.wide{overflow-x:auto}.wide th{overflow-wrap:anywhere;min-width:5em}.wide td .note,.wide td:first-child{white-space:nowrap}
"""


def render(data: dict) -> str:
    colors = plots.palette(series_names(data))
    sections = [s for s in (
        _funnel(data), _drops(data), _languages(data), _domains(data), _lengths(data), _signals(data),
        _dedup(data), _pii(data), _throughput(data), _mixture(data, colors), _training(data, colors),
        render_evals(data, colors), render_eval_compare(data, colors), _samples(data), _compare(data)) if s]
    nav = "".join(f'<a href="#{sid}">{escape(title)}</a>' for sid, title, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{escape(title)}</h2>{html}</section>' for sid, title, html in sections)
    run = data["run"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gristmill report: {escape(str(run['run']))}</title><style>{CSS}</style></head>
<body><header><h1>Data report: run {escape(str(run['run']))}</h1>
<div>{escape(str(run.get('status')))} · {number(run.get('documents') or 0)} documents kept · finished {escape(str(run.get('finished_at')))}
· code {escape(str(run.get('code_version')))} · <span class="note">{escape(run['dir'])}</span></div></header>
<nav>{nav}</nav><main>{body}</main></body></html>
"""


def series_names(data: dict) -> set[str]:
    """Every source and task name the report shows in colour: the mixture's, the training run's
    (loss per source, evaluation per task) and the compared runs' (one colour mapping for all)."""
    names = {s["name"] for s in (data.get("mixture") or {}).get("sources", [])}
    t = data.get("training") or {}
    return names | {name for kind in ("train", "validation") for name in t.get(kind, {}).get("by_source", {})} \
        | eval_names(data)


def _funnel(d: dict):
    f = d["funnel"]
    if not f:
        return None
    labels = ["read"] + [r["stage"] for r in f]
    values = [f[0]["docs_in"]] + [r["docs_out"] for r in f]
    svg = plots.hbar(labels, {"documents": values}, "Documents left after each stage", "documents",
                     empty="no documents read")
    rows = [[escape(r["stage"]), number(r["docs_in"]), number(r["docs_out"]), number(r["dropped"]),
             percent(r["dropped"] / r["docs_in"]) if r["docs_in"] else "—",
             f"{r['bytes_in'] / 2**20:,.1f}", f"{r['bytes_out'] / 2**20:,.1f}"] for r in f]
    return "funnel", "Funnel", plot(svg) + table(
        ["stage", "docs in", "docs out", "dropped", "drop rate", "MB in", "MB out"], rows) + \
        '<p class="note">Bytes: HTML into extraction, text after it.</p>'


def _drops(d: dict):
    drops = d["drops"]
    if not drops:
        return None
    top = drops[:25]
    svg = plots.hbar([f"{r['stage']}: {r['reason']}" for r in top], {"documents": [r["docs"] for r in top]},
                     "Documents dropped, by stage and reason (largest 25)", "documents dropped")
    rows = [[escape(r["stage"]), escape(r["reason"]), number(r["docs"]), percent(r["share_of_stage_input"])]
            for r in drops]
    return "drops", "Drops by reason", plot(svg) + table(["stage", "reason", "documents", "of the stage's input"],
                                                          rows, left=(0, 1))


def _languages(d: dict):
    langs = d["languages"]
    if not langs:
        return None
    top = langs[:20]
    svg = plots.hbar([r["language"] for r in top], {"documents": [r["docs"] for r in top]},
                     "Kept documents by language (top 20)", "documents")
    rows = [[escape(r["language"]), number(r["docs"]), percent(r["share"]), number(r["chars"])] for r in langs]
    return "languages", "Languages", plot(svg) + table(["language", "documents", "share", "characters"], rows)


def _domains(d: dict):
    dom = d["domains"]
    if not dom["kept"] and not dom["dropped"]:
        return None
    parts = []
    for key, title in (("kept", "Top domains kept"), ("dropped", "Top domains dropped (any stage)")):
        rows = [[escape(r["domain"]), number(r["docs"])] for r in dom[key]]
        parts.append(f"<div><h3>{title}</h3>{table(['domain', 'documents'], rows)}</div>")
    note = "" if dom["exact"] else '<p class="note">Counts are lower bounds (too many domains to count all).</p>'
    return "domains", "Domains", f'<div class="grid">{"".join(parts)}</div>{note}'


def _lengths(d: dict):
    out = []
    for key, unit in (("chars", "characters"), ("tokens", "tokens (EOS included)")):
        h = d["lengths"].get(key)
        if not h or not any(sum(c) for c in h["counts"].values()):
            continue
        q = h.get("quantiles", {}).get("kept", {})
        out.append(plot(plots.histogram(h["edges"], h["counts"], f"Kept document length in {unit}",
                                        f"{unit} per document (log scale)", logx=True)))
        out.append(f'<p class="note">median ≈ {number(q.get("p50", 0))}, p90 ≈ {number(q.get("p90", 0))}, '
                   f'p99 ≈ {number(q.get("p99", 0))} {key} (bin upper edges, 10 bins per decade)</p>')
    return ("lengths", "Document length", "".join(out)) if out else None


def _signals(d: dict):
    sigs = d["signals"]
    if not sigs:
        return None
    cells, rows = [], []
    for s in sigs:
        lines = [(lim["value"], f"{lim['op']} {lim['value']:g}: drops {percent(lim['share'])}")
                 for lim in s["limits"]]
        logx = s["edges"][0] == 0 and len(s["edges"]) > 2 and s["edges"][2] / max(s["edges"][1], 1e-9) > 1.05 \
            and s["edges"][-1] > 1000
        cells.append(plot(plots.histogram(s["edges"], s["counts"], s["column"], plots.signal_unit(s["column"]),
                                          lines, logx=logx, small=True)))
        for lim in s["limits"]:
            rows.append([escape(s["column"]), escape(f"{lim['op']} {lim['value']:g}"), escape(lim["reason"]),
                         number(lim["drops"]), percent(lim["share"])])
    limits = table(["signal", "dropped when", "reason", "documents", "of the filters' input"], rows, left=(0, 2)) \
        if rows else ""
    return "signals", "Quality and toxicity signals", (
        '<p class="note">Kept documents (blue) and those the filters dropped (red, with the signals computed '
        'up to the filter that dropped them). Dashed: the configured threshold (default chain; some languages '
        'override it) and the share of the filters\' input it drops.</p>'
        f'<div class="grid">{"".join(cells)}</div>{limits}')


def _dedup(d: dict):
    dd = d.get("dedup")
    if not dd:
        return None
    sizes = dd["cluster_sizes"]
    svg = plots.bars([c["size"] for c in sizes], [c["clusters"] for c in sizes], "Duplicate clusters by size",
                     "clusters", "documents in the cluster", logy=True) if sizes else ""
    rows = [[escape(c["kept_url"] or c["kept_id"]), number(c["size"]),
             "<details><summary>urls</summary>" + "<br>".join(escape(u or "") for u in c["urls"]) + "</details>"]
            for c in dd["largest"]]
    reasons = ", ".join(f"{escape(k)} {number(v)}" for k, v in dd["by_reason"].items())
    return "dedup", "Deduplication", (
        f"<p>{number(dd['removed'])} of {number(dd['docs_in'])} documents removed ({percent(dd['rate'])})"
        + (f": {reasons}.</p>" if reasons else ".</p>") + (plot(svg) if svg else "") + "<h3>Largest clusters</h3>"
        + (table(["kept document", "documents", "the others"], rows, left=(0, 2)) if rows else "<p>None.</p>"))


def _pii(d: dict):
    pii = d.get("pii")
    if pii is None:
        return None
    if not any(p["found"] for p in pii.values()):
        return "pii", "PII", "<p>No PII found.</p>"
    names = list(pii)
    svg = plots.hbar(names, {"found": [pii[n]["found"] for n in names]}, "PII replaced, by type", "occurrences")
    rows = [[escape(n), number(pii[n]["found"]), number(pii[n]["docs"])] for n in names]
    return "pii", "PII", plot(svg) + table(["type", "replaced", "documents"], rows)


def _throughput(d: dict):
    f = [r for r in d["funnel"] if r["docs_per_s"]]
    if not f:
        return None
    svg = plots.hbar([r["stage"] for r in f], {"docs/s": [r["docs_per_s"] for r in f]},
                     "Throughput per stage (documents per second of task time, one core)", "documents / s",
                     log=True, count=False)
    rows = [[escape(r["stage"]), number(r["docs_per_s"]), f"{r['seconds']:,.1f}"] for r in f]
    return "throughput", "Throughput", plot(svg) + table(["stage", "docs/s", "task seconds"], rows)


def _mixture(d: dict, colors: dict[str, str]):
    m = d.get("mixture")
    if not m:
        return None
    names = [s["name"] for s in m["sources"]]
    svg = plots.hbar(names, {"target": [s["target_tokens"] for s in m["sources"]],
                             "realised (the source's colour)": [s["realised_tokens"] for s in m["sources"]]},
                     f"Mixture {m['name']}: training tokens per source", "tokens",
                     colors=[plots.TARGET, [colors[n] for n in names]])
    rows = [[escape(s["name"]), percent(s["weight"]), percent(s["share"]), number(s["target_tokens"]),
             number(s["realised_tokens"]), f"{s['epochs']:.2f}",
             number(s["short_by_tokens"]) if s["short_by_tokens"] else "—", number(s["validation_tokens"]),
             number(s.get("validation_docs", 0))] for s in m["sources"]]
    warnings = "".join(f'<p class="down"><strong>WARNING:</strong> {escape(w)}</p>'
                       for w in m.get("warnings", []))  # first: they cannot be missed
    return "mixture", "Mixture", (
        warnings
        + f"<p>{number(m['train_tokens'])} training tokens of a {number(m['budget'])} budget, seed {m['seed']}.</p>"
        + plot(svg) + table(["source", "weight", "realised share", "target tokens", "realised tokens", "epochs",
                             "short by (cap)", "validation tokens", "validation docs"], rows))


def _training(d: dict, colors: dict[str, str]):
    t = d.get("training")
    if not t:
        return None
    parts = [f'<p>{number(t.get("tokens", 0))} training tokens; '
             f'median {number(t.get("tokens_per_s") or 0)} tokens/s'
             + (f", MFU {100 * t['mfu']:.1f}%" if t.get("mfu") is not None else "")
             + f'. <span class="note">{escape(t["dir"])}/metrics.jsonl</span></p>']
    for kind, title in (("train", "Training loss per source"), ("validation", "Validation loss per source")):
        c = t[kind]
        if c["step"]:
            series = {"all sources": c["loss"], **c["by_source"]}
            parts.append(plot(plots.lines(c["step"], series, title, "step", "cross-entropy (nats per token)",
                                          colors={**colors, "all sources": plots.ALL})))
    return "training", "Training", "".join(parts)


def _samples(d: dict):
    groups = d["samples"]
    if not groups:
        return None
    order = sorted(groups, key=lambda g: (g != "kept", g))
    out = [f'<p class="note">A few documents per group, chosen by a hash of their id with seed {d["seed"]}.</p>']
    for g in order:
        title = "Kept" if g == "kept" else f"Dropped: {g}"
        docs = "".join(_doc(doc, g != "kept") for doc in groups[g])
        out.append(f"<details{' open' if g == 'kept' else ''}><summary><b>{escape(title)}</b> "
                   f"({len(groups[g])})</summary>{docs}</details>")
    return "samples", "Sample documents", "".join(out)


def _doc(doc: dict, dropped: bool) -> str:
    url = doc.get("url") or ""
    link = (f'<a href="{href(url)}" rel="noopener noreferrer nofollow">{escape(url)}</a>'
            if url.startswith(("http://", "https://")) else escape(url))
    text = doc.get("text") or ""
    head, rest = text[:PREVIEW_CHARS], text[PREVIEW_CHARS:]
    more = f"<details><summary>{len(rest):,} more characters</summary><pre>{escape(rest)}</pre></details>" if rest else ""
    cut = doc["chars"] - len(text)
    more += f'<p class="note">… {cut:,} characters not kept in the report</p>' if cut > 0 else ""
    sig = " ".join(f"{escape(k)}={v:.3g}" for k, v in doc.get("signals", {}).items())
    meta = " · ".join(escape(str(x)) for x in (doc.get("id"), doc.get("source"), doc.get("language"),
                                               f"{doc['chars']:,} chars") if x is not None)
    why = f"<div>reason: <b>{escape(doc['reason'])}</b>" + (
        f" · duplicate of {escape(doc['duplicate_of'])}" if doc.get("duplicate_of") else "") + "</div>" \
        if doc.get("reason") else ""
    return (f'<div class="doc{" dropped" if dropped else ""}"><div>{link}</div><div class="note">{meta}</div>{why}'
            f'<pre>{escape(head)}</pre>{more}<div class="sig">{sig}</div></div>')


def _compare(d: dict):
    c = d.get("compare")
    if not c:
        return None
    return "compare", f"Compared with run {c['run']['run']}", render_compare(d, c["data"])
