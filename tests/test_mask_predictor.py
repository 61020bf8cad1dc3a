"""MaskPredictor: shapes, attention variants, padding invariance, per-head outputs."""

from __future__ import annotations

import pytest
import torch

from llada_rec.models.mask_predictor import MaskPredictor, structure_mask
from llada_rec.models.transformer import TransformerConfig, TransformerEncoder, attention_mask

M, K = 3, 5  # heads, codebook size


def tiny_predictor(attention: str = "bidirectional", max_items: int = 6, num_layers: int = 2) -> MaskPredictor:
    torch.manual_seed(0)
    network = TransformerConfig(d_model=16, num_layers=num_layers, num_attention_heads=2, ffn_ratio=2, dropout=0.1)
    model = MaskPredictor(M, K, max_items, network, attention=attention)
    return model.eval()


def random_sequence(batch_size: int = 2, length: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """History codes [B, L, M], padding [B, L] (no padding), target codes [B, M]."""
    g = torch.Generator().manual_seed(seed)
    history_codes = torch.randint(K, (batch_size, length, M), generator=g)
    target_codes = torch.randint(K, (batch_size, M), generator=g)
    return history_codes, torch.zeros(batch_size, length, dtype=torch.bool), target_codes


def full_sequence(model: MaskPredictor, history_codes, history_padding, target_codes):
    tokens, padding = model.history_tokens(history_codes, history_padding)
    return model.sequence(tokens, padding, target_codes)


def test_output_shape_and_token_ids():
    model = tiny_predictor()
    history_codes, history_padding, target_codes = random_sequence(batch_size=2, length=3)
    target_codes[:, 1] = -1
    history_padding[0, 0] = True
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    assert tokens.shape == padding.shape == (2, 4 * M)
    # token id = m*K + code; padding items -> [PAD]; -1 -> [MASK]
    assert tokens[1, M + 2] == 2 * K + history_codes[1, 1, 2]
    assert (tokens[0, :M] == model.pad_token).all() and padding[0, :M].all() and not padding[0, M:].any()
    assert tokens[0, -M + 1] == model.mask_token
    logits = model(tokens, padding)
    assert logits.shape == (2, 4 * M, K)
    assert torch.allclose(model.target_logits(*model.history_tokens(history_codes, history_padding), target_codes), logits[:, -M:], atol=1e-6)


def test_too_many_items_is_a_clear_error():
    model = tiny_predictor(max_items=3)
    history_codes, history_padding, target_codes = random_sequence(length=3)  # 4 items > 3
    with pytest.raises(ValueError, match="max_items"):
        model(*full_sequence(model, history_codes, history_padding, target_codes))


# For each variant: may token `query` see token `key`? Tokens: 3 items x M=3 (item = s // 3).
VISIBILITY = {
    "bidirectional": [(0, 8, True), (8, 0, True), (4, 5, True)],
    "causal": [(4, 5, False), (4, 3, True), (2, 6, False), (6, 2, True)],
    "inter_item_causal": [(3, 5, True), (5, 3, True), (2, 6, False), (6, 2, True)],
    "intra_item_causal": [(3, 5, False), (5, 3, True), (2, 6, True), (6, 2, True)],
}


@pytest.mark.parametrize("attention", sorted(VISIBILITY))
def test_attention_variants(attention: str):
    """A change to a token changes another's output exactly when the variant lets it see it.

    One layer: with more, intra-item-causal tokens see everything through other items.
    """
    model = tiny_predictor(attention, num_layers=1)
    history_codes, history_padding, target_codes = random_sequence(batch_size=1, length=2)
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        base = model.encode(tokens, padding)
        for query, key, visible in VISIBILITY[attention]:
            changed_tokens = tokens.clone()
            changed_tokens[0, key] = model.mask_token
            changed = model.encode(changed_tokens, padding)
            moved = not torch.allclose(changed[0, query], base[0, query], atol=1e-6)
            assert moved == visible, f"{attention}: query {query} key {key}"


def test_structure_masks_by_rule():
    n_items = 3
    s = torch.arange(n_items * M)
    item = s // M
    causal = structure_mask("causal", n_items, M)
    inter = structure_mask("inter_item_causal", n_items, M)
    intra = structure_mask("intra_item_causal", n_items, M)
    assert structure_mask("bidirectional", n_items, M) is None
    for q in range(n_items * M):
        for k in range(n_items * M):
            assert bool(causal[q, k]) == (k <= q)
            assert bool(inter[q, k]) == (item[k] <= item[q])
            assert bool(intra[q, k]) == (item[k] != item[q] or k <= q)
    with pytest.raises(ValueError, match="attention"):
        structure_mask("sideways", n_items, M)


@pytest.mark.parametrize("attention", ["bidirectional", "causal", "inter_item_causal", "intra_item_causal"])
def test_left_padding_does_not_change_outputs(attention: str):
    model = tiny_predictor(attention)
    history_codes, history_padding, target_codes = random_sequence(batch_size=2, length=2)
    target_codes[0, 0] = -1
    with torch.no_grad():
        logits = model(*full_sequence(model, history_codes, history_padding, target_codes))
        padded_codes = torch.cat([torch.randint(K, (2, 2, M)), history_codes], dim=1)  # pad rows hold junk codes
        padded_padding = torch.cat([torch.ones(2, 2, dtype=torch.bool), history_padding], dim=1)
        padded_logits = model(*full_sequence(model, padded_codes, padded_padding, target_codes))
    assert torch.isfinite(padded_logits).all()
    torch.testing.assert_close(padded_logits[:, 2 * M :], logits, atol=1e-5, rtol=1e-5)


def test_padding_is_never_attended_to():
    """Changing the token under a padding position leaves every real output unchanged."""
    model = tiny_predictor()
    history_codes, history_padding, target_codes = random_sequence(batch_size=1, length=3)
    history_padding[0, 0] = True
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        base = model(tokens, padding)
        tokens[0, :M] = model.mask_token
        changed = model(tokens, padding)
    torch.testing.assert_close(changed[:, M:], base[:, M:])


def test_logits_of_a_position_score_only_its_head_codes():
    """Perturbing head 1's code embeddings (unused in the input) moves only head-1 positions' logits."""
    model = tiny_predictor()
    history_codes, history_padding, target_codes = random_sequence(batch_size=2, length=2)
    history_codes[:, :, 1] = 0
    target_codes[:, 1] = -1  # head-1 code embeddings 1..K-1 never enter the input
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        base = model(tokens, padding)
        model.token_embedding.weight[1 * K + 1 : 2 * K] += 1.0
        changed = model(tokens, padding)
    head = torch.arange(tokens.shape[1]) % M
    torch.testing.assert_close(changed[:, head != 1], base[:, head != 1])
    assert not torch.allclose(changed[:, head == 1, 1:], base[:, head == 1, 1:])
    torch.testing.assert_close(changed[:, head == 1, 0], base[:, head == 1, 0])  # code 0 row untouched


def test_head_embedding_tells_masked_tokens_apart():
    """Two [MASK] target tokens get different outputs only through their head/position."""
    model = tiny_predictor()
    history_codes, history_padding, _ = random_sequence(batch_size=1, length=2)
    target = torch.full((1, M), -1)
    with torch.no_grad():
        hidden = model.encode(*full_sequence(model, history_codes, history_padding, target))
    assert not torch.allclose(hidden[0, -1], hidden[0, -2])


def test_encoder_mask_pattern_and_padded_queries_are_finite():
    torch.manual_seed(0)
    encoder = TransformerEncoder(TransformerConfig(d_model=8, num_layers=1, num_attention_heads=2, ffn_ratio=2, dropout=0.0)).eval()
    padding = torch.tensor([[True, True, False, False]])
    mask = attention_mask(padding)
    assert mask.shape == (1, 1, 4, 4)
    assert not mask[0, 0, 2, 0] and mask[0, 0, 2, 3] and mask[0, 0, 0, 0] and not mask[0, 0, 0, 1]
    out = encoder(torch.randn(1, 4, 8), mask)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("attention", ["causal", "inter_item_causal"])
def test_causal_variants_hide_later_items_through_every_layer(attention: str):
    model = tiny_predictor(attention, num_layers=3)
    history_codes, history_padding, target_codes = random_sequence(batch_size=1, length=2)
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        base = model(tokens, padding)
        tokens[0, -M:] = model.mask_token  # change the whole target item
        changed = model(tokens, padding)
    torch.testing.assert_close(changed[:, : 2 * M], base[:, : 2 * M])
    assert not torch.allclose(changed[:, -1], base[:, -1])


@pytest.mark.parametrize("attention", ["bidirectional", "causal", "inter_item_causal", "intra_item_causal"])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_target_logits_equal_the_full_forward_at_the_target(attention: str, num_layers: int):
    # target_logits computes only the target's queries in the last layer; same numbers.
    model = tiny_predictor(attention, num_layers=num_layers)
    history_codes, history_padding, target_codes = random_sequence(batch_size=3, length=4)
    history_padding[0, :2] = True  # left padding
    target_codes[:, 0] = -1
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        full = model(tokens, padding)[:, -M:]
        history_tokens, token_padding = model.history_tokens(history_codes, history_padding)
        fast = model.target_logits(history_tokens, token_padding, target_codes)
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)


# -- backbone options (the authors' LLaMA-style block, untied output, init) ---------------
def llama_predictor(**overrides) -> MaskPredictor:
    torch.manual_seed(0)
    network = dict(d_model=16, num_layers=2, num_attention_heads=2, ffn_ratio=2, dropout=0.0, block="llama")
    network.update({k: overrides.pop(k) for k in list(overrides) if k in network})
    return MaskPredictor(M, K, 6, TransformerConfig(**network), **overrides).eval()


def test_llama_block_has_no_biases_and_rms_norms():
    model = llama_predictor(output_layer="untied")
    linear_biases = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m.bias is not None]
    assert linear_biases == []
    norms = [m for m in model.modules() if isinstance(m, (torch.nn.LayerNorm, torch.nn.RMSNorm))]
    assert len(norms) == 2 * 2 + 1 and all(isinstance(m, torch.nn.RMSNorm) for m in norms)
    assert all(not hasattr(m, "bias") or m.bias is None for m in norms)
    layer = model.encoder.layers[0]
    assert layer.ffn.gate_up.weight.shape == (2 * 2 * 16, 16) and layer.ffn.proj.weight.shape == (16, 2 * 16)
    # RMSNorm: x / sqrt(mean(x^2) + eps) * weight; no centring (a shifted input is not renormalised to 0 mean)
    norm = norms[0]
    x = torch.randn(3, 16) + 5.0
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, 16))
        expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + torch.finfo(torch.float32).eps) * norm.weight
        torch.testing.assert_close(norm(x), expected)
    assert norm(x).mean().abs() > 0.5  # a LayerNorm would give mean ~0 here
    gpt = tiny_predictor()
    assert any(m.bias is not None for m in gpt.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize("output_layer", ["tied", "untied"])
def test_llama_block_shapes_and_padding_invariance(output_layer: str):
    model = llama_predictor(output_layer=output_layer)
    history_codes, history_padding, target_codes = random_sequence(batch_size=2, length=3)
    target_codes[:, 0] = -1
    tokens, padding = full_sequence(model, history_codes, history_padding, target_codes)
    with torch.no_grad():
        logits = model(tokens, padding)
        assert logits.shape == (2, 4 * M, K)
        # two more padding items on the left: the real tokens' outputs do not change
        pad_codes = torch.zeros(2, 2, M, dtype=torch.long)
        padded = full_sequence(
            model, torch.cat([pad_codes, history_codes], 1), torch.cat([torch.ones(2, 2, dtype=torch.bool), history_padding], 1), target_codes
        )
        padded_logits = model(*padded)
        fast = model.target_logits(*model.history_tokens(history_codes, history_padding), target_codes)
    torch.testing.assert_close(padded_logits[:, 2 * M :], logits, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, logits[:, -M:], rtol=1e-5, atol=1e-5)


def test_untied_output_is_its_own_parameter_and_init_schemes():
    tied, untied = llama_predictor(output_layer="tied"), llama_predictor(output_layer="untied")
    assert tied.untied_output is None
    assert tied.output_weight().data_ptr() == tied.token_embedding.weight.data_ptr()
    assert untied.output_weight().shape == (M, K, 16)
    assert untied.output_weight().data_ptr() != untied.token_embedding.weight.data_ptr()
    assert sum(p.numel() for p in untied.parameters()) == sum(p.numel() for p in tied.parameters()) + M * K * 16
    # "gpt": N(0, 0.02) embeddings; "default": PyTorch's N(0, 1)
    assert llama_predictor(init="gpt").token_embedding.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert llama_predictor(init="default").token_embedding.weight.std().item() == pytest.approx(1.0, rel=0.2)
    with pytest.raises(ValueError, match="output_layer"):
        llama_predictor(output_layer="shared")
    with pytest.raises(ValueError, match="block"):
        llama_predictor(block="mamba")


def test_shared_history_targets_equal_each_target_alone():
    model = tiny_predictor("cached_history").eval()
    history_codes, history_padding, _ = random_sequence(batch_size=3, length=4)
    history_padding[0, :2] = True  # a shorter, left-padded history
    history_tokens, token_padding = model.history_tokens(history_codes, history_padding)
    g = torch.Generator().manual_seed(5)
    targets = torch.randint(0, K, (3, 3, M), generator=g)
    targets[torch.rand(3, 3, M, generator=g) < 0.5] = -1  # partly masked, differently per draw
    shared = model.shared_history_target_logits(history_tokens, token_padding, targets)  # [B, n, M, K]
    alone = torch.stack([model.target_logits(history_tokens, token_padding, targets[:, j]) for j in range(3)], dim=1)
    assert shared.shape == (3, 3, M, K)
    torch.testing.assert_close(shared, alone)


def test_shared_history_needs_the_cached_history_attention():
    model = tiny_predictor("bidirectional")
    history_codes, history_padding, targets = random_sequence()
    history_tokens, token_padding = model.history_tokens(history_codes, history_padding)
    with pytest.raises(ValueError, match="cached_history"):
        model.shared_history_target_logits(history_tokens, token_padding, targets[:, None])
