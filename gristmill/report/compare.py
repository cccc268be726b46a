"""Two runs side by side (`gristmill report RUN_A --compare RUN_B`): what a config change did to
the funnel, the drop reasons, the languages, the signal distributions and the mixture.
B's signals are binned on A's edges, so the histograms overlay."""

from __future__ import annotations

from gristmill.report import plots
from gristmill.report.markup import number, percent, plot, table
from gristmill.report.text import escape


def _delta(a: float, b: float, pct: bool = False) -> str:
    d = b - a
    if d == 0:
        return "="
    text = (f"{100 * d:+.2f} pt" if pct else f"{d:+,.0f}")
    return f'<span class="{"up" if d > 0 else "down"}">{text}</span>'


def render_compare(a: dict, b: dict) -> str:
    name_a, name_b = a["run"]["run"], b["run"]["run"]
    parts = [f"<p>A = <b>{escape(str(name_a))}</b> ({escape(a['run']['dir'])}), "
             f"B = <b>{escape(str(name_b))}</b> ({escape(b['run']['dir'])}).</p>"]

    fa, fb = {r["stage"]: r for r in a["funnel"]}, {r["stage"]: r for r in b["funnel"]}
    stages = list(dict.fromkeys([*fa, *fb]))
    rows = [[escape(s), number(fa[s]["docs_out"]) if s in fa else "—",
             number(fb[s]["docs_out"]) if s in fb else "—",
             _delta(fa.get(s, {}).get("docs_out", 0), fb.get(s, {}).get("docs_out", 0))] for s in stages]
    parts.append("<h3>Funnel: documents out of each stage</h3>" + table(["stage", "A", "B", "B − A"], rows))

    da = {(r["stage"], r["reason"]): r for r in a["drops"]}
    db = {(r["stage"], r["reason"]): r for r in b["drops"]}
    keys = sorted(set(da) | set(db), key=lambda k: -max(da.get(k, {}).get("docs", 0), db.get(k, {}).get("docs", 0)))
    rows = [[escape(f"{k[0]}: {k[1]}"), number(da.get(k, {}).get("docs", 0)),
             number(db.get(k, {}).get("docs", 0)),
             _delta(da.get(k, {}).get("share_of_stage_input", 0), db.get(k, {}).get("share_of_stage_input", 0), pct=True)]
            for k in keys]
    if rows:
        top = keys[:20]
        parts.append(plot(plots.hbar([f"{k[0]}: {k[1]}" for k in top],
                                     {f"A ({name_a})": [da.get(k, {}).get("docs", 0) for k in top],
                                      f"B ({name_b})": [db.get(k, {}).get("docs", 0) for k in top]},
                                     "Documents dropped by reason, A and B", "documents")))
        parts.append(table(["reason", "A", "B", "drop rate B − A"], rows))

    la, lb = {r["language"]: r["share"] for r in a["languages"]}, {r["language"]: r["share"] for r in b["languages"]}
    langs = sorted(set(la) | set(lb), key=lambda k: -max(la.get(k, 0), lb.get(k, 0)))[:20]
    if langs:
        rows = [[escape(k), percent(la.get(k, 0)), percent(lb.get(k, 0)),
                 _delta(la.get(k, 0), lb.get(k, 0), pct=True)] for k in langs]
        parts.append("<h3>Languages (share of kept documents)</h3>" + table(["language", "A", "B", "B − A"], rows))

    sb = {s["column"]: s for s in b["signals"]}
    cells = []
    for s in a["signals"]:
        other = sb.get(s["column"])
        if other is None or other["edges"] != s["edges"]:
            continue
        counts = {"A kept": s["counts"].get("kept", [0] * (len(s["edges"]) - 1)),
                  "B kept": other["counts"].get("kept", [0] * (len(s["edges"]) - 1))}
        cells.append(plot(plots.histogram(s["edges"], counts, s["column"], plots.signal_unit(s["column"]),
                                          normalise=True, small=True)))
    if cells:
        parts.append("<h3>Signal distributions of the kept documents</h3>"
                     f'<div class="grid">{"".join(cells)}</div>')

    ma, mb = a.get("mixture"), b.get("mixture")
    if ma or mb:
        sa = {s["name"]: s for s in (ma or {}).get("sources", [])}
        sbm = {s["name"]: s for s in (mb or {}).get("sources", [])}
        rows = [[escape(n), percent(sa[n]["share"]) if n in sa else "—",
                 percent(sbm[n]["share"]) if n in sbm else "—",
                 f"{sa[n]['epochs']:.2f}" if n in sa else "—", f"{sbm[n]['epochs']:.2f}" if n in sbm else "—"]
                for n in dict.fromkeys([*sa, *sbm])]
        parts.append("<h3>Mixture: realised share and epochs per source</h3>"
                     + table(["source", "share A", "share B", "epochs A", "epochs B"], rows))
    return "".join(parts)
