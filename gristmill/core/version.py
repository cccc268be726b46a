"""The code version recorded in every manifest: package version + git sha (+ .dirty)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

CODE_VERSION_VARIABLE = "GRISTMILL_CODE_VERSION"


def code_version() -> str:
    """The package version and git sha of this checkout (`gristmill submit` passes its own to the job,
    whose working_dir has no .git)."""
    if given := os.environ.get(CODE_VERSION_VARIABLE):
        return given
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha, dirty = "", ""
    from importlib.metadata import PackageNotFoundError, version
    try:
        v = version("gristmill")
    except PackageNotFoundError:
        v = "0+unknown"
    return f"{v}+g{sha}{'.dirty' if dirty else ''}" if sha else v
