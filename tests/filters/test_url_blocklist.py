"""URL blocklist filter (filters/url_blocklist.py): unit behaviour."""

from __future__ import annotations

import math

from gristmill.filters.base import DocFilter
from gristmill.filters.text import TextView
from gristmill.filters.url_blocklist import UrlBlocklist, UrlBlocklistParams, domain_candidates


def run(f: DocFilter, text: str, language: str = "en", url: str = ""):
    return f(TextView(text, language, url))


def test_extra_domain_and_its_subdomains_dropped():
    f = UrlBlocklist(UrlBlocklistParams(bundled=False, url_words=False, extra_domains=["Bad-Site.example"]), "en")
    assert run(f, "hi", url="https://bad-site.example/page")[1] == "domain"
    assert run(f, "hi", url="http://a.b.bad-site.example:8080/x?y=1") == ({"url_blocklist_hit": 1.0}, "domain")
    assert run(f, "hi", url="https://notbad-site.example/") == ({"url_blocklist_hit": 0.0}, None)
    assert run(f, "hi", url="https://bad-site.example.org/") == ({"url_blocklist_hit": 0.0}, None)


def test_domain_candidates():
    assert domain_candidates("a.b.example.co.uk") == ["a.b.example.co.uk", "b.example.co.uk", "example.co.uk",
                                                      "co.uk", "uk"]
    assert domain_candidates("192.168.0.1") == ["192.168.0.1"]
    assert domain_candidates("") == []


def test_bundled_ut1_list():
    f = UrlBlocklist(UrlBlocklistParams(url_words=False), "en")
    assert run(f, "x", url="https://www.pornhub.com/view_video.php?v=1")[1] == "domain"
    assert run(f, "x", url="https://some.deep.sub.xvideos.com/")[1] == "domain"  # listed parent domain
    assert run(f, "x", url="https://anything.xxx/")[1] == "domain"  # UT1 lists the .xxx TLD itself
    assert run(f, "x", url="https://0b1-bofa.org/bofa/wb/login.php")[1] == "url"  # a listed host/path prefix
    for clean in ("https://en.wikipedia.org/wiki/Pornography", "https://www.bbc.com/news/world-europe-50473792",
                  "https://github.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words"):
        assert run(f, "x", url=clean) == ({"url_blocklist_hit": 0.0}, None), clean


def test_url_words():
    f = UrlBlocklist(UrlBlocklistParams(bundled=False), "en")
    assert run(f, "x", url="https://example.com/free-porn-videos")[1] == "url_words"  # a banned word
    assert run(f, "x", url="https://example.com/nude-webcam")[1] == "url_words"  # two soft words
    assert run(f, "x", url="https://example.com/nude-art-history")[1] is None  # one soft word
    assert run(f, "x", url="https://example.com/watch/twogirlsonecup")[1] == "url_words"  # banned substring
    off = UrlBlocklist(UrlBlocklistParams(bundled=False, url_words=False), "en")
    assert run(off, "x", url="https://example.com/free-porn-videos")[1] is None


def test_no_url_is_a_no_op():
    f = UrlBlocklist(UrlBlocklistParams(bundled=False), "en")
    signals, reason = run(f, "text", url="")
    assert math.isnan(signals["url_blocklist_hit"]) and reason is None
