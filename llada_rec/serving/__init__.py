"""Serving a trained recommender: the Python API (:class:`Recommender`) and `llada-rec serve`
(``server.py``, on LitServe, the optional ``[serve]`` extra)."""

from llada_rec.serving.api import Recommendation, Recommender
from llada_rec.serving.requests import RequestError

__all__ = ["Recommendation", "Recommender", "RequestError"]
