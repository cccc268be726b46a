"""Inputs and outputs on S3 (moto's server over HTTP, real s3fs): run, rerun, resume after SIGKILL,
mix and report give what the same config gives on local disk; no temp object is left behind.

Credentials and the endpoint reach the driver and every Ray worker through the environment
(AWS_ENDPOINT_URL is read by botocore, hence by s3fs). Requests per kind and area are counted
from the server's log, and printed (`pytest -s`), for scaling estimates.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, unquote

import pyarrow.parquet as pq
import pytest
import yaml

from tests.conftest import ROOT, WARC, already_done, kill_run_midway, make_config, require

pytestmark = pytest.mark.slow

BUCKET = "gristmill-test"
FILES = [*sorted(require(WARC / "real").glob("*.warc.gz")),
         WARC / "edge-cases" / "example-bad-non-chunked.warc.gz"]  # a whole-file gzip: read twice
STAGES = {
    "ingest": {}, "extract": {"timeout_s": 30.0}, "lid": {},
    "filters": {"default": {"gopher_repetition": {}, "gopher_quality": {},
                            "c4": {"filter_no_terminal_punct": False}, "fineweb": {}},
                "languages": {lang: {"c4": False, "gopher_quality": {"min_avg_word_length": None,
                                                                     "max_avg_word_length": None}}
                              for lang in ("ja", "zh")}},
    "pii": {}, "dedup": {}, "write": {},
    "tokenize": {"vocab_size": 4096, "train_sample_bytes": 5_000_000},
}
MIXTURE = {"name": "mix", "budget": 40_000, "validation": 0.1, "shard_tokens": 10_000,
           "shortfall": "redistribute",  # ja, capped at 2 epochs, falls short of its weight by design
           "sources": [{"name": "ja", "weight": 1, "max_epochs": 2, "where": {"language": "ja"}},
                       {"name": "web", "weight": 3}]}


class RequestLog(logging.Handler):
    """Counts the moto server's requests by (kind, area of the run)."""

    LINE = re.compile(r'"(?:\x1b\[[0-9;]*m)*([A-Z]+) (\S+) HTTP')

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        m = self.LINE.search(record.getMessage())
        if not m:
            return
        method, target = m.groups()
        path, _, query = target.partition("?")
        key = unquote(path).split("/", 2)[2] if path.count("/") >= 2 else ""
        if method == "GET" and not key:
            kind, key = "LIST", unquote(parse_qs(query).get("prefix", [""])[0])
        elif method == "POST" and "delete" in query:
            kind = "DELETE"
        else:
            kind = method
        parts = key.split("/")  # out/<run>/<area>/…, out/<run>/<file>, mixes/…, warc/…
        area = (parts[2] if len(parts) > 3 and parts[3] else "run root") if parts[0] == "out" \
            else parts[0] or "bucket"
        self.counts[(kind, area)] += 1

    def take(self) -> Counter:
        out, self.counts = self.counts, Counter()
        return out


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with the inputs uploaded; (s3fs filesystem, env, request log)."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    log = RequestLog()
    wz = logging.getLogger("werkzeug")
    wz_state = wz.level, wz.propagate
    wz.addHandler(log)
    wz.setLevel(logging.INFO)
    wz.propagate = False  # counted, not printed
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # for this process's own s3fs (the checks below)
    try:
        import s3fs

        fs = s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)
        fs.mkdir(BUCKET)
        for f in FILES:
            fs.put_file(str(f), f"{BUCKET}/warc/{f.name}")
        log.take()
        yield fs, {**os.environ, **env}, log
    finally:
        wz.removeHandler(log)
        wz.setLevel(wz_state[0])
        wz.propagate = wz_state[1]
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("object_store")


def write_config(work: Path, name: str, inputs: str, output: str, **execution) -> Path:
    raw = make_config(work, {"crawl": [inputs]}, name=name)
    raw["run"]["output"] = output
    raw["stages"] = json.loads(json.dumps(STAGES))
    raw["execution"].update(execution)
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def write_mix(work: Path, name: str, run: str, output: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"mixture": {**MIXTURE, "runs": [run], "output": output},
                                    "execution": {"num_cpus": 2, "progress": False}}, sort_keys=False))
    return path


def gristmill(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)


def s3_json(fs, path: str) -> dict:
    with fs.open(path, "r") as f:
        return json.load(f)


def documents(fs, run_dir: str) -> list[dict]:
    """Every kept document of a run (local dir or s3 key prefix), sorted by id."""
    if fs is None:
        paths = sorted(str(p) for p in Path(run_dir, "docs").glob("part-*.parquet"))
        tables = [pq.read_table(p) for p in paths]
    else:
        paths = sorted(fs.glob(f"{run_dir}/docs/part-*.parquet"))
        tables = [pq.read_table(p, filesystem=fs) for p in paths]
    return sorted((r for t in tables for r in t.to_pylist()), key=lambda r: r["id"])


def stats_done(fs, run_dir: str) -> int:
    return len(fs.glob(f"{run_dir}/stats/part-*.json"))


@pytest.fixture(scope="module")
def local_run(work) -> Path:
    """The same inputs and stages on local disk: the reference."""
    inputs = work / "warc"
    inputs.mkdir()
    for f in FILES:
        shutil.copy(f, inputs / f.name)
    config = write_config(work, "local", str(inputs / "*.warc.gz"), str(work / "out"))
    r = gristmill(dict(os.environ), "run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    return work / "out" / "local"


@pytest.fixture(scope="module")
def s3_run(work, s3) -> str:
    fs, env, log = s3
    config = write_config(work, "remote", f"s3://{BUCKET}/warc/*.warc.gz", f"s3://{BUCKET}/out")
    t0 = time.time()
    r = gristmill(env, "run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    requests = log.take()
    report_requests("run", requests, len(FILES), time.time() - t0)
    return f"{BUCKET}/out/remote"


def report_requests(what: str, counts: Counter, parts: int, seconds: float) -> None:
    kinds = Counter()
    for (kind, _), n in counts.items():
        kinds[kind] += n
    areas = Counter()
    for (_, area), n in counts.items():
        areas[area] += n
    print(f"\nS3 requests, {what} ({parts} input parts, {seconds:.0f}s): {sum(kinds.values())} in all, "
          f"{sum(kinds.values()) / parts:.0f} per part; by kind {dict(kinds.most_common())}; "
          f"by area {dict(areas.most_common())}")
    print("  " + ", ".join(f"{k}/{a}: {n}" for (k, a), n in sorted(counts.items())))


def test_run_on_s3_gives_the_local_documents(s3, s3_run, local_run):
    fs, _, _ = s3
    manifest = s3_json(fs, f"{s3_run}/manifest.json")
    assert manifest["status"] == "done" and not manifest["failed_shards"], manifest.get("failed_shards")
    assert manifest["parts"] == len(FILES)
    assert manifest["inputs"]["crawl"] == sorted(f"s3://{BUCKET}/warc/{f.name}" for f in FILES)
    local = json.loads((local_run / "manifest.json").read_text())
    assert manifest["documents"] == local["documents"] > 20
    assert {k: (s["docs_in"], s["docs_out"], s["dropped"]) for k, s in manifest["totals"].items()} == \
        {k: (s["docs_in"], s["docs_out"], s["dropped"]) for k, s in local["totals"].items()}
    remote_docs, local_docs = documents(fs, s3_run), documents(None, str(local_run))
    assert [(d["id"], d["text"]) for d in remote_docs] == [(d["id"], d["text"]) for d in local_docs]
    assert remote_docs == local_docs  # every column
    for sub in ("tokens/crawl", "dedup/index/band-00", "rejects"):
        remote = sorted(p.rsplit("/", 1)[1] for p in fs.ls(f"{s3_run}/{sub}", detail=False))
        assert remote == sorted(p.name for p in (local_run / sub).iterdir()), sub
    assert fs.cat_file(f"{s3_run}/tokenizer.json") == (local_run / "tokenizer.json").read_bytes()
    for meta in sorted((local_run / "tokens" / "crawl").glob("shard-*.bin")):
        assert fs.cat_file(f"{s3_run}/tokens/crawl/{meta.name}") == meta.read_bytes()
    assert not fs.exists(f"{s3_run}/dedup/cc")
    assert not [p for p in fs.find(f"{BUCKET}/out") if "/.tmp-" in p]


def test_rerun_on_s3_skips_every_part(s3, s3_run, work):
    fs, env, log = s3
    before = {p: fs.info(p)["ETag"] for p in fs.find(f"{s3_run}/docs")}
    log.take()
    t0 = time.time()
    r = gristmill(env, "run", str(work / "remote.yaml"))
    assert r.returncode == 0, r.stdout + r.stderr
    report_requests("rerun", log.take(), len(FILES), time.time() - t0)
    assert f"{len(FILES)} shards, {len(FILES)} already done, 0 to run" in r.stdout
    manifest = s3_json(fs, f"{s3_run}/manifest.json")
    assert manifest["status"] == "done" and manifest["resumed"]
    assert manifest["parts_skipped_as_done"] == len(FILES)
    assert before == {p: fs.info(p)["ETag"] for p in fs.find(f"{s3_run}/docs")}


def test_mix_and_report_on_s3(s3, s3_run, local_run, work):
    fs, env, log = s3
    log.take()
    t0 = time.time()
    r = gristmill(env, "mix", str(write_mix(work, "remote-mix", f"s3://{s3_run}", f"s3://{BUCKET}/mixes")))
    assert r.returncode == 0, r.stdout + r.stderr
    report_requests("mix", log.take(), len(FILES), time.time() - t0)
    local_mix = work / "mixes" / "mix"
    config = write_mix(work, "local-mix", str(local_run), str(local_mix.parent))
    r = gristmill(dict(os.environ), "mix", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    mix_dir = f"{BUCKET}/mixes/mix"
    remote, local = s3_json(fs, f"{mix_dir}/mix.json"), json.loads((local_mix / "mix.json").read_text())
    assert remote["runs"][0]["path"] == f"s3://{s3_run}"
    for key in ("train", "validation", "sources", "unmatched", "allocation", "tokenizer"):
        if key == "tokenizer":
            remote[key].pop("path"), local[key].pop("path")
        assert remote[key] == local[key], key
    assert remote["train"]["tokens"] > 0 and len(remote["train"]["shards"]) > 1
    shards = remote["train"]["shards"] + [s for v in remote["validation"].values() for s in v["shards"]]
    for shard in shards:
        for ext in (".bin", ".idx", ".src", ".origin", ".json"):
            assert fs.exists(f"{mix_dir}/{shard['path']}{ext}"), shard["path"] + ext
        bin_ = f"{shard['path']}.bin"
        assert fs.cat_file(f"{mix_dir}/{bin_}") == (local_mix / bin_).read_bytes()
    assert not fs.exists(f"{mix_dir}/work")

    log.take()
    t0 = time.time()
    r = gristmill(env, "report", f"s3://{s3_run}", f"s3://{mix_dir}")
    assert r.returncode == 0, r.stdout + r.stderr
    report_requests("report", log.take(), len(FILES), time.time() - t0)
    assert f"s3://{s3_run}/report.html" in r.stdout
    report = s3_json(fs, f"{s3_run}/report.json")
    assert fs.size(f"{s3_run}/report.html") > 10_000
    r = gristmill(dict(os.environ), "report", str(local_run), str(local_mix), "--out", str(work / "rep"))
    assert r.returncode == 0, r.stdout + r.stderr
    theirs = json.loads((work / "rep" / "report.json").read_text())
    for key in ("languages", "domains", "lengths", "signals", "samples", "dedup", "pii"):
        assert report[key] == theirs[key], key
    assert report["mixture"]["sources"] == theirs["mixture"]["sources"]
    assert not [p for p in fs.find(BUCKET) if "/.tmp-" in p]


def test_resume_on_s3_after_sigkill(s3, s3_run, work):
    fs, env, log = s3
    config = write_config(work, "killed", f"s3://{BUCKET}/warc/*.warc.gz", f"s3://{BUCKET}/out",
                          num_cpus=1, max_in_flight=1)
    run_dir = f"{BUCKET}/out/killed"
    kill_run_midway(config, lambda: stats_done(fs, run_dir) >= 2, env=env, timeout_s=600, poll_s=0.2)
    done_at_kill = stats_done(fs, run_dir)
    assert 2 <= done_at_kill < len(FILES)
    assert s3_json(fs, f"{run_dir}/manifest.json")["status"] == "running"

    log.take()
    t0 = time.time()
    r = gristmill(env, "run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    resumed = already_done(r.stdout)  # workers of the killed driver may have finished more since
    assert done_at_kill <= resumed < len(FILES)
    report_requests("resume", log.take(), len(FILES) - resumed, time.time() - t0)
    assert not [p for p in fs.find(run_dir) if "/.tmp-" in p]
    assert documents(fs, run_dir) == documents(fs, s3_run)
    for p in fs.glob(f"{s3_run}/tokens/crawl/shard-*.bin"):
        assert fs.cat_file(p) == fs.cat_file(p.replace("/remote/", "/killed/"))


def test_readers_need_only_fsspec_config(s3, s3_run):
    """Docs parts and token shards are read through fsspec, never pyarrow's own S3 client: an
    endpoint known to fsspec alone (FSSPEC_S3_ENDPOINT_URL, fsspec's FSSPEC_<PROTOCOL>_<KWARG>)
    is enough."""
    fs, env, _ = s3
    env = {k: v for k, v in env.items() if k != "AWS_ENDPOINT_URL"}
    env["FSSPEC_S3_ENDPOINT_URL"] = s3[1]["AWS_ENDPOINT_URL"]
    code = f"""
from gristmill.stages.tokenize import read_shard, sample_texts, tokenize_part
run = "s3://{s3_run}"
tokens, offsets, meta = read_shard(run + "/tokens/crawl/shard-00000")
copy = "s3://{BUCKET}/scratch/shard-00000"
again = tokenize_part(meta["docs_part"], meta["tokenizer"], copy, "crawl", "<|endoftext|>")
tokens2, offsets2, _ = read_shard(copy)
assert again["n_tokens"] == meta["n_tokens"] == len(tokens) > 0 and (tokens == tokens2).all()
assert len(list(sample_texts([meta["docs_part"]], 1, 1 << 30))) == meta["n_docs"] == len(offsets) - 1
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr
    fs.rm(f"{BUCKET}/scratch", recursive=True)
