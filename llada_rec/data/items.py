"""Item embeddings from memory: the tokenizer's view of the data.

Below both the DataModule (which hands its embeddings to a tokenizer) and the tokenizer
stage (which trains a tokenizer on them), so neither imports the other for it.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class ItemEmbeddings(Dataset):
    def __init__(self, embeddings: torch.Tensor, items: np.ndarray) -> None:
        self.embeddings = embeddings
        self.items = torch.as_tensor(items, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = self.items[index]
        return {"embedding": self.embeddings[item - 1], "item": item}


class ItemDataModule(L.LightningDataModule):
    """Item embeddings from memory: the tokenizer's view, usable without any files.

    ``train_dataloader``: the training-split items, shuffled; ``val_dataloader``: all items.
    """

    data_view = "items"

    def __init__(self, embeddings: np.ndarray, item_ids: list[str], train_items: np.ndarray, batch_size: int = 2048) -> None:
        super().__init__()
        if len(embeddings) != len(item_ids):
            raise ValueError(f"{len(embeddings)} embeddings for {len(item_ids)} items")
        self.item_embeddings = torch.as_tensor(np.asarray(embeddings, dtype=np.float32))
        self.item_ids = list(item_ids)
        self.train_items = np.asarray(train_items, dtype=np.int64)
        self.batch_size = batch_size

    def item_train_dataloader(self) -> DataLoader:
        dataset = ItemEmbeddings(self.item_embeddings, self.train_items)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=True)

    def item_val_dataloader(self) -> DataLoader:
        all_items = np.arange(1, len(self.item_ids) + 1)
        return DataLoader(ItemEmbeddings(self.item_embeddings, all_items), batch_size=self.batch_size)

    def train_dataloader(self) -> DataLoader:
        return self.item_train_dataloader()

    def val_dataloader(self) -> DataLoader:
        return self.item_val_dataloader()
