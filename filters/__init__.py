"""Document filters and scorers. `FILTERS` maps each filter's config name to its class."""

from filters.base import DocFilter, Limit
from filters.c4 import C4Quality
from filters.fineweb import FineWebQuality
from filters.gopher import GopherQuality, GopherRepetition
from filters.quality_model import QualityModel
from filters.toxicity import TOXICITY_FILTERS

FILTERS: dict[str, type[DocFilter]] = {
    f.name: f for f in (GopherRepetition, GopherQuality, C4Quality, FineWebQuality, *TOXICITY_FILTERS, QualityModel)
}
