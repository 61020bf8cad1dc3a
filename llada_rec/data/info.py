"""What a model needs to know about the data, below both the DataModule and the models."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DataInfo:
    """Sizes a model needs from the data; stored in checkpoints so a model rebuilds alone."""

    num_items: int
    max_history: int
    num_heads: int = 0  # M, semantic-ID length (0 when the model uses no semantic IDs)
    codebook_size: int = 0  # K
