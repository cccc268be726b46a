"""The write stage's config: how the per-document chain's Parquet parts are written."""

from __future__ import annotations

from typing import Literal

from gristmill.core.config import Strict


class WriteConfig(Strict):
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    write_rejects: bool = True

    @property
    def codec(self) -> str | None:
        """The Parquet compression codec (None: uncompressed)."""
        return None if self.compression == "none" else self.compression
