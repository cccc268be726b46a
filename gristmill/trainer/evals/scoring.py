"""Log-likelihood of each choice's continuation given its context, as OLMES / olmo_eval score it,
many requests per forward pass.

Tokens, as olmo_eval's `ICLMultiChoiceTaskDataset` makes them: the context and the continuation are
encoded apart (the continuation keeps its leading space, " Paris"), with no BOS (gristmill's
tokenizers have none; a document starts at position 0, as in training). The log-likelihood is the
sum over the continuation's tokens of log p(token | everything before it); the context's tokens
are not scored. Where context + continuation[:-1] is longer than the model's window, olmo_eval
keeps its last `max_seq_len` tokens; so do we.

Batching: the choices of a question that share a context are one *group*: the context once, then
each choice's continuation[:-1] as a branch that sees the context and itself, not the other
branches (a tree mask, RoPE positions continuing from the context for every branch). The first
continuation token of every branch is predicted from the context's last position, computed once.
A question whose group does not fit the window is scored choice by choice, truncated as above.
Groups are packed into rows of `max_seq_len` tokens, longest first; each row is masked per group.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from gristmill.core.eval_tasks import Question, Task

PAD = 0  # token id in padding positions; nothing attends to them and nothing of them is scored


@dataclass
class Group:
    """A context and its branches; one scored item per choice in it."""

    context: list[int]
    branches: list[list[int]]  # continuation[:-1] of each choice
    choices: list[tuple[int, list[int]]]  # (global choice index, continuation) per branch

    def __len__(self) -> int:
        return len(self.context) + sum(len(b) for b in self.branches)

    def shifted(self, by: int) -> Group:
        """The same group with its choices numbered `by` further (tasks packed together)."""
        return Group(self.context, self.branches, [(i + by, c) for i, c in self.choices])


@dataclass
class Packed:
    """Rows of packed groups, and where each continuation token is predicted."""

    tokens: np.ndarray  # [rows, T] int64
    group: np.ndarray  # [rows, T] group number within the row; -1 - position for padding
    branch: np.ndarray  # [rows, T] 0 for a context, k >= 1 for branch k
    positions: np.ndarray  # [rows, T] RoPE position
    predictor: list[np.ndarray] = field(default_factory=list)  # per row: the positions predicting…
    target: list[np.ndarray] = field(default_factory=list)  # …these tokens…
    choice: list[np.ndarray] = field(default_factory=list)  # …of these choices (global index)


@dataclass
class EncodedTask:
    task: Task
    questions: list[Question]  # those scored: every continuation fits the window
    groups: list[Group]
    choice_offsets: list[int]  # question q's choices are global indices offsets[q] .. offsets[q+1]
    unscorable: int  # questions with a continuation longer than the window (not scored)


def encode(task: Task, tokenizer, window: int) -> EncodedTask:
    """Token groups of a task for a model of `window` positions (`tokenizer`: a `tokenizers.Tokenizer`)."""
    contexts = sorted({c for q in task.questions for c, _ in q.choices})
    continuations = sorted({x for q in task.questions for _, x in q.choices})
    ids = {}
    for texts in (contexts, continuations):
        for text, enc in zip(texts, tokenizer.encode_batch(texts, add_special_tokens=False)):
            ids[text] = enc.ids
    groups: list[Group] = []
    offsets, unscorable, kept = [0], 0, []
    for q in task.questions:
        conts = [ids[x] for _, x in q.choices]
        if any(len(c) == 0 or len(c) > window for c in conts) or any(not ids[c] for c, _ in q.choices):
            unscorable += 1
            continue
        kept.append(q)
        base = offsets[-1]
        by_context: dict[str, list[int]] = {}
        for i, (context, _) in enumerate(q.choices):
            by_context.setdefault(context, []).append(i)
        for context, members in by_context.items():
            shared = Group(ids[context], [conts[i][:-1] for i in members], [(base + i, conts[i]) for i in members])
            if len(shared) <= window:
                groups.append(shared)
                continue
            for i in members:  # alone and truncated from the left, as olmo_eval's query
                query = (ids[context] + conts[i][:-1])[-window:]
                cut = len(query) - (len(conts[i]) - 1)
                groups.append(Group(query[:cut], [query[cut:]], [(base + i, conts[i])]))
        offsets.append(base + len(q.choices))
    return EncodedTask(task, kept, groups, offsets, unscorable)


def pack(groups: list[Group], window: int) -> Packed:
    """Next-fit of the groups, longest first, into rows of `window` tokens."""
    order = sorted(range(len(groups)), key=lambda i: -len(groups[i]))
    rows: list[list[Group]] = []
    used = window + 1
    for i in order:
        if used + len(groups[i]) > window:
            rows.append([])
            used = 0
        rows[-1].append(groups[i])
        used += len(groups[i])
    n = len(rows)
    packed = Packed(np.full((n, window), PAD, np.int64), np.zeros((n, window), np.int64),
                    np.zeros((n, window), np.int64), np.zeros((n, window), np.int64))
    packed.group[:] = -1 - np.arange(window)
    for r, row in enumerate(rows):
        at, predictor, target, choice = 0, [], [], []
        for g, group in enumerate(row):
            n_ctx = len(group.context)
            packed.tokens[r, at:at + n_ctx] = group.context
            packed.group[r, at:at + n_ctx] = g
            packed.positions[r, at:at + n_ctx] = np.arange(n_ctx)
            last_context = at + n_ctx - 1
            at += n_ctx
            for k, (branch, (index, continuation)) in enumerate(zip(group.branches, group.choices), start=1):
                m = len(branch)
                packed.tokens[r, at:at + m] = branch
                packed.group[r, at:at + m] = g
                packed.branch[r, at:at + m] = k
                packed.positions[r, at:at + m] = n_ctx + np.arange(m)
                predictor.append(np.concatenate([[last_context], at + np.arange(m)]))
                target.append(np.asarray(continuation))
                choice.append(np.full(len(continuation), index))
                at += m
        packed.predictor.append(np.concatenate(predictor))
        packed.target.append(np.concatenate(target))
        packed.choice.append(np.concatenate(choice))
    return packed


def tree_mask(group: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """[B, 1, T, T] True = attend: causal, within a group, to the context or one's own branch."""
    T = group.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=group.device).tril()
    same_group = group[:, :, None] == group[:, None, :]
    visible = (branch[:, None, :] == 0) | (branch[:, :, None] == branch[:, None, :])
    return (causal & same_group & visible)[:, None]


@torch.no_grad()
def score_rows(model: torch.nn.Module, packed: Packed, rows: list[int], n_choices: int,
               device: torch.device) -> torch.Tensor:
    """Sum of the continuation's log-probabilities per choice (float64 [n_choices]) over `rows`
    (one forward pass); choices not in these rows stay 0."""
    out = torch.zeros(n_choices, dtype=torch.float64, device=device)
    if not rows:
        return out
    take = lambda a: torch.from_numpy(a[rows]).to(device)  # noqa: E731
    group, branch = take(packed.group), take(packed.branch)
    window = packed.tokens.shape[1]
    predictor = torch.from_numpy(np.concatenate([packed.predictor[r] + j * window  # flat in the batch
                                                 for j, r in enumerate(rows)])).to(device)
    target = torch.from_numpy(np.concatenate([packed.target[r] for r in rows])).to(device)
    choice = torch.from_numpy(np.concatenate([packed.choice[r] for r in rows])).to(device)
    logits = model(take(packed.tokens), mask=tree_mask(group, branch), positions=take(packed.positions),
                   select=predictor)
    logp = -F.cross_entropy(logits.float(), target, reduction="none")
    return out.index_add_(0, choice, logp.to(torch.float64))
