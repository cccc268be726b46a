"""End to end on embedded Ray: outputs, stats, token shards, rerun, resume after SIGKILL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.core.data import schemas
from gristmill.stages.tokenize import load_tokenizer, read_shard
from tests.conftest import ROOT, WARC, already_done, kill_run_midway, make_config, require

pytestmark = pytest.mark.slow

INPUTS = {
    "cc": [str(require(WARC / "real")) + "/*.warc.gz"],
    "edge": [str(WARC / "edge-cases") + "/*"],
    "news": [str(WARC / "packed" / "scrapinghub_pages.warc.gz")],
}


NEWS_RANGES = 3  # the 4.4 MB news WARC runs as record ranges of ~1.5 MB


def write_config(tmp: Path, name: str, **execution) -> Path:
    raw = make_config(tmp, INPUTS, name=name, tokenize={"vocab_size": 4096, "train_sample_bytes": 5_000_000},
                      ingest={"task_bytes": 1_500_000})
    raw["execution"].update(execution)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def gristmill(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, **kw)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def baseline(work) -> Path:
    config = write_config(work, "baseline")
    r = gristmill("run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "documents kept" in r.stdout and "manifest" in r.stdout
    return work / "out" / "baseline"


def documents(run_dir: Path) -> list[dict]:
    rows = ds.dataset(run_dir / "docs", format="parquet").to_table().to_pylist()
    return sorted(rows, key=lambda r: r["id"])


def test_outputs_schema_and_counts(baseline):
    manifest = json.loads((baseline / "manifest.json").read_text())
    assert manifest["status"] == "done" and not manifest["failed_shards"]
    parts = sorted(p.stem for p in (baseline / "stats").glob("part-*.json"))
    assert len(parts) == manifest["parts"] == 4 + 16 + NEWS_RANGES  # real WARCs, edge cases, news pages
    assert parts == sorted(p.stem for p in (baseline / "docs").glob("part-*.parquet"))
    # the news WARC's ranges tile it, and together read every page of it once, in order
    news = [json.loads((baseline / "stats" / f"{p}.json").read_text()) for p in parts[-NEWS_RANGES:]]
    assert [n["range"][0] for n in news][0] == 0 and news[-1]["range"][1] is None
    assert all(a["range"][1] == b["range"][0] for a, b in zip(news, news[1:]))
    from gristmill.stages.ingest import read_all
    whole, whole_rejects, _ = read_all(INPUTS["news"][0])
    ranged = sum(n["stats"]["ingest"]["docs_out"] for n in news)
    assert ranged == len(whole) == 113 and not whole_rejects
    doc_schema, reject_schema = schemas([])  # no stage here adds columns
    for p in (baseline / "docs").glob("part-*.parquet"):
        assert pq.read_schema(p).remove_metadata() == doc_schema
    docs = documents(baseline)
    assert len(docs) == manifest["documents"] > 150
    # an id names a WARC record: the edge cases hold the same records in several files
    # (.warc, .warc.gz, .arc), which share ids and text — exact dedup collapses them later
    by_id: dict[str, set] = {}
    for d in docs:
        by_id.setdefault(d["id"], set()).add((d["url"], d["text"]))
    assert all(len(v) == 1 for v in by_id.values())
    assert all(d["text"] and d["language"] and d["source"] in INPUTS for d in docs)
    rejects = ds.dataset(baseline / "rejects", format="parquet").to_table()
    assert rejects.schema.remove_metadata() == reject_schema
    totals = manifest["totals"]
    assert rejects.num_rows == sum(sum(s["dropped"].values()) for s in totals.values())
    assert set(rejects["reject_stage"].to_pylist()) <= {"ingest", "extract", "lid"}
    # every document is accounted for, stage to stage
    assert totals["ingest"]["docs_out"] == totals["extract"]["docs_in"]
    assert totals["extract"]["docs_out"] == totals["lid"]["docs_in"]
    assert totals["lid"]["docs_out"] == totals["write"]["docs_out"] == len(docs)
    for s in totals.values():
        assert s["docs_in"] - s["docs_out"] == sum(s["dropped"].values())
    # bad input shows up as counted reasons, not as failures
    assert totals["ingest"]["events"]["whole_file_gzip"] == 2
    assert totals["ingest"]["events"]["read_error:malformed_record"] == 1
    assert totals["ingest"]["events"]["invalid_date"] == 29 + 2  # ClueWeb09, bad.arc


def test_token_shards_decode_to_the_documents(baseline):
    tok = load_tokenizer(str(baseline / "tokenizer.json"))
    eos = tok.token_to_id("<|endoftext|>")
    n = 0
    for meta_path in sorted((baseline / "tokens").glob("*/shard-*.json")):
        prefix = str(meta_path)[: -len(".json")]
        tokens, offsets, meta = read_shard(prefix)
        texts = pq.read_table(meta["docs_part"], columns=["text"])["text"].to_pylist()
        assert meta["n_docs"] == len(texts) == len(offsets) - 1
        assert meta["n_tokens"] == len(tokens) == offsets[-1]
        assert tokens.dtype == np.uint16 and meta["vocab_size"] <= 4096
        for i, text in enumerate(texts):
            ids = tokens[offsets[i]:offsets[i + 1]]
            assert ids[-1] == eos and eos not in ids[:-1]
            assert tok.decode(ids[:-1].tolist(), skip_special_tokens=False) == text
            n += 1
    assert n == json.loads((baseline / "manifest.json").read_text())["documents"]


def test_a_mixture_block_mixes_the_finished_run_and_its_documents_decode(work, baseline):
    """`mixture` in a run config: built at the end of the run (here a finished one, so only the
    mixture is new); every sampled document decodes back to its docs row."""
    raw = yaml.safe_load((work / "baseline.yaml").read_text())
    raw["mixture"] = {"name": "baseline-mix", "budget": 150_000, "validation": 0.1, "shard_tokens": 40_000,
                      "sources": [{"name": "news", "weight": 3, "where": {"source": "news"}},
                                  {"name": "web", "weight": 1, "max_epochs": 2}]}
    config = work / "baseline-mixed.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = gristmill("run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "mixture" in r.stdout and "baseline-mix" in r.stdout
    mix_dir = work / "out" / "baseline-mix"
    mix = json.loads((mix_dir / "mix.json").read_text())
    assert mix["runs"][0]["path"] == str(baseline) and mix["tokenizer"]["sha256"]
    news, web = mix["sources"]
    assert abs(news["realised"]["share"] - 0.75) <= 0.005 and abs(mix["train"]["tokens"] - 150_000) <= 750
    tok = load_tokenizer(str(baseline / "tokenizer.json"))
    texts = {}
    checked = 0
    for split in ["train"] + [f"validation/{name}" for name in mix["validation"]]:
        shards = mix["train"]["shards"] if split == "train" else mix["validation"][split[11:]]["shards"]
        for shard in shards:
            prefix = mix_dir / shard["path"]
            tokens = np.fromfile(f"{prefix}.bin", dtype=np.uint16)
            idx = np.fromfile(f"{prefix}.idx", dtype=np.int64)
            src = np.fromfile(f"{prefix}.src", dtype=np.uint16)
            origin = np.fromfile(f"{prefix}.origin", dtype=np.int32).reshape(-1, 3)
            for i in range(0, len(src), 5):
                run, part, row = origin[i]
                if part not in texts:
                    texts[part] = pq.read_table(baseline / "docs" / f"part-{part:05d}.parquet").to_pylist()
                doc = texts[part][row]
                assert (doc["source"] == "news") == (src[i] == 0)
                ids = tokens[idx[i]:idx[i + 1]].tolist()
                assert tok.decode(ids[:-1], skip_special_tokens=False) == doc["text"]
                checked += 1
    assert checked > 20 and mix["validation"]["news"]["docs"] > 0


def test_rerun_skips_finished_shards(baseline):
    before = {p: p.stat().st_mtime_ns for p in (baseline / "docs").glob("*.parquet")}
    r = gristmill("run", str(baseline.parent.parent / "baseline.yaml"))
    assert r.returncode == 0, r.stderr
    assert f"{len(before)} already done, 0 to run" in r.stdout
    assert before == {p: p.stat().st_mtime_ns for p in (baseline / "docs").glob("*.parquet")}
    manifest = (baseline / "manifest.json").read_bytes()  # (the mixture test above reran it with a mixture)
    r = gristmill("run", str(baseline.parent.parent / "baseline.yaml"))
    assert r.returncode == 0, r.stderr
    assert (baseline / "manifest.json").read_bytes() == manifest  # its run times and all, as they were
    assert f"done in {json.loads(manifest)['seconds']:.1f}s" in r.stdout


@pytest.mark.parametrize("command", ["run", "validate"])  # validate refuses what run would refuse
def test_changed_config_does_not_mix_into_an_old_run(baseline, command):
    r = gristmill(command, str(baseline.parent.parent / "baseline.yaml"), "--set", "stages.lid.threshold=0.9")
    assert r.returncode == 2
    assert "changed: stages" in r.stderr and "run.name" in r.stderr


def test_resume_after_sigkill_gives_the_same_documents(work, baseline):
    config = write_config(work, "killed", num_cpus=1, max_in_flight=1)
    run_dir = work / "out" / "killed"
    kill_run_midway(config, lambda: len(list((run_dir / "stats").glob("part-*.json"))) >= 3)
    done_at_kill = len(list((run_dir / "stats").glob("part-*.json")))
    total = json.loads((baseline / "manifest.json").read_text())["parts"]
    assert 3 <= done_at_kill < total

    r = gristmill("run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert done_at_kill <= already_done(r.stdout) < total  # workers of the killed driver may finish more
    assert not list(run_dir.glob("**/.tmp-*"))
    assert documents(run_dir) == documents(baseline)
    for meta in (baseline / "tokens").glob("*/shard-*.json"):
        twin = run_dir / meta.relative_to(baseline)
        for ext in (".bin", ".idx"):
            assert meta.with_suffix(ext).read_bytes() == twin.with_suffix(ext).read_bytes()


def test_a_failing_task_does_not_stop_the_others():
    import ray

    from gristmill.pipeline.runner import run_tasks

    def half(x: int) -> int:
        if x == 3:
            raise ValueError("bad shard")
        return x // 2

    ray.init(address="local", num_cpus=1, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        task = ray.remote(max_retries=0)(half)
        results, failed = run_tasks(task, ((i,) for i in range(6)), 6, 2, "t", progress=False)
    finally:
        ray.shutdown()
    assert sorted(results) == [0, 0, 1, 2, 2]
    assert failed == [((3,), "ValueError: bad shard")]


def test_filters_stage_end_to_end(work):
    """Signals become columns, drops land in rejects as "<filter>:<reason>", stats count them;
    --dry-run keeps everything and flags instead."""
    from gristmill.filters import FILTERS

    raw = make_config(work, {"cc": INPUTS["cc"], "news": INPUTS["news"]}, name="filtered")
    raw["stages"] = {"ingest": {}, "extract": {"timeout_s": 30.0}, "lid": {},
                     "filters": {"default": {name: {} for name in FILTERS if name != "quality_model"}},
                     "write": {}}
    config = work / "filtered.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    for args, name in [((), "filtered"), (("--dry-run", "--set", "run.name=dry"), "dry")]:
        r = gristmill("run", str(config), *args)
        assert r.returncode == 0, r.stdout + r.stderr
    run_dir, dry_dir = work / "out" / "filtered", work / "out" / "dry"
    signals = [s for name in FILTERS if name != "quality_model" for s in FILTERS[name].signals]
    docs = ds.dataset(run_dir / "docs", format="parquet").to_table()
    assert set(signals) | {"filter_flag"} <= set(docs.column_names)
    rejects = ds.dataset(run_dir / "rejects", format="parquet").to_table().to_pylist()
    filtered = [r for r in rejects if r["reject_stage"] == "filters"]
    assert filtered and all(r["reject_reason"].split(":")[0] in FILTERS for r in filtered)
    totals = json.loads((run_dir / "manifest.json").read_text())["totals"]
    assert sum(totals["filters"]["dropped"].values()) == len(filtered)
    dry = ds.dataset(dry_dir / "docs", format="parquet").to_table()
    assert dry.num_rows == docs.num_rows + len(filtered)
    assert sorted(f for f in dry["filter_flag"].to_pylist() if f) == sorted(r["reject_reason"] for r in filtered)


def test_dedup_end_to_end_and_against_an_earlier_run(work):
    """On Ray: the same WARC records in several edge-case files collapse to one, clusters equal
    datasketch's MinHashLSH on the run's documents, and a recrawl run against this one drops
    what it already has."""
    from bench.dedup_corpus import clusters_from_rejects, datasketch_clusters

    raw = make_config(work, INPUTS, name="deduped", dedup={}, tokenize={"vocab_size": 4096})
    raw["stages"] = {k: raw["stages"][k] for k in ("ingest", "extract", "lid", "dedup", "write", "tokenize")}
    config = work / "deduped.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = gristmill("run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    run_dir = work / "out" / "deduped"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    totals = manifest["totals"]
    docs = documents(run_dir)
    assert totals["dedup"]["docs_in"] == totals["write"]["docs_out"]
    assert totals["dedup"]["docs_out"] == manifest["documents"] == len(docs) == totals["tokenize"]["docs_in"]
    assert len({d["id"] for d in docs}) == len(docs)  # the same record in .warc/.warc.gz/.arc: once
    rejects = [r for r in ds.dataset(run_dir / "rejects", format="parquet").to_table().to_pylist()
               if r["reject_stage"] == "dedup"]
    assert len(rejects) == sum(totals["dedup"]["dropped"].values()) >= 2
    assert {d["id"] for d in docs} >= {r["duplicate_of"] for r in rejects}

    before = ds.dataset(run_dir / "pre_dedup", format="parquet").to_table(columns=["id", "text"]).to_pylist()
    theirs = datasketch_clusters({i: d["text"] for i, d in enumerate(before)})
    # as id sets: the same record in two files is one id, so compare the ids a cluster spans
    theirs_ids = sorted(sorted({before[i]["id"] for i in c}) for c in theirs)
    assert theirs_ids == sorted(sorted(c) for c in clusters_from_rejects(str(run_dir)))

    recrawl = make_config(work, {"news": INPUTS["news"]}, name="recrawl", dedup={"against": [str(run_dir)]})
    recrawl["stages"] = {k: recrawl["stages"][k] for k in ("ingest", "extract", "lid", "dedup", "write")}
    config = work / "recrawl.yaml"
    config.write_text(yaml.safe_dump(recrawl, sort_keys=False))
    r = gristmill("run", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    totals = json.loads((work / "out" / "recrawl" / "manifest.json").read_text())["totals"]["dedup"]
    news = [d for d in docs if d["source"] == "news"]
    assert totals["docs_in"] == len(news) + sum(1 for r in rejects if r["source"] == "news")
    assert totals["docs_out"] == 0  # every page is already in the earlier run
    assert totals["events"]["duplicate_of_earlier_run"] == totals["docs_in"]
