"""Tokenizer figures on real data: training time, collisions, items moved, code usage.

    .venv/bin/python benchmarks/tokenizer_quality.py                        # amazon18-scientific, 300 epochs
    .venv/bin/python benchmarks/tokenizer_quality.py --epochs 50 --out runs/bench/tokenizers.json

Runs the Multi-Head VQ-VAE and the three ablation tokenizers (RQ-VAE, RQ-KMeans, OPQ) with
their default sizes (M=4, K=256) on the same item embeddings (default embedding model,
whitened PCA to 128-d as in the authors' code) and prints one table row per tokenizer.  The
VQ-VAEs train ``--epochs`` epochs (the authors' 10,000 do not fit a CPU); RQ-KMeans and OPQ
are fitted once.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and its name would then shadow
# the Hugging Face ``tokenizers`` package that sentence-transformers imports.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    sys.path.pop(0)

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import lightning as L  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from llada_rec.data.embeddings import DEFAULT_EMBEDDING_MODEL  # noqa: E402
from llada_rec.data.items import ItemDataModule  # noqa: E402
from llada_rec.data.dataset import preprocess  # noqa: E402
from llada_rec.data.embeddings import embed_texts  # noqa: E402
from llada_rec.data.readers import read_source  # noqa: E402
from llada_rec.data.text import item_texts  # noqa: E402
from llada_rec.tokenizers import OPQ, RQVAE, MultiHeadVQVAE, RQKMeans, SemanticIds  # noqa: E402


def load_items(args: argparse.Namespace) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(embeddings [N, D], item ids, 1-based training items) of the filtered data."""
    data = preprocess(read_source(args.format, args.path, args.category, show_progress=False), kcore=args.kcore)
    texts, _ = item_texts(data.item_ids, data.item_meta)
    embeddings = embed_texts(texts, model=args.embedding_model, cache_dir=args.cache_dir, pca_dim=args.pca_dim)
    return embeddings, data.item_ids, data.train_items()


def run_tokenizer(model: L.LightningModule, data: ItemDataModule, epochs: int, workdir: Path) -> dict:
    trainer = L.Trainer(
        max_epochs=epochs,
        check_val_every_n_epoch=min(10, epochs),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=workdir,
    )
    started = time.perf_counter()
    trainer.fit(model, datamodule=data)
    wall = time.perf_counter() - started
    stats = SemanticIds.load(model.artifact_path).stats
    return {**stats, "wall_time_s": round(wall, 1), "epochs": epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", default="lcrec")
    parser.add_argument("--path", default="/work/shared/data/amazon18-scientific")
    parser.add_argument("--category", default=None)
    parser.add_argument("--kcore", type=int, default=5)
    parser.add_argument("--embedding-model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument("--pca-dim", type=int, default=128)
    parser.add_argument("--cache-dir", default=".cache/llada_rec/embeddings")
    parser.add_argument("--epochs", type=int, default=300, help="epochs for the VQ-VAE and RQ-VAE")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokenizers", nargs="+", default=["MultiHeadVQVAE", "RQVAE", "RQKMeans", "OPQ"])
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    embeddings, item_ids, train_items = load_items(args)
    print(f"{args.path}: {len(item_ids)} items ({len(train_items)} in training), embeddings {embeddings.shape}")
    data = ItemDataModule(embeddings, item_ids, train_items, batch_size=2048)
    factories = {
        "MultiHeadVQVAE": lambda: (MultiHeadVQVAE(), args.epochs),
        "RQVAE": lambda: (RQVAE(), args.epochs),
        "RQKMeans": lambda: (RQKMeans(), 1),
        "OPQ": lambda: (OPQ(), 1),
    }
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.tokenizers:
            L.seed_everything(0, verbose=False)
            model, epochs = factories[name]()
            results[name] = run_tokenizer(model, data, epochs, Path(workdir) / name)

    print("\n| tokenizer | epochs | train time (s) | collisions before | after | items moved | quant. error before -> after | usage per head (before) |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    for name, r in results.items():
        usage = ", ".join(f"{u:.2f}" for u in r["usage_per_head_before"])
        print(
            f"| {name} | {r['epochs_run']} | {r['train_time_s']:.1f} | {r['collisions_before']} "
            f"({r['collisions_before'] / r['items']:.1%}) | {r['collisions_after']} | {r['items_moved']} | "
            f"{r['quantization_error_before']:.3f} -> {r['quantization_error_after']:.3f} | {usage} |"
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
