"""LLaDARec: masking, loss weighting, ablation switches, training and decoding on a toy task."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

import llada_rec.models.llada_rec as llada_module
from llada_rec.metrics import RecallAtK
from llada_rec.models.base import DataInfo
from llada_rec.models.llada_rec import (
    LLaDARec,
    masked_diffusion_loss,
    prob_any_masked,
    sample_item_ratio_mask,
    sample_subset_mask,
    sample_target_mask,
    sample_token_mask,
)
from llada_rec.models.optim import warmup_cosine
from llada_rec.models.transformer import TransformerConfig
from llada_rec.decoding import DecodingConfig

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


# -- pure functions ---------------------------------------------------------------------
def test_masked_diffusion_loss_by_hand():
    # Position logits [0, ln3] -> p = (1/4, 3/4); [0, 0] -> (1/2, 1/2); [ln3, 0] -> (3/4, 1/4).
    row = torch.tensor([[0.0, LN3], [0.0, 0.0], [LN3, 0.0]])
    logits = torch.stack([row, row])  # [2, 3, 2]
    targets = torch.tensor([[1, 0, 1], [0, 0, 0]])
    mask = torch.tensor([[True, True, False], [False, False, True]])
    ratio = torch.tensor([[0.5], [0.25]])
    normaliser = torch.tensor([3.0, 1.0])
    # row 0: (-log 3/4 - log 1/2) / 0.5 / 3 ; row 1: (-log 3/4) / 0.25 / 1
    expected = ((LN4 - LN3 + LN2) / 0.5 / 3 + (LN4 - LN3) / 0.25) / 2
    loss = masked_diffusion_loss(logits, targets, mask, ratio, normaliser)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # a per-token ratio (per_item masking) weights each token by its own 1/r
    token_ratio = torch.tensor([[0.5, 1.0, 1.0], [1.0, 1.0, 0.25]])
    expected_tokens = ((LN4 - LN3) / 0.5 / 3 + LN2 / 1.0 / 3 + (LN4 - LN3) / 0.25) / 2
    assert masked_diffusion_loss(logits, targets, mask, token_ratio, normaliser).item() == pytest.approx(expected_tokens, rel=1e-6)


def test_target_mask_is_independent_masking_given_at_least_one():
    torch.manual_seed(0)
    tiny = sample_target_mask(torch.full((4000,), 1e-6), num_heads=4)
    assert (tiny.sum(dim=1) == 1).all()  # exactly one, chosen uniformly
    assert (tiny.float().mean(dim=0) - 0.25).abs().max() < 0.04
    assert sample_target_mask(torch.ones(50), num_heads=4).all()
    # every pattern with >= 1 masked has probability r^k (1-r)^(M-k) / (1 - (1-r)^M)
    r, num_heads, n = 0.3, 3, 40000
    masks = sample_target_mask(torch.full((n,), r), num_heads)
    assert masks.any(dim=1).all()
    pattern = (masks.long() * torch.tensor([1, 2, 4])).sum(dim=1)
    frequency = torch.bincount(pattern, minlength=8).float() / n
    for code in range(1, 8):
        k = bin(code).count("1")
        expected = r**k * (1 - r) ** (num_heads - k) / (1 - (1 - r) ** num_heads)
        assert frequency[code].item() == pytest.approx(expected, abs=0.01), code


def test_target_weighting_keeps_the_independent_masking_expectation():
    """E[sum_masked a_m * P(>=1 masked)/r] under the conditional draw = sum_m a_m (SPEC's E_indep[sum/r])."""
    torch.manual_seed(1)
    per_token = torch.tensor([0.5, 1.0, 2.0, 4.0])  # stand-in for -log p at each head
    for r in (0.05, 0.4, 1.0):
        ratio = torch.full((50000,), r)
        masks = sample_target_mask(ratio, 4)
        weighted = (masks * per_token).sum(dim=1) * prob_any_masked(ratio, 4) / r
        assert weighted.mean().item() == pytest.approx(per_token.sum().item(), rel=0.03), r
    assert prob_any_masked(torch.tensor([1e-7, 1.0]), 4).tolist() == pytest.approx([4e-7, 1.0], rel=1e-4)


def test_history_masks_skip_padding():
    torch.manual_seed(0)
    padding = torch.tensor([[True, False, False], [False, False, False]]).repeat(500, 1)  # [1000, 3]
    mask, ratio = sample_token_mask(padding, 4, torch.full((1000,), 0.3))
    assert not mask[padding].any()
    assert mask[~padding].float().mean().item() == pytest.approx(0.3, abs=0.02)
    assert (ratio == 0.3).all()

    mask, ratio = sample_subset_mask(padding, 4)
    assert not mask[padding].any()
    per_item = mask.sum(dim=-1)[~padding]  # masked tokens of each real item: k ~ U{1..4}
    assert per_item.min() == 1 and per_item.max() == 4
    assert per_item.float().mean().item() == pytest.approx(2.5, abs=0.1)
    torch.testing.assert_close(ratio[~padding][:, 0], per_item.float() / 4)


def test_item_ratio_mask_draws_k_over_m_per_item():
    """The authors' L_His draw: per item p = k/M, k ~ U{0..M}; Bernoulli(p) per token; no padding."""
    torch.manual_seed(0)
    num_heads, n = 4, 40000
    padding = torch.tensor([[True, False, False]]).repeat(n, 1)  # [n, 3]
    mask, ratio = sample_item_ratio_mask(padding, num_heads)
    assert not mask[padding].any()
    item_ratio = ratio[..., 0][~padding]  # one ratio per real item, shared by its tokens
    assert (ratio == ratio[..., :1]).all()
    levels = torch.bincount((item_ratio * num_heads).round().long(), minlength=num_heads + 1).float() / item_ratio.numel()
    assert levels.tolist() == pytest.approx([1 / (num_heads + 1)] * (num_heads + 1), abs=0.01)  # k uniform on {0..M}
    masked = mask[~padding].float()  # [items, M]
    for k in range(num_heads + 1):  # given k, each token masked with probability k/M, independently
        rows = masked[(item_ratio * num_heads).round() == k]
        assert rows.mean().item() == pytest.approx(k / num_heads, abs=0.015), k
    assert mask.sum(dim=-1)[~padding].eq(0).float().mean().item() > 0.2  # items with nothing masked exist
    two = masked[(item_ratio == 0.5)]  # independent draws: P(both of heads 0 and 1) = p^2
    assert (two[:, 0] * two[:, 1]).mean().item() == pytest.approx(0.25, abs=0.02)


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, 10) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10) == pytest.approx(0.5)
    assert warmup_cosine(100, 100, 10) == pytest.approx(0.0, abs=1e-12)


# -- the module -------------------------------------------------------------------------
M, K, N = 2, 4, 12  # heads, codebook size, items


def toy_codes() -> torch.Tensor:
    """N unique (c1, c2) tuples in [0, K)^2, in a scrambled order: [N, M]."""
    g = torch.Generator().manual_seed(3)
    all_tuples = torch.cartesian_prod(torch.arange(K), torch.arange(K))
    return all_tuples[torch.randperm(K * K, generator=g)[:N]]


def make_model(**overrides) -> LLaDARec:
    torch.manual_seed(0)
    kwargs = dict(temperature=0.5, top_k=5, metric_ks=(1, 5)) | overrides
    model = LLaDARec(network=TransformerConfig(d_model=32, num_layers=2, num_attention_heads=2, ffn_ratio=2, dropout=0.0),
                     decoding=DecodingConfig(beam_size=8, val_beam_size=5, num_steps=2), **kwargs)
    model.data_info = DataInfo(num_items=N, max_history=4, num_heads=M, codebook_size=K)
    model.build(model.data_info, toy_codes())
    return model


def next_item(item: torch.Tensor) -> torch.Tensor:
    """The toy rule: the next item is a fixed function of the last one."""
    return item % N + 1


def toy_samples() -> list[tuple[list[int], int]]:
    """Chains start, f(start), ... of length 1..4; target = f(last)."""
    samples = []
    for start in range(1, N + 1):
        chain = [start]
        for _ in range(4):
            samples.append((list(chain), int(next_item(torch.tensor(chain[-1])))))
            chain.append(samples[-1][1])
    return samples


def collate(samples: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
    length = max(len(h) for h, _ in samples)
    history = torch.tensor([[0] * (length - len(h)) + h for h, _ in samples])  # left-padded
    index = torch.arange(len(samples))
    return {"history": history, "target": torch.tensor([t for _, t in samples]), "user": index, "sample": index}


def test_build_stores_codes_and_checks_them():
    model = make_model()
    assert model.item_code_table.shape == (N + 1, M)
    assert (model.item_code_table[0] == 0).all() and torch.equal(model.item_code_table[1:], toy_codes())
    bad = toy_codes().clone()
    bad[3, 1] = K
    with pytest.raises(ValueError, match="item_codes values"):
        model.build(model.data_info, bad)
    with pytest.raises(ValueError, match="leaves no training loss"):
        LLaDARec(history_mask="none", item_mask="none")
    with pytest.raises(ValueError, match="knows items 1..12"):
        make_model().eval().recommend(torch.tensor([[0, N + 1]]), 5, "test")


def test_item_loss_weighting_with_fixed_ratio_and_mask(monkeypatch):
    model = make_model(temperature=0.5).eval()
    batch = collate(toy_samples()[:3])
    ratio = torch.tensor([0.5, 0.25, 1.0])
    mask = torch.tensor([[True, False], [True, True], [False, True]])
    monkeypatch.setattr(llada_module, "sample_mask_ratio", lambda b, d: ratio)
    monkeypatch.setattr(llada_module, "sample_target_mask", lambda r, m: mask)
    predictor = model.mask_predictor
    history_codes = model.item_code_table[batch["history"]]
    target_codes = model.item_code_table[batch["target"]]
    tokens, padding = predictor.history_tokens(history_codes, batch["history"] == 0)
    loss = model.item_loss(tokens, padding, target_codes)

    noisy = torch.where(mask, torch.full_like(target_codes, -1), target_codes)
    with torch.no_grad():
        log_p = torch.log_softmax(predictor.target_logits(tokens, padding, noisy) / 0.5, dim=-1)
    expected = 0.0
    for b in range(3):
        for m in range(M):
            if mask[b, m]:
                weight = (1 - (1 - ratio[b].item()) ** M) / ratio[b].item()  # P(>= 1 masked | r) / r
                expected += -log_p[b, m, target_codes[b, m]].item() * weight / M / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_history_loss_weighting_with_fixed_ratio_and_mask(monkeypatch):
    model = make_model(temperature=1.0, history_mask="history_token").eval()
    batch = collate(toy_samples()[:4])  # histories of 1..4 items, left-padded to 4
    history_padding = batch["history"] == 0
    history_codes = model.item_code_table[batch["history"]]
    ratio = torch.tensor([1.0, 0.5, 0.25, 0.8])
    mask = torch.zeros(4, 4, M, dtype=torch.bool)
    mask[0, 3, 0] = mask[1, 2, 1] = mask[1, 3, 0] = mask[2, 1] = mask[3, 0, 1] = True
    monkeypatch.setattr(llada_module, "sample_mask_ratio", lambda b, d: ratio)
    monkeypatch.setattr(llada_module, "sample_token_mask", lambda p, m, r: (mask, r[:, None, None].expand(4, 4, M)))
    loss = model.history_loss(history_codes, history_padding, model.item_code_table[batch["target"]])

    predictor = model.mask_predictor
    tokens, padding = predictor.history_tokens(torch.where(mask, -1, history_codes), history_padding)
    with torch.no_grad():
        log_p = torch.log_softmax(predictor(tokens, padding), dim=-1)  # history alone: no target slot
        log_p = log_p.view(4, 4, M, K)
    expected = 0.0
    for b in range(4):
        history_size = int((~history_padding[b]).sum()) * M  # |S_H|
        for j, m in mask[b].nonzero().tolist():
            expected += -log_p[b, j, m, history_codes[b, j, m]].item() / ratio[b].item() / history_size / 4
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def _sequence_loss_with_mask(monkeypatch, model: LLaDARec, batch: dict, mask: torch.Tensor, ratio: torch.Tensor) -> float:
    """L_His of ``sequence_per_item`` with the mask draw fixed to ``mask`` / ``ratio`` [B, I, M]."""
    monkeypatch.setattr(llada_module, "sample_item_ratio_mask", lambda padding, m: (mask & ~padding[..., None], ratio))
    history_padding = batch["history"] == 0
    return model.history_loss(
        model.item_code_table[batch["history"]], history_padding, model.item_code_table[batch["target"]]
    ).item()


def test_sequence_history_loss_by_hand(monkeypatch):
    """Authors' L_His: [history ; target] masked, weight 1/p, / ((max_history + 1) * M) whatever the padding."""
    model = make_model(temperature=1.0).eval()  # history_mask defaults to sequence_per_item
    assert model.hparams.history_mask == "sequence_per_item"
    batch = collate(toy_samples()[:3])  # histories of 1..3 items, left-padded to 3
    history_padding = batch["history"] == 0
    codes = torch.cat([model.item_code_table[batch["history"]], model.item_code_table[batch["target"]][:, None]], dim=1)
    padding = torch.cat([history_padding, torch.zeros(3, 1, dtype=torch.bool)], dim=1)  # [3, 4]
    mask = torch.zeros(3, 4, M, dtype=torch.bool)
    mask[0, 0, 0] = True  # a padding slot: must stay unmasked
    mask[0, 3, 1] = mask[1, 2, 0] = mask[1, 3] = mask[2, 1, 1] = mask[2, 3, 0] = True  # the target (slot 3) included
    ratio = torch.full((3, 4, M), 0.5)
    ratio[1, 3] = 1.0
    ratio[2, 1] = 0.25
    loss = _sequence_loss_with_mask(monkeypatch, model, batch, mask, ratio)

    real_mask = mask & ~padding[..., None]
    predictor = model.mask_predictor
    tokens, token_padding = predictor.history_tokens(torch.where(real_mask, -1, codes), padding)
    with torch.no_grad():
        log_p = torch.log_softmax(predictor(tokens, token_padding), dim=-1).view(3, 4, M, K)
    slots = (model.data_info.max_history + 1) * M  # 5 items x M tokens, padding included
    expected = sum(
        -log_p[b, j, m, codes[b, j, m]].item() / ratio[b, j, m].item() / slots / 3 for b, j, m in real_mask.nonzero().tolist()
    )
    assert loss == pytest.approx(expected, rel=1e-5)
    assert expected > 0 and real_mask[:, 3].any()  # target tokens were masked and scored

    # one more column of left padding changes nothing: same normaliser, padding never attended
    wider = dict(batch, history=torch.cat([torch.zeros(3, 1, dtype=torch.long), batch["history"]], dim=1))
    wider_mask = torch.cat([torch.ones(3, 1, M, dtype=torch.bool), mask], dim=1)  # the new padding "drawn" masked
    wider_ratio = torch.cat([torch.full((3, 1, M), 0.5), ratio], dim=1)
    assert _sequence_loss_with_mask(monkeypatch, model, wider, wider_mask, wider_ratio) == pytest.approx(loss, rel=1e-5)

    # the target is part of the sequence: another target changes the loss
    other = dict(batch, target=next_item(batch["target"]))
    assert _sequence_loss_with_mask(monkeypatch, model, other, mask, ratio) != pytest.approx(loss, rel=1e-3)


@pytest.mark.parametrize("attention", ["bidirectional", "cached_history"])
def test_item_mask_draws_average_the_loss_over_independent_draws(attention):
    model = make_model(attention=attention, item_mask_draws=3).eval()
    batch = collate(toy_samples()[:6])
    predictor = model.mask_predictor
    history_codes = model.item_code_table[batch["history"]]
    history_tokens, token_padding = predictor.history_tokens(history_codes, batch["history"] == 0)
    target_codes = model.item_code_table[batch["target"]]  # [B, M]
    torch.manual_seed(11)
    loss = model.item_loss(history_tokens, token_padding, target_codes)
    # the same draws by hand: 3 masks per sample (a sample's draws adjacent), each scored alone
    torch.manual_seed(11)
    ratio = llada_module.sample_mask_ratio(18, "cpu")
    mask = sample_target_mask(ratio, M)
    weight_ratio = (ratio / prob_any_masked(ratio, M))[:, None]
    targets = target_codes.repeat_interleave(3, dim=0)
    logits = predictor.target_logits(history_tokens.repeat_interleave(3, dim=0), token_padding.repeat_interleave(3, dim=0), targets.masked_fill(mask, -1))
    expected = masked_diffusion_loss(logits / model.hparams.temperature, targets, mask, weight_ratio, float(M))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(ValueError, match="item_mask_draws"):
        make_model(item_mask_draws=0)


def test_ablation_switches_turn_terms_off():
    batch = collate(toy_samples()[:8])
    full = make_model(alpha=2.0)
    torch.manual_seed(5)
    loss, item_loss, history_loss = full.losses(batch).values()
    assert item_loss > 0 and history_loss > 0
    assert loss.item() == pytest.approx(item_loss.item() + 2.0 * history_loss.item(), rel=1e-6)

    no_history = make_model(alpha=2.0, history_mask="none")  # same seed -> same weights
    torch.manual_seed(5)
    loss_nh, item_nh, history_nh = no_history.losses(batch).values()
    assert history_nh.item() == 0.0
    assert loss_nh.item() == pytest.approx(item_loss.item(), rel=1e-6)  # same draws, same item term

    no_item = make_model(alpha=2.0, item_mask="none", history_mask="history_token")
    torch.manual_seed(5)
    loss_ni, item_ni, history_ni = no_item.losses(batch).values()
    assert item_ni.item() == 0.0 and history_ni > 0
    assert loss_ni.item() == pytest.approx(2.0 * history_ni.item(), rel=1e-6)
    torch.manual_seed(5)  # the history-only term does not see the target
    other_target = dict(batch, target=next_item(batch["target"]))
    assert no_item.losses(other_target)["loss"].item() == pytest.approx(loss_ni.item(), rel=1e-6)
    loss_ni.backward()
    assert no_item.mask_predictor.output_bias.grad is not None

    per_item = make_model(alpha=2.0, history_mask="history_per_item")  # every real history item has a masked token
    torch.manual_seed(5)
    _, item_pi, history_pi = per_item.losses(batch).values()
    assert item_pi.item() == pytest.approx(item_loss.item(), rel=1e-6) and 0 < history_pi.item() < math.inf


def test_optimizer_groups_decay_only_linear_weights():
    model = make_model(weight_decay=0.05)
    model.trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    decay, no_decay = model.configure_optimizers()["optimizer"].param_groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    decayed = {id(p) for p in decay["params"]}
    assert id(model.mask_predictor.encoder.layers[0].attn.qkv.weight) in decayed
    assert id(model.mask_predictor.token_embedding.weight) not in decayed
    assert id(model.mask_predictor.encoder.layers[0].ln_attn.weight) not in decayed
    assert id(model.mask_predictor.encoder.layers[0].attn.qkv.bias) not in decayed
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def _mean_loss(model: LLaDARec, batch: dict[str, torch.Tensor]) -> float:
    torch.manual_seed(123)
    with torch.no_grad():
        return sum(model.losses(batch)["loss"].item() for _ in range(10)) / 10


@pytest.mark.slow
def test_training_learns_the_toy_rule_and_recommends_it(tmp_path):
    """Loss falls, the decoder then ranks the next item first, and a checkpoint predicts alike."""
    model = make_model(lr=1e-2, weight_decay=0.0, alpha=1.0, temperature=0.5)
    samples = toy_samples()
    full_batch = collate(samples)
    before = _mean_loss(model.eval(), full_batch)
    model.train()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=1.0,
                        default_root_dir=tmp_path)
    steps = 200  # one epoch of 200 full batches: no per-epoch overhead
    loader = DataLoader(samples, batch_sampler=[list(range(len(samples)))] * steps, collate_fn=collate)
    trainer.fit(model, train_dataloaders=loader)
    model.eval()
    after = _mean_loss(model, full_batch)
    assert after < 0.7 * before, (before, after)

    items, scores = model.recommend(full_batch["history"], 5, "test")
    assert items.shape == scores.shape == (len(samples), 5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()  # best first
    recall = RecallAtK(1)(items, full_batch["target"]).item()
    assert recall >= 0.9, recall
    val_items, _ = model.recommend(full_batch["history"], 5, "val")  # the cheaper beam
    assert RecallAtK(1)(val_items, full_batch["target"]).item() >= 0.9

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = LLaDARec.load_from_checkpoint(path, weights_only=True).eval()
    assert torch.equal(restored.item_code_table, model.item_code_table)
    restored_items, restored_scores = restored.recommend(full_batch["history"], 5, "test")
    assert torch.equal(restored_items, items)
    torch.testing.assert_close(restored_scores, scores)
