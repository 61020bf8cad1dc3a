"""Throughput of the diffusion beam search (users/s), isolating the search overhead.

The "model" is a stand-in of negligible or fixed cost, so the figure measures the search:
  free:  a view of one precomputed [U * B, M, K] log-prob tensor (zero cost; default)
  table: log-probs gathered from a fixed per-user random table (costs one [R, M, K] copy)
  mlp:   a tiny MLP over the partial target's code embeddings (log-probs depend on the fills)

    .venv/bin/python benchmarks/decode_throughput.py --items 4096 25000 --users 128

On a shared CPU, keep --threads 1: OpenMP threads that wait on busy cores slow every op.
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
from torch import Tensor

from llada_rec.decoding import MASKED, ItemCodeIndex, diffusion_beam_search


def random_item_codes(num_items: int, num_heads: int, codebook_size: int, seed: int = 0) -> Tensor:
    """[N, M] unique uniformly random tuples (independent heads, like parallel VQ codes)."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randint(codebook_size, (int(num_items * 1.1) + 16, num_heads), generator=generator)
    codes = torch.unique(codes, dim=0)
    codes = codes[torch.randperm(codes.shape[0], generator=generator)[:num_items]]
    if codes.shape[0] < num_items:
        raise ValueError("too few distinct tuples; lower --items")
    return codes


def make_log_prob_fn(
    kind: str, num_users: int, beam_size: int, num_heads: int, codebook_size: int, device: torch.device
) -> Callable[[Tensor, Tensor], Tensor]:
    generator = torch.Generator().manual_seed(1)
    if kind == "free":
        rows = torch.randn(num_users * beam_size, num_heads, codebook_size, generator=generator)
        rows = torch.log_softmax(3 * rows, dim=-1).to(device)
        return lambda users, target: rows[: users.shape[0]]
    if kind == "table":
        table = torch.randn(num_users, num_heads, codebook_size, generator=generator)
        table = torch.log_softmax(3 * table, dim=-1).to(device)
        return lambda rows, target: table[rows]
    hidden = 64
    user_embedding = torch.randn(num_users, hidden, generator=generator).to(device)
    code_embedding = 0.3 * torch.randn(num_heads, codebook_size + 1, hidden, generator=generator)
    code_embedding = code_embedding.to(device)
    head_weights = (torch.randn(hidden, num_heads * codebook_size, generator=generator) / 8).to(device)
    heads = torch.arange(num_heads, device=device)

    def mlp(rows: Tensor, target: Tensor) -> Tensor:
        codes = (target + 1).clamp(min=0)  # MASKED -> slot 0
        state = user_embedding[rows] + code_embedding[heads, codes].sum(dim=1)  # [R, H]
        logits = torch.tanh(state) @ head_weights  # [R, M*K]
        return torch.log_softmax(3 * logits.view(-1, num_heads, codebook_size), dim=-1)

    return mlp


def time_search(
    log_prob_fn, num_users: int, index: ItemCodeIndex, repeats: int, **kwargs
) -> tuple[float, float]:
    """Best wall time and best process CPU time of ``repeats`` searches (seconds).

    CPU time is the steadier figure on a shared machine (with one thread it is the compute).
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        if index.device.type == "cuda":
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter(), time.process_time()
        diffusion_beam_search(log_prob_fn, num_users, index, **kwargs)
        if index.device.type == "cuda":
            torch.cuda.synchronize()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, nargs="+", default=[4096, 25000])
    parser.add_argument("--users", type=int, default=128, help="users per search call (a batch)")
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--codebook", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--order", default="adaptive")
    parser.add_argument("--model", choices=["free", "table", "mlp"], default="free")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    log_prob_fn = make_log_prob_fn(args.model, args.users, args.beam, args.heads, args.codebook, device)
    settings = dict(beam_size=args.beam, num_steps=args.steps, top_k=args.top_k, order=args.order)
    print(
        f"device={device} threads={torch.get_num_threads()} model={args.model} users={args.users} "
        f"B={args.beam} T={args.steps} M={args.heads} K={args.codebook} order={args.order}"
    )
    rows = torch.arange(args.users, device=device)
    masked = torch.full((args.users, args.heads), MASKED, device=device)
    start = time.perf_counter()
    for _ in range(10):
        log_prob_fn(rows, masked)
    model_ms = (time.perf_counter() - start) / 10 * 1e3
    print(f"  stand-in model: {model_ms:.2f} ms per {args.users} rows")
    for num_items in args.items:
        codes = random_item_codes(num_items, args.heads, args.codebook)
        start = time.perf_counter()
        index = ItemCodeIndex(codes, codebook_size=args.codebook).to(device)
        build_s = time.perf_counter() - start
        print(f"items={num_items}: index build {build_s:.2f} s, {index.nbytes / 2**20:.1f} MiB")
        for constrained in (True, False):
            diffusion_beam_search(log_prob_fn, args.users, index, constrained=constrained, **settings)
            wall, cpu = time_search(log_prob_fn, args.users, index, args.repeats,
                                    constrained=constrained, **settings)
            print(
                f"  constrained={constrained!s:5}: wall {wall * 1e3:7.1f} ms/batch "
                f"({args.users / wall:7.1f} users/s), CPU {cpu * 1e3:7.1f} ms/batch "
                f"({args.users / cpu:7.1f} users/s)"
            )


if __name__ == "__main__":
    main()
