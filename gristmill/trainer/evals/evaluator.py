"""Downstream evaluation of a model on bundled tasks (core/eval_tasks.py), scored as OLMES scores them
(evals/scoring.py), in the training loop and alone (`gristmill eval`).

Metrics per task, over its questions (olmo_eval's `ICLMetric` names in brackets):
- `acc_raw`: the choice of highest log-likelihood is the gold one (acc);
- `acc_per_char`: the same with each log-likelihood divided by its continuation's characters,
  leading space included (OLMES's length normalisation; len_norm);
- `prob_correct`: the gold choice's probability among the choices, softmax of the log-likelihoods
  (soft) — a continuous metric, as DataDecide recommends for small models;
- `bpb`: bits per UTF-8 byte of the gold continuation, -log2 p / bytes (bpb);
- `primary`: OLMES's primary metric for the task (config.json's `primary_metric`).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import fsspec
import torch
from tokenizers import Tokenizer

from gristmill.core.eval_tasks import EvalDataError, expand, load_task
from gristmill.core.io import open_atomic
from gristmill.trainer.evals.config import EvalConfig
from gristmill.trainer.evals.scoring import EncodedTask, encode, pack, score_rows
from gristmill.trainer.parallel import World, all_reduce_sum

LOG2_E = 1 / math.log(2)
METRICS = ("acc_raw", "acc_per_char", "prob_correct", "bpb")


def load_tokenizer(path: str | None) -> Tokenizer:
    """The mixture's tokenizer (a tokenizers JSON, local or any fsspec URL); one line if it cannot be read."""
    if not path:
        raise EvalDataError("the mixture names no tokenizer file (mix.json: tokenizer.path): "
                            "cannot tokenize the evaluation tasks")
    try:
        with fsspec.open(path, "r", encoding="utf-8") as f:
            return Tokenizer.from_str(f.read())
    except Exception as e:  # noqa: BLE001 (tokenizers raises its own Exception types)
        raise EvalDataError(f"cannot read the mixture's tokenizer {path}: {e}") from None


class Evaluator:
    """Tasks tokenized and packed once; `run` scores them with a model (every process of a
    training run calls it: each scores a share of the rows, and the sums are all-reduced)."""

    def __init__(self, cfg: EvalConfig, tokenizer: Tokenizer, window: int):
        self.vocab_size = tokenizer.get_vocab_size()
        t0 = time.perf_counter()
        self.tasks: list[EncodedTask] = [encode(load_task(name, cfg.limit), tokenizer, window)
                                         for name in expand(cfg.tasks)]
        self.offsets, groups = [], []
        n = 0
        for t in self.tasks:
            self.offsets.append(n)
            groups += [g.shifted(n) for g in t.groups]
            n += t.choice_offsets[-1]
        self.n_choices = n
        self.packed = pack(groups, window)
        self.rows_per_batch = max(1, cfg.tokens_per_batch // window)
        self.prepare_s = time.perf_counter() - t0

    def describe(self) -> str:
        questions = sum(len(t.questions) for t in self.tasks)
        unscorable = sum(t.unscorable for t in self.tasks)
        return (f"evaluation: {len(self.tasks)} tasks, {questions} questions"
                f"{f' ({unscorable} longer than the window: not scored)' if unscorable else ''}, "
                f"{self.n_choices} requests in {self.n_rows} rows (prepared in {self.prepare_s:.1f}s)")

    @property
    def n_rows(self) -> int:
        return len(self.packed.tokens)

    def loglikelihoods(self, model: torch.nn.Module, world: World) -> torch.Tensor:
        """Each choice's log-likelihood (float64, on CPU), all tasks after one another."""
        was_training = model.training
        model.eval()
        rows = list(range(world.rank, self.n_rows, world.size))
        per_process = -(-self.n_rows // world.size)
        total = torch.zeros(self.n_choices, dtype=torch.float64, device=world.device)
        for b in range(-(-per_process // self.rows_per_batch)):  # the same count in every process
            batch = rows[b * self.rows_per_batch:(b + 1) * self.rows_per_batch]
            scored = score_rows(model, self.packed, batch or [0], self.n_choices, world.device)
            if batch:  # (an empty share still runs a forward pass: FSDP's all-gathers need everyone)
                total += scored
        model.train(was_training)
        return all_reduce_sum(total, world).cpu()

    def run(self, model: torch.nn.Module, world: World) -> dict[str, dict]:
        """Task name → its metrics."""
        logliks = self.loglikelihoods(model, world)
        return {t.task.name: task_metrics(t, logliks[o:o + t.choice_offsets[-1]].tolist())
                for t, o in zip(self.tasks, self.offsets)}


def task_metrics(task: EncodedTask, logliks: list[float]) -> dict:
    """The metrics of one task from its choices' log-likelihoods (in `task.choice_offsets` order)."""
    sums = dict.fromkeys(METRICS, 0.0)
    for q, start in zip(task.questions, task.choice_offsets):
        ll = logliks[start:start + len(q.choices)]
        chars = [len(continuation) for _, continuation in q.choices]
        per_char = [x / max(c, 1) for x, c in zip(ll, chars)]
        sums["acc_raw"] += max(range(len(ll)), key=ll.__getitem__) == q.label
        sums["acc_per_char"] += max(range(len(ll)), key=per_char.__getitem__) == q.label
        top = max(ll)
        sums["prob_correct"] += math.exp(ll[q.label] - top) / sum(math.exp(x - top) for x in ll)
        gold_bytes = len(q.choices[q.label][1].encode("utf-8"))
        sums["bpb"] += -ll[q.label] / max(gold_bytes, 1) * LOG2_E
    n = len(task.questions)
    out = {m: (v / n if n else None) for m, v in sums.items()}  # None: no question fits the window
    primary = task.task.primary_metric if task.task.primary_metric in METRICS else "acc_raw"
    return {**out, "primary_metric": primary, "primary": out[primary], "questions": n,
            "unscorable": task.unscorable}


def results_path(run_dir: str, step: int, in_loop: bool) -> Path:
    """<run>/evals/step-NNNNNN.json (`gristmill eval`), <run>/evals/in-loop/step-NNNNNN.json."""
    return Path(run_dir) / "evals" / ("in-loop" if in_loop else "") / f"step-{step:06d}.json"


def write_results(run_dir: str, step: int, results: dict[str, dict], cfg: EvalConfig, in_loop: bool,
                  **extra) -> Path:
    """One evaluated checkpoint's results file, written atomically."""
    path = results_path(run_dir, step, in_loop)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_atomic(str(path), "w") as f:
        json.dump({"step": step, "in_loop": in_loop, "limit": cfg.limit, **extra, "tasks": results}, f, indent=1)
    return path
