"""Tokenizers fitted in closed form, no gradient steps: RQ-KMeans and OPQ (paper Table 4).

They run under the same ``lightning fit`` as the VQ-VAEs so that one config format, one
DataModule and one artifact serve all tokenizers: the fit happens in ``on_fit_start`` on the
training-split items' embeddings (faiss, CPU), the training loop then does nothing and stops
after its first epoch (whatever ``max_epochs`` says), and that epoch's validation measures
the collision rate over all items before the base class writes the artifact.
"""

from __future__ import annotations

from typing import Any, Optional

import faiss
import numpy as np
import torch
from torch import Tensor

from llada_rec.tokenizers.base import SemanticIdTokenizer
from llada_rec.tokenizers.quantizers import faiss_single_thread, kmeans, multihead_assign, residual_assign


class FittedTokenizer(SemanticIdTokenizer):
    """Fit once in ``on_fit_start``; no optimizer, one (empty) training epoch."""

    automatic_optimization = False

    def __init__(self, num_heads: int, codebook_size: int, seed: int = 0, artifact_dir: Optional[str] = None) -> None:
        super().__init__(num_heads, codebook_size, artifact_dir)
        self.seed = seed

    def fit_codes(self, embeddings: Tensor) -> None:
        """Fit the buffers on the training items' embeddings [N_train, D]."""
        raise NotImplementedError

    def on_fit_start(self) -> None:
        super().on_fit_start()
        embeddings = self.train_embeddings()
        print(f"{type(self).__name__}: fitting {self.num_heads} x {self.codebook_size} codes on {len(embeddings)} items")
        self.fit_codes(embeddings)
        for buffer in self.buffers():
            self._from_rank_zero(buffer)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.trainer.should_stop = True  # nothing to train: end after this epoch's validation
        return None

    def configure_optimizers(self) -> list:
        return []  # no optimizer (an empty list, unlike None, is not warned about)


class RQKMeans(FittedTokenizer):
    """Residual k-means on the embeddings themselves (no encoder): level m clusters what the
    levels before it left over into K centroids (``faiss.Kmeans``, ``kmeans_iters`` iterations)."""

    def __init__(
        self,
        num_heads: int = 4,
        codebook_size: int = 256,
        kmeans_iters: int = 20,
        seed: int = 0,
        artifact_dir: Optional[str] = None,
    ) -> None:
        super().__init__(num_heads, codebook_size, seed, artifact_dir)
        self.save_hyperparameters()
        self.kmeans_iters = kmeans_iters

    def build(self, in_dim: int) -> None:
        self.register_buffer("centroids", torch.zeros(self.num_heads, self.codebook_size, in_dim))

    def fit_codes(self, embeddings: Tensor) -> None:
        residual = embeddings
        for m in range(self.num_heads):
            self.centroids[m] = kmeans(residual, self.codebook_size, self.kmeans_iters, seed=self.seed + m)
            codes, _, _ = residual_assign(residual, self.centroids[m : m + 1])
            residual = residual - self.centroids[m, codes[:, 0]]

    def assign_codes(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        codes, _, distances = residual_assign(embeddings, self.centroids)
        return codes, distances


class OPQ(FittedTokenizer):
    """Optimized product quantization (Ge et al. 2013): a learned rotation ``faiss.OPQMatrix``,
    then ``faiss.ProductQuantizer`` with M sub-quantizers of K = 2^nbits codes each.

    The rotated space has ``M * ceil(D / M)`` dimensions (faiss pads when M does not divide D).
    """

    def __init__(
        self,
        num_heads: int = 4,
        codebook_size: int = 256,
        opq_iters: int = 50,
        seed: int = 0,
        artifact_dir: Optional[str] = None,
    ) -> None:
        super().__init__(num_heads, codebook_size, seed, artifact_dir)
        nbits = int(np.log2(codebook_size))
        if 2**nbits != codebook_size:
            raise ValueError(f"OPQ needs codebook_size = 2^nbits (faiss ProductQuantizer), got {codebook_size}")
        self.save_hyperparameters()
        self.nbits = nbits
        self.opq_iters = opq_iters

    def build(self, in_dim: int) -> None:
        out_dim = self.num_heads * -(-in_dim // self.num_heads)
        self.register_buffer("rotation", torch.zeros(out_dim, in_dim))  # y = x @ rotation.T
        sub_dim = out_dim // self.num_heads
        self.register_buffer("centroids", torch.zeros(self.num_heads, self.codebook_size, sub_dim))

    def fit_codes(self, embeddings: Tensor) -> None:
        x = np.ascontiguousarray(embeddings.detach().float().cpu().numpy())
        out_dim, in_dim = self.rotation.shape
        if len(x) < self.codebook_size:
            raise ValueError(f"OPQ needs at least K={self.codebook_size} training items, got {len(x)}")
        if len(x) < in_dim:  # faiss's OPQMatrix corrupts memory (a crash, not an error) below that
            raise ValueError(f"OPQ needs at least as many training items as embedding dimensions ({in_dim}), got {len(x)}; lower --data.items.pca_dim")
        opq = faiss.OPQMatrix(in_dim, self.num_heads, out_dim)
        opq.niter = self.opq_iters
        opq.verbose = False
        opq_pq = self._product_quantizer(out_dim)  # the PQ OPQ alternates with (kept alive here)
        opq.pq = opq_pq
        with faiss_single_thread():  # reproducible: see faiss_single_thread
            opq.train(x)
        rotation = faiss.vector_to_array(opq.A).reshape(out_dim, in_dim)
        rotated = np.ascontiguousarray(x @ rotation.T, dtype=np.float32)
        pq = self._product_quantizer(out_dim)  # final codebooks: a full k-means in the rotated space
        with faiss_single_thread():
            pq.train(rotated)
        centroids = faiss.vector_to_array(pq.centroids).reshape(self.num_heads, self.codebook_size, -1)
        self.rotation.copy_(torch.from_numpy(rotation))
        self.centroids.copy_(torch.from_numpy(centroids))

    def _product_quantizer(self, dim: int) -> Any:
        pq = faiss.ProductQuantizer(dim, self.num_heads, self.nbits)
        pq.cp.seed = self.seed
        pq.cp.min_points_per_centroid = 1  # small catalogues are fine; no faiss warning per head
        return pq

    def assign_codes(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        rotated = embeddings @ self.rotation.t()  # [B, M * d_sub]
        return multihead_assign(rotated.view(len(embeddings), self.num_heads, -1), self.centroids)
