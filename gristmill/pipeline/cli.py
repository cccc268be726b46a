"""`gristmill` command line: run, validate, submit (status, logs, stop), mix, report, train, eval,
export, train-quality."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import fsspec
import yaml

from gristmill.core import env  # noqa: F401
from gristmill.core.config import ConfigError
from gristmill.core.io import exists, open_atomic, read_json
from gristmill.core.version import code_version
from gristmill.pipeline.config import expand_inputs, load_config

START_DIR = os.getcwd()  # a Ray job's driver runs in its working_dir, which a runtime-env agent may remove


def _summary(manifest: dict) -> str:
    lines = [f"run {manifest['run']}: {manifest['status']} in {manifest.get('seconds', 0):.1f}s"
             f" — {manifest.get('documents', 0)} documents kept"]
    for name, s in manifest.get("totals", {}).items():
        drops = ", ".join(f"{k} {v}" for k, v in sorted(s["dropped"].items(), key=lambda kv: -kv[1]))
        lines.append(f"  {name:<13} in {s['docs_in']:>7}  out {s['docs_out']:>7}  {s['seconds']:8.1f}s"
                     + (f"  dropped: {drops}" if drops else ""))
    for f in manifest.get("failed_shards", []):
        lines.append(f"  FAILED {f['stage']} {f['part'] or ''}: {f['error']}")
    lines.append("outputs:")
    for k, v in manifest.get("outputs", {}).items():
        lines.append(f"  {k:<10} {v}")
    lines.append(f"  {'manifest':<10} {manifest['config']['run']['output']}/{manifest['run']}/manifest.json")
    return "\n".join(lines)


def cmd_run(args: argparse.Namespace) -> int:
    from gristmill.pipeline.runner import run_pipeline

    cfg = load_config(args.config, args.set)
    if args.no_progress:
        cfg.execution.progress = False
    if args.dry_run:
        if cfg.stages.filters is None:
            print("gristmill: --dry-run: the config has no filters stage", file=sys.stderr)
            return 2
        cfg.stages.filters.annotate_only = True
    with _ray_work():
        manifest = run_pipeline(cfg, address=args.address)
    print(_summary(manifest))
    if manifest["status"] == "done" and cfg.mix is not None:
        print(mix_summary(read_json(f"{cfg.mix.mix_dir}/mix.json"), cfg.mix.mix_dir))
    return 0 if manifest["status"] == "done" else 1


@contextmanager
def _ray_work() -> Iterator[None]:
    """The block under `interruptible()`: SIGINT/SIGTERM end it with a one-line message, Ray shut
    down, and exit status 128 + the signal's number."""
    from gristmill.pipeline.ray_session import Interrupted, interruptible

    with interruptible():
        try:
            yield
        except Interrupted as e:
            print(f"gristmill: stopped by {e}; finished work is kept, rerun the same command to resume",
                  file=sys.stderr, flush=True)
            import ray

            if ray.is_initialized():
                ray.shutdown()
            raise SystemExit(128 + e.signum) from None


def cmd_validate(args: argparse.Namespace) -> int:
    from gristmill.pipeline.preflight import check_paths
    from gristmill.pipeline.runner import check_resume

    cfg = load_config(args.config, args.set)
    inputs = expand_inputs(cfg)
    check_paths(cfg)
    check_resume(f"{cfg.run_dir}/manifest.json", cfg, inputs)  # as `run` would refuse it
    print(f"ok: {sum(map(len, inputs.values()))} input files in {len(inputs)} inputs; "
          f"stages: {' → '.join(cfg.stages.order)}; output: {cfg.run_dir}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit `gristmill run` as a Ray job, with this repo as its working_dir.

    The config is resolved here (overrides applied, relative paths made absolute, every path the
    run needs checked) and written to the run's output directory, which every node must reach
    anyway (shared disk or object store); the job reads it from there. A run directory that holds
    another config is refused here, as `run` refuses it, before anything is written. --follow prints
    the job's logs until it ends and exits with its outcome (pipeline/jobs.py).
    """
    from gristmill.pipeline.jobs import connect_client, follow, one_line
    from gristmill.pipeline.preflight import check_paths
    from gristmill.pipeline.runner import check_resume
    from gristmill.core.version import CODE_VERSION_VARIABLE

    cfg = load_config(args.config, args.set)  # fail here, not on the cluster
    check_paths(cfg)
    check_resume(f"{cfg.run_dir}/manifest.json", cfg, expand_inputs(cfg))
    job_config = f"{cfg.run_dir}/submitted-config.yaml"
    text = yaml.safe_dump(cfg.to_raw(), sort_keys=False)
    if _read_text(job_config) not in (None, text):
        raise ConfigError(f"{cfg.run_dir} was submitted with another config ({job_config}); "
                          "set another run.name to start afresh")
    client = connect_client(args.address)  # a JobError is one line, exit 2 (main)
    with open_atomic(job_config, "w") as f:
        f.write(text)
    try:
        job_id = client.submit_job(
            entrypoint=f"python -m gristmill run {job_config} --address auto --no-progress",
            runtime_env={"working_dir": str(env.REPO),
                         "env_vars": {CODE_VERSION_VARIABLE: code_version(),  # the job's copy has no .git
                                      # SIGTERM to SIGKILL on `stop`: > GRACE_S, so the run stops cleanly
                                      "RAY_JOB_STOP_WAIT_TIME_S": "15"},
                         "excludes": [".venv", ".git", "out", ".cache", "*.parquet", "*.bin"]},
        )
        print(json.dumps({"job_id": job_id, "address": args.address, "config": job_config}), flush=True)
        return follow(client, args.address, job_id) if args.follow else 0
    except (RuntimeError, OSError) as e:  # JobError among them
        print(f"gristmill: {one_line(e)}", file=sys.stderr)
        return 2


def cmd_mix(args: argparse.Namespace) -> int:
    """Build (or resume) the mixture a mix file describes, on Ray."""
    from gristmill.stages.mix.config import load_mix
    from gristmill.pipeline.ray_session import choose_address, connect
    from gristmill.pipeline.runner import ray_execute
    from gristmill.stages.mix import MixFailed, build_mixture, prepare

    spec = load_mix(args.mix, args.set)
    mix, ex = spec.mixture, spec.execution
    runs = prepare(mix)  # every check that needs no work, before Ray starts
    with _ray_work():
        try:
            print(connect(choose_address(args.address, ex.address), ex.num_cpus, ex.connect_timeout_s), flush=True)
            import ray

            limit = ex.max_in_flight or 2 * int(ray.cluster_resources().get("CPU", 1))
            manifest = build_mixture(mix, ray_execute(limit, ex.progress and not args.no_progress), runs)
        except MixFailed as e:
            print(f"gristmill: {e}", file=sys.stderr)
            return 1
    print(mix_summary(manifest, mix.mix_dir))
    return 0


def mix_summary(m: dict, mix_dir: str) -> str:
    lines = [f"mixture {m['name']}: {m['train']['tokens']:,} training tokens of a {m['budget']:,} budget "
             f"in {len(m['train']['shards'])} shards; validation {sum(v['tokens'] for v in m['validation'].values()):,}",
             f"  {'source':<20} {'weight':>7} {'share':>7} {'tokens':>13} {'epochs':>7} {'validation':>11} "
             f"{'val docs':>8}"]
    for s in m["sources"]:
        note = f"  short by {s['short_by_tokens']:,} (cap)" if s["short_by_tokens"] else ""
        lines.append(f"  {s['name']:<20} {s['weight']:>7.3f} {s['realised']['share']:>7.3f} "
                     f"{s['realised']['tokens']:>13,} {s['epochs']:>7.2f} {s['validation']['tokens']:>11,} "
                     f"{s['validation']['docs']:>8,}{note}")
    if m["unmatched"]["docs"]:
        lines.append(f"  ({m['unmatched']['docs']:,} documents, {m['unmatched']['tokens']:,} tokens matched no source)")
    lines.append(f"  {'mix.json':<10} {mix_dir}/mix.json")
    lines += [f"WARNING: {w}" for w in m.get("warnings", [])]  # last, where they cannot be missed
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    """report.json + report.html for a run (and its mixture), optionally against another run."""
    from gristmill.report import report_data, write_report

    run_dir, mix_dir = _run_dir(args.run), _mix_dir(args.mix) if args.mix else None
    if not exists(f"{run_dir}/manifest.json"):
        raise ConfigError(f"{run_dir!r} is not a run directory (no manifest.json)")
    data = report_data(run_dir, mix_dir, seed=args.seed, samples=args.samples, training=args.training,
                       eval_compare=args.eval_compare)
    other = None
    if args.compare:
        other_dir = _run_dir(args.compare)
        if not exists(f"{other_dir}/manifest.json"):
            raise ConfigError(f"--compare: {other_dir!r} is not a run directory (no manifest.json)")
        edges = {s["column"]: s["edges"] for s in data["signals"]}
        other = report_data(other_dir, _mix_dir(args.compare_mix) if args.compare_mix else None,
                            seed=args.seed, samples=args.samples, edges=edges)
    out = args.out or (run_dir if other is None else f"{run_dir}/compare-{other['run']['run']}")
    json_path, html_path = write_report(data, out, compare=other)
    print(f"report: {html_path}\n        {json_path}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Start `torchrun -m gristmill.trainer.train` with the config's process count (one per GPU)."""
    import subprocess

    from gristmill.trainer.config import load_train_config
    from gristmill.trainer.train import resume_state
    from gristmill.trainer.watchdog import LAUNCHER_ENV

    cfg = load_train_config(args.config, args.set)  # a bad config fails here, not in N processes
    nproc = args.nproc or cfg.parallel.nproc
    resume_state(cfg, nproc)  # a checkpoint nproc processes cannot continue: one line, exit 2, before torchrun
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "gristmill.trainer.train", args.config, *[f"--set={kv}" for kv in args.set]]
    # torchrun sets OMP_NUM_THREADS=1 per process when nproc > 1; its workers stop if this process dies
    return subprocess.run(cmd, env={**os.environ, LAUNCHER_ENV: str(os.getpid())}).returncode


def _run_dir(arg: str) -> str:
    """A run directory, or the run config that names one."""
    if arg.endswith((".yaml", ".yml")):
        return load_config(arg).run_dir
    return arg.rstrip("/")


def _mix_dir(arg: str) -> str:
    """A mixture directory, or the mix file that names one."""
    if arg.endswith((".yaml", ".yml")):
        from gristmill.stages.mix.config import load_mix

        return load_mix(arg).mixture.mix_dir
    return arg.rstrip("/")


def _read_text(path: str) -> str | None:
    try:
        with fsspec.open(path, "r") as f:
            return f.read()
    except FileNotFoundError:
        return None


_TRAIN_QUALITY_OPTS = [  # flag, type, help; defaults are train_quality_model's (the JSON shows them)
    ("--epochs", int, "passes over the training set"),
    ("--lr", float, "fastText learning rate"),
    ("--word-ngrams", int, "longest word n-gram"),
    ("--dim", int, "embedding size"),
    ("--bucket", int, "hash buckets for word n-grams (model size ~ (vocabulary + bucket) x dim x 4 bytes)"),
    ("--min-count", int, "ignore words seen fewer times"),
    ("--seed", int, "shuffle and initialisation seed"),
    ("--max-docs-per-class", int, "sample each set down to this many documents"),
    ("--min-chars", int, "skip documents shorter than this once normalised"),
    ("--validation-fraction", float, "share of documents held out (by hash of the text) for the metrics"),
    ("--threads", int, "fastText threads; more than 1 is faster but not reproducible"),
]


def cmd_train_quality(args: argparse.Namespace) -> int:
    from gristmill.filters.quality_model import QualityModelError, train_quality_model

    names = [flag[2:].replace("-", "_") for flag, _, _ in _TRAIN_QUALITY_OPTS]
    kwargs = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    try:
        meta = train_quality_model(args.positives, args.negatives, args.out,
                                   balance=not args.no_balance, **kwargs)
    except QualityModelError as e:
        print(f"gristmill: {e}", file=sys.stderr)
        return 2
    print(json.dumps(meta, indent=1))
    return 0


def _add_train_quality(sub) -> None:
    sp = sub.add_parser(
        "train-quality", help="train a fastText quality classifier for the quality_model filter",
        description="Train __label__hq (positives) vs __label__lq (negatives); write the model and a JSON "
                    "sidecar (OUT.json), and print the sidecar. Inputs: Parquet (`text` column), JSONL "
                    "(\"text\" field) or .txt (a document a line): paths, globs or directories. Unset "
                    "options take train_quality_model's defaults (filters/quality_model.py); the JSON "
                    "lists the values used.")
    sp.add_argument("--positives", nargs="+", required=True, metavar="PATH", help="reference text: label hq")
    sp.add_argument("--negatives", nargs="+", required=True, metavar="PATH", help="e.g. crawl docs: label lq")
    sp.add_argument("--out", required=True, help="the model file (.bin), local or any fsspec URL")
    for flag, type_, help_ in _TRAIN_QUALITY_OPTS:
        sp.add_argument(flag, type=type_, help=help_)
    sp.add_argument("--no-balance", action="store_true",
                    help="keep the larger set larger (default: cut it to the size of the smaller)")
    sp.set_defaults(fn=cmd_train_quality)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gristmill", description=__doc__)
    p.add_argument("--version", action="version", version=f"gristmill {code_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, help_ in [("run", cmd_run, "run or resume a pipeline"),
                            ("validate", cmd_validate, "check a config and its inputs"),
                            ("submit", cmd_submit, "submit a run to a Ray cluster as a job")]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("config")
        sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. stages.lid.threshold=0.7")
        sp.set_defaults(fn=fn)
        if name == "run":
            sp.add_argument("--address", help="Ray cluster address: host:port, ray://host:port or auto "
                                              "(default: a private Ray on 127.0.0.1)")
            sp.add_argument("--no-progress", action="store_true")
            sp.add_argument("--dry-run", action="store_true",
                            help="filters compute every signal but drop nothing (stages.filters.annotate_only)")
        if name == "submit":
            from gristmill.pipeline.jobs import add_address
            add_address(sp)
            sp.add_argument("--follow", action="store_true", help="print the job's logs until it ends; "
                            "exit 0 SUCCEEDED, 1 FAILED, 143 STOPPED")
    sp = sub.add_parser("mix", help="sample finished runs into shuffled train/validation token shards")
    sp.add_argument("mix", help="a mix file (configs/sample-mix.yaml)")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a value, e.g. mixture.budget=2000000")
    sp.add_argument("--address", help="Ray cluster address (default: a private Ray on 127.0.0.1)")
    sp.add_argument("--no-progress", action="store_true")
    sp.set_defaults(fn=cmd_mix)
    sp = sub.add_parser("train", help="pretrain a model on a mixture (torchrun; loss per source)")
    sp.add_argument("config", help="a training config (configs/train-sample.yaml)")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a value, e.g. schedule.steps=500")
    sp.add_argument("--nproc", type=int, help="processes (default: parallel.nproc)")
    sp.set_defaults(fn=cmd_train)
    sp = sub.add_parser("report", help="the data-mix report of a run: report.html and report.json")
    sp.add_argument("run", help="a run directory (or its run config)")
    sp.add_argument("mix", nargs="?", help="its mixture's directory (or mix file), to show the mixture too")
    sp.add_argument("--compare", metavar="RUN_B", help="another run (or its config) to set beside this one")
    sp.add_argument("--compare-mix", metavar="MIX_B", help="RUN_B's mixture")
    sp.add_argument("--training", metavar="TRAIN_DIR", help="a training run (gristmill train) on the mixture: "
                                                          "its loss curves per source (and per-task "
                                                          "evaluation curves, when it evaluated)")
    sp.add_argument("--eval-compare", metavar="FILE", help="a comparison of training runs (gristmill eval "
                                                           "--compare ... --out FILE): its table, each "
                                                           "difference judged against seed noise")
    sp.add_argument("--out", help="where to write (default: the run directory; with --compare, "
                                  "RUN/compare-<RUN_B's name>)")
    sp.add_argument("--seed", type=int, default=0, help="picks the sample documents")
    sp.add_argument("--samples", type=int, default=3, help="sample documents per drop reason and for the kept set")
    sp.set_defaults(fn=cmd_report)
    _add_train_quality(sub)
    from gristmill.pipeline.model_commands import add_model_commands
    add_model_commands(sub)
    from gristmill.pipeline.show import add_show_command
    add_show_command(sub)
    from gristmill.pipeline.jobs import add_job_commands
    add_job_commands(sub)
    from gristmill.pipeline.trial_node import add_trial_node_command
    add_trial_node_command(sub)
    args = p.parse_args(argv)
    from gristmill.pipeline.jobs import JobError
    from gristmill.pipeline.ray_session import RayUnreachable

    try:
        code = args.fn(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except (ConfigError, RayUnreachable, JobError) as e:  # the user's to fix: one line, exit 2
        print(f"gristmill: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gristmill status JOB | head`: the reader left, as with any Unix tool
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 128 + signal.SIGPIPE
    except (FileNotFoundError, ModuleNotFoundError):
        if not os.path.isdir(START_DIR):
            print(f"gristmill: this process's working directory {START_DIR} was removed while it ran "
                  "(two Ray nodes on one machine sharing a temp dir do that: give each its own --temp-dir, "
                  "deploy/README.md); finished work is kept, run or submit again to resume", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
