"""Storage: a write is seen whole or not at all, at any fsspec URL."""

from __future__ import annotations

import json

import pytest

from gristmill.core.io import copy_atomic, exists, open_atomic, read_json, write_json_atomic


def test_a_failed_write_leaves_neither_the_file_nor_its_temp(tmp_path):
    path = tmp_path / "sub" / "out.json"
    with pytest.raises(RuntimeError), open_atomic(str(path), "w") as f:
        f.write("{half")
        raise RuntimeError("killed mid-write")
    assert not path.exists() and list((tmp_path / "sub").iterdir()) == []


def test_a_write_appears_under_its_name_only_when_complete(tmp_path):
    path = tmp_path / "out.json"
    with open_atomic(str(path), "w") as f:
        f.write("[1, 2")
        assert not path.exists()  # a reader sees nothing yet
        f.write("]")
    assert json.loads(path.read_text()) == [1, 2] and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_copy_between_urls_and_json_round_trip(tmp_path):
    write_json_atomic(str(tmp_path / "a.json"), {"x": 1})
    copy_atomic(str(tmp_path / "a.json"), f"file://{tmp_path}/deeper/b.json")
    copied = str(tmp_path / "deeper" / "b.json")
    assert exists(copied) and read_json(copied) == {"x": 1}
    copy_atomic(str(tmp_path / "a.json"), "memory://gristmill-test/b.json")
    assert read_json("memory://gristmill-test/b.json") == {"x": 1}
