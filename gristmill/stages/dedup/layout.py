"""Where the dedup steps read and write, under a run directory.

    pre_dedup/part-N.parquet          documents as the per-document stages wrote them (input)
    dedup/params.json                 MinHash/LSH parameters: an earlier run's index is usable
                                      by a later run (`against`) only if they are equal
    dedup/index/<family>/part-N.bin   per part and band (family `band-BB`, or `exact`): BAND
                                      records sorted by hash — the run's reusable index
    dedup/index/docs/part-N.parquet   per part: id and exact hash by row (to name kept documents)
    dedup/index/done/part-N.json      per part: written last, marks the part signed
    dedup/plan.json                   how many hash ranges and graph partitions
    dedup/cc/round-KK/*-to-PPPP.bin   edge lists between connected-components rounds
    dedup/cc/round-KK/done/*.json     per task: written last, marks it done
    dedup/drops/drops-PPPP.bin        final (duplicate → kept) EDGE records, sorted by duplicate
    dedup/drops/kept-PPPP.bin         KEPT records: per kept document, its duplicates in PPPP
    dedup/removed/part-N.json         per part: written last, marks docs/ and rejects/ written
    dedup/done.json                   the stage's stats, written last; then cc/ is deleted
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    run_dir: str

    @property
    def root(self) -> str:
        return f"{self.run_dir}/dedup"

    @property
    def params(self) -> str:
        return f"{self.root}/params.json"

    @property
    def plan(self) -> str:
        return f"{self.root}/plan.json"

    @property
    def done(self) -> str:
        return f"{self.root}/done.json"

    @property
    def rounds(self) -> str:
        return f"{self.root}/cc"

    def input_part(self, part: int) -> str:
        return f"{self.run_dir}/pre_dedup/part-{part:05d}.parquet"

    def band_file(self, family: str, part: int) -> str:
        return f"{self.root}/index/{family}/part-{part:05d}.bin"

    def ids_file(self, part: int) -> str:
        return f"{self.root}/index/docs/part-{part:05d}.parquet"

    def signed(self, part: int) -> str:
        return f"{self.root}/index/done/part-{part:05d}.json"

    def round_dir(self, k: int) -> str:
        return f"{self.rounds}/round-{k:02d}"

    def round_done(self, k: int, task: str) -> str:
        return f"{self.round_dir(k)}/done/{task}.json"

    def drops(self, p: int) -> str:
        return f"{self.root}/drops/drops-{p:04d}.bin"

    def kept(self, p: int) -> str:
        return f"{self.root}/drops/kept-{p:04d}.bin"

    def drops_done(self, p: int) -> str:
        return f"{self.root}/drops/done/drops-{p:04d}.json"

    def removed(self, part: int) -> str:
        return f"{self.root}/removed/part-{part:05d}.json"


def families(bands: int, exact: bool) -> list[str]:
    return [f"band-{b:02d}" for b in range(bands)] + (["exact"] if exact else [])
