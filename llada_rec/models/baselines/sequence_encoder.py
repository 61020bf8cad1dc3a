"""Transformers over a sequence of items, one vector per item (SASRec, BERT4Rec, RPG).

:class:`ItemSequenceEncoder` takes the items' input vectors, however a model builds them
(an item-id embedding, the mean of the item's semantic-ID code embeddings), adds a position
embedding and runs the shared Transformer blocks, causal or bidirectional.  Positions are
counted back from the last element (last = 0), so left padding never changes what a
position means: the same sequence gives the same outputs at any padded length.

:class:`ItemIdTransformer` is the item-id variant: a (tied) item embedding in and scores
over every item out.  SASRec is the causal one; BERT4Rec the bidirectional one with a
[MASK] row.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from llada_rec.data.dataset import PAD_ITEM
from llada_rec.models.transformer import TransformerConfig, TransformerEncoder, attention_mask


class ItemSequenceEncoder(nn.Module):
    """Item vectors [B, L, D] + padding [B, L] -> hidden states [B, L, D] (:meth:`encode`).

    ``max_length``: the most elements a sequence may have; ``network``: the Transformer's
    sizes; ``causal``: an element sees itself and earlier ones only (else every non-padding
    element).
    """

    def __init__(self, max_length: int, network: TransformerConfig, causal: bool) -> None:
        super().__init__()
        self.max_length = max_length
        self.causal = causal
        self.position_embedding = nn.Embedding(max_length, network.d_model)  # counted back from the last element
        self.embedding_dropout = nn.Dropout(network.dropout)
        self.encoder = TransformerEncoder(network)
        nn.init.normal_(self.position_embedding.weight, std=0.02)

    def encode(self, inputs: Tensor, padding: Tensor) -> Tensor:
        """inputs [B, L, D] float, padding [B, L] bool (True = padding) -> [B, L, D]."""
        length = inputs.shape[1]
        if length > self.max_length:
            raise ValueError(f"sequence has {length} items, more than the {self.max_length} this network was built for")
        position = torch.arange(length - 1, -1, -1, device=inputs.device)  # [L], last element = 0
        x = inputs + self.position_embedding(position)
        structure = torch.ones(length, length, dtype=torch.bool, device=inputs.device).tril() if self.causal else None
        return self.encoder(self.embedding_dropout(x), attention_mask(padding, structure))


class ItemIdTransformer(ItemSequenceEncoder):
    """items [B, L] (left-padded item ids) -> hidden states [B, L, D]; scores over items 1..N.

    ``mask_token``: one more embedding row, item id N + 1 = [MASK] (BERT4Rec's cloze input).
    The output layer is the item embedding itself (tied), rows 1..N.
    """

    def __init__(
        self,
        num_items: int,
        max_length: int,
        network: TransformerConfig,
        causal: bool,
        mask_token: bool = False,
    ) -> None:
        super().__init__(max_length, network, causal)
        self.num_items = num_items
        self.mask_item = num_items + 1 if mask_token else None
        self.item_embedding = nn.Embedding(num_items + 1 + int(mask_token), network.d_model, padding_idx=PAD_ITEM)  # row 0 = padding
        nn.init.normal_(self.item_embedding.weight, std=0.02)
        with torch.no_grad():
            self.item_embedding.weight[PAD_ITEM].zero_()

    def forward(self, items: Tensor) -> Tensor:
        return self.encode(self.item_embedding(items), items == PAD_ITEM)

    def item_logits(self, hidden: Tensor) -> Tensor:
        """hidden [..., D] -> logits [..., N] over items 1..N (tied item embeddings)."""
        return hidden @ self.item_embedding.weight[1 : self.num_items + 1].T
