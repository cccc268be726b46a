"""`gristmill show` on a synthetic run directory: filters, push-down, sampling, output, errors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gristmill.pipeline import show
from gristmill.pipeline.cli import main

DOMAINS = ["example.com", "www.example.com", "blog.example.com", "notexample.com", "other.org"]
REASONS = ["gopher_quality:gopher_short_doc", "gopher_quality", "gopher_quality_x:y",
           "gopher_repetition:dup_line_frac", "c4:curly_bracket"]


def kept_rows(n: int = 40) -> list[dict]:
    return [{"id": f"d{i:02d}", "source": "web" if i % 3 else "books", "url": f"http://{DOMAINS[i % 5]}/{i}",
             "domain": DOMAINS[i % 5], "language": ["en", "de", "fr"][i % 3], "language_score": 0.5 + i / 100,
             "text": f"document {i} " + "word " * i, "toxicity_score": i / n, "duplicates": i % 4}
            for i in range(n)]


def reject_rows() -> list[dict]:
    return [{"id": f"r{i}", "source": "web", "url": f"http://other.org/r{i}", "domain": "other.org",
             "language": "en", "language_score": 0.9, "text": f"rejected {i}", "toxicity_score": 0.1 * i,
             "reject_stage": "filters", "reject_reason": reason, "duplicate_of": None}
            for i, reason in enumerate(REASONS)]


def write(path: Path, rows: list[dict], schema: pa.Schema | None = None, row_group_size: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=row_group_size)


KEPT_SCHEMA = pa.schema([("id", pa.string()), ("source", pa.string()), ("url", pa.string()),
                         ("domain", pa.string()), ("language", pa.string()), ("language_score", pa.float32()),
                         ("text", pa.string()), ("toxicity_score", pa.float64()), ("duplicates", pa.int32())])


def make_run(root: Path, kept: list[dict], parts: int = 3) -> Path:
    """docs/ in `parts` parts; rejects/: a filters part, an ingest part without signals, a dedup part."""
    size = -(-len(kept) // parts)
    for p in range(parts):
        write(root / "docs" / f"part-{p:05d}.parquet", kept[p * size:(p + 1) * size], KEPT_SCHEMA)
    write(root / "rejects" / "part-00000.parquet", reject_rows())
    write(root / "rejects" / "part-00001.parquet",
          [{"id": "i0", "url": "http://bad.example.com/", "domain": "bad.example.com", "text": "",
            "reject_stage": "ingest", "reject_reason": "bad_url"}])
    write(root / "rejects" / "part-00000.dedup.parquet",
          [{**kept[0], "id": "dup0", "reject_stage": "dedup", "reject_reason": "exact_duplicate",
            "duplicate_of": kept[0]["id"]}], KEPT_SCHEMA.append(pa.field("reject_stage", pa.string()))
          .append(pa.field("reject_reason", pa.string())).append(pa.field("duplicate_of", pa.string())))
    (root / "manifest.json").write_text("{}")
    return root


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return make_run(tmp_path / "run", kept_rows())


def show_ids(capsys, *args: str) -> list[str]:
    assert main(["show", *map(str, args), "--json", "--limit", "0"]) == 0
    return [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()]


def test_reason_matches_exactly_or_as_prefix_before_colon(run, capsys):
    assert show_ids(capsys, run, "--reason", "gopher_quality") == ["r0", "r1"]
    exact_or_prefix = ("--reason", "gopher_quality:gopher_short_doc", "--reason", "c4")
    assert show_ids(capsys, run, *exact_or_prefix) == ["r0", "r4"]
    assert show_ids(capsys, run, "--stage", "ingest") == ["i0"]  # a part without the signal columns


def test_language_source_id_filters(run, capsys):
    german = [r["id"] for r in kept_rows() if r["language"] == "de"]
    assert show_ids(capsys, run, "--language", "de") == german
    both = show_ids(capsys, run, "--language", "de", "--language", "fr", "--source", "books")
    assert both == [r["id"] for r in kept_rows() if r["language"] in ("de", "fr") and r["source"] == "books"]
    assert show_ids(capsys, run, "--id", "d07", "--id", "d31") == ["d07", "d31"]


def test_where_numeric_and_string_ops(run, capsys):
    rows = kept_rows()
    assert show_ids(capsys, run, "--where", "toxicity_score>0.5") == \
        [r["id"] for r in rows if r["toxicity_score"] > 0.5]
    assert show_ids(capsys, run, "--where", "toxicity_score <= 0.25", "--where", "language!=en") == \
        [r["id"] for r in rows if r["toxicity_score"] <= 0.25 and r["language"] != "en"]
    assert show_ids(capsys, run, "--where", "language=='de'", "--where", "duplicates>=3") == \
        [r["id"] for r in rows if r["language"] == "de" and r["duplicates"] >= 3]
    assert show_ids(capsys, run, "--all", "--where", "duplicate_of!=null") == ["dup0"]


def test_domain_matches_subdomains_not_suffixes(run, capsys):
    ids = show_ids(capsys, run, "--domain", "example.com")
    assert ids == [r["id"] for r in kept_rows() if r["domain"] in DOMAINS[:3]]
    assert show_ids(capsys, run, "--rejected", "--domain", "EXAMPLE.com") == ["dup0", "i0"]


def test_sample_is_seeded_bottom_k_independent_of_partitioning(run, tmp_path, capsys):
    rows = kept_rows()
    first = show_ids(capsys, run, "--sample", 5, "--seed", 3)
    assert first == show_ids(capsys, run, "--sample", 5, "--seed", 3)
    assert first == sorted((r["id"] for r in rows), key=lambda i: show.seeded_hash(i, 3))[:5]
    assert any(show_ids(capsys, run, "--sample", 5, "--seed", s) != first for s in (4, 5, 6))
    other = make_run(tmp_path / "other", rows[::-1], parts=2)  # same rows, other parts and order
    assert show_ids(capsys, other, "--sample", 5, "--seed", 3) == first
    english = [r["id"] for r in rows if r["language"] == "en"]
    assert show_ids(capsys, run, "--sample", 3, "--seed", 3, "--language", "en") == \
        sorted(english, key=lambda i: show.seeded_hash(i, 3))[:3]


def test_footer_counts_matches_and_shown(run, capsys):
    assert main(["show", str(run), "--language", "en", "--limit", "2", "--chars", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== ") == 2
    assert out.rstrip().endswith("14 kept documents matched, 2 shown (in part order)")
    assert main(["show", str(run), "--all", "--sample", "3"]) == 0
    footer = "47 documents (kept and rejected) matched, 3 shown (sample of 3, seed 0)"
    assert footer in capsys.readouterr().out


def test_truncation_and_control_characters(tmp_path, capsys):
    text = "Title\n\tindented\x1b[31mred\rback\u202eevil\x00" + "x" * 100
    run = make_run(tmp_path / "run", [{**kept_rows(1)[0], "text": text}], parts=1)
    assert main(["show", str(run), "--chars", "40"]) == 0
    out = capsys.readouterr().out
    assert "Title\n\tindented\\x1b[31mred\\rback\\u202eevil\\x00xxxx" in out
    assert f"… (+{len(text) - 40} chars)" in out
    assert not any(c in out for c in "\x1b\r\u202e\x00")
    assert main(["show", str(run), "--full"]) == 0
    out = capsys.readouterr().out
    assert "x" * 100 in out and "chars)" not in out
    assert main(["show", str(run), "--json"]) == 0
    raw = capsys.readouterr().out
    assert "\x1b" not in raw and "\u202e" not in raw and json.loads(raw)["text"] == text


def test_json_lines_parse_and_footer_goes_to_stderr(run, capsys):
    assert main(["show", str(run), "--stage", "filters", "--json", "--limit", "3", "--chars", "4"]) == 0
    captured = capsys.readouterr()
    docs = [json.loads(line) for line in captured.out.splitlines()]
    assert [d["id"] for d in docs] == ["r0", "r1", "r2"] and docs[0]["text"] == "reje"
    assert docs[0]["reject_reason"] == REASONS[0] and docs[0]["text_chars"] == len("rejected 0")
    assert captured.err.strip() == "5 rejected documents matched, 3 shown (in part order)"


def test_signals_default_and_chosen_columns(run, capsys):
    assert main(["show", str(run), "--id", "d04"]) == 0
    out = capsys.readouterr().out
    assert "d04 · web · de (0.54) · kept" in out and "toxicity_score=0.1 (+1 zero)" in out
    assert main(["show", str(run), "--id", "d04", "--columns", "duplicates,toxicity_score"]) == 0
    assert "duplicates=0 toxicity_score=0.1\n" in capsys.readouterr().out
    assert main(["show", str(run), "--stage", "dedup"]) == 0
    assert "rejected at dedup: exact_duplicate  duplicate_of=d00" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--where", "nosuch>1"], "no column 'nosuch' (columns: id, source, url"),
    (["--where", "toxicity_score >> 1"], "is not a value of 'toxicity_score'"),
    (["--where", "toxicity_score ~ 1"], "expected COLUMN OP VALUE"),
    (["--where", "toxicity_score>"], "expected COLUMN OP VALUE"),
    (["--columns", "text,nosuch"], "--columns: no column 'nosuch'"),
    (["--kept", "--reason", "c4"], "select rejected documents"),
    (["--sample", "0"], "--sample must be at least 1"),
])
def test_bad_options_exit_2_with_one_line(run, capsys, args, message):
    assert main(["show", str(run), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1 and message in captured.err


def test_not_a_run_directory_and_no_documents(tmp_path, capsys):
    assert main(["show", str(tmp_path / "missing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    (tmp_path / "empty" / "docs").mkdir(parents=True)
    assert main(["show", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "no documents in docs/part-*.parquet" in err


def test_where_is_pushed_down_to_row_group_statistics(tmp_path, capsys, monkeypatch):
    """Row groups of disjoint toxicity ranges: only those that can match are ever scanned."""
    rows = kept_rows(8)  # toxicity i/8 in row groups of 2: [0,.125] [.25,.375] [.5,.625] [.75,.875]
    run = make_run(tmp_path / "run", rows, parts=1)
    parsed = _parse(["show", str(run), "--where", "toxicity_score>0.6"])
    dataset = show.open_dataset(*show.part_files(str(run), "kept"))
    expr = show.build_filter(parsed, dataset.schema)
    assert isinstance(expr, pc.Expression)
    assert [p.row_groups[0].id for p in show.matching_row_groups(dataset, expr)] == [2, 3]
    scanned = []
    real_scan = show._scan

    def spy(fragment, schema, columns, expr, *a, **k):
        scanned.append(([rg.id for rg in fragment.row_groups], "text" in columns, expr))
        return real_scan(fragment, schema, columns, expr, *a, **k)

    monkeypatch.setattr(show, "_scan", spy)
    assert show_ids(capsys, run, "--where", "toxicity_score>0.6") == ["d05", "d06", "d07"]
    assert [s[0] for s in scanned] == [[2], [3]] and all(isinstance(s[2], pc.Expression) for s in scanned)
    scanned.clear()
    assert show_ids(capsys, run, "--where", "toxicity_score>0.6", "--sample", 1)
    assert {tuple(s[0]) for s in scanned if not s[1]} == {(2,), (3,)}  # the id pass
    assert len([s for s in scanned if s[1]]) == 1  # text is read from the one chosen row group


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    show.add_show_command(parser.add_subparsers())
    return parser.parse_args(argv)


def test_reads_a_run_on_any_fsspec_filesystem(run, capsys):
    fs = fsspec.filesystem("memory")
    for path in run.rglob("*.parquet"):
        fs.pipe(f"/show-run/{path.relative_to(run)}", path.read_bytes())
    try:
        assert show_ids(capsys, "memory://show-run", "--reason", "c4", "--all") == ["r4"]
    finally:
        fs.rm("/show-run", recursive=True)
