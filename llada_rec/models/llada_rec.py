"""LLaDA-Rec: next-item recommendation as masked discrete diffusion over semantic IDs.

Training (SPEC §4) sums two masked-diffusion losses, each from one batched forward pass:

- L_Item (next-item masking): history fully visible; per sample r ~ U(0, 1]; each of the
  target's M tokens is masked independently with probability r, conditioned on at least
  one being masked (sampled exactly, see :func:`sample_target_mask`).  Loss = sum over
  masked target tokens of -log p * w(r), divided by M, mean over the batch, with
  w(r) = P(>= 1 masked | r) / r = (1 - (1 - r)^M) / r.  Why not plain 1/r: under
  independent masking the all-unmasked draw contributes 0, so
  E_indep[sum/r] = P(>= 1 masked) * E[sum/r | >= 1 masked]; this w(r) keeps SPEC's
  expectation (the ELBO bound) exactly, and w(r) <= M.  Plain 1/r with "if none is
  masked, mask one" adds a term that behaves like 1/r as r -> 0 (log-divergent mean,
  unbounded per-sample weight: ~1.6e7 at the smallest float32 r), which dominated the loss
  and its gradient noise in our measurements.
- L_His (user-history masking): per sample r ~ U(0, 1]; each non-pad history token is
  masked with probability r.  Loss = sum over masked history tokens of -log p / r,
  divided by |S_H| (the sample's number of non-pad history tokens), mean over the batch.
  The target is *absent* from this pass, as in the paper's formula p(S_H^j | S_H,r) with
  S_H = the n-1 history items: the input is the masked history alone, whose newest item
  takes the newest item position (0, the target's slot in L_Item and decoding).  So L_His
  also trains "newest item given earlier ones", and the w/o item-mask ablation can still
  recommend.  A sample with no masked history token contributes 0.

``history_mask="per_item"`` replaces the token draw of L_His by an item-level one: for
each non-pad history item, k ~ Uniform{1..M} and a uniformly random subset of k of its M
tokens is masked; those tokens are weighted M/k (the item's own mask ratio), the
normalisation stays |S_H|.  Every history item then has at least one masked token.  (This
is our reading of the variant in the authors' code as the project's brief describes it; the
code itself was not available to check.)
``history_mask="none"`` and ``item_mask=False`` drop a term (paper Table 4 ablations).

Joint loss: L_Item + alpha * L_His.  Logits are divided by ``temperature`` in training and
decoding.  AdamW decays only the weights of Linear layers; biases, LayerNorms and
embeddings (which include the tied output layer) are not decayed.  The learning rate
warms up linearly over ``warmup_ratio`` of the steps, then follows a cosine to 0.

Recommendation decodes with ``llada_rec.decoding.diffusion_beam_search`` (SPEC §5).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.decoding import ORDERS
from llada_rec.models.base import DataInfo
from llada_rec.models.optim import adamw_warmup_cosine
from llada_rec.models.mask_predictor import MASKED_CODE, AttentionKind, MaskPredictor
from llada_rec.models.semantic_ids import SemanticIdRecommender


# -- masking and losses: pure functions -------------------------------------------------
def sample_mask_ratio(batch_size: int, device: torch.device | str) -> Tensor:
    """r ~ U(0, 1] per sample: [B] float32 (1 - U[0, 1) never reaches 0)."""
    return 1.0 - torch.rand(batch_size, device=device)


def sample_target_mask(ratio: Tensor, num_heads: int) -> Tensor:
    """[B, M] bool: tokens masked independently with probability ratio[b], given >= 1 masked.

    Exact conditional sampling, no rejection loop: the first masked position J has
    P(J = j | J < M) proportional to (1 - r)^j r (inverse CDF below); the positions after
    J are then independent Bernoulli(r) draws and the ones before it unmasked.
    """
    batch_size = ratio.shape[0]
    position = torch.arange(num_heads, device=ratio.device)
    log_keep = torch.log1p(-ratio)[:, None]  # log(1 - r), -inf at r = 1
    cdf = torch.expm1((position + 1) * log_keep) / torch.expm1(num_heads * log_keep)  # P(J <= j | J < M), [B, M]
    first = (cdf < torch.rand(batch_size, 1, device=ratio.device)).sum(dim=1).clamp(max=num_heads - 1)  # J, [B]
    later = torch.rand(batch_size, num_heads, device=ratio.device) < ratio[:, None]
    return (position == first[:, None]) | ((position > first[:, None]) & later)


def prob_any_masked(ratio: Tensor, num_heads: int) -> Tensor:
    """P(at least one of M tokens masked | r) = 1 - (1 - r)^M, accurate for tiny r: [B]."""
    return -torch.expm1(num_heads * torch.log1p(-ratio))


def sample_history_mask(
    history_padding: Tensor, num_heads: int, ratio: Tensor, mode: Literal["token", "per_item"]
) -> tuple[Tensor, Tensor]:
    """Masked history tokens [B, L, M] bool and each token's mask ratio [B, L, M] (for 1/r).

    history_padding: [B, L] bool; ratio: [B] (used by ``mode="token"``).  Padding is never
    masked.  ``per_item``: each item masks a uniform random subset of k ~ U{1..M} tokens.
    """
    batch_size, length = history_padding.shape
    device = history_padding.device
    real = ~history_padding[..., None]  # [B, L, 1]
    if mode == "token":
        mask = torch.rand(batch_size, length, num_heads, device=device) < ratio[:, None, None]
        token_ratio = ratio[:, None, None].expand(batch_size, length, num_heads)
    elif mode == "per_item":
        num_masked = torch.randint(1, num_heads + 1, (batch_size, length, 1), device=device)  # k
        rank = torch.rand(batch_size, length, num_heads, device=device).argsort(dim=-1).argsort(dim=-1)
        mask = rank < num_masked  # a uniformly random k-subset of the M tokens
        token_ratio = (num_masked.float() / num_heads).expand(batch_size, length, num_heads)
    else:
        raise ValueError(f"history mask mode must be 'token' or 'per_item', got {mode!r}")
    return mask & real, token_ratio


def masked_diffusion_loss(logits: Tensor, targets: Tensor, mask: Tensor, ratio: Tensor, normaliser: Tensor) -> Tensor:
    """mean_b [ sum_s mask[b,s] * -log softmax(logits[b,s])[targets[b,s]] / ratio[b,s] ] / normaliser[b].

    logits [B, S, K]; targets [B, S] long; mask [B, S] bool; ratio broadcastable to [B, S]
    (values in (0, 1]); normaliser [B] (or a number) > 0.  Log-probabilities in float32.
    """
    log_probs = F.log_softmax(logits.float(), dim=-1)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [B, S]
    weighted = torch.where(mask, nll / ratio, torch.zeros_like(nll))
    normaliser = torch.as_tensor(normaliser, dtype=torch.float32, device=logits.device)
    return (weighted.sum(dim=1) / normaliser).mean()


# -- the LightningModule ----------------------------------------------------------------
class LLaDARec(SemanticIdRecommender):
    """Bidirectional mask predictor over [history ; target] semantic IDs, decoded by beam search."""

    def __init__(
        self,
        d_model: int = 256,
        num_layers: int = 4,
        num_attention_heads: int = 8,
        ffn_ratio: int = 4,
        dropout: float = 0.1,
        attention: AttentionKind = "bidirectional",
        alpha: float = 3.5,
        temperature: float = 1.0,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        warmup_ratio: float = 0.1,
        history_mask: Literal["token", "per_item", "none"] = "token",
        item_mask: bool = True,
        beam_size: int = 50,
        val_beam_size: int = 10,
        num_steps: int = 4,
        order: Literal["adaptive", "left_to_right", "right_to_left"] = "adaptive",
        constrained: bool = True,
        decode_chunk_size: int = 4096,
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        """Sizes and optimisation follow SPEC §4; decoding (beam sizes, T, order) §5.

        beam_size / val_beam_size: beams at test/predict and at validation; 1 is greedy
        decoding ("w/o beam search"), and fewer than top_k beams return fewer items (0-padded).
        decode_chunk_size: rows (user x beam) per mask-predictor call while decoding.
        """
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        if history_mask not in ("token", "per_item", "none"):
            raise ValueError(f"history_mask must be 'token', 'per_item' or 'none', got {history_mask!r}")
        if history_mask == "none" and not item_mask:
            raise ValueError("history_mask='none' with item_mask=False leaves no training loss")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if min(beam_size, val_beam_size) < 1:
            raise ValueError(f"beam_size={beam_size} and val_beam_size={val_beam_size} must be >= 1")
        if not 0.0 <= warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        self.mask_predictor: Optional[MaskPredictor] = None

    # -- set-up -------------------------------------------------------------------------
    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Create the mask predictor; keep the codes as buffer ``item_code_table`` [N+1, M] (row 0 = padding)."""
        if info.num_heads >= 1 and info.num_heads % self.hparams.num_steps != 0:
            raise ValueError(f"num_steps={self.hparams.num_steps} must divide the number of heads M={info.num_heads}")
        self.register_code_table(info, item_codes)
        hp = self.hparams
        self.mask_predictor = MaskPredictor(
            num_heads=info.num_heads,
            codebook_size=info.codebook_size,
            max_items=info.max_history + 1,
            d_model=hp.d_model,
            num_layers=hp.num_layers,
            num_attention_heads=hp.num_attention_heads,
            ffn_ratio=hp.ffn_ratio,
            dropout=hp.dropout,
            attention=hp.attention,
        )

    # -- training -----------------------------------------------------------------------
    def item_loss(self, history_tokens: Tensor, history_padding: Tensor, target_codes: Tensor) -> Tensor:
        """L_Item: the target's tokens masked at ratio r, history fully visible."""
        batch_size, num_heads = target_codes.shape
        ratio = sample_mask_ratio(batch_size, target_codes.device)
        mask = sample_target_mask(ratio, num_heads)  # [B, M], >= 1 masked per row
        noisy_target = target_codes.masked_fill(mask, MASKED_CODE)
        logits = self.mask_predictor.target_logits(history_tokens, history_padding, noisy_target)
        # masks are drawn given >= 1 masked: weight 1/r * P(>= 1 masked | r) keeps SPEC's expectation
        effective_ratio = ratio / prob_any_masked(ratio, num_heads)
        return masked_diffusion_loss(logits.float() / self.hparams.temperature, target_codes, mask, effective_ratio[:, None], float(num_heads))

    def history_loss(self, history_codes: Tensor, history_padding: Tensor) -> Tensor:
        """L_His: the history's tokens masked, target absent (newest history item at position 0), / |S_H|."""
        predictor = self.mask_predictor
        batch_size, length, num_heads = history_codes.shape
        ratio = sample_mask_ratio(batch_size, history_codes.device)
        mask, token_ratio = sample_history_mask(history_padding, num_heads, ratio, self.hparams.history_mask)
        tokens, padding = predictor.history_tokens(history_codes.masked_fill(mask, MASKED_CODE), history_padding)
        logits = predictor(tokens, padding)  # [B, L*M, K]
        history_size = (~history_padding).sum(dim=1).float() * num_heads  # |S_H|
        return masked_diffusion_loss(
            logits.float() / self.hparams.temperature,
            history_codes.reshape(batch_size, -1),
            mask.reshape(batch_size, -1),
            token_ratio.reshape(batch_size, -1),
            history_size.clamp(min=1.0),
        )

    def compute_losses(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(joint loss, L_Item, L_His) of one sequence batch; a switched-off term is 0."""
        history, target = batch["history"], batch["target"]
        history_codes = self.item_code_table[history]  # [B, L, M]
        history_padding = history == 0  # [B, L]
        zero = torch.zeros((), device=history.device)
        item_loss = history_loss = zero
        if self.hparams.item_mask:
            history_tokens, token_padding = self.mask_predictor.history_tokens(history_codes, history_padding)
            item_loss = self.item_loss(history_tokens, token_padding, self.item_code_table[target])
        if self.hparams.history_mask != "none":
            history_loss = self.history_loss(history_codes, history_padding)
        return item_loss + self.hparams.alpha * history_loss, item_loss, history_loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, item_loss, history_loss = self.compute_losses(batch)
        batch_size = batch["target"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        self.log("train/item_loss", item_loss, batch_size=batch_size)
        self.log("train/history_loss", history_loss, batch_size=batch_size)
        return loss

    def configure_optimizers(self):
        hp = self.hparams
        return adamw_warmup_cosine(self, self.trainer, hp.lr, hp.weight_decay, hp.warmup_ratio)

    # -- recommendation -----------------------------------------------------------------
    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        """Top-k items [B, k] (0 = none) and their total log-probabilities [B, k], best first."""
        hp = self.hparams
        return self.decode(
            self.mask_predictor,
            history,
            k,
            beam_size=hp.val_beam_size if stage == "val" else hp.beam_size,
            num_steps=hp.num_steps,
            order=hp.order,
            constrained=hp.constrained,
            temperature=hp.temperature,
            chunk_size=hp.decode_chunk_size,
        )
