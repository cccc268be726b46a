"""Config loading: every mistake fails at load time naming the key or path."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gristmill.core.config import ConfigError
from gristmill.pipeline.config import load_config, parse_config
from tests.conftest import ROOT, WARC, make_config, require


def write(tmp_path: Path, raw: dict) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(raw, sort_keys=False))
    return p


@pytest.fixture
def raw(tmp_path):
    return make_config(tmp_path, {"cc": [str(require(WARC / "real")) + "/*.warc.gz"]})


def test_sample_config_loads():
    cfg = load_config(ROOT / "configs" / "sample.yaml")
    assert cfg.stages.order == ["ingest", "extract", "lid", "filters", "pii", "dedup", "write", "tokenize"]
    assert [i.name for i in cfg.inputs] == ["commoncrawl", "edge_cases", "benchmark_pages"]


def test_unknown_key_is_named(tmp_path, raw):
    raw["stages"]["lid"]["treshold"] = 0.5
    with pytest.raises(ConfigError, match=r"stages\.lid\.treshold: unknown key"):
        load_config(write(tmp_path, raw))


def test_unknown_top_level_key(tmp_path, raw):
    raw["outputs"] = "x"
    with pytest.raises(ConfigError, match=r"outputs: unknown key"):
        load_config(write(tmp_path, raw))


def test_wrong_type_is_named(tmp_path, raw):
    raw["stages"]["extract"]["timeout_s"] = "fast"
    with pytest.raises(ConfigError, match=r"stages\.extract\.timeout_s"):
        load_config(write(tmp_path, raw))


def test_out_of_range_value(tmp_path, raw):
    raw["stages"]["lid"]["thresholds"] = {"en": 1.5}
    with pytest.raises(ConfigError, match=r"stages\.lid\.thresholds"):
        load_config(write(tmp_path, raw))


def test_missing_input_names_the_pattern(tmp_path, raw):
    raw["inputs"][0]["paths"].append(str(tmp_path / "nope-*.warc.gz"))
    with pytest.raises(ConfigError, match=r"inputs\.0\.paths\.1: .*nope-\*\.warc\.gz.* matches no file"):
        load_config(write(tmp_path, raw))


def test_symlinked_inputs_are_files(tmp_path, raw):
    """fsspec lists a local symlink as type "other": a link to a file is still an input, a
    dangling one is not."""
    from gristmill.pipeline.config import expand_inputs

    target = tmp_path / "data.warc.gz"
    target.write_bytes(b"")
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "a.warc.gz").symlink_to(target)
    (tmp_path / "links" / "dangling.warc.gz").symlink_to(tmp_path / "gone.warc.gz")
    raw["inputs"] = [{"name": "x", "paths": [str(tmp_path / "links" / "*")]}]
    assert expand_inputs(load_config(write(tmp_path, raw))) == {"x": [str(tmp_path / "links" / "a.warc.gz")]}


def test_unknown_stage_and_order(tmp_path, raw):
    raw["stages"]["dedupe"] = {}
    with pytest.raises(ConfigError, match=r"stages\.dedupe: unknown stage"):
        load_config(write(tmp_path, raw))
    del raw["stages"]["dedupe"]
    raw["stages"] = {"extract": {}, "ingest": {}, "write": {}}
    with pytest.raises(ConfigError, match=r"must run in the order ingest → extract → write"):
        load_config(write(tmp_path, raw))


def test_required_stage_missing(tmp_path, raw):
    del raw["stages"]["write"]
    with pytest.raises(ConfigError, match=r"stages\.write: required stage is missing"):
        load_config(write(tmp_path, raw))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_overrides(tmp_path, raw):
    cfg = load_config(write(tmp_path, raw), ["stages.lid.threshold=0.7", "stages.lid.languages=[en, de]",
                                             "run.name=other"])
    assert cfg.stages.lid.threshold == 0.7
    assert cfg.stages.lid.languages == ["en", "de"]
    assert cfg.run.name == "other"
    cfg = load_config(write(tmp_path, raw), ["stages.lid=false"])  # a stage is switched off
    assert cfg.stages.lid is None and "lid" not in cfg.stages.order
    with pytest.raises(ConfigError, match=r"stages\.lid\.threshold"):
        load_config(write(tmp_path, raw), ["stages.lid.threshold=high"])
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(write(tmp_path, raw), ["stages.lid.threshold"])


def test_relative_paths_resolve_against_config_dir(tmp_path):
    raw = make_config(tmp_path, {"cc": [str(require(WARC / "real" / "whirlwind-CC-MAIN-2024-22.warc.gz"))]})
    raw["run"]["output"] = "rel-out"
    cfg = parse_config(raw, base_dir=tmp_path)
    assert cfg.run_dir == f"{tmp_path / 'rel-out'}/t"


def test_resolved_config_round_trips(tmp_path):
    """What `gristmill submit` writes for the cluster loads back to the same config."""
    cfg = load_config(ROOT / "configs" / "sample.yaml", ["stages.lid.languages=[en]", "stages.tokenize=false"])
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_raw(), sort_keys=False)), base_dir=tmp_path)
    assert again.snapshot() == cfg.snapshot()


def test_sample_mix_file_loads():
    from gristmill.stages.mix.config import load_mix

    spec = load_mix(ROOT / "configs" / "sample-mix.yaml")
    mix = spec.mixture
    assert mix.runs == [str(ROOT / "out" / "sample")] and mix.mix_dir == str(ROOT / "out" / "sample-mix")
    assert [s.name for s in mix.sources] == ["crawl", "english", "german", "other"]
    assert mix.sources[1].where["gopher_stop_words"].min == 2 and mix.sources[1].where["language"].in_ == ["en"]


def test_mixture_block_in_a_run_config(tmp_path, raw):
    raw["stages"]["tokenize"] = {"vocab_size": 1000}
    raw["mixture"] = {"budget": 1000, "runs": ["other-run"],
                      "sources": [{"name": "all", "weight": 1, "where": {"domain": "example.org"}}]}
    cfg = parse_config(raw, base_dir=tmp_path)
    assert cfg.mix.runs == [cfg.run_dir, str(tmp_path / "other-run")]  # this run first, then the others
    assert cfg.mix.mix_dir == f"{tmp_path / 'out'}/mix"
    again = parse_config(yaml.safe_load(yaml.safe_dump(cfg.to_raw(), sort_keys=False)), base_dir=ROOT)
    assert again.mix == cfg.mix  # `submit`'s copy reads the same runs from anywhere
    raw["mixture"]["sources"][0]["weight"] = -1
    with pytest.raises(ConfigError, match=r"mixture.sources.0.weight: Input should be greater than 0"):
        parse_config(raw, base_dir=tmp_path)
    del raw["stages"]["tokenize"]
    with pytest.raises(ConfigError, match=r"mixture: needs the tokenize stage"):
        parse_config(raw, base_dir=tmp_path)


@pytest.mark.parametrize("command, config", [("validate", "configs/sample.yaml"), ("mix", "configs/sample-mix.yaml"),
                                             ("train", "configs/train-sample.yaml")])
@pytest.mark.heavy
def test_a_malformed_override_is_one_line_exit_2(command, config):
    r = subprocess.run([sys.executable, "-m", "gristmill", command, config, "--set", "stages.lid.languages=[en, de"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr.count("\n") == 1 and "not valid YAML" in r.stderr and "line 1, column 8" in r.stderr


def test_malformed_yaml_in_a_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run:\n  name: [x\n  output: y\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "\n" not in str(e.value) and "line 3" in str(e.value)


def test_a_reader_that_leaves_early_is_no_error(tmp_path, raw):
    """`gristmill … | head`: output into a closed pipe ends quietly, with the shell's status for it."""
    config = write(tmp_path, raw)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        r = subprocess.run([sys.executable, "-m", "gristmill", "validate", str(config)], cwd=ROOT,
                           stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert r.returncode == 128 + signal.SIGPIPE and r.stderr == ""
