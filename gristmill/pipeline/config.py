"""The run config: one YAML file, read top to bottom (see configs/sample.yaml).

`stages` holds each stage's own config (its class lives with the stage; stages/registry.py lists
them in run order). Loading validates everything up front: an unknown key, a wrong type or an
input glob that matches nothing fails here with a message naming the key or path, before any
work starts.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import fsspec
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, create_model

from gristmill.core.config import ConfigError, ExecutionConfig, Strict, format_error, read_yaml, resolve_path
from gristmill.stages import registry
from gristmill.stages.base import StageSpec
from gristmill.stages.mix.config import MixConfig, resolve_paths


class InputConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # the `source` column and token-shard folder
    paths: list[str] = Field(min_length=1)  # fsspec paths or globs of WARC/ARC files


class RunConfig(Strict):
    name: str = Field(default="run", pattern=r"^[A-Za-z0-9_.-]+$")
    output: str = "out"  # fsspec dir; the run writes <output>/<name>/
    seed: int = 0


class StagesConfig(BaseModel):
    """Each registered stage's config by name (None: the stage is off), then `order`: the stages
    on, in run order. Validated by a model made from the registry (`_validator`)."""

    model_config = ConfigDict(extra="allow")


class Config(Strict):
    run: RunConfig = RunConfig()
    inputs: list[InputConfig] = Field(min_length=1)
    execution: ExecutionConfig = ExecutionConfig()
    stages: StagesConfig
    mixture: dict[str, Any] | None = None  # a mixture of this run (stages/mix/config.py), built at the end
    _inputs: dict[str, list[str]] | None = PrivateAttr(default=None)  # expand_inputs' listing, once
    _sizes: dict[str, int] = PrivateAttr(default_factory=dict)  # its file sizes (planning needs no request)
    _mixture: MixConfig | None = PrivateAttr(default=None)  # `mixture`, validated
    _specs: tuple[StageSpec, ...] = PrivateAttr(default=())  # the registry's lines of the stages on

    @property
    def mix(self) -> MixConfig | None:
        return self._mixture

    @property
    def specs(self) -> tuple[StageSpec, ...]:
        """The stages on, in run order (travels with the config to every worker)."""
        return self._specs

    @property
    def run_dir(self) -> str:
        return f"{self.run.output.rstrip('/')}/{self.run.name}"

    def snapshot(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_raw(self) -> dict[str, Any]:
        """The config as YAML would hold it (enabled stages only, in order): load → to_raw → load
        gives the same config."""
        raw = self.model_dump()  # python mode: JSON would turn int keys (n-gram sizes) into strings
        raw["stages"] = {name: raw["stages"][name] for name in self.stages.order}
        return raw


@cache
def _validator(specs: tuple[StageSpec, ...]) -> type[Strict]:
    """The run config as one strict model with a field per registered stage, so that every error
    names its key (`stages.lid.threshold: …`) as a hand-written model would."""
    fields: dict[str, Any] = {s.name: (s.config, s.config()) if s.required else (s.config | None, None)
                              for s in specs}
    stages = create_model("StagesConfig", __base__=Strict, **fields, order=(list[str], []))
    return create_model("Config", __base__=Config, stages=(stages, ...))


def _stage_order(raw_stages: Any, specs: tuple[StageSpec, ...]) -> list[str]:
    if not isinstance(raw_stages, dict):
        raise ConfigError("stages: must be a mapping of stage name to its parameters")
    for k in [k for k, v in raw_stages.items() if v is False]:  # `--set stages.lid=false`
        del raw_stages[k]
    known = [s.name for s in specs]
    order = [k for k in raw_stages if k != "order"]
    unknown = [k for k in order if k not in known]
    if unknown:
        raise ConfigError(f"stages.{unknown[0]}: unknown stage (known: {', '.join(known)})")
    missing = [s.name for s in specs if s.required and s.name not in order]
    if missing:
        raise ConfigError(f"stages.{missing[0]}: required stage is missing")
    expected = [k for k in known if k in order]
    if order != expected:
        raise ConfigError(f"stages: must run in the order {' → '.join(expected)}, got {' → '.join(order)}")
    for k in order:
        if raw_stages[k] is None:
            raw_stages[k] = {}
    return order


def _is_file(fs, path: str, info: dict) -> bool:
    """A file, or a symlink to one (fsspec lists local symlinks as type "other")."""
    return info["type"] == "file" or (bool(info.get("islink")) and fs.isfile(path))


def expand_inputs(cfg: Config) -> dict[str, list[str]]:
    """Input name → sorted list of matching files; a pattern matching nothing is an error.
    Listed once per config (a Common Crawl listing over S3 is not free)."""
    if cfg._inputs is not None:
        return cfg._inputs
    out: dict[str, list[str]] = {}
    for i, inp in enumerate(cfg.inputs):
        files: list[str] = []
        for j, pattern in enumerate(inp.paths):
            fs, _ = fsspec.core.url_to_fs(pattern)  # one listing: no request per file matched
            listing = fs.glob(pattern, detail=True)
            matches = sorted(p for p, info in listing.items() if _is_file(fs, p, info))
            if not matches:
                raise ConfigError(f"inputs.{i}.paths.{j}: {pattern!r} matches no file")
            protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
            for p in matches:
                url = p if protocol in ("file", "local") else f"{protocol}://{p}"
                files.append(url)
                size = listing[p].get("size")
                if not listing[p].get("islink") and isinstance(size, int):  # a link's own size is not its file's
                    cfg._sizes[url] = size
        out[inp.name] = sorted(set(files))
    names = [i.name for i in cfg.inputs]
    if len(set(names)) != len(names):
        raise ConfigError("inputs: input names must be unique")
    cfg._inputs = out
    return out


def parse_config(raw: dict, base_dir: str | os.PathLike = ".") -> Config:
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping")
    specs = tuple(registry.STAGES)
    raw = dict(raw)
    stages = raw.get("stages")
    if stages is None:
        raise ConfigError("stages: missing")
    stages = dict(stages) if isinstance(stages, dict) else stages
    order = _stage_order(stages, specs)
    stages["order"] = order
    raw["stages"] = stages
    # Relative local paths are relative to the config file, so `make pipeline` works from anywhere.
    resolve = lambda path: resolve_path(path, base_dir)  # noqa: E731
    for inp in raw.get("inputs") or []:
        if isinstance(inp, dict) and isinstance(inp.get("paths"), list):
            inp["paths"] = [resolve(p) for p in inp["paths"]]
    if isinstance(raw.get("run"), dict) and isinstance(raw["run"].get("output"), str):
        raw["run"] = {**raw["run"], "output": resolve(raw["run"]["output"])}
    for spec in specs:
        if spec.resolve_paths is not None and isinstance(stages.get(spec.name), dict):
            stages[spec.name] = dict(stages[spec.name])
            spec.resolve_paths(stages[spec.name], resolve)
    try:
        checked = _validator(specs).model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e)) from None
    fields = {name: getattr(checked, name) for name in Config.model_fields if name != "stages"}
    cfg = Config(**fields, stages=StagesConfig(**dict(checked.stages)))
    cfg._specs = tuple(s for s in specs if s.name in order)
    for spec in cfg.specs:
        if spec.check is not None:
            spec.check(cfg.stages)
    if cfg.mixture is not None:
        _check_mixture(cfg, base_dir)
    return cfg


def _check_mixture(cfg: Config, base_dir: str | os.PathLike) -> None:
    """The `mixture` block: a mix spec whose runs default to this run, validated at load time."""
    if cfg.stages.tokenize is None:
        raise ConfigError("mixture: needs the tokenize stage (a mixture is made of token shards)")
    cfg.mixture = dict(cfg.mixture)
    resolve_paths(cfg.mixture, base_dir)  # kept resolved, so that `submit`'s copy of the config reads the same
    raw = {"output": cfg.run.output, **cfg.mixture, "runs": [cfg.run_dir, *cfg.mixture.get("runs", [])]}
    try:
        cfg._mixture = MixConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(format_error(e, prefix="mixture")) from None


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> Config:
    """Read, override, validate; then check that every input pattern matches a file."""
    raw, base_dir = read_yaml(path, overrides)
    cfg = parse_config(raw, base_dir)
    expand_inputs(cfg)
    return cfg
