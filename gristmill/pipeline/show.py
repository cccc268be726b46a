"""`gristmill show RUN_DIR`: print a run's documents, filtered with Parquet predicate push-down.

Filters become one `pyarrow.compute.Expression`: row groups whose statistics cannot match are
skipped and only the printed columns are read. `--sample N` keeps the N smallest seeded hashes of
the id (bottom-k): deterministic, independent of how rows are split into parts, bounded in memory;
a first pass reads ids only, a second reads text from the chosen row groups alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import operator
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from functools import reduce

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

META = ("id", "source", "url", "domain", "warc_record_id", "warc_date", "charset", "html_bytes",
        "text", "language", "language_score")
REJECT = ("reject_stage", "reject_reason", "duplicate_of")
SHOWN_META = ("id", "source", "url", "domain", "language", "language_score", *REJECT)
TEXT_BATCH_ROWS = 1024  # text is the bulk of a row: batches that carry it stay small
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "!=": operator.ne}
_WHERE = re.compile(r"^\s*([A-Za-z_]\w*)\s*(>=|<=|==|!=|>|<)\s*(.*?)\s*$")
# C0/C1 controls but \t and \n, line/paragraph separators, bidi embeddings/overrides/isolates.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class ShowError(Exception):
    """A user error: printed as one line, exit status 2."""


def part_files(run_dir: str, which: str) -> tuple[fsspec.AbstractFileSystem, list[str]]:
    """The Parquet parts for `which` (kept/rejected/all): docs/ first, each in part order."""
    fs, root = fsspec.core.url_to_fs(run_dir)
    root = root.rstrip("/")
    if not fs.isdir(root) or not any(fs.exists(f"{root}/{d}") for d in ("docs", "rejects", "manifest.json")):
        raise ShowError(f"{run_dir}: not a run directory (no docs/, rejects/ or manifest.json)")
    dirs = {"kept": ["docs"], "rejected": ["rejects"], "all": ["docs", "rejects"]}[which]
    files = [f for d in dirs for f in sorted(fs.glob(f"{root}/{d}/part-*.parquet"))]
    if not files:
        raise ShowError(f"{run_dir}: no documents in {' or '.join(d + '/part-*.parquet' for d in dirs)}")
    return fs, files


def open_dataset(fs: fsspec.AbstractFileSystem, files: list[str]) -> ds.Dataset:
    """One dataset over parts whose schemas differ (early-stage rejects, dedup rejects): gaps read as null."""
    arrow_fs = None if isinstance(fs, LocalFileSystem) else fs  # pyarrow wraps any other fsspec one
    try:
        schema = pa.unify_schemas([pq.read_schema(f, filesystem=arrow_fs) for f in files],
                                  promote_options="permissive")
        return ds.dataset(files, schema=schema, format="parquet", filesystem=arrow_fs)
    except (pa.ArrowException, OSError) as e:
        raise ShowError(f"cannot read the run's parts: {e}".replace("\n", " ")) from e


def _field(name: str, schema: pa.Schema, flag: str) -> pc.Expression:
    if schema.get_field_index(name) < 0:
        raise ShowError(f"{flag}: no column {name!r} (columns: {', '.join(schema.names)})")
    return pc.field(name)


def parse_where(text: str, schema: pa.Schema) -> pc.Expression:
    """`column OP value` → an Expression, the value parsed by the column's type (`null` too)."""
    m = _WHERE.match(text)
    if not m or not m.group(3):
        raise ShowError(f"--where {text!r}: expected COLUMN OP VALUE, OP one of > >= < <= == !=")
    name, op, raw = m.groups()
    field, type_ = _field(name, schema, f"--where {text!r}"), schema.field(name).type
    if raw.lower() in ("null", "none") and op in ("==", "!="):
        return field.is_null() if op == "==" else field.is_valid()
    try:
        if pa.types.is_integer(type_) or pa.types.is_floating(type_):
            value = float(raw)
            if value != value:
                raise ValueError("NaN is never equal, greater or less")
            value = int(value) if pa.types.is_integer(type_) and value.is_integer() else value
        elif pa.types.is_boolean(type_):
            value = {"true": True, "false": False}[raw.lower()]
        elif pa.types.is_timestamp(type_):
            when = datetime.fromisoformat(raw.strip("'\""))
            value = pa.scalar(when if when.tzinfo else when.replace(tzinfo=timezone.utc), type=type_)
        elif pa.types.is_string(type_) or pa.types.is_large_string(type_):
            value = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw
        else:
            raise ShowError(f"--where {text!r}: cannot compare {name!r}, a {type_} column")
    except (ValueError, KeyError) as e:
        raise ShowError(f"--where {text!r}: {raw!r} is not a value of {name!r} ({type_})") from e
    return _OPS[op](field, value)


def build_filter(args: argparse.Namespace, schema: pa.Schema) -> pc.Expression | None:
    """The AND of every filter option; equality and prefix tests stay range tests, so they push down."""
    parts: list[pc.Expression] = []
    if args.reason:
        f = _field("reject_reason", schema, "--reason")
        # "R" or "R:…" — the strings starting with "R:" are exactly those in ["R:", "R;").
        prefixed = [(f == r) | ((f >= f"{r}:") & (f < f"{r};")) for r in args.reason]
        parts.append(reduce(operator.or_, prefixed))
    for column, values in (("reject_stage", args.stage), ("id", args.id), ("source", args.source),
                           ("language", args.language)):
        if values:
            parts.append(_field(column, schema, "--" + column.removeprefix("reject_")).isin(values))
    if args.domain:
        f = _field("domain", schema, "--domain")
        domains = [d.lower().strip(".") for d in args.domain]
        parts.append(reduce(operator.or_, [(f == d) | pc.ends_with(f, "." + d) for d in domains]))
    parts += [parse_where(w, schema) for w in args.where]
    return reduce(operator.and_, parts) if parts else None


def matching_row_groups(dataset: ds.Dataset, expr: pc.Expression | None) -> Iterator[ds.ParquetFileFragment]:
    """One fragment per row group whose statistics may satisfy `expr`, in part order."""
    for fragment in dataset.get_fragments():
        yield from fragment.split_by_row_group(filter=expr, schema=dataset.schema)


def _scan(fragment: ds.Fragment, schema: pa.Schema, columns: list[str], expr: pc.Expression | None,
          batch_size: int = TEXT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    scanner = ds.Scanner.from_fragment(fragment, schema=schema, columns=columns, filter=expr,
                                       batch_size=batch_size)
    return (b for b in scanner.to_batches() if b.num_rows)


def first_matches(dataset: ds.Dataset, expr: pc.Expression | None, columns: list[str],
                  limit: int) -> Iterator[dict]:
    """The first `limit` matching rows (0: all) in part order, streamed."""
    yielded = 0
    for piece in matching_row_groups(dataset, expr):
        for batch in _scan(piece, dataset.schema, columns, expr):
            for row in batch.to_pylist():
                yield row
                yielded += 1
                if yielded == limit:
                    return


def seeded_hash(doc_id: str | None, seed: int) -> int:
    """A 64-bit hash of the id keyed by the seed: the sample's ranking key."""
    digest = hashlib.blake2b((doc_id or "").encode(), digest_size=8, key=str(seed).encode()[:64]).digest()
    return int.from_bytes(digest, "big")


def sample_matches(dataset: ds.Dataset, expr: pc.Expression | None, columns: list[str],
                   n: int, seed: int) -> tuple[list[dict], int]:
    """The n matching rows of smallest (seeded hash, id), in that order, and how many rows matched."""
    pieces: list[ds.Fragment] = []
    best: list[tuple[int, str, int]] = []  # (hash, id, piece index): at most 2n + one batch
    bound, matched = None, 0
    for piece in matching_row_groups(dataset, expr):
        for batch in _scan(piece, dataset.schema, ["id"], expr, batch_size=65536):
            matched += batch.num_rows
            for doc_id in batch.column("id").to_pylist():
                key = (seeded_hash(doc_id, seed), doc_id or "")
                if bound is None or key < bound:
                    best.append((*key, len(pieces)))
            if len(best) > 2 * n:
                best = sorted(best)[:n]
                bound = best[-1][:2]
        if any(b[2] == len(pieces) for b in best):
            pieces.append(piece)  # only row groups that still hold a candidate are kept
    best = sorted(best)[:n]
    rows: dict[tuple[int, str], list[dict]] = {}  # ids are not always unique: a list per key
    for index in sorted({b[2] for b in best}):
        chosen = pc.field("id").isin([b[1] for b in best if b[2] == index])
        for batch in _scan(pieces[index], dataset.schema, columns, chosen if expr is None else expr & chosen):
            for row in batch.to_pylist():
                rows.setdefault((index, row["id"] or ""), []).append(row)
    return [rows[(i, d)].pop(0) for _, d, i in best if rows.get((i, d))], matched


def escape_controls(text: str) -> str:
    """Control and bidi characters made visible (`\\x1b`, `\\u202e`); newlines and tabs kept."""
    def visible(m: re.Match) -> str:
        code = ord(m.group())
        return "\\r" if code == 13 else f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return _UNSAFE.sub(visible, text)


def clip(text: str, chars: int | None) -> tuple[str, int]:
    """The first `chars` characters (None: all) and how many were cut."""
    return (text, 0) if chars is None or len(text) <= chars else (text[:chars], len(text) - chars)


def format_value(value: object) -> str:
    """Compact: whole numbers as integers, other floats to 3 significant digits."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else f"{value:.3g}"
    return value.isoformat() if isinstance(value, datetime) else escape_controls(str(value))


def signal_columns(schema: pa.Schema, chosen: list[str] | None) -> list[str]:
    """`--columns` (checked), else every numeric, boolean or string column that is not metadata."""
    if chosen is not None:
        for name in chosen:
            _field(name, schema, "--columns")
        return chosen
    plain = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_string)
    return [f.name for f in schema if f.name not in META + REJECT and any(t(f.type) for t in plain)]


def _signals_line(row: dict, signals: list[str], explicit: bool) -> list[str]:
    if explicit:
        return [f"{c}={'null' if row.get(c) is None else format_value(row[c])}" for c in signals]
    # every set signal (null and NaN are unset); zeros, most of them on most documents, only counted
    values = [(c, row.get(c)) for c in signals if row.get(c) is not None and row.get(c) == row.get(c)]
    shown = [f"{c}={format_value(v)}" for c, v in values if v != 0]
    return shown + ([f"(+{len(values) - len(shown)} zero)"] if len(values) > len(shown) else [])


def render_text(row: dict, signals: list[str], chars: int | None, explicit: bool, width: int) -> str:
    """A document for the terminal: header, url, reject reason, signals, text."""
    rejected = row.get("reject_stage") or row.get("reject_reason")
    language = row.get("language")
    if language and row.get("language_score") is not None:
        language += f" ({format_value(row['language_score'])})"
    head = [row.get("id"), row.get("source"), language, "rejected" if rejected else "kept"]
    lines = ["=== " + " · ".join(format_value(v) for v in head if v is not None)]
    lines += [f"url {format_value(row['url'])}"] if row.get("url") else []
    if rejected:
        dup = f"  duplicate_of={format_value(row['duplicate_of'])}" if row.get("duplicate_of") else ""
        lines.append(f"rejected at {row.get('reject_stage')}: {format_value(row.get('reject_reason'))}{dup}")
    shown = _signals_line(row, signals, explicit)
    lines += textwrap.wrap(" ".join(shown), width=width, break_long_words=False, break_on_hyphens=False)
    text, cut = clip(row.get("text") or "", chars)
    lines += ["---", escape_controls(text) + (f"… (+{cut} chars)" if cut else "") or "(no text)", ""]
    return "\n".join(lines)


def render_json(row: dict, signals: list[str], chars: int | None, float32: set[str], explicit: bool) -> str:
    """A document as one JSON line: metadata, signals (the set ones unless chosen), text, text_chars."""
    out = {k: row[k] for k in SHOWN_META if k in row and (k not in REJECT or row[k] is not None)}
    for k, v in [*out.items(), *((c, row.get(c)) for c in signals)]:
        if isinstance(v, float):  # NaN is not JSON; float32 as stored, not 0.30000001192092896
            v = None if v != v else float(f"{v:.7g}") if k in float32 else v
        out[k] = v.isoformat() if isinstance(v, datetime) else v
        if v is None and k in signals and not explicit:
            del out[k]
    text = row.get("text") or ""
    out["text"], out["text_chars"] = clip(text, chars)[0], len(text)
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(out, ensure_ascii=False))


def _emit(rows: Iterable[dict], args: argparse.Namespace, schema: pa.Schema, signals: list[str]) -> int:
    explicit = args.columns is not None
    chars = None if args.full else args.chars if args.chars is not None else None if args.json else 600
    float32 = {f.name for f in schema if pa.types.is_float32(f.type)}
    width = max(40, shutil.get_terminal_size((120, 24)).columns)
    shown = 0
    for row in rows:
        print(render_json(row, signals, chars, float32, explicit) if args.json
              else render_text(row, signals, chars, explicit, width))
        shown += 1
    return shown


def cmd_show(args: argparse.Namespace) -> int:
    try:
        return _show(args)
    except ShowError as e:
        print(f"gristmill show: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `gristmill show … | head`
        sys.stdout = open("/dev/null", "w")  # noqa: SIM115 — Python flushes stdout at exit
        return 0


def _show(args: argparse.Namespace) -> int:
    which = args.which or ("rejected" if args.reason or args.stage else "kept")
    if which == "kept" and (args.reason or args.stage):
        raise ShowError("--reason/--stage select rejected documents: use --rejected or --all, not --kept")
    for flag, value, least in (("--sample", args.sample, 1), ("--limit", args.limit, 0),
                               ("--chars", args.chars, 0)):
        if value is not None and value < least:
            raise ShowError(f"{flag} must be at least {least}")
    dataset = open_dataset(*part_files(args.run_dir, which))
    schema = dataset.schema
    expr = build_filter(args, schema)
    chosen = None if args.columns is None else [c.strip() for c in args.columns.split(",") if c.strip()]
    signals = signal_columns(schema, chosen)
    columns = list(dict.fromkeys([c for c in (*SHOWN_META, "text") if c in schema.names] + signals))
    try:
        if args.sample:
            rows, matched = sample_matches(dataset, expr, columns, args.sample, args.seed)
            shown = _emit(rows, args, schema, signals)
        else:
            shown = _emit(first_matches(dataset, expr, columns, args.limit), args, schema, signals)
            matched = shown if args.limit == 0 else dataset.count_rows(filter=expr)
    except pa.ArrowException as e:
        raise ShowError(f"reading {args.run_dir}: {e}".replace("\n", " ")) from e
    how = f"sample of {args.sample}, seed {args.seed}" if args.sample else "in part order"
    noun = "documents (kept and rejected)" if which == "all" else f"{which} documents"
    print(f"{matched} {noun} matched, {shown} shown ({how})", file=sys.stderr if args.json else sys.stdout)
    return 0


def add_show_command(sub) -> None:
    sp = sub.add_parser("show", help="print a run's documents, filtered with Parquet push-down",
                        description="Print kept or rejected documents of a finished run. Filters AND "
                                    "together and are pushed down to Parquet row-group statistics.")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (OUTPUT/NAME), local or fsspec URL")
    which = sp.add_mutually_exclusive_group()
    for flag, help_ in (("kept", "kept documents, docs/ (default)"), ("rejected", "dropped ones, rejects/"),
                        ("all", "both")):
        which.add_argument(f"--{flag}", dest="which", action="store_const", const=flag, help=help_)
    for flag, help_ in (("reason", "reject_reason, exactly or as the prefix before ':' (implies --rejected)"),
                        ("stage", "reject_stage (implies --rejected)"), ("language", "language code"),
                        ("source", "input name"), ("domain", "domain, subdomains too"), ("id", "doc id")):
        sp.add_argument(f"--{flag}", action="append", default=[], metavar=flag.upper(),
                        help=f"{help_}; repeatable")
    sp.add_argument("--where", action="append", default=[], metavar="EXPR",
                    help="COLUMN OP VALUE, OP one of > >= < <= == != (toxicity_score>0.5); repeatable, ANDed")
    sp.add_argument("--sample", type=int, metavar="N", help="N documents picked by --seed (bottom-k hash)")
    sp.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    sp.add_argument("--limit", type=int, default=10, metavar="N",
                    help="without --sample: the first N (default 10; 0: all)")
    sp.add_argument("--chars", type=int, metavar="N", help="text characters per document (default 600)")
    sp.add_argument("--full", action="store_true", help="all of the text")
    sp.add_argument("--columns", metavar="A,B", help="signal columns to print (default: every set one)")
    sp.add_argument("--json", action="store_true", help="one JSON object per line; the footer to stderr")
    sp.set_defaults(fn=cmd_show)
