"""URL blocklist filter: UT1's domain and URL lists, plus datatrove's URL word lists.

The first of the three adult-content filters, meant to run in this order (cheapest first):
`url_blocklist`, then `badwords` (filters/bad_words.py), then `toxicity` (filters/toxicity.py).
Defaults and the measurements behind them: bench/bench_toxicity.py, bench/results/toxicity.json.

`url_blocklist` (signal `url_blocklist_hit`, 0/1; NaN when the document has no URL)
    Lists: the UT1 domain and URL blocklists as datatrove 0.10.1 bundles them, in
    `datatrove/assets/url_filterblacklistsv0_3_0.tar.gz` inside the installed wheel (found
    through importlib.resources).
    - It is **not** the UT1 category tree. It holds two merged, de-duplicated files: `domains`
      (4,558,940 entries) and `urls` (19,587 host/path entries). There is no category
      information in it, so this filter cannot select categories.
    - Spot checks found adult (pornhub.com, the .xxx TLD), aggressive (stormfront.org), phishing
      (0-secure-paypal.com) and chat (chatroulette.com) entries. None of the gambling,
      file-hosting or warez sites tried were listed.
    - It has known false positives on news sites: the German weekly jungefreiheit.de and the
      Swiss LGBTQ news site gay.ch (2 of 750 real page URLs in the bench). `allow_domains`
      names domains (subdomains included) that it never drops; their `url_blocklist_hit` stays
      1.0, so the report still shows them. None by default, nor in configs/sample.yaml.
    Licence: the tarball holds no licence or README. UT1's lists (Université Toulouse 1 Capitole,
    maintained by Fabrice Prigent, https://dsi.ut-capitole.fr/blacklists/) are published under
    Creative Commons BY-SA 4.0, as the README of their GitHub mirror olbat/ut1-blacklists states
    (checked there; the UT1 site itself could not be reached from here). Nothing from the lists
    is in this repository: they are read from the installed wheel at run time. The hash cache
    below is derived from them and stays local; it is never distributed.
    Domain matching: the URL's host (lower-cased, IDNA-encoded), then each parent domain up to
    the TLD (a.b.example.com → b.example.com → example.com → com). UT1 lists four whole adult TLDs
    (`xxx`, `sex`, `porn`, `adult`) and no generic TLD. An IP host is looked up only as itself.
    URL matching: the host (without "www.") plus path, and each path prefix at a "/" boundary, so
    `host/dir` covers `host/dir/page`.
    Memory: the 4.6 M domains would take about 450 MB per process as a Python set. Here they are
    a sorted array of 64-bit xxh3 hashes (36 MB). The array is built once, in about 4 s, into
    `$GRISTMILL_CACHE/toxicity/` (default `<repo>/.cache/toxicity/`, written atomically). After
    that every process opens it with mmap, so workers share one copy in the page cache and the
    load takes 0.02 s. A clean domain collides with a listed hash with a chance of about 2.5e-13
    per lookup. If the cache folder cannot be written, the array is built in memory. The model
    cache of filters/toxicity.py shares that folder.
    `url_words` (default on), as datatrove's URLFilter does for FineWeb, reads datatrove's own
    word lists from the same wheel (`banned_words.txt`, `soft_banned_words.txt`,
    `banned_subwords.txt`). A URL is dropped when any of its [a-z0-9] tokens is a banned word,
    when `soft_words_min` tokens are soft-banned words, or when a banned sub-word occurs in the
    URL with its separators removed. None of the 750 clean URLs in the bench triggered this
    rule. Its lists also hold political and medical collateral: "santorum", "stroking", and the
    sub-word "bigblack".
    Reasons: "domain", "url", "url_words".
"""

from __future__ import annotations

import ipaddress
import re
import tarfile
import threading
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np
import xxhash
from pydantic import Field

from gristmill.core import env
from gristmill.core.io import open_atomic
from gristmill.filters.base import DocFilter, FilterParams
from gristmill.filters.text import TextView

NAN = float("nan")

_UT1_TAR = "url_filterblacklistsv0_3_0.tar.gz"
_LOCK = threading.Lock()


def _ut1_tarball() -> Path:
    return Path(str(resources.files("datatrove") / "assets" / _UT1_TAR))


def _hash64(key: str) -> int:
    return xxhash.xxh3_64_intdigest(key.encode("utf-8"))


def _domain_hashes(lines) -> np.ndarray:
    """Sorted unique xxh3-64 hashes of a domain list given as byte lines (streamed: no big list)."""
    keys = (b.strip().lower() for b in lines)
    hashes = np.fromiter((xxhash.xxh3_64_intdigest(k) for k in keys if k and not k.startswith(b"#")),
                         dtype=np.uint64)
    hashes.sort()  # (np.unique is ~15x slower here: numpy 2.4 takes a hashing path for it)
    return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))] if len(hashes) else hashes


def _url_key(entry: str) -> str:
    """A blocklist URL entry (host/path, no scheme) as looked up: host lower-cased, no end "/"."""
    host, _, path = entry.strip().partition("/")
    return (host.lower().rstrip(".") + ("/" + path if path else "")).rstrip("/")


@lru_cache(maxsize=1)
def ut1_lists() -> tuple[np.ndarray, frozenset[str]]:
    """(sorted uint64 hashes of the blocked domains, blocked host/path keys), once per process."""
    tar = _ut1_tarball()
    stamp = f"{metadata.version('datatrove')}-{tar.stat().st_size}"
    domains_npy = env.CACHE / "toxicity" / f"ut1-domains-{stamp}.u64.npy"
    urls_txt = env.CACHE / "toxicity" / f"ut1-urls-{stamp}.txt"
    with _LOCK:
        if domains_npy.exists() and urls_txt.exists():
            hashes = np.load(domains_npy, mmap_mode="r")
            urls = frozenset(urls_txt.read_text(encoding="utf-8").split("\n")) - {""}
            return hashes, urls
        with tarfile.open(tar, "r:gz") as tf:  # members in order: urls, then domains
            raw_urls = tf.extractfile("urls").read().decode("utf-8")
            hashes = _domain_hashes(tf.extractfile("domains"))
        urls = frozenset(_url_key(u) for u in raw_urls.split("\n") if u.strip() and not u.startswith("#"))
        try:
            with open_atomic(str(domains_npy)) as f:
                np.save(f, hashes)
            with open_atomic(str(urls_txt)) as f:
                f.write("\n".join(sorted(urls)).encode("utf-8"))
        except OSError:
            pass  # read-only cache: this process keeps its in-memory copy
        return hashes, urls


def _host_and_path(url: str) -> tuple[str, str]:
    url = url.strip()
    if "://" not in url:
        url = "http://" + url.lstrip("/")
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:
        return "", ""
    if host and not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            pass
    return host.lower(), parts.path


def domain_candidates(host: str) -> list[str]:
    """The host and each parent domain down to the TLD; an IP address only as itself."""
    if not host:
        return []
    try:
        ipaddress.ip_address(host.strip("[]"))
        return [host]
    except ValueError:
        pass
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels)) if labels[i]]


def url_candidates(host: str, path: str) -> list[str]:
    """host, host/a, host/a/b … for the URL-list lookup (no query, no fragment, no end "/")."""
    keys = [host]
    prefix = host
    for segment in path.split("/"):
        if segment:
            prefix = f"{prefix}/{segment}"
            keys.append(prefix)
    return keys


_URL_TOKEN = re.compile(r"[^a-z0-9]+")


@lru_cache(maxsize=1)
def url_word_lists():
    """datatrove's URL word lists (banned, soft-banned, banned substrings), normalised to [a-z0-9]."""
    import ahocorasick

    def read(name: str) -> frozenset[str]:
        text = (resources.files("datatrove") / "assets" / name).read_text(encoding="utf-8")
        words = (_URL_TOKEN.sub("", line.lower()) for line in text.splitlines() if line and line[0] != "#")
        return frozenset(w for w in words if w)

    subwords = ahocorasick.Automaton()
    for word in read("banned_subwords.txt"):
        subwords.add_word(word, word)
    subwords.make_automaton()
    return read("banned_words.txt"), read("soft_banned_words.txt"), subwords


class UrlBlocklistParams(FilterParams):
    bundled: bool = True  # datatrove's UT1 domains + urls lists (see the module docstring)
    extra_domains: list[str] = Field(default_factory=list)  # more blocked domains, subdomains included
    allow_domains: list[str] = Field(default_factory=list)  # never dropped (subdomains included)
    url_words: bool = True  # also datatrove's (FineWeb's) banned words in the URL, see below
    soft_words_min: int = Field(default=2, ge=1)  # soft-banned URL words needed for a drop


def _domain_set(domains: list[str]) -> frozenset[str]:
    return frozenset(d.strip().lower().rstrip(".").removeprefix("*.") for d in domains)


class UrlBlocklist(DocFilter):
    """Drop documents whose URL's domain (or a parent domain) or URL path is blocklisted."""

    name: ClassVar[str] = "url_blocklist"
    Params: ClassVar[type[FilterParams]] = UrlBlocklistParams
    signals: ClassVar[tuple[str, ...]] = ("url_blocklist_hit",)
    params: UrlBlocklistParams

    def __init__(self, params: UrlBlocklistParams, language: str):
        super().__init__(params, language)
        self.extra = _domain_set(params.extra_domains)
        self.allowed = _domain_set(params.allow_domains)
        if params.bundled:
            self.hashes, self.urls = ut1_lists()
        else:
            self.hashes, self.urls = np.zeros(0, dtype=np.uint64), frozenset()

    # limits(): none; a hit is a list lookup, not a threshold on `url_blocklist_hit` (one 0/1 for 3 reasons)

    def _domain_listed(self, candidates: list[str]) -> bool:
        if any(c in self.extra for c in candidates):
            return True
        if not len(self.hashes) or not candidates:
            return False
        probe = np.fromiter((_hash64(c) for c in candidates), dtype=np.uint64, count=len(candidates))
        pos = np.searchsorted(self.hashes, probe)
        pos[pos >= len(self.hashes)] = 0
        return bool((self.hashes[pos] == probe).any())

    def __call__(self, doc: TextView) -> tuple[dict[str, float], str | None]:
        if not doc.url:
            return {"url_blocklist_hit": NAN}, None
        host, path = _host_and_path(doc.url)
        if not host:
            return {"url_blocklist_hit": NAN}, None
        domains = domain_candidates(host)
        reason = None
        if self._domain_listed(domains):
            reason = "domain"
        elif self.urls and any(k in self.urls for k in url_candidates(host.removeprefix("www."), path)):
            reason = "url"
        elif self.params.url_words and self._url_words(doc.url):
            reason = "url_words"
        if reason is None:
            return {"url_blocklist_hit": 0.0}, None
        return {"url_blocklist_hit": 1.0}, None if self.allowed.intersection(domains) else reason

    def _url_words(self, url: str) -> bool:
        banned, soft, subwords = url_word_lists()
        lowered = url.lower()
        tokens = set(_URL_TOKEN.split(lowered))
        if not tokens.isdisjoint(banned) or len(tokens & soft) >= self.params.soft_words_min:
            return True
        return next(subwords.iter(_URL_TOKEN.sub("", lowered)), None) is not None
