"""The config base every gristmill config builds on: strict models whose errors name the key, YAML
files with `key.path=value` overrides, paths relative to the file, and the execution settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import fsspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """A config that cannot run; the message names the offending key or path."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class ExecutionConfig(Strict):
    address: str | None = None  # None: a private Ray on 127.0.0.1; "auto" or host:port: a cluster
    num_cpus: int | None = Field(default=None, ge=1)  # private Ray only; None = all cores
    connect_timeout_s: float = Field(default=60.0, gt=0)  # an address that answers slower fails
    max_in_flight: int | None = Field(default=None, ge=1)  # shard tasks queued at once; None = 2 × CPUs
    progress: bool = True


def format_error(err: ValidationError, prefix: str = "") -> str:
    """pydantic's errors as `key.path: message` lines."""
    lines = []
    for e in err.errors():
        where = ".".join([prefix, *map(str, e["loc"])] if prefix else map(str, e["loc"])) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{where}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines)


def resolve_path(path: Any, base_dir: str | os.PathLike) -> Any:
    """A relative local path made absolute against `base_dir`; URLs, absolute paths and non-strings
    as they are."""
    if not isinstance(path, str) or "://" in path or os.path.isabs(path):
        return path
    return str((Path(base_dir) / path).resolve())


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several)."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        if isinstance(node, list):
            node = node[int(k)]
            continue
        if node.get(k) is None:
            node[k] = {}
        node = node[k]
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply `key.path=value` overrides; values are parsed as YAML (`0.7`, `[en, de]`, `null`)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key.path=value")
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML: {yaml_problem(e)}") from None
        try:
            _set_dotted(raw, key.strip(), parsed)
        except (KeyError, IndexError, ValueError, TypeError, AttributeError) as e:
            raise ConfigError(f"override {item!r}: no such key path ({e})") from None
    return raw


def read_yaml(path: str | os.PathLike, overrides: list[str] = (), what: str = "config file") -> tuple[dict, Path]:
    """(the file's mapping with `key.path=value` overrides applied, the directory relative paths
    in it are relative to)."""
    try:
        with fsspec.open(path, "r", encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(path)!r} not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(e)}") from None
    raw = apply_overrides(raw or {}, list(overrides))
    return raw, Path(path).resolve().parent if "://" not in str(path) else Path.cwd()
