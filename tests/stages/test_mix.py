"""Mixture sampling on synthetic finished runs: proportions, caps (the mixture's default and a
source's own), shortfall and its tolerance, warnings, split and its minimum, determinism, resume,
errors and what a failure leaves; and the README's numpy reader."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gristmill.core.config import ConfigError
from gristmill.stages.dedup import run_in_process
from gristmill.stages.mix import MixFailed, build_mixture, prepare
from gristmill.stages.mix.config import MixConfig, parse_mix
from gristmill.stages.mix.select import content_hashes
from tests.conftest import ROOT

EOS = 0
LANGS = {"web_en": "en", "web_de": "de", "code": "en"}


def make_run(root: Path, name: str, docs_per_source: dict[str, int], parts: int = 4, seed: int = 0,
             sha: str = "tok0", copies: int = 0, id_prefix: str = "") -> Path:
    """A finished run as `gristmill run` leaves it: docs parts, token shards, manifest."""
    rng = np.random.default_rng(seed)
    run = root / name
    rows = []
    for source, n in docs_per_source.items():
        for i in range(n):
            length = int(rng.integers(20, 400)) if source != "code" else int(rng.integers(200, 1200))
            rows.append({"id": f"{id_prefix}{source}-{i:06d}", "source": source, "language": LANGS.get(source, "fr"),
                         "url": f"https://{'docs.' if source == 'code' else ''}{source}.example/{i}",
                         "domain": f"{'docs.' if source == 'code' else ''}{source}.example",
                         "quality": float(rng.random()), "duplicates": int(rng.integers(0, 3)),
                         "toks": rng.integers(1, 50_000, size=length - 1).tolist() + [EOS]})
    for c in range(copies):  # exact copies under new ids (what dedup would have removed)
        rows.append({**rows[c * 7], "id": f"{id_prefix}copy-{c:04d}"})
    order = rng.permutation(len(rows))
    for p in range(parts):
        mine = [rows[i] for i in order[p::parts]]
        source = f"in{p % 2}"
        (run / "docs").mkdir(parents=True, exist_ok=True)
        table = pa.table({k: [r[k] for r in mine] for k in ("id", "source", "language", "url", "domain",
                                                           "quality", "duplicates")})
        pq.write_table(table, run / "docs" / f"part-{p:05d}.parquet")
        prefix = run / "tokens" / source / f"shard-{p:05d}"
        prefix.parent.mkdir(parents=True, exist_ok=True)
        tokens = np.array([t for r in mine for t in r["toks"]], dtype=np.uint16)
        offsets = np.concatenate([[0], np.cumsum([len(r["toks"]) for r in mine])]).astype(np.int64)
        tokens.tofile(f"{prefix}.bin")
        offsets.tofile(f"{prefix}.idx")
        Path(f"{prefix}.json").write_text(json.dumps(
            {"source": source, "tokenizer": "tok.json", "tokenizer_sha256": sha, "eos_id": EOS,
             "vocab_size": 50_000, "dtype": "uint16", "n_docs": len(mine), "n_tokens": int(offsets[-1])}))
    (run / "manifest.json").write_text(json.dumps({"run": name, "status": "done", "outputs": {"tokens": "x"}}))
    return run


def mix_spec(runs: list[Path], out: Path, **kw) -> MixConfig:
    raw = {"name": "m", "output": str(out), "runs": [str(r) for r in runs], "budget": 300_000,
           "validation": 0.05, "seed": 3, "shard_tokens": 40_000,
           "sources": [
               {"name": "code", "weight": 0.2, "where": {"domain": ["example"], "url": {"matches": "//docs\\."}}},
               {"name": "english", "weight": 0.3, "max_epochs": 4, "where": {"language": "en"}},
               {"name": "german_hq", "weight": 0.4, "where": {"language": "de", "quality": {"min": 0.3}}},
               {"name": "rest", "weight": 0.1},
           ]}
    for k, v in kw.items():
        raw[k] = v
    return parse_mix({"mixture": raw}).mixture


def read_mix(mix_dir: Path) -> tuple[dict, dict[str, list]]:
    """mix.json, and per split the documents as (source id, tokens, origin)."""
    m = json.loads((mix_dir / "mix.json").read_text())
    out = {}
    for split, shards in [("train", m["train"]["shards"])] + [(f"validation/{k}", v["shards"])
                                                           for k, v in m["validation"].items()]:
        docs = []
        for s in shards:
            p = mix_dir / s["path"]
            tokens = np.fromfile(f"{p}.bin", dtype=m["dtype"])
            idx = np.fromfile(f"{p}.idx", dtype=np.int64)
            src = np.fromfile(f"{p}.src", dtype=np.uint16)
            origin = np.fromfile(f"{p}.origin", dtype=np.int32).reshape(-1, 3)
            docs += [(int(src[i]), tokens[idx[i]:idx[i + 1]], tuple(origin[i])) for i in range(len(src))]
        out[split] = docs
    return m, out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    # code ≈ 140 × 700 = 98k tokens; english ≈ 300 × 210 = 63k (up-sampled); german ≈ 3000 × 210
    # = 630k (down-sampled); french ≈ 100 × 210 = 21k
    root = tmp_path_factory.mktemp("runs")
    return make_run(root, "web", {"web_en": 300, "web_de": 3000, "code": 140, "web_fr": 100}, copies=40)


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    spec = mix_spec([corpus], tmp_path_factory.mktemp("mix"))
    build_mixture(spec, run_in_process)
    return spec, Path(spec.mix_dir)


def test_realised_mix_is_within_half_a_percent_and_documents_are_intact(corpus, built):
    spec, mix_dir = built
    m, docs = read_mix(mix_dir)
    train = m["train"]["tokens"]
    assert abs(train - spec.budget) <= 0.005 * spec.budget
    weights = np.array([s.weight for s in spec.sources]) / sum(s.weight for s in spec.sources)
    realised = np.zeros(len(weights))
    for s, toks, _ in docs["train"]:
        realised[s] += len(toks)
    assert realised.sum() == train
    assert np.abs(realised / train - weights).max() <= 0.005, realised / train
    assert [s["realised"]["tokens"] for s in m["sources"]] == realised.astype(int).tolist()
    epochs = {s["name"]: s["epochs"] for s in m["sources"]}
    assert epochs["english"] > 1 and epochs["german_hq"] < 1  # up- and down-sampled
    tables = {p: pq.read_table(corpus / "docs" / f"part-{p:05d}.parquet").to_pylist() for p in range(4)}
    shards = {p: next((corpus / "tokens").glob(f"*/shard-{p:05d}.bin")) for p in range(4)}
    for s, toks, (run, part, row) in docs["train"][::37] + docs["validation/english"]:
        assert toks[-1] == EOS and run == 0
        original = np.fromfile(shards[part], dtype=np.uint16)
        idx = np.fromfile(shards[part].with_suffix(".idx"), dtype=np.int64)
        assert np.array_equal(toks, original[idx[row]:idx[row + 1]])
        doc = tables[part][row]
        expected = {"code": "docs." in doc["url"], "english": doc["language"] == "en",
                    "german_hq": doc["language"] == "de" and doc["quality"] >= 0.3}
        first = next((i for i, (name, hit) in enumerate(expected.items()) if hit), 3)
        assert s == first  # the first matching source wins


def test_shards_are_shuffled_across_sources_and_parts(built):
    _, mix_dir = built
    m, docs = read_mix(mix_dir)
    first = m["train"]["shards"][0]
    n = first["docs"]
    head = docs["train"][:n]
    assert len({s for s, _, _ in head[:50]}) == 4 and len({o[1] for _, _, o in head[:50]}) == 4
    assert len(m["train"]["shards"]) >= 7  # ≈ 300k / 40k


def test_no_document_or_exact_copy_is_in_both_train_and_validation(built):
    _, mix_dir = built
    _, docs = read_mix(mix_dir)
    key = lambda toks: toks.tobytes()  # noqa: E731
    train = {key(t) for _, t, _ in docs["train"]}
    val = [key(t) for split, d in docs.items() if split != "train" for _, t, _ in d]
    assert val and not train & set(val)
    train_rows = {o for _, _, o in docs["train"]}
    val_rows = {o for split, d in docs.items() if split != "train" for _, _, o in d}
    assert not train_rows & val_rows
    for split, d in docs.items():  # validation shards hold one source each
        if split != "train":
            assert len({s for s, _, _ in d}) <= 1


def test_same_spec_gives_identical_bytes_and_a_rerun_is_a_no_op(corpus, built, tmp_path):
    spec, mix_dir = built
    again = mix_spec([corpus], tmp_path)
    build_mixture(again, run_in_process)
    assert tree(Path(again.mix_dir)) == tree(mix_dir)
    before = {p: p.stat().st_mtime_ns for p in mix_dir.rglob("*")}
    build_mixture(spec, run_in_process)
    assert before == {p: p.stat().st_mtime_ns for p in mix_dir.rglob("*")}


def tree(root: Path) -> dict[str, bytes]:
    """Every output file's bytes, mix.json without its times."""
    out = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
           if p.is_file() and p.name != "mix.json"}
    m = json.loads((root / "mix.json").read_text())
    out["mix.json"] = {k: v for k, v in m.items() if k not in ("created_at", "seconds")}
    return out


def test_caps_are_honoured_and_the_shortfall_is_shared_by_weight(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path, budget=400_000, shortfall="redistribute")  # english: half its weight
    spec.sources[1].max_epochs = 1.0  # english: ≈ 60k available, its 120k share cannot be met
    build_mixture(spec, run_in_process)
    m, _ = read_mix(Path(spec.mix_dir))
    src = {s["name"]: s for s in m["sources"]}
    eng = src["english"]
    assert eng["realised"]["tokens"] == eng["available"]["tokens"] and eng["epochs"] == 1.0
    assert eng["short_by_tokens"] == 120_000 - eng["available"]["tokens"]
    others = ["code", "german_hq", "rest"]
    got = np.array([src[n]["realised"]["tokens"] for n in others], dtype=float)
    assert abs(m["train"]["tokens"] - 400_000) <= 2_000
    assert np.allclose(got / got.sum(), np.array([0.2, 0.4, 0.1]) / 0.7, atol=0.005)


def test_shortfall_fail_and_impossible_budgets_name_the_source(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path, budget=400_000, shortfall="fail")
    spec.sources[1].max_epochs = 1.0
    with pytest.raises(ConfigError, match=r"shortfall.*english \(target 120,000"):
        build_mixture(spec, run_in_process)
    for s in spec.sources:
        s.max_epochs = 1.0
    spec.shortfall, spec.budget = "redistribute", 1_000_000  # more than all there is, once each
    with pytest.raises(ConfigError, match=r"mixture.budget: 1,000,000 tokens is more than.*english can give"):
        build_mixture(spec, run_in_process)
    assert not (Path(spec.mix_dir) / "train").exists()  # nothing written


def test_adding_data_later_keeps_earlier_picks(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path / "a")
    build_mixture(spec, run_in_process)
    more = make_run(tmp_path, "more", {"web_de": 1500}, seed=9, id_prefix="new-")
    spec2 = mix_spec([corpus, more], tmp_path / "b")
    build_mixture(spec2, run_in_process)
    picked = lambda d: {o for s, _, o in d["train"] if s == 2 and o[0] == 0}  # noqa: E731  german, run 0
    before, after = picked(read_mix(Path(spec.mix_dir))[1]), picked(read_mix(Path(spec2.mix_dir))[1])
    assert after and after <= before  # fewer old documents are needed, and they were all picked before


@pytest.mark.parametrize("change,message", [
    (lambda r: r["sources"][0].update(weight=0), r"mixture.sources.0.weight: .*greater than 0"),
    (lambda r: r["sources"][0].update(max_epochs=-1), r"mixture.sources.0.max_epochs"),
    (lambda r: r["sources"][1].update(where={"language": {"min": 1}}), r"sources.1.where.language: min/max need a numeric"),
    (lambda r: r["sources"][1].update(where={"quality": {"matches": "x"}}), r"sources.1.where.quality: matches needs a string"),
    (lambda r: r["sources"][1].update(where={"qualty": {"min": 1}}), r"sources.1.where.qualty: no run has a column"),
    (lambda r: r["sources"][1].update(where={"quality": {"min": 2, "max": 1}}), r"sources.1.where.quality: .*above max"),
    (lambda r: r["sources"][1].update(where={"quality": {"between": 1}}), r"sources.1.where.quality.between: unknown key"),
    (lambda r: r["sources"][1].update(name="code"), r"mixture.sources: .*code repeated"),
    (lambda r: r["sources"][1].update(where={"language": "xx"}), r"mixture.sources.1 \(english\): no training document"),
    (lambda r: r.update(budget=0), r"mixture.budget"),
    (lambda r: r.update(validation=1.0), r"mixture.validation"),
    (lambda r: r.update(runs=[]), r"mixture.runs: list at least one"),
])
def test_invalid_specs_fail_before_any_output_naming_the_key(corpus, tmp_path, change, message):
    raw = {"name": "bad", "output": str(tmp_path), "runs": [str(corpus)], "budget": 100_000,
           "sources": [{"name": "code", "weight": 1, "where": {"url": {"matches": "docs"}}},
                       {"name": "english", "weight": 1, "where": {"language": "en"}}]}
    change(raw)
    with pytest.raises(ConfigError, match=message):
        spec = parse_mix({"mixture": raw}).mixture
        build_mixture(spec, run_in_process)
    assert not (tmp_path / "bad" / "train").exists()


def test_runs_must_be_finished_tokenized_alike_and_match_their_rows(corpus, tmp_path):
    other = make_run(tmp_path, "other_tok", {"web_en": 10}, sha="tok1")
    with pytest.raises(ConfigError, match=r"different tokenizers \(sha256 tok0 vs tok1\)"):
        prepare(mix_spec([corpus, other], tmp_path))
    running = make_run(tmp_path, "running", {"web_en": 10})
    (running / "manifest.json").write_text(json.dumps({"run": "running", "status": "interrupted"}))
    with pytest.raises(ConfigError, match=r"mixture.runs.1: run .* is not finished \(status: interrupted\)"):
        prepare(mix_spec([corpus, running], tmp_path))
    with pytest.raises(ConfigError, match=r"mixture.runs.0: .* is not a run directory"):
        prepare(mix_spec([tmp_path / "nothing"], tmp_path))
    spec = mix_spec([corpus], tmp_path / "x")
    build_mixture(spec, run_in_process)
    changed = mix_spec([corpus], tmp_path / "x", seed=4)
    with pytest.raises(ConfigError, match="holds a mixture made from another spec"):
        prepare(changed)


KILLER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from gristmill.stages.mix import build_mixture
from gristmill.stages.mix.config import parse_mix
spec = parse_mix({raw!r}).mixture
step, after, done = {step!r}, {after}, 0
def execute(fn, args, desc):
    global done
    results = []
    for a in args:
        if desc == step and done == after:
            os.kill(os.getpid(), signal.SIGKILL)
        results.append(fn(*a))
        done += desc == step
    return results, []
build_mixture(spec, execute)
"""


@pytest.mark.parametrize("step,after", [("mix scan", 2), ("mix spill", 1), ("mix shards", 3)])
def test_resume_after_a_kill_gives_the_same_mixture(corpus, built, tmp_path, step, after):
    _, reference = built
    spec = mix_spec([corpus], tmp_path)
    raw = {"mixture": spec.model_dump(mode="json", by_alias=True)}
    r = subprocess.run([sys.executable, "-c", KILLER.format(root=str(ROOT), raw=raw, step=step, after=after)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert not (Path(spec.mix_dir) / "mix.json").exists()
    build_mixture(spec, run_in_process)
    assert tree(Path(spec.mix_dir)) == tree(reference)
    assert not (Path(spec.mix_dir) / "work").exists()


@pytest.mark.slow
def test_gristmill_mix_on_ray_gives_the_same_bytes_as_one_process(corpus, built, tmp_path):
    spec, reference = built
    raw = {"mixture": {**spec.model_dump(mode="json", by_alias=True), "output": str(tmp_path)},
           "execution": {"num_cpus": 2, "progress": False}}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "gristmill", "mix", str(path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "german_hq" in r.stdout and "mix.json" in r.stdout
    assert tree(tmp_path / spec.name) == tree(reference)


def test_readme_numpy_reader_reads_the_mixture(built):
    _, mix_dir = built
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- mix-reader -->\n```python\n(.*?)```", readme, re.S)
    assert block, "README.md lost its numpy reader"
    scope: dict = {}
    exec(block.group(1), scope)
    docs = list(scope["read_mixture"](str(mix_dir), "train"))
    _, ours = read_mix(mix_dir)
    assert len(docs) == len(ours["train"])
    m = json.loads((mix_dir / "mix.json").read_text())
    names = [s["name"] for s in m["sources"]]
    for (source, tokens), (s, toks, _) in zip(docs, ours["train"]):
        assert source == names[s] and np.array_equal(tokens, toks)


def test_content_hash_ignores_ids():
    tokens = np.array([5, 6, 0, 5, 6, 0, 7, 0], dtype=np.uint16)
    h = content_hashes(tokens, np.array([0, 3, 6, 8]))
    assert h[0] == h[1] != h[2]


def test_sources_take_the_mixtures_epoch_cap_unless_they_set_their_own(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path)
    assert [s.max_epochs for s in spec.sources] == [4.0, 4.0, 4.0, 4.0]  # the default, and english's own 4
    raw = spec.model_dump(mode="json", by_alias=True)
    raw["max_epochs"] = 2
    raw["sources"][0].pop("max_epochs")  # takes the mixture's
    raw["sources"][3]["max_epochs"] = None  # explicitly uncapped
    again = parse_mix({"mixture": raw}).mixture
    assert [s.max_epochs for s in again.sources] == [2.0, 4.0, 4.0, None]
    assert parse_mix({"mixture": again.model_dump(mode="json", by_alias=True)}).mixture == again  # resolved
    uncapped = mix_spec([corpus], tmp_path, max_epochs=None)
    assert [s.max_epochs for s in uncapped.sources] == [None, 4.0, None, None]


def test_the_default_cap_holds_and_an_accepted_departure_warns_everywhere(corpus, tmp_path):
    from gristmill.pipeline.cli import mix_summary

    # code ≈ 91k training tokens, no cap of its own: its 400k share would need 4.4 epochs;
    # english ≈ 69k (its own cap 4): 600k would need 8.7
    spec = mix_spec([corpus], tmp_path, budget=2_000_000, shortfall="redistribute")
    m = build_mixture(spec, run_in_process)
    src = {s["name"]: s for s in m["sources"]}
    assert src["code"]["max_epochs"] == 4.0 and src["code"]["epochs"] == 4.0
    assert src["english"]["epochs"] == 4.0
    assert src["code"]["short_by_tokens"] > 0 and src["english"]["realised"]["share"] < 0.14
    assert m["shortfall"] == "redistribute" and m["max_epochs"] == 4.0 and m["share_tolerance"] == 0.1
    [warning] = m["warnings"]
    assert re.search(r"share_tolerance 0.1 \(shortfall: redistribute\): english weight 0.300 → "
                     r"share 0.13\d \(capped at 4 epochs\); german_hq weight 0.400 → share 0.5\d\d", warning)
    assert "code" not in warning  # 0.182 for 0.2: within the tolerance
    assert json.loads((Path(spec.mix_dir) / "mix.json").read_text())["warnings"] == [warning]
    assert mix_summary(m, spec.mix_dir).splitlines()[-1] == f"WARNING: {warning}"


def test_an_uncapped_source_repeated_past_four_epochs_warns(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path, budget=2_000_000)
    spec.sources[0].max_epochs = spec.sources[1].max_epochs = None
    m = build_mixture(spec, run_in_process)
    assert [w.split(" is repeated")[0] for w in m["warnings"]] == ["code", "english"]
    assert all(re.search(r"is repeated \d+\.\d epochs \(max_epochs: null\)", w) for w in m["warnings"])


def test_shares_past_the_tolerance_are_refused_in_one_line_leaving_nothing(corpus, tmp_path):
    spec = mix_spec([corpus], tmp_path, budget=400_000)
    spec.sources[1].max_epochs = 1.0  # english: ≈ 60k available, its 120k share cannot be met
    with pytest.raises(ConfigError) as e:
        build_mixture(spec, run_in_process)
    message = str(e.value)
    assert "\n" not in message
    assert re.search(r"english weight 0.300 → share 0.1\d\d \(capped at 1 epochs\).*german_hq weight "
                     r"0.400 → share 0.4\d\d.*Lower mixture.budget to [\d,]+ or less, raise max_epochs "
                     r"\(english needs \d\.\d for its whole share\).*mixture.shortfall: redistribute",
                     message), message
    best = int(re.search(r"budget to ([\d,]+)", message).group(1).replace(",", ""))
    assert not Path(spec.mix_dir).exists()  # no work files, not even the directory
    spec.budget = best  # the budget the message names mixes within the tolerance
    m = build_mixture(spec, run_in_process)
    assert m["warnings"] == [] and m["sources"][1]["short_by_tokens"] > 0


def test_a_refused_rerun_removes_only_its_own_work_and_the_kill_still_resumes(corpus, built, tmp_path):
    _, reference = built
    spec = mix_spec([corpus], tmp_path)
    raw = {"mixture": spec.model_dump(mode="json", by_alias=True)}
    killer = KILLER.format(root=str(ROOT), raw=raw, step="mix scan", after=2)
    r = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, r.stderr
    work = Path(spec.mix_dir) / "work"
    left = sorted(work.rglob("*.npz"))
    assert len(left) == 2
    refused = mix_spec([corpus], tmp_path, budget=400_000)  # the same scan, another allocation
    refused.sources[1].max_epochs = 1.0
    with pytest.raises(ConfigError, match="share_tolerance"):
        build_mixture(refused, run_in_process)
    assert sorted(p for p in work.rglob("*") if p.is_file()) == left  # the killed attempt's scans stay
    build_mixture(spec, run_in_process)
    assert tree(Path(spec.mix_dir)) == tree(reference) and not work.exists()


def test_a_failed_task_removes_this_attempts_work_and_a_rerun_finishes(corpus, built, tmp_path):
    _, reference = built
    spec = mix_spec([corpus], tmp_path)

    def failing(fn, args, desc):
        results, failed = run_in_process(fn, args, desc)
        return (results, [(args[0], "OSError: disk full")]) if desc == "mix spill" else (results, failed)

    with pytest.raises(MixFailed, match="mix spill: .*disk full.*rerun to retry"):
        build_mixture(spec, failing)
    assert not (Path(spec.mix_dir) / "work").exists() and (Path(spec.mix_dir) / "spec.json").exists()
    build_mixture(spec, run_in_process)
    assert tree(Path(spec.mix_dir)) == tree(reference)


@pytest.mark.slow
def test_gristmill_mix_refuses_a_degenerate_mixture_in_one_line_with_exit_2(corpus, tmp_path):
    raw = mix_spec([corpus], tmp_path, budget=400_000).model_dump(mode="json", by_alias=True)
    raw["sources"][1]["max_epochs"] = 1.0
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"mixture": raw, "execution": {"num_cpus": 2, "progress": False}}))
    r = subprocess.run([sys.executable, "-m", "gristmill", "mix", str(path)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    [line] = [x for x in r.stderr.splitlines() if x.startswith("gristmill:")]
    for source, weight in [("code", "0.200"), ("english", "0.300"), ("german_hq", "0.400"),
                           ("rest", "0.100")]:
        assert f"{source} weight {weight} → share" in line, line
    assert "mixture.budget" in line and "max_epochs" in line and "shortfall: redistribute" in line
    assert not (tmp_path / "m").exists()


def validation_docs(m: dict, mix_dir: Path, source: str) -> set[tuple]:
    return {o for _, _, o in read_mix(mix_dir)[1][f"validation/{source}"]}


def test_a_small_source_holds_out_its_lowest_content_hash_or_warns(tmp_path):
    from gristmill.pipeline.cli import mix_summary

    # seed 3: the content hash holds out none of tiny's 30 documents (5% of them: 1.5) nor of wee's 10 (0.5)
    run = make_run(tmp_path, "small", {"web_en": 200, "tiny": 30, "wee": 10}, parts=2, seed=3)
    sources = [{"name": "english", "weight": 0.8, "where": {"language": "en"}},
               {"name": "tiny", "weight": 0.1, "where": {"source": "tiny"}},
               {"name": "wee", "weight": 0.1, "where": {"source": "wee"}}]
    none = mix_spec([run], tmp_path / "none", budget=20_000, sources=sources, min_validation_docs=0)
    assert [s["validation"]["docs"] for s in build_mixture(none, run_in_process)["sources"]][1:] == [0, 0]
    spec = mix_spec([run], tmp_path / "min", budget=20_000, sources=sources)
    m = build_mixture(spec, run_in_process)
    src = {s["name"]: s for s in m["sources"]}
    assert src["tiny"]["validation"]["docs"] == 1 and src["tiny"]["available"]["docs"] == 29
    assert src["wee"]["validation"]["docs"] == 0  # one of 10 would be more than their 5%
    held = validation_docs(m, Path(spec.mix_dir), "tiny")
    assert not held & {o for _, _, o in read_mix(Path(spec.mix_dir))[1]["train"]}
    hashes = {}
    for p in range(2):
        table = pq.read_table(run / "docs" / f"part-{p:05d}.parquet").to_pylist()
        prefix = next((run / "tokens").glob(f"*/shard-{p:05d}.bin")).with_suffix("")
        tokens = np.fromfile(f"{prefix}.bin", dtype=np.uint16)
        h = content_hashes(tokens, np.fromfile(f"{prefix}.idx", dtype=np.int64))
        hashes.update({(0, p, row): h[row] for row, doc in enumerate(table) if doc["source"] == "tiny"})
    assert held == {min(hashes, key=hashes.get)}  # the lowest content hash: the same whatever the seed
    reseeded = mix_spec([run], tmp_path / "seed", budget=20_000, sources=sources, seed=11)
    assert validation_docs(build_mixture(reseeded, run_in_process), Path(reseeded.mix_dir), "tiny") == held
    [warning] = m["warnings"]
    assert warning.startswith("wee: 0 of 10 documents held out for validation, fewer than "
                              "min_validation_docs 1 ")
    assert "not measured" in warning and mix_summary(m, spec.mix_dir).endswith(f"WARNING: {warning}")
