"""Which Ray a run joins, failing early and fast: unreachable addresses, missing files, a submit that
would overwrite another run's config, `--version`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gristmill.core.config import ConfigError
from gristmill.pipeline.config import parse_config
from gristmill.pipeline.preflight import check_paths
from gristmill.pipeline.ray_session import JOB_DRIVER_VARIABLE, PRIVATE, RayUnreachable, bootstrap_host_port, choose_address
from tests.conftest import ROOT, WARC, make_config, require

DOLMA = str(require(WARC / "real" / "dolma-wget-sample-0000.warc.gz"))


def gristmill(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gristmill", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, **kw)


def write_config(tmp_path: Path, name: str = "t", **stages) -> Path:
    raw = make_config(tmp_path, {"cc": [DOLMA]}, name=name, **stages)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_only_an_address_given_on_purpose_leaves_the_private_default():
    assert choose_address(None, None, {}) == PRIVATE
    assert choose_address(None, None, {"RAY_ADDRESS": "10.1.2.3:6379"}) == PRIVATE  # a stray export
    job = {"RAY_ADDRESS": "10.1.2.3:6379", JOB_DRIVER_VARIABLE: "{}"}  # what Ray gives a job's driver
    assert choose_address(None, None, job) == "10.1.2.3:6379"
    assert choose_address(None, "auto", job) == "auto"
    assert choose_address("127.0.0.1:7000", "auto", job) == "127.0.0.1:7000"
    assert bootstrap_host_port("ray://head.example:10001") == ("head.example", 10001)
    with pytest.raises(RayUnreachable, match="not host:port"):
        bootstrap_host_port("head-without-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_address_fails_in_one_line(tmp_path):
    config = write_config(tmp_path)
    r = gristmill("run", str(config), "--address", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "cannot reach Ray at 127.0.0.1:" in r.stderr
    assert not (tmp_path / "out" / "t" / "manifest.json").exists()  # nothing started, nothing written


@pytest.mark.heavy
def test_an_address_that_never_answers_fails_after_the_connect_timeout(tmp_path):
    """A port that accepts and stays silent: Ray's own connect loop would retry for minutes."""
    config = write_config(tmp_path)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        r = gristmill("run", str(config), "--address", address, "--set", "execution.connect_timeout_s=3")
    assert r.returncode == 2
    assert f"gristmill: Ray at {address} did not answer within 3s" in r.stderr
    assert not (tmp_path / "out" / "t" / "manifest.json").exists()


def test_address_auto_with_no_cluster_recorded_says_so(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "RAY_ADDRESS"}
    env["RAY_TMPDIR"] = str(tmp_path)  # no ray_current_cluster in there
    r = gristmill("run", str(write_config(tmp_path)), "--address", "auto", env=env)
    assert r.returncode == 2 and "no Ray cluster is recorded on this machine" in r.stderr


@pytest.mark.parametrize("stages, key", [
    ({"tokenize": {"tokenizer": "missing/tokenizer.json"}}, "stages.tokenize.tokenizer"),
    ({"filters": {"default": {"quality_model": {"path": "models/none.bin", "threshold": 0.5}}}},
     "stages.filters.default.quality_model.path"),
    ({"filters": {"default": {}, "languages": {"de": {"quality_model": {"path": "de.bin"}}}}},
     "stages.filters.languages.de.quality_model.path"),
    ({"dedup": {"against": ["no-such-run"]}}, "stages.dedup.against.0"),
])
@pytest.mark.heavy
def test_validate_checks_every_path_the_run_needs(tmp_path, stages, key):
    raw = make_config(tmp_path, {"cc": [DOLMA]}, **stages)
    order = ["ingest", "extract", "lid", "filters", "pii", "dedup", "write", "tokenize"]
    raw["stages"] = {k: raw["stages"][k] for k in order if k in raw["stages"]}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    r = gristmill("validate", str(config))
    assert r.returncode == 2 and key in r.stderr, r.stderr
    r = gristmill("run", str(config))
    assert r.returncode == 2 and key in r.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_tokenizer_without_the_eos_token_is_refused(tmp_path):
    from tokenizers import Tokenizer, models

    path = tmp_path / "tok.json"
    Tokenizer(models.BPE()).save(str(path))
    raw = make_config(tmp_path, {"cc": [DOLMA]}, tokenize={"tokenizer": str(path)})
    with pytest.raises(ConfigError, match="stages.tokenize.eos_token"):
        check_paths(parse_config(raw))


@pytest.mark.heavy
def test_submit_refuses_a_changed_config_before_touching_the_run(tmp_path):
    config = write_config(tmp_path, "sub")
    run_dir = tmp_path / "out" / "sub"
    nowhere = f"http://127.0.0.1:{free_port()}"
    r = gristmill("submit", str(config), "--address", nowhere)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot reach the Ray job API" in r.stderr
    assert not run_dir.exists()  # nothing written for a job that was never submitted
    earlier = "# an earlier submission of another config\n"
    run_dir.mkdir(parents=True)
    (run_dir / "submitted-config.yaml").write_text(earlier)
    r = gristmill("submit", str(config), "--address", nowhere)
    assert r.returncode == 2 and "submitted with another config" in r.stderr
    assert (run_dir / "submitted-config.yaml").read_text() == earlier
    (run_dir / "manifest.json").write_text(json.dumps({"config": {}, "inputs": {}}))  # a run that ran
    r = gristmill("submit", str(config), "--address", nowhere)
    assert r.returncode == 2 and "holds a run made with another config" in r.stderr


def test_version():
    r = gristmill("--version")
    assert r.returncode == 0 and r.stdout.startswith("gristmill 0.") and "+g" in r.stdout
