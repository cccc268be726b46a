"""Every file a run will need, checked before any work starts (`gristmill validate`, `run`, `submit`).

A run that would only fail late — a missing tokenizer after hours of extraction, a quality model
path with a typo, an `against` run that was never deduplicated — fails here instead, with the
key that names the path.
"""

from __future__ import annotations

from gristmill.core.config import ConfigError
from gristmill.core.io import exists
from gristmill.pipeline.config import Config
from gristmill.stages.dedup import earlier_runs, index_params
from gristmill.stages.tokenize import load_tokenizer


def check_paths(cfg: Config) -> None:
    """Raise ConfigError naming the first key whose file is missing or unusable."""
    _check_model_files(cfg)
    if cfg.stages.tokenize is not None and cfg.stages.tokenize.tokenizer is not None:
        _check_tokenizer(cfg.stages.tokenize.tokenizer, cfg.stages.tokenize.eos_token)
    if cfg.stages.dedup is not None and cfg.stages.dedup.against:
        for i, run_dir in enumerate(cfg.stages.dedup.against):
            if not exists(f"{run_dir}/manifest.json") and not exists(f"{run_dir}/dedup"):
                raise ConfigError(f"stages.dedup.against.{i}: {run_dir!r} is not a run directory")
        earlier_runs(cfg.stages.dedup.against, index_params(cfg.stages.dedup))  # its index and parameters


def _check_model_files(cfg: Config) -> None:
    fcfg = cfg.stages.filters
    if fcfg is None:
        return
    chains = [("stages.filters.default", fcfg.default)]
    chains += [(f"stages.filters.languages.{lang}", chain) for lang, chain in fcfg.languages.items()]
    for where, chain in chains:
        for name, params in chain.items():
            path = params.get("path") if isinstance(params, dict) else None
            if isinstance(path, str) and not exists(path):
                raise ConfigError(f"{where}.{name}.path: {path!r} does not exist")


def _check_tokenizer(path: str, eos_token: str) -> None:
    if not exists(path):
        raise ConfigError(f"stages.tokenize.tokenizer: {path!r} does not exist")
    try:
        tok = load_tokenizer(path)
    except Exception as e:  # a corrupt or foreign file: say so now, not after the run
        raise ConfigError(f"stages.tokenize.tokenizer: {path!r} is not a tokenizers JSON file ({e})") from None
    if tok.token_to_id(eos_token) is None:
        raise ConfigError(f"stages.tokenize.eos_token: {eos_token!r} is not in the tokenizer {path!r}")
