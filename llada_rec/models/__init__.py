"""Next-item recommenders: LLaDA-Rec and the baselines, all ``SequentialRecommender``s."""

from llada_rec.decoding import DecodingConfig
from llada_rec.models.base import DataInfo, SequentialRecommender
from llada_rec.models.llada_rec import LLaDARec
from llada_rec.models.mask_predictor import MaskPredictor
from llada_rec.models.transformer import TransformerConfig

__all__ = ["DataInfo", "DecodingConfig", "LLaDARec", "MaskPredictor", "SequentialRecommender", "TransformerConfig"]
