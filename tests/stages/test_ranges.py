"""Record-range tasks: a file read range by range gives exactly the documents read whole."""

import pytest

from gristmill.core.stats import StageStats
from gristmill.pipeline.runner import plan_shards
from gristmill.stages.ingest import WarcIngest, read_all
from gristmill.stages.ingest import IngestConfig
from gristmill.stages.ranges import plan_ranges
from tests.conftest import WARC, require

MORE = WARC / "more"
FILES = [
    WARC / "packed" / "scrapinghub_pages.warc.gz",  # per-record gzip WARC
    MORE / "aut-IAH-20080430204825-00000-blackbook.arc.gz",  # per-record gzip ARC
    MORE / "copycat-cc2008-small-sample-1213893279526_0.arc",  # uncompressed ARC, no separator after its filedesc
    MORE / "CC-MAIN-20140820021334-00006-ip-10-180-136-8.ec2.internal.warc",  # uncompressed WARC
    MORE / "ipwb-sample-1.warc.gz",  # revisits
    WARC / "edge-cases" / "example-iana.org-chunked.warc",
]
KEYS = ("id", "url", "html")


def read_in_ranges(path, task_bytes):
    ranges = plan_ranges(str(path), task_bytes)
    docs, stats = [], StageStats()
    for r in ranges:
        docs += WarcIngest(IngestConfig(), "test").read(str(path), stats, [], r.start, r.end)
    return ranges, docs, stats


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_ranges_read_every_document_once_in_order(path):
    require(path)
    whole, _, whole_stats = read_all(str(path))
    size = path.stat().st_size
    ranges, docs, stats = read_in_ranges(path, max(size // 7, 1))
    assert len(ranges) >= 2  # really split
    assert [r.start for r in ranges] == sorted({r.start for r in ranges}) and ranges[0].start == 0
    assert sum(r.size for r in ranges) == size
    assert [tuple(d[k] for k in KEYS) for d in docs] == [tuple(d[k] for k in KEYS) for d in whole]
    record_counts = lambda s: {k: v for k, v in s.events.items() if k.startswith("record:")}  # noqa: E731
    assert record_counts(stats) == record_counts(whole_stats)
    assert stats.dropped == whole_stats.dropped
    assert not [k for k in stats.events if k.startswith("read_error")]


def test_the_plan_is_the_same_every_time_and_small_files_stay_whole():
    path = FILES[0]
    require(path)
    assert plan_ranges(str(path), 500_000) == plan_ranges(str(path), 500_000)
    assert len(plan_ranges(str(path), path.stat().st_size)) == 1


def test_a_whole_file_gzip_cannot_be_cut_and_stays_one_task():
    path = MORE / "CC-MAIN-20150226074059-00000-ip-10-28-5-156.ec2.internal.warc.gz"
    require(path)
    assert len(plan_ranges(str(path), 1000)) == 1


def test_shards_number_ranges_in_input_order():
    big, small = FILES[0], FILES[3]
    require(big)
    shards = plan_shards({"a": [str(big)], "b": [str(small)]}, 1_000_000)
    assert [s.index for s in shards] == list(range(len(shards)))
    assert [s.source for s in shards] == ["a"] * (len(shards) - 1) + ["b"]
    assert shards[-1].start == 0 and shards[-1].end is None
    assert [s.start for s in shards[:-1]] == sorted(s.start for s in shards[:-1])
