"""Decoding speed work: the exact decoder against the pre-speed-work path, the cached-history
attention variant (pattern and cache), and the speed benchmark script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llada_rec.decoding import DecodingConfig, diffusion_beam_search
from llada_rec.models.base import DataInfo
from llada_rec.models.llada_rec import LLaDARec
from llada_rec.models.mask_predictor import MaskPredictor
from llada_rec.models.transformer import TransformerConfig

REPO = Path(__file__).resolve().parents[1]
M, K, N = 4, 6, 120  # heads, codebook size, items


def item_codes(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.unique(torch.randint(K, (4 * N, M), generator=g), dim=0)
    return codes[torch.randperm(codes.shape[0], generator=g)[:N]]


def make_model(attention: str = "bidirectional", block: str = "gpt", num_layers: int = 2) -> LLaDARec:
    torch.manual_seed(0)
    model = LLaDARec(network=TransformerConfig(d_model=32, num_layers=num_layers, num_attention_heads=2, ffn_ratio=2, dropout=0.1, block=block),
                     decoding=DecodingConfig(beam_size=12, num_steps=4, chunk_size=40),
                     attention=attention, top_k=8, metric_ks=(1, 5), temperature=0.7)
    model.data_info = DataInfo(num_items=N, max_history=8, num_heads=M, codebook_size=K)
    model.build(model.data_info, item_codes())
    for p in model.parameters():  # larger weights than the init: peaked, user-dependent distributions
        torch.nn.init.normal_(p, std=0.3)
    return model.eval()


def mixed_histories(seed: int = 1) -> torch.Tensor:
    """[9, 8] left-padded histories of lengths 1..7 in a shuffled order, plus a column that is
    padding in every row (the batch is padded beyond its longest history)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([3, 7, 1, 5, 2, 7, 4, 6, 1])
    history = torch.randint(1, N + 1, (len(lengths), 8), generator=g)
    history[torch.arange(8) < 8 - lengths[:, None]] = 0
    return history


def reference_decode(model: LLaDARec, history: torch.Tensor, beam_size: int, num_steps: int, order: str):
    """The decoder before the speed work: every row through its full padded sequence."""
    predictor, hp = model.mask_predictor, model.hparams
    tokens, padding = predictor.history_tokens(model.item_code_table[history], history == 0)

    def log_prob_fn(rows, target):
        logits = predictor.target_logits(tokens[rows], padding[rows], target)
        return F.log_softmax(logits.float() / hp.temperature, dim=-1)

    result = diffusion_beam_search(log_prob_fn, history.shape[0], model.code_index(), beam_size=beam_size,
                                   num_steps=num_steps, top_k=hp.top_k, order=order)
    return result.items, result.log_probs


def decode(model: LLaDARec, history: torch.Tensor, beam_size: int, num_steps: int, order: str, use_cache: bool = True):
    hp = model.hparams
    return model.decode(model.mask_predictor, history, hp.top_k, beam_size=beam_size, num_steps=num_steps, order=order,
                        temperature=hp.temperature, chunk_size=model.decoding.chunk_size, use_cache=use_cache)


# -- the exact decoder equals the pre-speed-work path -------------------------------------
@pytest.mark.parametrize("attention", ["bidirectional", "causal", "intra_item_causal", "cached_history"])
@pytest.mark.parametrize("block", ["gpt", "llama"])
@pytest.mark.parametrize("num_steps,order,beam_size", [(4, "adaptive", 12), (2, "adaptive", 5), (1, "left_to_right", 3), (4, "right_to_left", 1)])
def test_exact_decoding_equals_reference(attention, block, num_steps, order, beam_size):
    model = make_model(attention, block)
    history = mixed_histories()
    with torch.no_grad():
        expected_items, expected_scores = reference_decode(model, history, beam_size, num_steps, order)
        items, scores = decode(model, history, beam_size, num_steps, order, use_cache=False)
    assert (expected_items[:, : min(beam_size, 8)] > 0).all()
    assert torch.equal(items, expected_items)
    torch.testing.assert_close(scores, expected_scores, rtol=1e-5, atol=1e-5)


def test_users_are_returned_in_their_input_order():
    model = make_model()
    history = mixed_histories()
    with torch.no_grad():
        items, scores = decode(model, history, 6, 4, "adaptive")
        for user in (0, 2, 5):  # alone, each user gets its own row of the batch result
            alone_items, alone_scores = decode(model, history[user : user + 1], 6, 4, "adaptive")
            assert torch.equal(alone_items[0], items[user])
            torch.testing.assert_close(alone_scores[0], scores[user], rtol=1e-5, atol=1e-5)


# -- the cached-history variant --------------------------------------------------------------
@pytest.mark.parametrize("block", ["gpt", "llama"])
def test_cached_history_pattern_history_ignores_the_target(block):
    """A change to a target token changes no history token's state, through every layer, and
    a change to a history token reaches the target."""
    predictor = make_model("cached_history", block, num_layers=3).mask_predictor
    history = mixed_histories()[:3]
    tokens, padding = predictor.history_tokens(predictor_codes(predictor, history), history == 0)
    target = torch.tensor([[1, -1, 2, -1]] * 3)
    sequence, sequence_padding = predictor.sequence(tokens, padding, target)
    changed = sequence.clone()
    changed[:, -M:] = predictor.code_tokens(torch.tensor([[3, 0, -1, 5]] * 3))
    with torch.no_grad():
        base = predictor.encode(sequence, sequence_padding)
        moved = predictor.encode(changed, sequence_padding)
        real = ~sequence_padding[:, :-M]
        assert torch.equal(base[:, :-M][real], moved[:, :-M][real])  # bit for bit
        assert not torch.allclose(base[:, -M:], moved[:, -M:])
        history_changed = sequence.clone()
        history_changed[:, -2 * M] = predictor.mask_token  # the newest history item's first token
        assert not torch.allclose(predictor.encode(history_changed, sequence_padding)[:, -M:], base[:, -M:])
    bidirectional = make_model("bidirectional", block, num_layers=3).mask_predictor
    with torch.no_grad():
        assert not torch.allclose(bidirectional.encode(sequence, sequence_padding)[:, :-M][real],
                                  bidirectional.encode(changed, sequence_padding)[:, :-M][real])


def predictor_codes(predictor: MaskPredictor, history: torch.Tensor) -> torch.Tensor:
    return item_codes()[(history - 1).clamp(min=0)]


@pytest.mark.parametrize("block", ["gpt", "llama"])
def test_cached_target_logits_equal_the_full_forward(block):
    predictor = make_model("cached_history", block).mask_predictor
    history = mixed_histories()  # users 1 and 5 have 7 items, users 2 and 8 one
    tokens, padding = predictor.history_tokens(predictor_codes(predictor, history), history == 0)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        cache = predictor.history_cache(tokens, padding)
        for users, beams, length in ((torch.tensor([1, 5]), 3, 7), (torch.tensor([8, 2, 8]), 2, 1)):
            target = torch.randint(-1, K, (len(users), beams, M), generator=g)
            cached = predictor.cached_target_logits(cache, users, target, length * M)
            rows = users.repeat_interleave(beams)
            full = predictor.target_logits(tokens[rows], padding[rows], target.reshape(-1, M))
            torch.testing.assert_close(cached.reshape(-1, M, K), full, rtol=1e-5, atol=1e-5)
            target[..., :2] = torch.tensor([-1, 3])  # two masked positions per row (of 4), at 0 and one of 2, 3
            target[..., 2:] = torch.tensor([[2, -1], [-1, 1]])[torch.arange(beams) % 2]
            only_masked = predictor.cached_target_logits(cache, users, target, length * M, only_masked=True).reshape(-1, M, K)
            full = predictor.target_logits(tokens[rows], padding[rows], target.reshape(-1, M))
            masked = target.reshape(-1, M) == -1
            torch.testing.assert_close(only_masked[masked], full[masked], rtol=1e-5, atol=1e-5)
        with pytest.raises(ValueError, match="padding"):  # user 0 has 3 items, not 7
            predictor.cached_target_logits(cache, torch.tensor([0, 1]), target[:2], 7 * M)
    with pytest.raises(ValueError, match="cached_history"):
        make_model("bidirectional").mask_predictor.history_cache(tokens, padding)


@pytest.mark.parametrize("block", ["gpt", "llama"])
@pytest.mark.parametrize("num_steps,order,beam_size", [(4, "adaptive", 12), (4, "adaptive", 60), (2, "adaptive", 4), (1, "left_to_right", 12)])
def test_cached_decode_equals_uncached_decode(block, num_steps, order, beam_size, monkeypatch):
    """Beam 60 > the children of some users' beams: users hold different numbers of beams
    (rows are then scored one per group)."""
    model = make_model("cached_history", block)
    history = mixed_histories()
    with torch.no_grad():
        uncached = decode(model, history, beam_size, num_steps, order, use_cache=False)
        calls = []
        original = MaskPredictor.cached_target_logits
        monkeypatch.setattr(MaskPredictor, "cached_target_logits", lambda self, *a, **kw: calls.append(1) or original(self, *a, **kw))
        cached = decode(model, history, beam_size, num_steps, order)
    assert len(calls) >= num_steps  # the cache was used
    assert torch.equal(cached[0], uncached[0])
    torch.testing.assert_close(cached[1], uncached[1], rtol=1e-5, atol=1e-5)


def test_cached_history_trains_with_both_losses():
    model = make_model("cached_history", "llama").train()
    history = mixed_histories()
    batch = {"history": history, "target": torch.arange(1, history.shape[0] + 1)}
    loss, item_loss, history_loss = model.losses(batch).values()
    assert item_loss > 0 and history_loss > 0
    loss.backward()
    assert model.mask_predictor.token_embedding.weight.grad.abs().sum() > 0


# -- bf16 autocast --------------------------------------------------------------------------
@pytest.mark.parametrize("attention", ["bidirectional", "cached_history"])
def test_bf16_autocast_trains_and_decodes_with_float32_scores(attention):
    model = make_model(attention, "llama").train()
    history = mixed_histories()
    batch = {"history": history, "target": torch.arange(1, history.shape[0] + 1)}
    dtypes = []
    model.mask_predictor.encoder.layers[0].attn.qkv.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.losses(batch)["loss"]
    assert dtypes and set(dtypes) == {torch.bfloat16}  # the matmuls ran in bf16
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        items, scores = decode(model, history, 12, 4, "adaptive")
    with torch.no_grad():
        full_items, full_scores = decode(model, history, 12, 4, "adaptive")
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    assert (items > 0).all() and all(len(set(row)) == len(row) for row in items.tolist())
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    assert (items[:, 0] == full_items[:, 0]).float().mean() >= 0.5  # bf16 rounding may swap near ties only
    torch.testing.assert_close(scores[:, 0], full_scores[:, 0], rtol=0.05, atol=0.1)


# -- the benchmark script ----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_speed_script_runs_on_synthetic_data(tmp_path, precision):
    spec = importlib.util.spec_from_file_location("speed", REPO / "benchmarks" / "speed.py")
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    out = tmp_path / "speed.json"
    figures = speed.main(["--data", "synthetic", "--steps", "2", "--warmup-steps", "1", "--users", "4", "--batch-size", "16",
                          "--d-model", "16", "--layers", "1", "--heads", "2", "--codebook-size", "16", "--beam", "4",
                          "--eval-batch-size", "2", "--check-users", "2", "--threads", "1", "--precision", precision,
                          "--json", str(out)])
    written = json.loads(out.read_text())
    for key in ("train_samples_per_s", "bare_loop_samples_per_s", "decode_users_per_s_reference", "decode_users_per_s_exact",
                "decode_users_per_s_cached", "train_peak_memory_mb", "decode_cached_peak_memory_mb", "threads", "commit", "parameters"):
        assert key in written and written[key] == figures[key], key
    if precision == "32-true":  # bf16 rounding could swap near ties
        assert written["exact_matches_reference"] and written["cached_matches_uncached"]
    assert written["decode"]["users"] == 4 and written["threads"] == 1 and written["precision"] == precision
    assert all(written[k] > 0 for k in ("train_samples_per_s", "bare_loop_samples_per_s", "decode_users_per_s_cached"))
