"""Decoding settings of the semantic-ID recommenders (LLaDA-Rec, TIGER): one frozen dataclass.

Fewer beams than ``top_k`` return the found items, then item 0 with score -inf (the beam
search's one rule, ``diffusion_beam_search``).  TIGER decodes left to right, one code per
step, so it keeps ``num_steps`` and ``order`` at their defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from llada_rec.decoding.beam_search import ORDERS, Order



@dataclass(frozen=True)
class DecodingConfig:
    """Constrained beam search over semantic IDs (SPEC §5).

    Args:
        beam_size: beams at test and predict (1 = greedy, "w/o beam search").
        val_beam_size: beams at validation (1 = greedy, as the authors select models).
        num_steps: steps T, each filling M/T code positions; must divide the codes per item M.
        order: which positions a step fills: the most confident ("adaptive") or a fixed order.
        constrained: only tuples that are items survive each step (a prefix/trie constraint).
        chunk_size: rows (user x beam) per network call while decoding (memory, not results).
    """

    beam_size: int = 50
    val_beam_size: int = 1
    num_steps: int = 4
    order: Order = "adaptive"
    constrained: bool = True
    chunk_size: int = 4096

    def __post_init__(self) -> None:
        if min(self.beam_size, self.val_beam_size) < 1:
            raise ValueError(f"beam_size={self.beam_size} and val_beam_size={self.val_beam_size} must be >= 1")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")

    def decode_args(self, stage: str) -> dict[str, Any]:
        """Keyword arguments of ``SemanticIdRecommender.decode`` at ``stage`` ("val", "test", "predict")."""
        return {"beam_size": self.val_beam_size if stage == "val" else self.beam_size, "num_steps": self.num_steps,
                "order": self.order, "constrained": self.constrained, "chunk_size": self.chunk_size}


def field_names(config_type: type) -> tuple[str, ...]:
    """The settings of a config dataclass, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(config_type))


#: every decoding setting a config may change when it tests a trained checkpoint
DECODING_FIELDS = field_names(DecodingConfig)
