"""Baselines in the same framework as LLaDA-Rec: same data, metrics, outputs and CLI."""

from llada_rec.models.baselines.popularity import MostPopular
from llada_rec.models.baselines.sasrec import SASRec
from llada_rec.models.baselines.tiger import TIGER
from llada_rec.models.baselines.transitions import ItemTransitions

__all__ = ["MostPopular", "ItemTransitions", "SASRec", "TIGER"]
