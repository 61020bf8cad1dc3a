"""Trained tokenizers: the Multi-Head VQ-VAE of LLaDA-Rec and the RQ-VAE ablation (SPEC §3).

Both are an MLP encoder, a quantizer and a mirrored MLP decoder trained with

    L = ||x - x_hat||^2 + sum_m ( ||sg[z^m] - e^m||^2 + beta * ||z^m - sg[e^m]||^2 )

(squared errors averaged over elements, as in the authors' code), straight-through
gradients from z_q to z, codebooks initialised by k-means on the encoder outputs of the
first training batch, and codes that stay unused for ``dead_code_steps`` steps re-seeded
from random encoder outputs.  They differ in the quantizer: M parallel heads on M
sub-vectors (LLaDA-Rec) or M residual levels on one vector (RQ-VAE).
"""

from __future__ import annotations

from typing import Any, Literal, Optional, get_args

import torch
from torch import Tensor

from llada_rec.tokenizers.base import SemanticIdTokenizer
from llada_rec.tokenizers.quantizers import (
    CodebookQuantizer,
    MultiHeadVectorQuantizer,
    Quantized,
    ResidualVectorQuantizer,
    mlp,
    perplexity,
)

KeepState = Literal["last", "lowest_collision_rate"]
KEEP_STATES: tuple[str, ...] = get_args(KeepState)


class VQAutoencoder(SemanticIdTokenizer):
    """Encoder -> quantizer -> decoder, trained by gradient descent (subclasses pick the quantizer)."""

    def __init__(
        self,
        num_heads: int = 4,
        codebook_size: int = 256,
        code_dim: int = 32,
        hidden_dims: tuple[int, ...] = (512, 256),
        beta: float = 0.25,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        dead_code_steps: int = 50,
        seed: int = 0,
        keep_state: KeepState = "last",
        artifact_dir: Optional[str] = None,
    ) -> None:
        super().__init__(num_heads, codebook_size, artifact_dir)
        if keep_state not in KEEP_STATES:
            raise ValueError(f"keep_state must be one of {KEEP_STATES}, got {keep_state!r}")
        self.keep_state = keep_state
        if code_dim < 1 or any(h < 1 for h in hidden_dims):
            raise ValueError(f"code_dim and hidden_dims must be positive, got {code_dim} and {list(hidden_dims)}")
        self.save_hyperparameters()
        self.code_dim = code_dim
        self.hidden_dims = tuple(hidden_dims)
        self.beta = beta
        self.lr = lr
        self.weight_decay = weight_decay
        self.dead_code_steps = dead_code_steps
        self.seed = seed
        self._step_inputs: Optional[Tensor] = None
        self._step_counts: Optional[Tensor] = None

    # -- to implement ---------------------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        raise NotImplementedError

    def make_quantizer(self) -> CodebookQuantizer:
        raise NotImplementedError

    # -- network --------------------------------------------------------------------------
    def build(self, in_dim: int) -> None:
        self.encoder = mlp([in_dim, *self.hidden_dims, self.latent_dim])
        self.quantizer = self.make_quantizer()
        self.decoder = mlp([self.latent_dim, *reversed(self.hidden_dims), in_dim])

    def forward(self, x: Tensor) -> tuple[Tensor, Quantized]:
        """x [B, D] -> (x_hat [B, D], quantizer output)."""
        q = self.quantizer(self.encoder(x))
        return self.decoder(q.quantized), q

    def assign_codes(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        codes, _, distances = self.quantizer.assign(self.encoder(embeddings))
        return codes, distances

    def losses(self, x: Tensor, x_hat: Tensor, q: Quantized) -> dict[str, Tensor]:
        recon = (x_hat - x).pow(2).mean()
        quant = q.codebook_loss + self.beta * q.commitment_loss
        return {"loss": recon + quant, "recon_loss": recon, "quant_loss": quant}

    # -- training -------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = batch["embedding"]  # [B, D]
        if not bool(self.quantizer.initialized):
            with torch.no_grad():
                self.quantizer.init_codebooks(self.encoder(x), seed=self.seed)
            self._from_rank_zero(self.quantizer.codebooks.data)
        x_hat, q = self(x)
        losses = self.losses(x, x_hat, q)
        self.log_dict({f"train/{k}": v for k, v in losses.items() if k != "loss"}, on_step=False, on_epoch=True, batch_size=len(x))
        self.log("train/loss", losses["loss"], prog_bar=True, on_step=False, on_epoch=True, batch_size=len(x))
        counts = self.quantizer.code_counts(q.codes)  # [M, K]
        for m, ppl in enumerate(perplexity(counts)):
            self.log(f"train/perplexity_h{m}", ppl, on_step=False, on_epoch=True, batch_size=len(x))
        self._step_inputs, self._step_counts = q.inputs.detach(), counts
        return losses["loss"]

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Re-seed dead codes after the optimizer step (in-place edits before backward would
        break autograd)."""
        if self._step_inputs is None:
            return
        counts = self.trainer.strategy.reduce(self._step_counts, reduce_op="sum")
        reseeded = self.quantizer.reseed_dead_codes(counts, self._step_inputs)
        if reseeded:
            self._from_rank_zero(self.quantizer.codebooks.data)
        self.log("train/dead_codes_reseeded", float(reseeded), on_step=False, on_epoch=True, reduce_fx="sum")
        self._step_inputs = self._step_counts = None

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        x = batch["embedding"]
        x_hat, q = self(x)
        losses = self.losses(x, x_hat, q)
        self.log_dict({f"val/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True, batch_size=len(x))
        self._val_items.append(batch["item"])
        self._val_codes.append(q.codes)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)


class MultiHeadVQVAE(VQAutoencoder):
    """LLaDA-Rec's tokenizer: encoder ``D -> 512 -> 256 -> M*d``, M parallel heads of K codes.

    Defaults follow the authors' code: M=4, K=256, d=32, beta=0.25, AdamW lr 1e-3, weight
    decay 1e-4 (the batch size, 2048, is the DataModule's ``item_batch_size``).
    """

    @property
    def latent_dim(self) -> int:
        return self.num_heads * self.code_dim

    def make_quantizer(self) -> CodebookQuantizer:
        return MultiHeadVectorQuantizer(self.num_heads, self.codebook_size, self.code_dim, self.dead_code_steps)


class RQVAE(VQAutoencoder):
    """Ablation (paper Table 4): encoder ``D -> 512 -> 256 -> d``, M residual levels of K codes
    (Lee et al. 2022 / TIGER), trained like the Multi-Head VQ-VAE."""

    @property
    def latent_dim(self) -> int:
        return self.code_dim

    def make_quantizer(self) -> CodebookQuantizer:
        return ResidualVectorQuantizer(self.num_heads, self.codebook_size, self.code_dim, self.dead_code_steps)
