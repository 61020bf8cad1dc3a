"""Training and decoding throughput of LLaDA-Rec, each figure measured in this one run.

    python benchmarks/speed.py --json runs/speed/speed.json                 # shared Scientific
    python benchmarks/speed.py --data synthetic --steps 2 --users 4 --d-model 32 --layers 1

Figures (printed as a table, all in ``--json``):

- ``train_samples_per_s``: ``LLaDARec`` training steps through a Lightning ``Trainer``;
  ``bare_loop_samples_per_s``: the same model, losses, optimiser, schedule, clipping and
  batches (the DataModule's length-bucketed order) in a plain PyTorch loop (the Trainer's
  overhead is the gap); ``--repeats`` runs of each, in alternating order (Trainer first, then the bare loop
  first), after one untimed warm-up run and ``--warmup-steps`` per run;
- ``decode_users_per_s_reference``: ``recommend``'s search as the code stood before the
  speed work (every row through the full padded sequence, chunks of 4096 rows),
  ``decode_users_per_s_exact``: ``recommend`` of the same bidirectional model (same items
  and scores: checked, ``exact_matches_reference``), ``decode_users_per_s_cached``: the
  ``attention="cached_history"`` variant with its history key/value cache (same weights;
  ``cached_matches_uncached`` checks it against its own uncached decode on a few users);
- ``peak_memory_mb`` of each phase (CPU: the process's peak resident set during the phase;
  CUDA: peak allocated), ``threads``, model sizes, the git commit;
- the same rates per CPU second (``*_per_cpu_s``), steadier than wall time on a shared
  machine with one thread (with more, waiting threads spin and inflate it).

Data: ``--data scientific`` reads the shared LC-Rec copy of Amazon 2018 Scientific
(``--path``): real training samples and test histories.  The semantic IDs are random
unique tuples (seeded): for speed only the shapes matter, and the weights are a fresh
initialisation, so the decoded items mean nothing.  Test users are taken at evenly spaced
ranks of the length-sorted test split (the lengths' spread as in the data) and decoded in
length-sorted batches of ``--eval-batch-size``, as the evaluation DataLoader does.
``--data synthetic`` makes random sequences in memory (no files; for the test suite).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Optional, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from llada_rec.data.batches import EpochShuffleSampler, LengthBucketSampler, SequenceSamples, collate_sequences
from llada_rec.data.dataset import SequenceData, preprocess
from llada_rec.data.readers import read_source
from llada_rec.decoding import DecodingConfig, diffusion_beam_search
from llada_rec.models.base import DataInfo
from llada_rec.models.llada_rec import LLaDARec
from llada_rec.models.optim import adamw_warmup_cosine
from llada_rec.models.transformer import TransformerConfig

REPO = Path(__file__).resolve().parents[1]
SCIENTIFIC = "/work/shared/data/amazon18-scientific"
DEFAULT_BLOCK = inspect.signature(LLaDARec).parameters["network"].default.block


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", choices=["scientific", "synthetic"], default="scientific")
    p.add_argument("--path", default=SCIENTIFIC, help="LC-Rec data directory (--data scientific)")
    p.add_argument("--steps", type=int, default=8, help="timed training steps per path (after --warmup-steps)")
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="training runs per path, alternating Trainer and bare loop")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--train-order", choices=["length_buckets", "shuffle"], default="length_buckets", help="as RecDataModule's train_order")
    p.add_argument("--users", type=int, default=128, help="test users decoded per decoder")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--check-users", type=int, default=8, help="users decoded twice to check the cached decoder")
    p.add_argument("--beam", type=int, default=50)
    p.add_argument("--num-steps", type=int, default=4, help="T")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--block", default=DEFAULT_BLOCK, help="gpt or llama (default: LLaDARec's)")
    p.add_argument("--code-heads", type=int, default=4, help="M")
    p.add_argument("--codebook-size", type=int, default=256, help="K")
    p.add_argument("--max-history", type=int, default=20)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="32-true", help="32-true or bf16-mixed (training autocast and decoding autocast)")
    p.add_argument("--skip-reference", action="store_true", help="do not time the pre-speed-work decoder")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--skip-decoding", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the figures here")
    return p.parse_args(argv)


# -- data -------------------------------------------------------------------------------
def synthetic_data(num_users: int = 300, num_items: int = 400, seed: int = 0) -> SequenceData:
    """Random sequences of 4..16 distinct items (in memory, no files)."""
    rng = np.random.default_rng(seed)
    sequences = [list(rng.choice(num_items, size=int(rng.integers(4, 17)), replace=False) + 1) for _ in range(num_users)]
    return SequenceData(
        user_ids=[f"u{u}" for u in range(num_users)],
        item_ids=[f"i{i}" for i in range(1, num_items + 1)],
        sequences=[[int(i) for i in s] for s in sequences],
        item_meta=[{} for _ in range(num_items)],
    )


def random_semantic_ids(num_items: int, num_heads: int, codebook_size: int, seed: int) -> torch.Tensor:
    """[N, M] unique random tuples."""
    generator = torch.Generator().manual_seed(seed)
    codes = torch.unique(torch.randint(codebook_size, (2 * num_items + 64, num_heads), generator=generator), dim=0)
    if codes.shape[0] < num_items:
        raise ValueError(f"{num_items} items do not fit in {codebook_size}^{num_heads} tuples")
    return codes[torch.randperm(codes.shape[0], generator=generator)[:num_items]]


def spread_test_users(data: SequenceData, num_users: int, max_history: int) -> list[tuple[int, list[int], int]]:
    """``num_users`` test samples at evenly spaced ranks of the length-sorted test split."""
    test = sorted(data.samples("test", max_history), key=lambda s: len(s[1]))
    ranks = np.linspace(0, len(test) - 1, min(num_users, len(test))).round().astype(int)
    return [test[r] for r in ranks]


# -- measurement helpers ----------------------------------------------------------------
class PeakMemory:
    """Peak memory of a phase in MB: CUDA peak allocated, or the CPU process's peak RSS
    (sampled every 5 ms from /proc/self/statm)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    @staticmethod
    def rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.peak = self.rss()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.rss())

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# -- models -----------------------------------------------------------------------------
def make_model(args: argparse.Namespace, info: DataInfo, codes: torch.Tensor, attention: str) -> LLaDARec:
    L.seed_everything(args.seed, verbose=False)  # the same initial weights for every model
    network = TransformerConfig(d_model=args.d_model, num_layers=args.layers, num_attention_heads=args.heads, block=args.block)
    decoding = DecodingConfig(beam_size=args.beam, num_steps=args.num_steps)
    model = LLaDARec(network=network, attention=attention, decoding=decoding, top_k=args.top_k)
    model.data_info = info
    model.build(info, codes)
    return model


class StepClock(L.Callback):
    """Wall time of every training step's end (to time the steps after the warm-up)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ends: list[float] = []
        self.sizes: list[int] = []
        self.cpu: list[float] = []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: dict, batch_idx: int) -> None:
        synchronize(self.device)
        self.ends.append(time.perf_counter())
        self.cpu.append(time.process_time())
        self.sizes.append(int(batch["target"].shape[0]))


def train_lightning(model: LLaDARec, loader: DataLoader, steps: int, args: argparse.Namespace, device: torch.device) -> tuple[list[float], list[float], list[int]]:
    clock = StepClock(device)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=args.precision,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[clock],
    )
    trainer.fit(model, train_dataloaders=loader)
    return clock.ends, clock.cpu, clock.sizes


def train_bare(model: LLaDARec, loader: DataLoader, steps: int, args: argparse.Namespace, device: torch.device) -> tuple[list[float], list[float], list[int]]:
    """The same optimisation as the Trainer's: AdamW recipe, per-step schedule, clip 1.0."""
    model.to(device).train()
    recipe = adamw_warmup_cosine(model, SimpleNamespace(estimated_stepping_batches=steps), model.hparams.lr, model.hparams.weight_decay, model.hparams.warmup_ratio)
    optimizer, scheduler = recipe["optimizer"], recipe["lr_scheduler"]["scheduler"]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision.startswith("bf16"))
    ends: list[float] = []
    sizes: list[int] = []
    cpu: list[float] = []
    batches = (batch for _ in range(steps) for batch in loader)  # epoch after epoch, as the Trainer
    for _, batch in zip(range(steps), batches):
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with autocast:
            loss = model.losses(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        synchronize(device)
        ends.append(time.perf_counter())
        cpu.append(time.process_time())
        sizes.append(int(batch["target"].shape[0]))
    return ends, cpu, sizes


# -- decoding ---------------------------------------------------------------------------
def reference_recommend(model: LLaDARec, history: torch.Tensor, chunk_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder as it stood before the speed work: every live row through the whole
    padded [history ; target] sequence, in chunks of ``chunk_size`` rows."""
    predictor, hp = model.mask_predictor, model.hparams
    tokens, padding = predictor.history_tokens(model.item_code_table[history], history == 0)

    def log_prob_fn(rows: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        chunks = []
        for start in range(0, rows.shape[0], chunk_size):
            user = rows[start : start + chunk_size]
            logits = predictor.target_logits(tokens[user], padding[user], target[start : start + chunk_size])
            chunks.append(F.log_softmax(logits.float() / hp.temperature, dim=-1))
        return torch.cat(chunks)

    d = model.decoding
    result = diffusion_beam_search(log_prob_fn, history.shape[0], model.code_index(), beam_size=d.beam_size,
                                   num_steps=d.num_steps, top_k=hp.top_k, order=d.order, constrained=d.constrained)
    return result.items, result.log_probs


def time_decoding(decode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], batches: list[torch.Tensor],
                  device: torch.device, autocast: Any) -> dict[str, Any]:
    decode(batches[0][:2])  # warm-up (index build, kernels)
    items, scores = [], []
    with PeakMemory(device) as memory, autocast:
        synchronize(device)
        start, cpu = time.perf_counter(), time.process_time()
        for history in batches:
            batch_items, batch_scores = decode(history)
            items.append(batch_items)
            scores.append(batch_scores)
        synchronize(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    users = sum(h.shape[0] for h in batches)
    return {"users_per_s": users / seconds, "users_per_cpu_s": users / cpu, "seconds": seconds, "peak_memory_mb": memory.mb,
            "items": torch.cat(items).cpu(), "scores": torch.cat(scores).float().cpu()}


def same_results(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, float]:
    """(identical items, largest score difference over finite scores)."""
    finite = torch.isfinite(a["scores"]) & torch.isfinite(b["scores"])
    diff = float((a["scores"] - b["scores"])[finite].abs().max()) if bool(finite.any()) else 0.0
    return bool(torch.equal(a["items"], b["items"])), diff


def benchmark_training(args: argparse.Namespace, data: Any, info: DataInfo, codes: Any, device: torch.device) -> dict[str, Any]:
    """Samples/s of the Lightning Trainer and of a bare PyTorch loop on the same batches."""
    figures: dict[str, Any] = {}
    # training: the same batches (one seeded shuffle) for both paths
    train = SequenceSamples(data.samples("train", args.max_history))
    total = args.warmup_steps + args.steps

    def loader() -> DataLoader:  # the DataModule's training order
        sampler = LengthBucketSampler(train, args.batch_size, args.seed) if args.train_order == "length_buckets" else EpochShuffleSampler(train, args.seed)
        return DataLoader(train, batch_size=args.batch_size, sampler=sampler, collate_fn=collate_sequences)

    figures["parameters"] = sum(p.numel() for p in make_model(args, info, codes, "bidirectional").parameters())
    timed: dict[str, list[tuple[float, float, int]]] = {"train": [], "bare_loop": []}
    peaks = {"train": 0.0, "bare_loop": 0.0}
    # an untimed run first: the process's first training pays one-off costs (allocator
    # growth, kernel selection) that would otherwise land on whichever path ran first
    train_bare(make_model(args, info, codes, "bidirectional"), loader(), args.warmup_steps + 1, args, device)
    paths = (("train", train_lightning), ("bare_loop", train_bare))
    for repeat in range(args.repeats):  # alternated (T B, B T, ...), so drifts of a shared machine hit both alike
        for name, train_fn in paths if repeat % 2 == 0 else paths[::-1]:
            with PeakMemory(device) as memory:
                ends, cpu, sizes = train_fn(make_model(args, info, codes, "bidirectional"), loader(), total, args, device)
            start = max(args.warmup_steps, 1) - 1
            timed[name].append((ends[-1] - ends[start], cpu[-1] - cpu[start], sum(sizes[start + 1 :])))
            peaks[name] = max(peaks[name], memory.mb)
            timed.setdefault(f"{name}_sizes", []).append(sizes)  # type: ignore[arg-type]
    if any(s != timed["train_sizes"][0] for s in timed["train_sizes"] + timed["bare_loop_sizes"]):  # type: ignore[operator]
        raise RuntimeError("the Trainer and the bare loop saw different batches")
    for name in ("train", "bare_loop"):
        wall, cpu_s, samples = (sum(t[i] for t in timed[name]) for i in range(3))
        figures[f"{name}_samples_per_s"] = samples / wall
        figures[f"{name}_samples_per_cpu_s"] = samples / cpu_s
        figures[f"{name}_peak_memory_mb"] = peaks[name]
        figures[f"{name}_samples_per_s_each_repeat"] = [t[2] / t[0] for t in timed[name]]
    figures["train_vs_bare"] = figures["train_samples_per_s"] / figures["bare_loop_samples_per_s"]
    figures["train_vs_bare_cpu"] = figures["train_samples_per_cpu_s"] / figures["bare_loop_samples_per_cpu_s"]
    figures["train"] = {"batch_size": args.batch_size, "timed_steps": args.steps, "warmup_steps": args.warmup_steps, "repeats": args.repeats,
                        "samples": len(train), "order": args.train_order}
    return figures


def benchmark_decoding(args: argparse.Namespace, data: Any, info: DataInfo, codes: Any, device: torch.device) -> dict[str, Any]:
    """Users/s of the reference, exact and cached decoders, and whether their results agree."""
    figures: dict[str, Any] = {}
    bf16 = args.precision.startswith("bf16")
    # decoding: random weights, the same for both attention kinds
    samples = spread_test_users(data, args.users, args.max_history)
    batches = [collate_sequences([(i, u, h, t) for i, (u, h, t) in enumerate(samples[s : s + args.eval_batch_size])])["history"].to(device)
               for s in range(0, len(samples), args.eval_batch_size)]
    lengths = [len(h) for _, h, _ in samples]
    figures["decode"] = {"users": len(samples), "batch_size": args.eval_batch_size, "beam": args.beam, "T": args.num_steps,
                         "top_k": args.top_k, "history_length_mean": float(np.mean(lengths)),
                         "history_length_min": min(lengths), "history_length_max": max(lengths)}
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    exact_model = make_model(args, info, codes, "bidirectional").to(device).eval()
    cached_model = make_model(args, info, codes, "cached_history").to(device).eval()
    with torch.no_grad():
        runs = {}
        if not args.skip_reference:
            runs["reference"] = time_decoding(lambda h: reference_recommend(exact_model, h), batches, device, autocast)
        runs["exact"] = time_decoding(lambda h: exact_model.recommend(h, args.top_k, "test"), batches, device, autocast)
        runs["cached"] = time_decoding(lambda h: cached_model.recommend(h, args.top_k, "test"), batches, device, autocast)
        check = batches[-1][-args.check_users :]  # the longest histories
        predictor = cached_model.mask_predictor
        uncached = time_decoding(lambda h: cached_model.decode(predictor, h, args.top_k, beam_size=args.beam, num_steps=args.num_steps,
                                                               order="adaptive", use_cache=False), [check], device, autocast)
        cached_check = time_decoding(lambda h: cached_model.recommend(h, args.top_k, "test"), [check], device, autocast)
    for name, run in runs.items():
        figures[f"decode_users_per_s_{name}"] = run["users_per_s"]
        figures[f"decode_users_per_cpu_s_{name}"] = run["users_per_cpu_s"]
        figures[f"decode_{name}_peak_memory_mb"] = run["peak_memory_mb"]
    if "reference" in runs:
        figures["exact_vs_reference"] = runs["exact"]["users_per_s"] / runs["reference"]["users_per_s"]
        figures["exact_vs_reference_cpu"] = runs["exact"]["users_per_cpu_s"] / runs["reference"]["users_per_cpu_s"]
        same, diff = same_results(runs["exact"], runs["reference"])
        figures["exact_matches_reference"], figures["exact_max_score_diff"] = same, diff
    figures["cached_vs_exact"] = runs["cached"]["users_per_s"] / runs["exact"]["users_per_s"]
    figures["cached_vs_exact_cpu"] = runs["cached"]["users_per_cpu_s"] / runs["exact"]["users_per_cpu_s"]
    same, diff = same_results(cached_check, uncached)
    figures["cached_matches_uncached"], figures["cached_max_score_diff"] = same, diff
    figures["decode_users_per_s_cached_model_uncached"] = uncached["users_per_s"]  # on the longest histories only
    return figures


# -- main -------------------------------------------------------------------------------
def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = synthetic_data(seed=args.seed) if args.data == "synthetic" else preprocess(read_source("lcrec", args.path, show_progress=False))
    codes = random_semantic_ids(data.num_items, args.code_heads, args.codebook_size, args.seed)
    info = DataInfo(num_items=data.num_items, max_history=args.max_history, num_heads=args.code_heads, codebook_size=args.codebook_size)
    figures: dict[str, Any] = {
        "data": "synthetic (random sequences)" if args.data == "synthetic" else f"{args.path} (lcrec), random semantic IDs",
        "commit": git_commit(),
        "threads": torch.get_num_threads(),
        "device": str(device) + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""),
        "precision": args.precision,
        "torch": torch.__version__,
        "model": {"d_model": args.d_model, "layers": args.layers, "attention_heads": args.heads, "block": args.block,
                  "M": args.code_heads, "K": args.codebook_size, "max_history": args.max_history},
        "items": data.num_items,
    }

    if not args.skip_training:
        figures.update(benchmark_training(args, data, info, codes, device))
    if not args.skip_decoding:
        figures.update(benchmark_decoding(args, data, info, codes, device))
    print_table(figures)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def print_table(figures: dict[str, Any]) -> None:
    rows = [
        ("train_samples_per_s", "training, Lightning Trainer (samples/s)"),
        ("bare_loop_samples_per_s", "training, bare PyTorch loop (samples/s)"),
        ("train_vs_bare", "  Trainer / bare loop"),
        ("train_vs_bare_cpu", "  Trainer / bare loop, per CPU second"),
        ("decode_users_per_s_reference", "decoding, pre-speed-work path (users/s)"),
        ("decode_users_per_s_exact", "decoding, exact bidirectional (users/s)"),
        ("exact_vs_reference", "  exact / reference"),
        ("exact_vs_reference_cpu", "  exact / reference, per CPU second"),
        ("decode_users_per_s_cached", "decoding, cached_history (users/s)"),
        ("cached_vs_exact", "  cached / exact"),
        ("cached_vs_exact_cpu", "  cached / exact, per CPU second"),
    ]
    print(f"commit {figures['commit']}, {figures['threads']} threads, {figures['device']}, {figures['precision']}, data: {figures['data']}")
    print("| figure | value | peak MB |\n|---|---:|---:|")
    memory = {"train_samples_per_s": "train_peak_memory_mb", "bare_loop_samples_per_s": "bare_loop_peak_memory_mb",
              "decode_users_per_s_reference": "decode_reference_peak_memory_mb", "decode_users_per_s_exact": "decode_exact_peak_memory_mb",
              "decode_users_per_s_cached": "decode_cached_peak_memory_mb"}
    for key, label in rows:
        if key in figures:
            mb = figures.get(memory.get(key, ""), None)
            print(f"| {label} | {figures[key]:.3f} | {'' if mb is None else f'{mb:.0f}'} |")
    checks = {k: figures[k] for k in ("exact_matches_reference", "exact_max_score_diff", "cached_matches_uncached", "cached_max_score_diff") if k in figures}
    print("checks:", checks)


if __name__ == "__main__":
    main()
