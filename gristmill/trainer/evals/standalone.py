"""`gristmill eval`: one checkpoint of a training run on downstream tasks, in this process.

Writes <run>/evals/step-NNNNNN.json and appends a `kind: eval` record to the run's metrics.jsonl
(`in_loop: false`), beside the loss per source and the in-loop records, which stay as they are.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from gristmill.core.config import ConfigError
from gristmill.trainer.checkpoint import find_checkpoint, load_model, read_train_state
from gristmill.trainer.evals.config import EvalConfig
from gristmill.trainer.evals.evaluator import Evaluator, load_tokenizer, write_results
from gristmill.trainer.parallel import World


def evaluate_checkpoint(path: str, cfg: EvalConfig, device: str = "cpu") -> tuple[Path, dict]:
    """(results file, task → metrics) of the checkpoint at `path` (or a run's latest)."""
    checkpoint = find_checkpoint(path)
    run_dir = checkpoint.parent.parent
    model, card = load_model(checkpoint)
    tokenizer = load_tokenizer(card.get("tokenizer", {}).get("path"))
    if tokenizer.get_vocab_size() > model.config.vocab_size:  # its ids would not fit the model
        raise ConfigError(f"{checkpoint}: a model of vocabulary {model.config.vocab_size}, its tokenizer "
                          f"{card['tokenizer']['path']} has {tokenizer.get_vocab_size()}: another vocabulary")
    world = World(0, 1, torch.device(device), torch.float32, False)
    evaluator = Evaluator(cfg, tokenizer, model.config.max_seq_len)
    model.to(world.device)
    t0 = time.perf_counter()
    results = evaluator.run(model, world)
    seconds = time.perf_counter() - t0
    step = read_train_state(checkpoint)["step"]
    out = write_results(str(run_dir), step, results, cfg, in_loop=False, checkpoint=str(checkpoint),
                        seconds=seconds, device=device)
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "eval", "step": step, "in_loop": False, "tasks": results,
                            "seconds": seconds}) + "\n")
    return out, results
