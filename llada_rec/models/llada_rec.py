"""LLaDA-Rec: next-item recommendation as masked discrete diffusion over semantic IDs.

Training (SPEC §4, §4b) sums two masked-diffusion losses, each from one batched forward pass:
L_Item (``item_mask``: the target's tokens masked, history visible) and L_His
(``history_mask``: tokens of the user's history masked), as L_Item + alpha * L_His.
The modes:

- ``item_mask="ratio"``: r ~ U(0, 1], each target token masked with probability r given at
  least one, weight (1 - (1 - r)^M) / r, divided by M; ``"count"``: k ~ U{1..M}, a uniform
  k-subset masked, weight M/k, divided by M; ``"none"``: no L_Item.
- ``history_mask="sequence_per_item"``: over [history ; target], every item k ~ U{0..M},
  each of its tokens masked with probability p = k/M, weight 1/p, divided by the token slots
  of a full-length sequence, (max_history + 1) * M.  ``"history_token"``: over the history
  alone, one r ~ U(0, 1] per sample, weight 1/r, divided by the sample's |S_H|; the newest
  history item takes position 0.  ``"history_per_item"``: as ``history_token`` but every
  history item masks a uniform k-subset, k ~ U{1..M}, weight M/k.  ``"none"``: no L_His.

Which mode is the paper's formula and which the authors' code, why the defaults, the
measurements behind them and the Table 4 ablations: ``docs/DECISIONS.md``, "Mask predictor
and training".

Logits are divided by ``temperature`` in training and decoding.  Recommendation decodes
with ``llada_rec.decoding.diffusion_beam_search`` (SPEC §5).
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

from llada_rec.decoding import DecodingConfig
from llada_rec.models.base import DataInfo
from llada_rec.config_groups import resolve_configs
from llada_rec.models.transformer import TransformerConfig
from llada_rec.models.mask_predictor import MASKED_CODE, AttentionKind, InitScheme, MaskPredictor, OutputLayer, selected_rows
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


def sample_subset_mask(padding: Tensor, num_heads: int) -> tuple[Tensor, Tensor]:
    """Per real item, a uniform random k-subset of its M tokens, k ~ U{1..M}.

    padding: [B, I] bool -> mask [B, I, M] bool (never at padding), ratio k/M [B, I, M].
    """
    batch_size, num_items = padding.shape
    device = padding.device
    num_masked = torch.randint(1, num_heads + 1, (batch_size, num_items, 1), device=device)  # k
    rank = torch.rand(batch_size, num_items, num_heads, device=device).argsort(dim=-1).argsort(dim=-1)
    mask = (rank < num_masked) & ~padding[..., None]
    return mask, (num_masked.float() / num_heads).expand(batch_size, num_items, num_heads)


def sample_item_ratio_mask(padding: Tensor, num_heads: int) -> tuple[Tensor, Tensor]:
    """Per real item p = k/M with k ~ U{0..M}; each of its M tokens masked with probability p.

    padding: [B, I] bool -> mask [B, I, M] bool (never at padding; an item may have none
    masked), ratio p [B, I, M] (0 where k = 0, where nothing is masked).
    """
    batch_size, num_items = padding.shape
    device = padding.device
    ratio = torch.randint(0, num_heads + 1, (batch_size, num_items, 1), device=device).float() / num_heads
    mask = (torch.rand(batch_size, num_items, num_heads, device=device) < ratio) & ~padding[..., None]
    return mask, ratio.expand(batch_size, num_items, num_heads)


def sample_token_mask(padding: Tensor, num_heads: int, ratio: Tensor) -> tuple[Tensor, Tensor]:
    """Every real token masked with its sample's probability ratio[b].

    padding: [B, I] bool, ratio: [B] -> mask [B, I, M] bool, ratio [B, I, M].
    """
    batch_size, num_items = padding.shape
    mask = torch.rand(batch_size, num_items, num_heads, device=padding.device) < ratio[:, None, None]
    return mask & ~padding[..., None], ratio[:, None, None].expand(batch_size, num_items, num_heads)


def masked_token_weights(mask: Tensor, ratio: Tensor, normaliser: Tensor | float) -> Tensor:
    """Each token's weight in :func:`masked_diffusion_loss`: mask [B, ...] bool, ratio
    broadcastable to it, normaliser [B] (or a number) -> [B, ...] float32,
    1 / (ratio * normaliser[b] * B) where masked, 0 elsewhere."""
    weight = torch.where(mask, torch.as_tensor(ratio, dtype=torch.float32).reciprocal(), 0.0)  # no grad: 1/0 is never used
    normaliser = torch.as_tensor(normaliser, dtype=torch.float32, device=mask.device)
    per_row = (normaliser * mask.shape[0]).expand(mask.shape[0]).reshape(-1, *[1] * (mask.dim() - 1))
    return weight / per_row


def selected_diffusion_loss(logits: Tensor, targets: Tensor, weight: Tensor) -> Tensor:
    """sum_n weight[n] * -log softmax(logits[n])[targets[n]]: logits [N, K] of the masked
    positions only, targets [N] long, weight [N] (from :func:`masked_token_weights`).
    Log-probabilities in float32."""
    nll = -F.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (nll * weight).sum()


def masked_diffusion_loss(logits: Tensor, targets: Tensor, mask: Tensor, ratio: Tensor, normaliser: Tensor | float) -> Tensor:
    """mean_b [ sum_s mask[b,s] * -log softmax(logits[b,s])[targets[b,s]] / ratio[b,s] ] / normaliser[b].

    logits [B, S, K]; targets [B, S] long; mask [B, S] bool; ratio broadcastable to [B, S]
    (in (0, 1] where masked; unmasked entries may be 0); normaliser [B] (or a number) > 0.
    The dense form of the loss: training computes the logits at the masked positions only
    and calls :func:`selected_diffusion_loss` (the same value).
    """
    weight = masked_token_weights(mask, ratio, normaliser)
    return selected_diffusion_loss(logits[mask], targets[mask], weight[mask])


# -- the LightningModule ----------------------------------------------------------------
HistoryMask = Literal["sequence_per_item", "history_token", "history_per_item", "none"]
HISTORY_MASKS: tuple[str, ...] = get_args(HistoryMask)
ItemMask = Literal["ratio", "count", "none"]
ITEM_MASKS: tuple[str, ...] = get_args(ItemMask)


class LLaDARec(SemanticIdRecommender):
    """Bidirectional mask predictor over [history ; target] semantic IDs, decoded by beam search."""

    def __init__(
        self,
        network: TransformerConfig = TransformerConfig(block="llama"),
        attention: AttentionKind = "bidirectional",
        output_layer: OutputLayer = "untied",
        init: InitScheme = "default",
        alpha: float = 3.5,
        temperature: float = 1.0,
        lr: float = 6e-3,
        weight_decay: float = 0.05,
        warmup_ratio: float = 0.1,
        history_mask: HistoryMask = "sequence_per_item",
        item_mask: ItemMask = "ratio",
        item_mask_draws: int = 1,
        decoding: DecodingConfig = DecodingConfig(),
        top_k: int = 10,
        metric_ks: Sequence[int] = (1, 5, 10),
    ) -> None:
        """Sizes and optimisation follow SPEC §4; decoding §5.

        Args:
            network: the mask predictor's Transformer (``block="llama"``: the authors' backbone).
            attention: which tokens see which (paper Figure 3; ``cached_history`` decodes faster).
            output_layer: "tied" (the code embeddings score the codes) or "untied" (the authors').
            init: "gpt" (N(0, 0.02) weights) or "default" (PyTorch's, the authors').
            alpha: weight of L_His in L_Item + alpha * L_His.
            temperature: divides the logits in training and decoding.
            lr: peak AdamW learning rate.
            weight_decay: AdamW weight decay (Linear weights only).
            warmup_ratio: share of the steps in linear warm-up, then cosine decay.
            history_mask: L_His's mode (module docstring); "none" drops it.
            item_mask: L_Item's mode (module docstring); "none" drops it.
            item_mask_draws: target masks drawn per sample for L_Item; with
                ``attention="cached_history"`` the draws share one history pass.
            decoding: beam sizes, steps T, order; fewer beams than top_k return fewer items (0-padded).
            top_k: items recommended per user.
            metric_ks: the k of Recall@k and NDCG@k.
        """
        super().__init__(top_k=top_k, metric_ks=metric_ks)
        self.save_hyperparameters()
        self.network_config, self.decoding = resolve_configs(self, network=network, decoding=decoding)
        if history_mask not in HISTORY_MASKS:
            raise ValueError(f"history_mask must be one of {HISTORY_MASKS}, got {history_mask!r}")
        if item_mask not in ITEM_MASKS:
            raise ValueError(f"item_mask must be one of {ITEM_MASKS}, got {item_mask!r}")
        if item_mask_draws < 1:
            raise ValueError(f"item_mask_draws must be >= 1, got {item_mask_draws}")
        if history_mask == "none" and item_mask == "none":
            raise ValueError("history_mask='none' with item_mask='none' leaves no training loss")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {warmup_ratio}")
        self.mask_predictor: Optional[MaskPredictor] = None

    # -- set-up -------------------------------------------------------------------------
    def build(self, info: DataInfo, item_codes: Optional[Tensor] = None) -> None:
        """Create the mask predictor; keep the codes as buffer ``item_code_table`` [N+1, M] (row 0 = padding)."""
        num_steps = self.decoding.num_steps
        if info.num_heads >= 1 and info.num_heads % num_steps != 0:
            raise ValueError(f"num_steps={num_steps} must divide the number of heads M={info.num_heads}")
        self.register_code_table(info, item_codes)
        hp = self.hparams
        self.mask_predictor = MaskPredictor(
            info.num_heads, info.codebook_size, info.max_history + 1, self.network_config,
            attention=hp.attention, output_layer=hp.output_layer, init=hp.init,
        )

    # -- training -----------------------------------------------------------------------
    def item_loss(self, history_tokens: Tensor, history_padding: Tensor, target_codes: Tensor) -> Tensor:
        """L_Item: the target's tokens masked (``item_mask`` draw, ``item_mask_draws`` draws
        per sample), history fully visible, / M; averaged over samples and draws."""
        batch_size, num_heads = target_codes.shape
        draws = self.hparams.item_mask_draws
        rows = batch_size * draws
        if self.hparams.item_mask == "count":
            mask, ratio = sample_subset_mask(target_codes.new_zeros(rows, 1, dtype=torch.bool), num_heads)
            mask, ratio = mask[:, 0], ratio[:, 0]  # [B*n, M]
        else:
            ratio = sample_mask_ratio(rows, target_codes.device)
            mask = sample_target_mask(ratio, num_heads)  # [B*n, M], >= 1 masked per row
            # masks are drawn given >= 1 masked: weight 1/r * P(>= 1 masked | r) keeps SPEC's expectation
            ratio = (ratio / prob_any_masked(ratio, num_heads))[:, None]
        targets = target_codes.repeat_interleave(draws, dim=0)  # [B*n, M], a sample's draws adjacent
        noisy_target = targets.masked_fill(mask, MASKED_CODE)
        predictor = self.mask_predictor
        if draws > 1 and predictor.attention == "cached_history":  # one history pass serves every draw
            selected = mask.view(batch_size, draws, num_heads)
            logits = predictor.shared_history_target_logits(history_tokens, history_padding, noisy_target.view(selected.shape), selected)
        else:  # every draw with its own copy of the history (one draw: the history as it is)
            if draws > 1:
                history_tokens, history_padding = (t.repeat_interleave(draws, dim=0) for t in (history_tokens, history_padding))
            logits = predictor.target_logits(history_tokens, history_padding, noisy_target, selected=mask)
        # logits at the masked positions only, in selected_rows order ([B*n, 1, M] and [B, n, M] order alike)
        order, _ = selected_rows(mask[:, None])
        weight = masked_token_weights(mask, ratio, float(num_heads))
        return selected_diffusion_loss(self.tempered(logits), targets.reshape(-1)[order], weight.reshape(-1)[order])

    def history_loss(self, history_codes: Tensor, history_padding: Tensor, target_codes: Tensor) -> Tensor:
        """L_His in the ``history_mask`` mode; history_codes [B, L, M], history_padding [B, L],
        target_codes [B, M] (read by ``sequence_per_item`` only)."""
        predictor = self.mask_predictor
        mode = self.hparams.history_mask
        batch_size, length, num_heads = history_codes.shape
        if mode == "sequence_per_item":  # [history ; target], normalised by the full-length slots
            codes = torch.cat([history_codes, target_codes[:, None]], dim=1)  # [B, L+1, M]
            padding = torch.cat([history_padding, history_padding.new_zeros(batch_size, 1)], dim=1)
            mask, token_ratio = sample_item_ratio_mask(padding, num_heads)
            normaliser = torch.tensor(float((self.data_info.max_history + 1) * num_heads))
        else:  # the history alone, its newest item at position 0
            codes, padding = history_codes, history_padding
            if mode == "history_token":
                mask, token_ratio = sample_token_mask(padding, num_heads, sample_mask_ratio(batch_size, codes.device))
            else:
                mask, token_ratio = sample_subset_mask(padding, num_heads)
            normaliser = ((~padding).sum(dim=1).float() * num_heads).clamp(min=1.0)  # |S_H|
        tokens, token_padding = predictor.history_tokens(codes.masked_fill(mask, MASKED_CODE), padding)
        logits = predictor(tokens, token_padding, selected=mask)  # [N, K] at the masked tokens only
        order, _ = selected_rows(mask)
        weight = masked_token_weights(mask, token_ratio, normaliser)
        return selected_diffusion_loss(self.tempered(logits), codes.reshape(-1)[order], weight.reshape(-1)[order])

    def tempered(self, logits: Tensor) -> Tensor:
        """Logits / temperature in float32 (no division at temperature 1)."""
        temperature = self.hparams.temperature
        return logits.float() if temperature == 1.0 else logits.float() / temperature

    def losses(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """{"loss": L_Item + alpha * L_His, "item_loss": L_Item, "history_loss": L_His} of one
        sequence batch; a switched-off term is 0."""
        history, target = batch["history"], batch["target"]
        history_codes = self.item_code_table[history]  # [B, L, M]
        target_codes = self.item_code_table[target]  # [B, M]
        history_padding = history == 0  # [B, L]
        zero = torch.zeros((), device=history.device)
        item_loss = history_loss = zero
        if self.hparams.item_mask != "none":
            history_tokens, token_padding = self.mask_predictor.history_tokens(history_codes, history_padding)
            item_loss = self.item_loss(history_tokens, token_padding, target_codes)
        if self.hparams.history_mask != "none":
            history_loss = self.history_loss(history_codes, history_padding, target_codes)
        return {"loss": item_loss + self.hparams.alpha * history_loss, "item_loss": item_loss, "history_loss": history_loss}

    # -- recommendation -----------------------------------------------------------------
    def recommend(self, history: Tensor, k: int, stage: str) -> tuple[Tensor, Tensor]:
        """Top-k items [B, k] (0 = none) and their total log-probabilities [B, k], best first."""
        return self.decode(self.mask_predictor, history, k, **self.decoding.decode_args(stage), temperature=self.hparams.temperature)
