"""Vector quantizers behind the semantic-ID tokenizers (SPEC §3), in plain PyTorch.

Both quantizers hold M codebooks of K codes of size d (``codebooks`` [M, K, d]) and differ
only in what each codebook quantizes:

- ``MultiHeadVectorQuantizer`` (LLaDA-Rec): z [B, M*d] is split into M sub-vectors and head m
  quantizes sub-vector m on its own, so the M codes are parallel (no head depends on another).
- ``ResidualVectorQuantizer`` (RQ-VAE ablation): z [B, d] is quantized by level 1, the
  residual by level 2, and so on; the quantized vector is the sum of the chosen codes.

For each head the quantizer also reports its *input* (the sub-vector or the residual it
quantized) and the squared distance to every code: the collision resolution moves items
by these distances, and k-means initialisation and dead-code re-seeding sample the inputs.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import faiss
import numpy as np
import torch
from torch import Tensor, nn


def mlp(dims: Sequence[int]) -> nn.Sequential:
    """Linear layers ``dims[0] -> dims[1] -> ... -> dims[-1]`` with ReLU between them (none
    after the last): the encoder and (reversed) the decoder of the VQ-VAEs."""
    if len(dims) < 2 or min(dims) < 1:
        raise ValueError(f"MLP sizes must be >= 2 positive integers, got {list(dims)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@contextmanager
def faiss_single_thread() -> Iterator[None]:
    """faiss on one OpenMP thread: its multi-threaded reductions sum in a varying order, so
    seeded k-means gave different centroids (and collision counts) from run to run."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def kmeans(points: Tensor, k: int, iters: int = 20, seed: int = 0) -> Tensor:
    """``k`` centroids [k, d] of ``points`` [n, d] by ``faiss.Kmeans`` (CPU, float32, k-means++
    seeding where faiss has it).

    With fewer than k points, the points are repeated with a little noise so that every
    centroid exists (a toy batch must not crash); faiss's subsampling keeps big inputs fast.
    """
    x = points.detach().float().cpu().numpy()
    n, d = x.shape
    if n == 0:
        raise ValueError("k-means needs at least one point")
    if n < k:
        rng = np.random.default_rng(seed)
        extra = x[rng.integers(0, n, size=k - n)]
        noise = rng.standard_normal(extra.shape).astype(np.float32) * (1e-3 * (x.std() + 1e-6))
        x = np.concatenate([x, extra + noise])
    options = {"niter": iters, "seed": seed, "min_points_per_centroid": 1, "verbose": False}
    if hasattr(faiss, "ClusteringInitMethod_KMEANS_PLUS_PLUS"):  # faiss >= 1.12; random init before
        options["init_method"] = faiss.ClusteringInitMethod_KMEANS_PLUS_PLUS
    km = faiss.Kmeans(d, k, **options)
    with faiss_single_thread():
        km.train(np.ascontiguousarray(x, dtype=np.float32))
    return torch.from_numpy(km.centroids.copy()).to(device=points.device, dtype=points.dtype)


def squared_distances(inputs: Tensor, codebooks: Tensor) -> Tensor:
    """||inputs[b, m] - codebooks[m, k]||^2 for every head: [B, M, d] x [M, K, d] -> [B, M, K]."""
    dots = torch.einsum("bmd,mkd->bmk", inputs, codebooks)
    sq = inputs.pow(2).sum(-1, keepdim=True) - 2 * dots + codebooks.pow(2).sum(-1).unsqueeze(0)
    return sq.clamp_min(0.0)


def multihead_assign(inputs: Tensor, codebooks: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest code per head. inputs [B, M, d] -> (codes [B, M] long, distances [B, M, K])."""
    distances = squared_distances(inputs, codebooks)
    return distances.argmin(-1), distances


def residual_assign(z: Tensor, codebooks: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Residual quantization of z [B, d] by M levels [M, K, d].

    Returns codes [B, M], the residual each level quantized [B, M, d] (level 1: z itself;
    earlier codes enter detached, so a level's losses train its own codebook and z only),
    and each level's squared distances to its codes [B, M, K].
    """
    num_levels = codebooks.shape[0]
    residual = z
    codes, inputs, distances = [], [], []
    for m in range(num_levels):
        d = squared_distances(residual.unsqueeze(1), codebooks[m : m + 1]).squeeze(1)  # [B, K]
        c = d.argmin(-1)  # [B]
        codes.append(c)
        inputs.append(residual)
        distances.append(d)
        residual = residual - codebooks[m, c].detach()
    return torch.stack(codes, 1), torch.stack(inputs, 1), torch.stack(distances, 1)


@dataclass
class Quantized:
    """What a quantizer returns for a batch of encoder outputs z."""

    quantized: Tensor  # same shape as z: codes' vectors, straight-through (gradient goes to z)
    codes: Tensor  # [B, M] long
    inputs: Tensor  # [B, M, d] what each head quantized (sub-vector or residual)
    codebook_loss: Tensor  # scalar: sum over heads of mean ||sg[input] - e||^2
    commitment_loss: Tensor  # scalar: sum over heads of mean ||input - sg[e]||^2 (beta not applied)


class CodebookQuantizer(nn.Module):
    """M codebooks of K codes of size d, with k-means initialisation and dead-code re-seeding.

    Subclasses define :meth:`assign` (which input each head quantizes) and :meth:`combine`
    (how the chosen codes make the quantized vector).
    """

    def __init__(self, num_heads: int, codebook_size: int, code_dim: int, dead_code_steps: int = 0) -> None:
        super().__init__()
        if num_heads < 1 or codebook_size < 2 or code_dim < 1:
            raise ValueError(
                f"need num_heads >= 1, codebook_size >= 2, code_dim >= 1; got {num_heads}, {codebook_size}, {code_dim}"
            )
        if dead_code_steps < 0:
            raise ValueError(f"dead_code_steps must be >= 0 (0 disables re-seeding), got {dead_code_steps}")
        self.num_heads, self.codebook_size, self.code_dim = num_heads, codebook_size, code_dim
        self.dead_code_steps = dead_code_steps
        self.codebooks = nn.Parameter(torch.randn(num_heads, codebook_size, code_dim) / code_dim**0.5)
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("steps_unused", torch.zeros(num_heads, codebook_size, dtype=torch.long))

    # -- to implement ---------------------------------------------------------------------
    def assign(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """z -> (codes [B, M], inputs [B, M, d], distances [B, M, K])."""
        raise NotImplementedError

    def combine(self, chosen: Tensor) -> Tensor:
        """Chosen code vectors [B, M, d] -> quantized vector, shaped like z."""
        raise NotImplementedError

    @torch.no_grad()
    def init_codebooks(self, z: Tensor, seed: int = 0) -> None:
        """k-means initialisation from encoder outputs z (the first training batch)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    def forward(self, z: Tensor) -> Quantized:
        codes, inputs, _ = self.assign(z)
        heads = torch.arange(self.num_heads, device=z.device)
        chosen = self.codebooks[heads, codes]  # [B, M, d]
        codebook_loss = (chosen - inputs.detach()).pow(2).mean(dim=(0, 2)).sum()
        commitment_loss = (inputs - chosen.detach()).pow(2).mean(dim=(0, 2)).sum()
        quantized = self.combine(chosen)
        quantized = z + (quantized - z).detach()  # straight-through: forward z_q, backward identity
        return Quantized(quantized, codes, inputs, codebook_loss, commitment_loss)

    @torch.no_grad()
    def code_counts(self, codes: Tensor) -> Tensor:
        """How often each code of each head is used: codes [B, M] -> counts [M, K] (float)."""
        counts = torch.zeros(self.num_heads, self.codebook_size, device=codes.device)
        counts.scatter_add_(1, codes.t(), torch.ones_like(codes.t(), dtype=counts.dtype))
        return counts

    @torch.no_grad()
    def reseed_dead_codes(self, counts: Tensor, inputs: Tensor) -> int:
        """Count a training step's code usage; re-seed codes unused for ``dead_code_steps``
        steps from random inputs of this step (a code nobody picks never learns otherwise).

        counts [M, K]: this step's usage (summed over processes); inputs [B, M, d].
        Returns the number of codes re-seeded.
        """
        if self.dead_code_steps == 0:
            return 0
        self.steps_unused.add_(1)
        self.steps_unused.masked_fill_(counts > 0, 0)
        dead = self.steps_unused >= self.dead_code_steps  # [M, K]
        num_dead = int(dead.sum())
        if num_dead:
            rows = torch.randint(inputs.shape[0], (self.num_heads, self.codebook_size), device=inputs.device)
            heads = torch.arange(self.num_heads, device=inputs.device).unsqueeze(1)
            candidates = inputs[rows, heads]  # [M, K, d]
            self.codebooks.data.copy_(torch.where(dead.unsqueeze(-1), candidates.to(self.codebooks.dtype), self.codebooks.data))
            self.steps_unused.masked_fill_(dead, 0)
        return num_dead


class MultiHeadVectorQuantizer(CodebookQuantizer):
    """z [B, M*d] -> M independent heads, each the nearest code of its own codebook."""

    def assign(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        inputs = z.view(z.shape[0], self.num_heads, self.code_dim)  # [B, M, d]
        codes, distances = multihead_assign(inputs, self.codebooks)
        return codes, inputs, distances

    def combine(self, chosen: Tensor) -> Tensor:
        return chosen.reshape(chosen.shape[0], -1)  # [B, M*d]

    @torch.no_grad()
    def init_codebooks(self, z: Tensor, seed: int = 0) -> None:
        inputs = z.view(z.shape[0], self.num_heads, self.code_dim)
        for m in range(self.num_heads):
            self.codebooks.data[m] = kmeans(inputs[:, m], self.codebook_size, seed=seed + m)
        self.initialized.fill_(True)


class ResidualVectorQuantizer(CodebookQuantizer):
    """z [B, d] -> M levels, each quantizing what the levels before it left over."""

    def assign(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return residual_assign(z, self.codebooks)

    def combine(self, chosen: Tensor) -> Tensor:
        return chosen.sum(1)  # [B, d]

    @torch.no_grad()
    def init_codebooks(self, z: Tensor, seed: int = 0) -> None:
        residual = z
        for m in range(self.num_heads):
            self.codebooks.data[m] = kmeans(residual, self.codebook_size, seed=seed + m)
            codes = squared_distances(residual.unsqueeze(1), self.codebooks[m : m + 1]).squeeze(1).argmin(-1)
            residual = residual - self.codebooks[m, codes]
        self.initialized.fill_(True)


def perplexity(counts: Tensor) -> Tensor:
    """exp(entropy) of each head's code distribution: counts [M, K] -> [M] (K = all used evenly)."""
    p = counts / counts.sum(-1, keepdim=True).clamp_min(1)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum(-1))
