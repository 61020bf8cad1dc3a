"""Item embeddings -> unique M-code semantic IDs (SPEC §3): tokenizers, artifact, automatic stage."""

from llada_rec.tokenizers.artifact import SemanticIds
from llada_rec.tokenizers.autoencoders import RQVAE, MultiHeadVQVAE, VQAutoencoder
from llada_rec.tokenizers.base import SemanticIdTokenizer
from llada_rec.tokenizers.collisions import CollisionReport, collision_rate, count_collisions, resolve_collisions
from llada_rec.tokenizers.fitted import OPQ, FittedTokenizer, RQKMeans

__all__ = [
    "CollisionReport",
    "FittedTokenizer",
    "MultiHeadVQVAE",
    "OPQ",
    "RQKMeans",
    "RQVAE",
    "SemanticIdTokenizer",
    "SemanticIds",
    "VQAutoencoder",
    "collision_rate",
    "count_collisions",
    "resolve_collisions",
]
