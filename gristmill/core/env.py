"""Process environment for Ray and the HF/datatrove caches, set before either is imported.

- Ray 2.60 turns token auth on by default and binds to the machine's non-loopback address;
  gristmill keeps a local cluster on 127.0.0.1 with auth off (a cluster you start yourself can
  set its own values: these are only defaults).
- Nothing may be fetched at run time: hub libraries run offline, caches live under the repo.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout (installed editable: README)
CACHE = Path(os.environ.get("GRISTMILL_CACHE", REPO / ".cache"))  # every cache of gristmill lives here

for key, value in {
    "RAY_AUTH_MODE": "disabled",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DEDUP_LOGS": "1",
    "HF_HOME": str(CACHE / "hf"),
    "HF_HUB_OFFLINE": "1",
    "TLDEXTRACT_CACHE": str(CACHE / "tldextract"),
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)
