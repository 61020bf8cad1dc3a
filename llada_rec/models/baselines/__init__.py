"""Baselines in the same framework as LLaDA-Rec: same data, metrics, outputs and CLI."""

from llada_rec.models.baselines.bert4rec import BERT4Rec
from llada_rec.models.baselines.gru4rec import GRU4Rec
from llada_rec.models.baselines.popularity import MostPopular
from llada_rec.models.baselines.rpg import RPG
from llada_rec.models.baselines.sasrec import SASRec
from llada_rec.models.baselines.tiger import TIGER
from llada_rec.models.baselines.transitions import ItemTransitions

__all__ = ["MostPopular", "ItemTransitions", "GRU4Rec", "SASRec", "BERT4Rec", "TIGER", "RPG"]
