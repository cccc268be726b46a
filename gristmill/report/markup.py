"""HTML pieces shared by the report's sections (page.py) and the comparison of two runs
(compare.py): numbers and shares as text, tables, a plot's cell. Cells are HTML already escaped."""

from __future__ import annotations

from gristmill.report.text import escape


def number(x: float) -> str:
    """`x` with thousands separators and no decimals if whole or at least 100; else 3 significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 or float(x).is_integer() else f"{x:.3g}"


def percent(x: float) -> str:
    """A share (0–1) as a percentage: two decimals under 10%, one above."""
    return f"{100 * x:.2f}%" if x < 0.1 else f"{100 * x:.1f}%"


def table(headers: list[str], rows: list[list], left: tuple[int, ...] = (0,)) -> str:
    """A <table> of `rows` (cells as HTML) under `headers` (text); `left`: the columns past the first
    aligned left and broken anywhere (long URLs, reasons); the page's CSS aligns the first left."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="l">{c}</td>' if i in left and i else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def plot(svg: str) -> str:
    """An <svg> in its cell."""
    return f'<div class="plot">{svg}</div>'
