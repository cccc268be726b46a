"""Document filters and scorers. `FILTERS` maps each filter's config name to its class."""

from gristmill.filters.bad_words import BadWords
from gristmill.filters.base import DocFilter, Limit
from gristmill.filters.c4 import C4Quality
from gristmill.filters.fineweb import FineWebQuality
from gristmill.filters.gopher_quality import GopherQuality
from gristmill.filters.gopher_repetition import GopherRepetition
from gristmill.filters.quality_model import QualityModel
from gristmill.filters.toxicity import ToxicityScore
from gristmill.filters.url_blocklist import UrlBlocklist

FILTERS: dict[str, type[DocFilter]] = {
    f.name: f
    for f in (GopherRepetition, GopherQuality, C4Quality, FineWebQuality,
              UrlBlocklist, BadWords, ToxicityScore,  # cheapest first
              QualityModel)
}
