"""The downstream evaluation's config: the `eval:` section of a training config, and what
`gristmill eval` takes from its options."""

from __future__ import annotations

from pydantic import Field

from gristmill.core.config import Strict


class EvalConfig(Strict):
    """Downstream tasks in the training loop (`gristmill train`); `gristmill eval` takes the same."""

    tasks: list[str] = []  # "<task>:<variant>" (arc_easy:rc_0shot) or a suite (olmes:rc_0shot); []: none
    every: int | None = Field(default=None, ge=1)  # steps; None: with validation (schedule.eval_every)
    limit: int | None = Field(default=40, ge=1)  # questions per task, a fixed sample (quick, in the
    # loop); None: all (`gristmill eval`'s default)
    tokens_per_batch: int = Field(default=4096, ge=1)  # tokens per forward pass (rows of seq_len); on a
    # CPU more is slower (the logits of every scored position leave the cache); raise it on a GPU
