"""Orchestration on Ray: per-shard tasks, resume, the global stages, the run manifest."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from gristmill.core import env  # noqa: F401  (Ray/HF settings; must precede `import ray`)
import fsspec
import ray
from tqdm import tqdm

from gristmill.core.config import ConfigError
from gristmill.core.io import exists, read_json, write_json_atomic
from gristmill.core.layout import Shard, manifest_path, stats_path
from gristmill.core.stats import RunStats
from gristmill.core.version import code_version
from gristmill.pipeline.config import Config, expand_inputs
from gristmill.pipeline.preflight import check_paths
from gristmill.pipeline.ray_session import Interrupted, choose_address, connect, raise_if_interrupted
from gristmill.pipeline.shard import process_shard
from gristmill.stages.base import RunContext, final_documents
from gristmill.stages.mix import MixFailed, build_mixture, prepare
from gristmill.stages.ranges import ByteRange, plan_ranges

RESUME_KEYS = ("run", "inputs", "stages")  # what must not change between a run and its rerun
WAIT_S = 1.0  # the driver wakes at least this often, so that a signal is handled promptly


def plan_shards(inputs: dict[str, list[str]], task_bytes: int, sizes: dict[str, int] | None = None) -> list[Shard]:
    """One shard per input file, or per record range of a file bigger than `task_bytes`
    (`sizes`: the input listing's, so that a small file costs no request)."""
    sizes = sizes or {}
    pieces = [(source, path, r) for source, paths in inputs.items() for path in paths
              for r in _ranges(path, task_bytes, sizes.get(path))]
    return [Shard(i, source, path, r.start, r.end, r.size) for i, (source, path, r) in enumerate(pieces)]


def _ranges(path: str, task_bytes: int, size: int | None) -> list[ByteRange]:
    try:
        return plan_ranges(path, task_bytes, size)
    except OSError:  # unreadable here: one task, which counts the error when it opens the file
        return [ByteRange(0, None, 0)]


def run_tasks(fn: Callable, args: Iterable[tuple], total: int, limit: int, desc: str,
              progress: bool) -> tuple[list, list[tuple[tuple, str]]]:
    """Run `fn.remote(*a)` for each a, at most `limit` in flight; (results, [(args, error)])."""
    pending: dict = {}
    results, failed = [], []
    bar = tqdm(total=total, desc=desc, unit="task", disable=not progress, dynamic_ncols=True)
    todo = iter(args)
    exhausted = False
    while pending or not exhausted:
        while not exhausted and len(pending) < limit:
            a = next(todo, None)
            if a is None:
                exhausted = True
                break
            pending[fn.remote(*a)] = a
        if not pending:
            break
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_S)
        raise_if_interrupted()
        for ref in ready:
            a = pending.pop(ref)
            try:
                results.append(ray.get(ref))
            except Exception as e:  # a crashed worker or a bug: the rest go on; a rerun retries it
                cause = getattr(e, "cause", None) or e  # a RayTaskError wraps the task's exception
                failed.append((a, f"{type(cause).__name__}: {cause}".strip()))
            bar.update(1)
    bar.close()
    return results, failed


def check_resume(path: str, cfg: Config, inputs: dict[str, list[str]]) -> dict | None:
    if not exists(path):
        return None
    old = read_json(path)
    snap = cfg.snapshot()
    changed = [k for k in RESUME_KEYS if old.get("config", {}).get(k) != snap[k]]
    if old.get("inputs") != inputs:
        changed.append("inputs (files matched)")
    if changed:
        raise ConfigError(
            f"{cfg.run_dir} holds a run made with another config (changed: {', '.join(changed)}); "
            "set another run.name (or delete that directory) to start afresh")
    return old


def _clean_temp_files(run_dir: str) -> int:
    fs, p = fsspec.core.url_to_fs(run_dir)
    stale = fs.glob(f"{p}/**/.tmp-*")
    for f in stale:
        fs.rm(f)
    return len(stale)


def run_pipeline(cfg: Config, address: str | None = None) -> dict:
    """Run (or resume) the whole job described by `cfg`; returns the final manifest.

    Everything that can be checked is checked before the manifest is written; from then on an
    error or a signal leaves the manifest saying "failed" or "interrupted" (and re-raises)."""
    started = time.time()
    inputs = expand_inputs(cfg)
    check_paths(cfg)
    run_dir = cfg.run_dir
    manifest_file = manifest_path(run_dir)
    previous = check_resume(manifest_file, cfg, inputs)
    print(connect(choose_address(address, cfg.execution.address), cfg.execution.num_cpus,
                  cfg.execution.connect_timeout_s), flush=True)
    raise_if_interrupted()  # a signal that came while Ray started (inside Ray's code it only set a flag)
    shards = plan_shards(inputs, cfg.stages.ingest.task_bytes, cfg._sizes)
    manifest = {
        "run": cfg.run.name,
        "status": "running",
        "code_version": code_version(),
        "started_at": (previous or {}).get("started_at") or _now(),
        "resumed": previous is not None,
        "config": cfg.snapshot(),
        "inputs": inputs,
        "parts": len(shards),
    }
    write_json_atomic(manifest_file, manifest)
    try:
        manifest.update(_run(cfg, shards, manifest["code_version"]))
    except BaseException as e:  # an error or a signal: say so in the manifest, then let it go on
        manifest.update(status="interrupted" if isinstance(e, (Interrupted, KeyboardInterrupt)) else "failed",
                        error=f"{type(e).__name__}: {e}".strip(), finished_at=_now(),
                        seconds=round(time.time() - started, 2))
        write_json_atomic(manifest_file, manifest)
        raise
    manifest.update(finished_at=_now(), seconds=round(time.time() - started, 2))
    if manifest["status"] == "done":  # what an attempt lost on a dead node may have left mid-write
        manifest["stale_temp_files_removed"] += _clean_temp_files(run_dir)
    if _nothing_done(previous, manifest):  # a no-op rerun keeps the times of the run that did the work
        manifest.update({k: previous[k] for k in ("finished_at", "seconds", "totals") if k in previous})
    write_json_atomic(manifest_file, manifest)
    return manifest


def _nothing_done(previous: dict | None, manifest: dict) -> bool:
    """Whether this attempt found a finished run and changed nothing in it."""
    return (previous is not None and previous.get("status") == "done" and manifest["status"] == "done"
            and manifest["parts_skipped_as_done"] == manifest["parts"]
            and manifest["stale_temp_files_removed"] == 0
            and previous.get("documents") == manifest["documents"]
            and previous.get("outputs") == manifest["outputs"])


def _run(cfg: Config, shards: list[Shard], version: str) -> dict:
    """The shards, then the global stages; the manifest's outcome fields."""
    run_dir, progress = cfg.run_dir, cfg.execution.progress
    stale = _clean_temp_files(run_dir)
    done = {s.part for s in shards if exists(stats_path(run_dir, s.part))}
    todo = sorted((s for s in shards if s.part not in done), key=lambda s: -s.size)  # biggest first
    print(f"gristmill: {len(shards)} shards, {len(done)} already done, {len(todo)} to run → {run_dir}", flush=True)

    limit = cfg.execution.max_in_flight or 2 * int(ray.cluster_resources().get("CPU", 1))
    cfg_ref = ray.put(cfg)
    task = ray.remote(num_cpus=1, max_retries=2)(process_shard)
    _, failed = run_tasks(task, ((cfg_ref, s, version) for s in todo), len(todo), limit, "shards", progress)

    stats = RunStats()
    failures = [{"stage": "shard", "part": a[1].part, "input": a[1].path, "error": err} for a, err in failed]
    failed_parts = {f["part"] for f in failures}
    for s in shards:
        if s.part not in failed_parts:
            stats.merge(RunStats.from_dict(read_json(stats_path(run_dir, s.part))["stats"]))
    outputs = {"docs": f"{run_dir}/docs", "rejects": f"{run_dir}/rejects", "stats": f"{run_dir}/stats"}

    context = RunContext(run_dir, cfg.stages, shards, ray_execute(limit, progress), stats, outputs)
    for spec in cfg.specs:  # the whole-run stages, in run order, each once the one before succeeded
        if spec.kind == "run" and not failures:
            failures += spec.build(context)

    if not failures and cfg.mix is not None:
        failures += _mixture(cfg, limit, progress, outputs)

    return {
        "status": "failed" if failures else "done",
        "stale_temp_files_removed": stale,
        "parts_skipped_as_done": len(done),
        "failed_shards": failures,
        "totals": stats.to_dict(),
        "documents": final.docs_out if (final := final_documents(stats)) else 0,
        "outputs": outputs,
    }


def _mixture(cfg: Config, limit: int, progress: bool, outputs: dict) -> list[dict]:
    """The config's `mixture` over this run (and any others it names), once the run is done."""
    try:
        build_mixture(cfg.mix, ray_execute(limit, progress), prepare(cfg.mix, finishing=cfg.run_dir))
    except (MixFailed, ConfigError) as e:
        return [{"stage": "mixture", "part": None, "input": None, "error": str(e)}]
    outputs["mixture"] = cfg.mix.mix_dir
    return []


def ray_execute(limit: int, progress: bool):
    """The whole-run stages' executor: each call runs its tasks on Ray, at most `limit` in flight."""
    def execute(fn: Callable, args: list[tuple], desc: str) -> tuple[list, list[tuple[tuple, str]]]:
        return run_tasks(ray.remote(num_cpus=1, max_retries=2)(fn), args, len(args), limit, desc, progress)
    return execute


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")

