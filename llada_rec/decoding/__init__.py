"""Adaptive-order discrete-diffusion beam search with valid-item constraints (SPEC §5)."""

from llada_rec.decoding.beam_search import (
    ORDERS,
    BeamSearchResult,
    diffusion_beam_search,
    merge_duplicate_beams,
)
from llada_rec.decoding.config import DECODING_FIELDS, DecodingConfig
from llada_rec.decoding.index import MASKED, ItemCodeIndex

__all__ = [
    "DECODING_FIELDS",
    "MASKED",
    "ORDERS",
    "BeamSearchResult",
    "DecodingConfig",
    "ItemCodeIndex",
    "diffusion_beam_search",
    "merge_duplicate_beams",
]
