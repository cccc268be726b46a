"""Open a local page in the system's headless Chromium (Debian `chromium`, installed by .ci/run;
never a downloaded build), driven by Playwright, with the flags DEVELOPERS.md lists."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@dataclass
class PageLog:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt: script ran


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is missing: `apt-get install chromium` (.ci/run does it in CI)")
    return path


@contextmanager
def open_page(path: str, width: int = 1280, height: int = 900) -> Iterator[tuple[object, PageLog]]:
    """(Playwright page with `path` loaded, what it logged); a new empty profile each time."""
    from playwright.sync_api import sync_playwright

    log = PageLog()
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(profile, executable_path=chromium_path(), headless=True,
                                                   args=FLAGS, viewport={"width": width, "height": height})
        try:
            page = ctx.new_page()
            page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: log.page_errors.append(str(e)))
            page.on("request", lambda r: log.requests.append(r.url))
            page.on("dialog", lambda d: (log.dialogs.append(d.message), d.dismiss()))
            page.goto(f"file://{path}", wait_until="load")
            yield page, log
        finally:
            ctx.close()
