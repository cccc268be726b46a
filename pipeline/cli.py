"""`gristmill` command line: run, validate, submit."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import fsspec
import yaml

from pipeline import env  # noqa: F401
from pipeline.config import ConfigError, expand_inputs, load_config
from pipeline.version import code_version
from stages.write import open_atomic


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
    from pipeline.ray_session import Interrupted, RayUnreachable, interruptible
    from pipeline.runner import run_pipeline

    cfg = load_config(args.config, args.set)
    if args.no_progress:
        cfg.execution.progress = False
    if args.dry_run:
        if cfg.stages.filters is None:
            print("gristmill: --dry-run: the config has no filters stage", file=sys.stderr)
            return 2
        cfg.stages.filters.annotate_only = True
    with interruptible():
        try:
            manifest = run_pipeline(cfg, address=args.address)
        except RayUnreachable as e:
            print(f"gristmill: {e}", file=sys.stderr)
            return 2
        except Interrupted as e:
            print(f"gristmill: stopped by {e}; finished parts are kept, rerun the same command to resume",
                  file=sys.stderr, flush=True)
            _shutdown_ray()
            return 128 + e.signum
    print(_summary(manifest))
    return 0 if manifest["status"] == "done" else 1


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


def cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.preflight import check_paths

    cfg = load_config(args.config, args.set)
    inputs = expand_inputs(cfg)
    check_paths(cfg)
    print(f"ok: {sum(map(len, inputs.values()))} input files in {len(inputs)} inputs; "
          f"stages: {' → '.join(cfg.stages.order)}; output: {cfg.run_dir}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit `gristmill run` as a Ray job, with this repo as its working_dir.

    The config is resolved here (overrides applied, relative paths made absolute, every path the
    run needs checked) and written to the run's output directory, which every node must reach
    anyway (shared disk or object store); the job reads it from there. A run directory that holds
    another config is refused here, as `run` refuses it, before anything is written.
    """
    from ray.job_submission import JobSubmissionClient

    from pipeline.preflight import check_paths
    from pipeline.runner import check_resume
    from pipeline.version import CODE_VERSION_VARIABLE

    cfg = load_config(args.config, args.set)  # fail here, not on the cluster
    check_paths(cfg)
    check_resume(f"{cfg.run_dir}/manifest.json", cfg, expand_inputs(cfg))
    job_config = f"{cfg.run_dir}/submitted-config.yaml"
    text = yaml.safe_dump(cfg.to_raw(), sort_keys=False)
    if _read_text(job_config) not in (None, text):
        raise ConfigError(f"{cfg.run_dir} was submitted with another config ({job_config}); "
                          "set another run.name to start afresh")
    try:
        client = JobSubmissionClient(args.address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        print(f"gristmill: cannot reach the Ray job API at {args.address}: {str(e).splitlines()[0]}",
              file=sys.stderr)
        return 2
    with open_atomic(job_config, "w") as f:
        f.write(text)
    root = Path(__file__).resolve().parent.parent
    job_id = client.submit_job(
        entrypoint=f"python -m pipeline run {job_config} --address auto --no-progress",
        runtime_env={"working_dir": str(root),
                     "env_vars": {CODE_VERSION_VARIABLE: code_version()},  # the job's copy has no .git
                     "excludes": [".venv", ".git", "out", ".cache", "*.parquet", "*.bin"]},
    )
    print(json.dumps({"job_id": job_id, "address": args.address, "config": job_config}))
    return 0


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
    from filters.quality_model import QualityModelError, train_quality_model

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
            sp.add_argument("--address", default="http://127.0.0.1:8265", help="Ray dashboard/job address")
    _add_train_quality(sub)
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"gristmill: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
