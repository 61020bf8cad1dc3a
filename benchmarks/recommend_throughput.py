"""Users per second of a trained recommender's `recommend` on its test users.

    python benchmarks/recommend_throughput.py --config experiments/demo.yaml \
        --ckpt runs/demo/version_0/checkpoints/best-epochN.ckpt [--beam 50] [--users 512]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import torch

from llada_rec.cli import DECODING_ARGS, LLaDARecCLI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True, help="config file(s) of the run")
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--beam", type=int, nargs="+", default=[50])
    parser.add_argument("--users", type=int, default=512, help="test users to decode (0 = all)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    opts = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(opts.threads)
    args = [a for path in opts.config for a in ("--config", path)]
    cli = LLaDARecCLI(args=args, run=False)
    model_class = type(cli.model)
    decoding = {k: v for k, v in cli.model.hparams.items() if k in DECODING_ARGS}  # the config's decoder (a plain dict group)
    model = model_class.load_from_checkpoint(opts.ckpt, map_location="cpu", weights_only=True, **decoding).eval()
    dm = cli.datamodule
    batches = list(dm.test_dataloader())
    if opts.users:  # batches come sorted by history length: take an even spread of them
        stride = max(1, len(batches) * batches[0]["target"].numel() // opts.users)
        batches = batches[::stride]
    num_users = sum(len(b["target"]) for b in batches)
    for beam in opts.beam:
        model.decoding = dataclasses.replace(model.decoding, beam_size=beam)
        hits, start = 0, time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                items, _ = model.recommend(batch["history"], 10, "test")
                hits += int((items == batch["target"][:, None]).any(dim=1).sum())
        seconds = time.perf_counter() - start
        print(f"beam {beam}: {num_users} users in {seconds:.1f} s = {num_users / seconds:.1f} users/s "
              f"({opts.threads} threads), recall@10 on them {hits / num_users:.4f}")


if __name__ == "__main__":
    main()
