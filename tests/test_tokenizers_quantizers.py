"""Quantizer math: nearest codes, straight-through gradients, losses, re-seeding, shapes."""

import pytest
import torch

from llada_rec.tokenizers import MultiHeadVQVAE, RQVAE
from llada_rec.tokenizers.quantizers import (
    MultiHeadVectorQuantizer,
    ResidualVectorQuantizer,
    kmeans,
    mlp,
    perplexity,
)


def test_multihead_picks_nearest_code_per_head():
    torch.manual_seed(0)
    quantizer = MultiHeadVectorQuantizer(num_heads=3, codebook_size=16, code_dim=5)
    z = torch.randn(40, 15)
    codes, inputs, distances = quantizer.assign(z)
    assert codes.shape == (40, 3) and distances.shape == (40, 3, 16)
    for b in range(40):
        for m in range(3):
            sub = z[b, m * 5 : (m + 1) * 5]
            brute = ((sub[None] - quantizer.codebooks[m]) ** 2).sum(-1)
            assert codes[b, m] == brute.argmin()
            torch.testing.assert_close(distances[b, m], brute, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(inputs, z.view(40, 3, 5))


def test_residual_levels_pick_nearest_code_of_the_residual():
    torch.manual_seed(1)
    quantizer = ResidualVectorQuantizer(num_heads=3, codebook_size=8, code_dim=4)
    z = torch.randn(25, 4)
    codes, _, _ = quantizer.assign(z)
    for b in range(25):
        residual = z[b].clone()
        for m in range(3):
            k = ((residual[None] - quantizer.codebooks[m]) ** 2).sum(-1).argmin()
            assert codes[b, m] == k
            residual = residual - quantizer.codebooks[m, k]
    out = quantizer(z)  # the quantized vector is the sum of the chosen codes
    expected = quantizer.codebooks[torch.arange(3), codes].sum(1)
    torch.testing.assert_close(out.quantized, expected)


def test_straight_through_gradient_reaches_encoder_not_codebook():
    torch.manual_seed(0)
    model = MultiHeadVQVAE(num_heads=3, codebook_size=16, code_dim=4, hidden_dims=(16,))
    model.build(8)
    x = torch.randn(32, 8)
    x_hat, q = model(x)
    chosen = model.quantizer.codebooks[torch.arange(3), q.codes].reshape(32, -1)
    torch.testing.assert_close(q.quantized, chosen)  # forward value: the codes' vectors
    (x_hat - x).pow(2).mean().backward()  # reconstruction only
    assert model.encoder[0].weight.grad is not None and model.encoder[0].weight.grad.abs().sum() > 0
    assert model.quantizer.codebooks.grad is None or model.quantizer.codebooks.grad.abs().sum() == 0


def test_codebook_and_commitment_losses_train_their_sides():
    torch.manual_seed(0)
    quantizer = MultiHeadVectorQuantizer(num_heads=2, codebook_size=4, code_dim=3)
    z = torch.randn(10, 6, requires_grad=True)
    q = quantizer(z)
    q.codebook_loss.backward(retain_graph=True)
    assert z.grad is None  # codebook loss: ||sg[z] - e||^2 moves only the codes
    assert quantizer.codebooks.grad.abs().sum() > 0
    quantizer.codebooks.grad = None
    q.commitment_loss.backward()
    assert z.grad.abs().sum() > 0 and quantizer.codebooks.grad is None
    chosen = quantizer.codebooks[torch.arange(2), q.codes]
    expected = ((z.view(10, 2, 3) - chosen) ** 2).mean(dim=(0, 2)).sum()
    torch.testing.assert_close(q.commitment_loss, expected)


@pytest.mark.parametrize("cls", [MultiHeadVQVAE, RQVAE])
def test_loss_decreases_on_toy_set(cls):
    torch.manual_seed(0)
    model = cls(num_heads=3, codebook_size=16, code_dim=4, hidden_dims=(32,), lr=3e-3)
    model.build(12)
    x = torch.randn(8, 12).repeat_interleave(16, 0) + 0.05 * torch.randn(128, 12)
    model.quantizer.init_codebooks(model.encoder(x).detach())
    optimizer = model.configure_optimizers()
    first = None
    for _ in range(150):
        x_hat, q = model(x)
        loss = model.losses(x, x_hat, q)["loss"]
        first = float(loss.detach()) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.3 * first


def test_sizes_follow_arguments():
    model = MultiHeadVQVAE(num_heads=3, codebook_size=16, code_dim=5, hidden_dims=(20, 10))
    model.build(7)
    assert model.quantizer.codebooks.shape == (3, 16, 5)
    assert model.encoder[-1].out_features == 15 and model.decoder[-1].out_features == 7
    assert [l.out_features for l in model.encoder if isinstance(l, torch.nn.Linear)] == [20, 10, 15]
    codes, distances = model.assign_codes(torch.randn(9, 7))
    assert codes.shape == (9, 3) and distances.shape == (9, 3, 16)
    assert int(codes.max()) < 16
    rq = RQVAE(num_heads=5, codebook_size=8, code_dim=6, hidden_dims=(12,))
    rq.build(7)
    assert rq.quantizer.codebooks.shape == (5, 8, 6) and rq.encoder[-1].out_features == 6
    with pytest.raises(ValueError):
        mlp([4])


def test_kmeans_init_uses_every_code_on_clustered_data():
    torch.manual_seed(0)
    centres = torch.randn(16, 4) * 10
    z = (centres.repeat(20, 1) + 0.01 * torch.randn(320, 4)).repeat(1, 2)  # 2 heads, same clusters
    quantizer = MultiHeadVectorQuantizer(num_heads=2, codebook_size=16, code_dim=4)
    quantizer.init_codebooks(z)
    codes, _, distances = quantizer.assign(z)
    assert bool(quantizer.initialized)
    assert all(len(codes[:, m].unique()) == 16 for m in range(2))
    assert float(distances.detach().min(-1).values.max()) < 0.01
    # fewer points than codes still gives K codebook rows
    assert kmeans(torch.randn(5, 3), 8).shape == (8, 3)


def test_dead_codes_are_reseeded_from_inputs():
    torch.manual_seed(0)
    quantizer = MultiHeadVectorQuantizer(num_heads=2, codebook_size=4, code_dim=3, dead_code_steps=2)
    before = quantizer.codebooks.detach().clone()
    inputs = torch.randn(6, 2, 3)
    counts = torch.tensor([[3.0, 3.0, 0.0, 0.0], [6.0, 0.0, 0.0, 0.0]])
    assert quantizer.reseed_dead_codes(counts, inputs) == 0  # unused for one step only
    counts[0, 2] = 1.0  # head 0 code 2 used in the second step
    assert quantizer.reseed_dead_codes(counts, inputs) == 4  # (0,3), (1,1), (1,2), (1,3)
    after = quantizer.codebooks.detach()
    for m, k in [(0, 0), (0, 1), (0, 2), (1, 0)]:
        torch.testing.assert_close(after[m, k], before[m, k])
    for m, k in [(0, 3), (1, 1), (1, 2), (1, 3)]:
        assert ((inputs[:, m] - after[m, k]).abs().sum(-1) < 1e-6).any()  # a row of this head's inputs
    assert int(quantizer.steps_unused.max()) <= 1


def test_perplexity_bounds():
    uniform = torch.ones(2, 8)
    collapsed = torch.zeros(2, 8)
    collapsed[:, 3] = 5
    torch.testing.assert_close(perplexity(uniform), torch.full((2,), 8.0))
    torch.testing.assert_close(perplexity(collapsed), torch.ones(2))
