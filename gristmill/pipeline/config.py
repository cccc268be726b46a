"""The run config: one YAML file, read top to bottom (see configs/sample.yaml).

Loading validates everything up front: an unknown key, a wrong type or an input glob that matches
nothing fails here with a message naming the key or path, before any work starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import fsspec
import yaml
from pydantic import (
    BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
)


class ConfigError(ValueError):
    """A config that cannot run; the message names the offending key or path."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, validate_default=True)


class InputConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")  # the `source` column and token-shard folder
    paths: list[str] = Field(min_length=1)  # fsspec paths or globs of WARC/ARC files


class RunConfig(Strict):
    name: str = Field(default="run", pattern=r"^[A-Za-z0-9_.-]+$")
    output: str = "out"  # fsspec dir; the run writes <output>/<name>/
    seed: int = 0


class ExecutionConfig(Strict):
    address: str | None = None  # None: a private Ray on 127.0.0.1; "auto" or host:port: a cluster
    num_cpus: int | None = Field(default=None, ge=1)  # private Ray only; None = all cores
    connect_timeout_s: float = Field(default=60.0, gt=0)  # an address that answers slower fails
    max_in_flight: int | None = Field(default=None, ge=1)  # shard tasks queued at once; None = 2 × CPUs
    progress: bool = True


class IngestConfig(Strict):
    content_types: list[str] = ["text/html", "application/xhtml+xml"]
    max_payload_bytes: int = Field(default=5_000_000, ge=1)  # bigger bodies are skipped as `too_large`
    url_blocklist: list[str] = []  # domains (and their subdomains) skipped before extraction
    task_bytes: int = Field(default=16_000_000, ge=1)  # bigger files run as record ranges of about this


class ExtractConfig(Strict):
    mode: Literal["precision", "balanced", "recall"] = "precision"
    fast: bool = True  # trafilatura without its readability/jusText fallbacks (see BENCHMARKS.md)…
    fallback: Literal["resiliparse", "trafilatura"] = "resiliparse"  # …then this, where the fast text
    fallback_below_chars: int = Field(default=1200, ge=0)  # is shorter than this (0: never)…
    fallback_below_share: float = Field(default=0.3, ge=0, le=1)  # …and than this share of the page's
    # main-content estimate (resiliparse), unless it reads as a whole article; 0: by length alone
    timeout_s: float = Field(default=5.0, gt=0)  # per document; overruns count as `extract_timeout`
    isolate: bool = True  # extract in a child process killed at the limit (else SIGALRM: fires late)
    min_chars: int = Field(default=1, ge=0)  # shorter results count as `empty_text`
    include_tables: bool = True


class LidConfig(Strict):
    languages: list[str] = []  # keep-list of ISO codes; empty keeps every language
    threshold: float = Field(default=0.0, ge=0, le=1)  # minimum score for every language…
    thresholds: dict[str, float] = {}  # …unless set here per language
    precheck: bool = True  # with a keep-list: LID on cheap tag-stripped text before extraction
    precheck_threshold: float = Field(default=0.9, ge=0, le=1)  # drop early only when this sure

    @field_validator("thresholds")
    @classmethod
    def _in_unit_range(cls, v: dict[str, float]) -> dict[str, float]:
        for lang, t in v.items():
            if not 0 <= t <= 1:
                raise ValueError(f"threshold for {lang!r} must be in [0, 1], got {t}")
        return v


class FiltersConfig(Strict):
    """Document filters (filters/), applied in the order listed, per document language."""

    annotate_only: bool = False  # dry run: compute every signal, drop nothing (would-be drops are counted)
    compat: Literal["paper", "datatrove"] = "paper"  # the heuristics' definitions: the papers', or
    # datatrove 0.10.1's exactly (to reproduce FineWeb); a filter's own `compat` parameter wins
    default: dict[str, dict[str, Any]] = {}  # filter name → its parameters ({} = its defaults)
    languages: dict[str, dict[str, dict[str, Any] | bool]] = {}  # per language: replace a filter's
    # parameters, or `false` to switch it off for that language; languages not listed use `default`

    def for_language(self, language: str) -> dict[str, dict[str, Any]]:
        """Filter name → parameters for documents in `language`."""
        chain = dict(self.default)
        for name, params in self.languages.get(language, {}).items():
            if params is False:
                chain.pop(name, None)
            elif params is not True:
                chain[name] = params
        return chain

    def filter_names(self) -> list[str]:
        names = list(self.default)
        for overrides in self.languages.values():
            names += [n for n, p in overrides.items() if p is not False and n not in names]
        return names


PII_ENTITIES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN")
PiiEntity = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN"]


class PiiConfig(Strict):
    """PII scrubbing with presidio's pattern recognizers (stages/pii.py); never drops documents."""

    entities: list[PiiEntity] = Field(default=list(PII_ENTITIES), min_length=1)
    replacement: Literal["placeholder", "fake"] = "placeholder"  # <EMAIL>… or consistent fake values
    fake_key: str = "gristmill"  # key of the hash that picks fake values (same value → same fake)
    allow_list: list[str] = []  # exact values kept as they are (public contact addresses…)
    allow_patterns: list[str] = []  # regexes; a value that fully matches one is kept
    keep_documentation_ips: bool = True  # keep 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32
    score_threshold: float = Field(default=0.0, ge=0, le=1)  # presidio's minimum score
    prescreen: bool = True  # analyze only windows around regex candidates (False: whole documents)
    window_chars: int = Field(default=50, ge=20)  # text kept each side of a candidate (see stages/pii.py)
    max_phone_candidates: int = Field(default=2_000, ge=1)  # per document; past it: counted, not analyzed

    @field_validator("allow_patterns")
    @classmethod
    def _compiles(cls, v: list[str]) -> list[str]:
        for pattern in v:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ValueError(f"allow pattern {pattern!r} does not compile: {e}") from None
        return v


class MinHashConfig(Strict):
    """Near-duplicates: MinHash of word n-grams, LSH bands × rows chosen for the threshold."""

    threshold: float = Field(default=0.8, gt=0, lt=1)  # Jaccard similarity of shingle sets
    num_perm: int = Field(default=128, ge=8, le=1024)  # permutations per signature
    ngram: int = Field(default=5, ge=1, le=64)  # words per shingle
    seed: int = Field(default=1, ge=0)  # of datasketch's permutations
    bands: int | None = Field(default=None, ge=1)  # both None: datasketch's optimum for threshold,
    rows: int | None = Field(default=None, ge=1)  # weighing false positives and negatives as…
    weights: list[float] = Field(default=[0.5, 0.5], min_length=2, max_length=2)  # …(fp, fn)

    @field_validator("rows")
    @classmethod
    def _fits(cls, rows: int | None, info: ValidationInfo) -> int | None:
        bands = info.data.get("bands")
        if (bands is None) != (rows is None):
            raise ValueError("give both bands and rows, or neither")
        if rows is not None and bands * rows > info.data.get("num_perm", 0):
            raise ValueError(f"bands × rows ({bands} × {rows}) exceeds num_perm")
        return rows


class KeepKey(Strict):
    column: str  # a numeric or timestamp document column (e.g. warc_date, a filter signal)
    order: Literal["min", "max"]  # which end of it is kept


class DedupConfig(Strict):
    """Exact and MinHash near-duplicate removal over the whole run (stages/dedup/)."""

    exact: bool = True  # identical normalised text
    minhash: MinHashConfig | None = MinHashConfig()  # false: exact dedup only
    keep: list[KeepKey] = Field(default=[KeepKey(column="warc_date", order="min")], max_length=2)
    against: list[str] = []  # earlier runs' directories: their documents win, their index is reused
    task_memory_mb: float = Field(default=512, gt=0)  # per dedup task; sets how finely work is split

    @field_validator("minhash", mode="before")
    @classmethod
    def _false_is_off(cls, v: Any) -> Any:
        return None if v is False else v

    @field_validator("against")
    @classmethod
    def _at_most_255(cls, v: list[str]) -> list[str]:
        if len(v) > 255:
            raise ValueError("at most 255 earlier runs")
        return v


class WriteConfig(Strict):
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"
    write_rejects: bool = True


class TokenizeConfig(Strict):
    tokenizer: str | None = None  # path of a tokenizer.json; None trains a byte-level BPE
    vocab_size: int = Field(default=32_000, ge=300, le=4_294_967_295)
    train_sample_bytes: int = Field(default=200_000_000, ge=1)  # text sampled to train the BPE
    eos_token: str = "<|endoftext|>"


STAGE_MODELS: dict[str, type[Strict]] = {
    "ingest": IngestConfig,
    "extract": ExtractConfig,
    "lid": LidConfig,
    "filters": FiltersConfig,
    "pii": PiiConfig,
    "dedup": DedupConfig,
    "write": WriteConfig,
    "tokenize": TokenizeConfig,
}
PER_DOCUMENT = ("ingest", "extract", "lid", "filters", "pii")  # fused into one Ray task per input shard
REQUIRED = ("ingest", "extract", "write")


class StagesConfig(Strict):
    ingest: IngestConfig = IngestConfig()
    extract: ExtractConfig = ExtractConfig()
    lid: LidConfig | None = None
    filters: FiltersConfig | None = None
    pii: PiiConfig | None = None
    dedup: DedupConfig | None = None
    write: WriteConfig = WriteConfig()
    tokenize: TokenizeConfig | None = None
    order: list[str] = []  # filled from the YAML's key order


class Config(Strict):
    run: RunConfig = RunConfig()
    inputs: list[InputConfig] = Field(min_length=1)
    execution: ExecutionConfig = ExecutionConfig()
    stages: StagesConfig
    mixture: dict[str, Any] | None = None  # a mixture of this run (pipeline/mix_config.py), built at the end
    _inputs: dict[str, list[str]] | None = PrivateAttr(default=None)  # expand_inputs' listing, once
    _sizes: dict[str, int] = PrivateAttr(default_factory=dict)  # its file sizes (planning needs no request)
    _mixture: Any = PrivateAttr(default=None)  # `mixture`, validated: a MixConfig

    @property
    def mix(self):  # -> MixConfig | None
        return self._mixture

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


def yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several)."""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark else problem


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


def _stage_order(raw_stages: Any) -> list[str]:
    if not isinstance(raw_stages, dict):
        raise ConfigError("stages: must be a mapping of stage name to its parameters")
    for k in [k for k, v in raw_stages.items() if v is False]:  # `--set stages.lid=false`
        del raw_stages[k]
    order = [k for k in raw_stages if k != "order"]
    unknown = [k for k in order if k not in STAGE_MODELS]
    if unknown:
        raise ConfigError(f"stages.{unknown[0]}: unknown stage (known: {', '.join(STAGE_MODELS)})")
    missing = [k for k in REQUIRED if k not in order]
    if missing:
        raise ConfigError(f"stages.{missing[0]}: required stage is missing")
    expected = [k for k in STAGE_MODELS if k in order]
    if order != expected:
        raise ConfigError(f"stages: must run in the order {' → '.join(expected)}, got {' → '.join(order)}")
    for k in order:
        if raw_stages[k] is None:
            raw_stages[k] = {}
    return order


def _format_error(err: ValidationError, prefix: str = "") -> str:
    lines = []
    for e in err.errors():
        where = ".".join([prefix, *map(str, e["loc"])] if prefix else map(str, e["loc"])) or "(top level)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"{where}: {msg}")
    return "invalid config:\n  " + "\n  ".join(lines)


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
    raw = dict(raw)
    stages = raw.get("stages")
    if stages is None:
        raise ConfigError("stages: missing")
    stages = dict(stages) if isinstance(stages, dict) else stages
    order = _stage_order(stages)
    stages["order"] = order
    raw["stages"] = stages
    # Relative local paths are relative to the config file, so `make pipeline` works from anywhere.
    for inp in raw.get("inputs") or []:
        if isinstance(inp, dict) and isinstance(inp.get("paths"), list):
            inp["paths"] = [_resolve(p, base_dir) for p in inp["paths"]]
    if isinstance(raw.get("run"), dict) and isinstance(raw["run"].get("output"), str):
        raw["run"] = {**raw["run"], "output": _resolve(raw["run"]["output"], base_dir)}
    dedup = stages.get("dedup")
    if isinstance(dedup, dict) and isinstance(dedup.get("against"), list):
        stages["dedup"] = {**dedup, "against": [_resolve(p, base_dir) for p in dedup["against"]]}
    tok = stages.get("tokenize")
    if isinstance(tok, dict) and isinstance(tok.get("tokenizer"), str):
        stages["tokenize"] = {**tok, "tokenizer": _resolve(tok["tokenizer"], base_dir)}
    for chain in _filter_chains(stages.get("filters")):
        for params in chain.values():
            if isinstance(params, dict) and isinstance(params.get("path"), str):  # model files
                params["path"] = _resolve(params["path"], base_dir)
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e)) from None
    if cfg.stages.filters is not None:
        _check_filters(cfg.stages.filters)
    if cfg.stages.dedup is not None:
        _check_dedup(cfg)
    if cfg.mixture is not None:
        _check_mixture(cfg, base_dir)
    return cfg


def _check_mixture(cfg: Config, base_dir: str | os.PathLike) -> None:
    """The `mixture` block: a mix spec whose runs default to this run, validated at load time."""
    from gristmill.stages.mix.config import MixConfig, resolve_paths

    if cfg.stages.tokenize is None:
        raise ConfigError("mixture: needs the tokenize stage (a mixture is made of token shards)")
    cfg.mixture = dict(cfg.mixture)
    resolve_paths(cfg.mixture, base_dir)  # kept resolved, so that `submit`'s copy of the config reads the same
    raw = {"output": cfg.run.output, **cfg.mixture, "runs": [cfg.run_dir, *cfg.mixture.get("runs", [])]}
    try:
        cfg._mixture = MixConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_format_error(e, prefix="mixture")) from None


def _filter_chains(raw_filters: Any) -> list[dict]:
    """The filter-name → params mappings in a raw `stages.filters` (default, then per language)."""
    if not isinstance(raw_filters, dict):
        return []
    chains = [raw_filters.get("default")]
    if isinstance(raw_filters.get("languages"), dict):
        chains += list(raw_filters["languages"].values())
    return [c for c in chains if isinstance(c, dict)]


def _check_filters(fcfg: FiltersConfig) -> None:
    """Every filter named exists and its parameters validate, at load time."""
    from gristmill.filters import FILTERS

    places = [(f"stages.filters.default.{n}", n, p) for n, p in fcfg.default.items()]
    places += [(f"stages.filters.languages.{lang}.{n}", n, p)
               for lang, chain in fcfg.languages.items() for n, p in chain.items() if isinstance(p, dict)]
    for where, name, params in places:
        if name not in FILTERS:
            raise ConfigError(f"{where}: unknown filter (known: {', '.join(FILTERS)})")
        try:
            FILTERS[name].Params.model_validate(params)
        except ValidationError as e:
            raise ConfigError(_format_error(e, prefix=where)) from None


def _check_dedup(cfg: Config) -> None:
    """Something to dedup on, and keep-rule columns that the documents will have."""
    from gristmill.core.io import DOC_SCHEMA

    dedup = cfg.stages.dedup
    if not dedup.exact and dedup.minhash is None:
        raise ConfigError("stages.dedup: exact is false and minhash is off: nothing to dedup on")
    numeric = [f.name for f in DOC_SCHEMA if f.type != "string"]  # warc_date, html_bytes, language_score
    if cfg.stages.filters is not None:
        from gristmill.filters import FILTERS

        numeric += [s for name in cfg.stages.filters.filter_names() for s in FILTERS[name].signals]
    for i, key in enumerate(dedup.keep):
        if key.column not in numeric:
            raise ConfigError(f"stages.dedup.keep.{i}.column: {key.column!r} is not a numeric document "
                              f"column of this config (one of: {', '.join(numeric)})")


def _resolve(path: Any, base_dir: str | os.PathLike) -> Any:
    if not isinstance(path, str) or "://" in path or os.path.isabs(path):
        return path
    return str((Path(base_dir) / path).resolve())


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


def load_config(path: str | os.PathLike, overrides: list[str] = ()) -> Config:
    """Read, override, validate; then check that every input pattern matches a file."""
    raw, base_dir = read_yaml(path, overrides)
    cfg = parse_config(raw, base_dir)
    expand_inputs(cfg)
    return cfg
