"""Text from the data, made safe to show: HTML-escaped, with bidirectional controls (which can make
a URL read backwards) shown as visible escapes such as `\\u202e`, and long labels wrapped."""

from __future__ import annotations

import html
import re

BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")  # marks, embeddings, overrides, isolates


def visible(text: str) -> str:
    """`text` with every bidi control replaced by its escape, `\\u202e`."""
    return BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape(text: str, quote: bool = True) -> str:
    """html.escape, after `visible`."""
    return html.escape(visible(text), quote)


def href(url: str) -> str:
    """A URL for an href attribute: bidi controls percent-encoded, then escaped."""
    return html.escape(BIDI.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), url), quote=True)


def wrap(label: str, width: int = 36, max_lines: int = 2) -> str:
    """`label` on at most `max_lines` lines of at most `width` characters, broken after a space,
    colon or slash (an underscore, dot or hyphen in a longer word); "…" where it is cut."""
    pieces = []
    for word in re.findall(r"[^\s:/]+[\s:/]*|[\s:/]+", label):
        parts = [word] if len(word) <= width else re.findall(r"[^_.\-]+[_.\-]*|[_.\-]+", word)
        pieces += [p[i:i + width] for p in parts for i in range(0, len(p), width)]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece.rstrip()) > width:
            lines.append("")
        lines[-1] += piece
    lines = [line.strip() for line in lines if line.strip()] or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 1].rstrip() + "…"
    return "\n".join(lines)
