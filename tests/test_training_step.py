"""LLaDA-Rec's training step computes logits only at the masked positions (and the last
layer's MLP only there); its losses and gradients must equal the dense formulation's:
logits at every position, the loss summed under the mask (the step before the speed-up)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import llada_rec.models.llada_rec as llada_module
from llada_rec.models.base import DataInfo
from llada_rec.models.llada_rec import LLaDARec
from llada_rec.models.mask_predictor import MASKED_CODE, selected_rows

NUM_ITEMS, MAX_HISTORY, M, K = 60, 6, 4, 16
MODES = {
    "class defaults": {},
    "recipe: cached_history, 16 draws, alpha 1": dict(attention="cached_history", item_mask_draws=16, alpha=1.0),
    "history_token, count": dict(history_mask="history_token", item_mask="count", temperature=0.5),
    "history_per_item, 4 draws": dict(history_mask="history_per_item", item_mask_draws=4),
    "causal, tied output": dict(attention="causal", output_layer="tied", init="gpt"),
}


def dense_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, ratio, normaliser) -> torch.Tensor:
    """mean_b sum_s mask * -log softmax(logits)[target] / ratio / normaliser[b], logits at every position."""
    nll = -F.log_softmax(logits.float(), dim=-1).gather(-1, targets[..., None])[..., 0]
    weight = torch.where(mask, 1.0 / torch.as_tensor(ratio, dtype=torch.float32), 0.0)  # 1/0 never reaches a gradient
    per_row = (nll * weight).sum(dim=1)
    return (per_row / torch.as_tensor(normaliser, dtype=torch.float32)).mean()


class DenseLLaDARec(LLaDARec):
    """The straightforward step: the same mask draws (same random calls, same order), logits
    of every position from ``head_logits``, the loss summed under the mask."""

    def item_loss(self, history_tokens, history_padding, target_codes):
        batch_size, num_heads = target_codes.shape
        draws, rows = self.hparams.item_mask_draws, batch_size * self.hparams.item_mask_draws
        if self.hparams.item_mask == "count":
            mask, ratio = llada_module.sample_subset_mask(target_codes.new_zeros(rows, 1, dtype=torch.bool), num_heads)
            mask, ratio = mask[:, 0], ratio[:, 0]
        else:
            ratio = llada_module.sample_mask_ratio(rows, target_codes.device)
            mask = llada_module.sample_target_mask(ratio, num_heads)
            ratio = (ratio / llada_module.prob_any_masked(ratio, num_heads))[:, None]
        targets = target_codes.repeat_interleave(draws, dim=0)
        noisy = targets.masked_fill(mask, MASKED_CODE)
        predictor = self.mask_predictor
        if draws > 1 and predictor.attention == "cached_history":
            logits = predictor.shared_history_target_logits(history_tokens, history_padding, noisy.view(batch_size, draws, num_heads))
            logits = logits.reshape(rows, num_heads, -1)
        else:
            repeated = [t.repeat_interleave(draws, dim=0) for t in (history_tokens, history_padding)]
            logits = predictor.target_logits(*repeated, noisy)
        return dense_loss(logits / self.hparams.temperature, targets, mask, ratio, float(num_heads))

    def history_loss(self, history_codes, history_padding, target_codes):
        batch_size, _, num_heads = history_codes.shape
        mode = self.hparams.history_mask
        if mode == "sequence_per_item":
            codes = torch.cat([history_codes, target_codes[:, None]], dim=1)
            padding = torch.cat([history_padding, history_padding.new_zeros(batch_size, 1)], dim=1)
            mask, ratio = llada_module.sample_item_ratio_mask(padding, num_heads)
            normaliser = float((self.data_info.max_history + 1) * num_heads)
        else:
            codes, padding = history_codes, history_padding
            if mode == "history_token":
                ratio = llada_module.sample_mask_ratio(batch_size, codes.device)
                mask, ratio = llada_module.sample_token_mask(padding, num_heads, ratio)
            else:
                mask, ratio = llada_module.sample_subset_mask(padding, num_heads)
            normaliser = ((~padding).sum(dim=1).float() * num_heads).clamp(min=1.0)
        tokens, token_padding = self.mask_predictor.history_tokens(codes.masked_fill(mask, MASKED_CODE), padding)
        logits = self.mask_predictor(tokens, token_padding)  # [B, I*M, K]: every position
        flat = [t.reshape(batch_size, -1) for t in (codes, mask, ratio)]
        return dense_loss(logits / self.hparams.temperature, flat[0], flat[1], flat[2], normaliser)


def seeded_batch(seed: int, batch_size: int = 9) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, MAX_HISTORY + 1, (batch_size,), generator=generator)
    history = torch.randint(1, NUM_ITEMS + 1, (batch_size, MAX_HISTORY), generator=generator)
    history = torch.where(torch.arange(MAX_HISTORY) >= MAX_HISTORY - lengths[:, None], history, 0)  # left-padded
    return {"history": history, "target": torch.randint(1, NUM_ITEMS + 1, (batch_size,), generator=generator)}


def built(model_class: type, settings: dict) -> LLaDARec:
    torch.manual_seed(0)
    model = model_class(network=dict(d_model=32, num_layers=2, num_attention_heads=2, dropout=0.0, block="llama"), **settings)
    info = DataInfo(num_items=NUM_ITEMS, max_history=MAX_HISTORY, num_heads=M, codebook_size=K)
    model.data_info = info
    model.build(info, torch.randint(0, K, (NUM_ITEMS, M), generator=torch.Generator().manual_seed(3)))
    return model.train()


def losses_and_grads(model: LLaDARec, batch: dict, seed: int) -> tuple[dict, dict]:
    model.zero_grad()
    torch.manual_seed(seed)
    losses = model.losses(batch)
    losses["loss"].backward()
    return {k: v.detach() for k, v in losses.items()}, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("settings", MODES.values(), ids=MODES.keys())
def test_step_equals_the_dense_formulation(settings):
    model = built(LLaDARec, settings)
    dense = built(DenseLLaDARec, settings)
    dense.load_state_dict(model.state_dict())
    for step in range(3):
        batch = seeded_batch(step)
        losses, grads = losses_and_grads(model, batch, seed=100 + step)
        expected_losses, expected_grads = losses_and_grads(dense, batch, seed=100 + step)
        assert losses["item_loss"] > 0 and losses["history_loss"] > 0
        for name, value in expected_losses.items():
            torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-6)
        assert grads.keys() == expected_grads.keys() and len(grads) > 5
        for name, value in expected_grads.items():
            torch.testing.assert_close(grads[name], value, rtol=1e-4, atol=1e-6 * float(value.abs().max()) + 1e-9)


def test_selected_rows_group_positions_by_head():
    selected = torch.tensor([[[True, False, True], [False, True, True]], [[False, False, True], [True, False, False]]])  # [2, 2, 3]
    rows, counts = selected_rows(selected)
    flat = selected.reshape(-1).nonzero()[:, 0]
    assert sorted(rows.tolist()) == sorted(flat.tolist())  # every selected position once
    assert counts == [2, 1, 3]
    assert (rows % 3).tolist() == [0, 0, 1, 2, 2, 2]  # head 0's first, then head 1's, head 2's
    assert selected_rows(torch.zeros(2, 3, 3, dtype=torch.bool))[1] == [0, 0, 0]


def test_a_batch_with_nothing_masked_gives_zero_history_loss(monkeypatch):
    model = built(LLaDARec, {})
    batch = seeded_batch(0)
    nothing = lambda padding, m: (torch.zeros(*padding.shape, m, dtype=torch.bool), torch.zeros(*padding.shape, m))  # noqa: E731
    monkeypatch.setattr(llada_module, "sample_item_ratio_mask", nothing)
    losses, grads = losses_and_grads(model, batch, seed=0)
    assert losses["history_loss"] == 0 and losses["item_loss"] > 0
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_rms_norm_matches_torch_in_values_and_gradients():
    from llada_rec.models.transformer import RMSNorm

    torch.manual_seed(0)
    ours, reference = RMSNorm(24), torch.nn.RMSNorm(24)
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        reference.weight.copy_(ours.weight)
    x = (torch.randn(5, 7, 24) * torch.rand(5, 7, 1) * 3).requires_grad_()
    upstream = torch.randn(5, 7, 24)
    outputs = []
    for norm in (ours, reference):
        x.grad = None
        y = norm(x)
        y.backward(upstream)
        outputs.append((y.detach(), x.grad.clone(), norm.weight.grad.clone()))
    for got, expected in zip(*outputs):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert set(ours.state_dict()) == set(reference.state_dict()) == {"weight"}  # checkpoints load either way
