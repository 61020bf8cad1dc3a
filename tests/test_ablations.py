"""benchmarks/ablations.py: every variant at one tiny budget on the demo data, resumable,
extra seeds where within noise, and the report's orderings verdicts."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from llada_rec.report.cells import cells, seed_spread
from llada_rec.report.orderings import MIDDLE_ALPHA, ORDERINGS, orderings, orderings_table
from llada_rec.report.tables import table4
from llada_rec.report.variants import DEFAULT_NUM_STEPS, load_runs
from llada_rec.demo.store import DEMO_CATEGORY, write_demo_dataset

REPO = Path(__file__).resolve().parents[1]
VARIANT_FILES = sorted((REPO / "experiments" / "ablations").glob("*.yaml"))
DECODING = {"greedy", "left_to_right", "right_to_left", "steps_1", "steps_2"}
SEEDS = (0, 1)
ALPHAS = (0.5, 2.0)  # the demo config's alpha is 1.0
VERDICTS = {"reproduced", "reversed", "within noise"}


def load_ablations():
    spec = importlib.util.spec_from_file_location("ablations", REPO / "benchmarks" / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablations"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ablations = load_ablations()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ablations")
    write_demo_dataset(root / "data", category=DEMO_CATEGORY, num_users=120, num_items=60)
    tokenizer = root / "tokenizer_budget.yaml"  # every tokenizer: 16 codes, a few epochs
    tokenizer.write_text("model:\n  init_args:\n    codebook_size: 16\ntrainer:\n  max_epochs: 10\n  check_val_every_n_epoch: 5\n")
    argv = [
        "--config", "experiments/demo.yaml", "--path", str(root / "data"),
        "--max-epochs", "1", "--eval-users", "60", "--d-model", "32", "--layers", "1", "--heads", "2", "--beam-size", "10",
        "--tokenizer-override", str(tokenizer), "--seeds", *map(str, SEEDS), "--alphas", *map(str, ALPHAS),
        "--no-extra-seeds", "--out", str(root / "out"), "--",
        "--data.dataset.generate_demo=false", f"--data.items.cache_dir={root / 'cache'}", "--data.items.pca_dim=32",  # OPQ needs items >= dims
        "--model.init_args.decoding.val_beam_size=5", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root / 'root'}",
    ]  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module scope: before conftest's per-test fixture
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(REPO)  # the configs name their files relative to the repository root
            first = ablations.main(argv)
            mtimes = {p: p.stat().st_mtime_ns for p in (root / "out").rglob("metrics.json")}
            second = ablations.main(argv)
            with pytest.raises(SystemExit, match="other data or budget settings.*--trainer.max_epochs=2"):
                ablations.main([*argv[:argv.index("--max-epochs") + 1], "2", *argv[argv.index("--max-epochs") + 2 :]])
    finally:
        torch.set_num_threads(threads)
    return {"out": root / "out", "first": first, "second": second, "mtimes": mtimes}


@pytest.mark.slow
def test_every_variant_runs_at_the_budget_and_decoding_ones_reuse_the_full_checkpoints(study: dict) -> None:
    out, first = study["out"], study["first"]
    trained = [p.stem for p in VARIANT_FILES if p.stem not in DECODING]
    assert {p.stem for p in VARIANT_FILES} >= DECODING and len(trained) >= 9
    expected = {("full", s) for s in SEEDS} | {(v, 0) for v in trained} | {(f"alpha_{a:g}", 0) for a in ALPHAS} | {(v, s) for v in DECODING for s in SEEDS}
    found = {(p.parent.parent.name, int(p.parent.name.removeprefix("seed_"))) for p in out.glob("*/seed_*/metrics.json")}
    assert found == expected
    assert first.counts == {"fits": len(SEEDS) + len(trained) + len(ALPHAS), "tests": len(DECODING) * len(SEEDS)}
    for name, seed in expected:
        config = yaml.safe_load((out / name / f"seed_{seed}" / "config.yaml").read_text())
        assert config["seed_everything"] == seed and config["trainer"]["max_epochs"] == 1
        assert config["model"]["init_args"]["network"]["d_model"] == 32 and config["data"]["loaders"]["test_max_users"] == 60
        if name in DECODING:  # the full model's best checkpoint of the same seed, not a training
            assert Path(config["ckpt_path"]).parent == out / "full" / f"seed_{seed}" / "checkpoints"
            assert not (out / name / f"seed_{seed}" / "checkpoints").exists()
        else:
            assert not config.get("ckpt_path") and list((out / name / f"seed_{seed}" / "checkpoints").glob("*.ckpt"))
    greedy = json.loads((out / "greedy" / "seed_0" / "metrics.json").read_text())
    assert greedy["test/recall@1"] == greedy["test/recall@10"]  # one item per user: beam 1 really applied


@pytest.mark.slow
def test_a_rerun_skips_every_finished_variant_and_refuses_another_budget(study: dict) -> None:
    second = study["second"]
    assert second.counts == {}  # nothing trained or tested again
    assert {t.status for t in second.trials} == {"done"} and len(second.trials) == len(study["first"].trials)
    assert {p: p.stat().st_mtime_ns for p in study["out"].rglob("metrics.json")} == study["mtimes"]
    trials = json.loads((study["out"] / "sweep.json").read_text())["trials"]
    assert len(trials) == len(second.trials) and all(t["status"] == "done" and t["metrics"] for t in trials)


@pytest.mark.slow
def test_report_names_every_variant_by_what_its_config_changes(study: dict) -> None:
    out = study["out"]
    runs = load_runs([out])
    by_dir = {(r.path.parent.name, r.path.name): r for r in runs}
    full = by_dir[("full", "seed_0")]
    assert full.family is None and full.label == by_dir[("full", "seed_1")].label == "LLaDA-Rec"  # seeds: one variant
    labels = {}
    for path in VARIANT_FILES:
        run = by_dir[(path.stem, "seed_0")]
        init_args = (yaml.safe_load(path.read_text()).get("model") or {}).get("init_args") or {}
        for key, value in init_args.items():  # the run carries what its config changes ...
            for key, value in value.items() if isinstance(value, dict) else [(key, value)]:  # a group's fields by name
                assert run.settings[key] == value, (path.stem, key)
        assert run.family not in (None, "other"), path.stem  # ... and the report names it for that
        labels[path.stem] = run.label
    assert len(set(labels.values())) == len(labels)  # every variant told apart
    assert {labels[k] for k in ("causal", "inter_item_causal", "intra_item_causal", "greedy", "left_to_right", "steps_1", "rqvae", "opq", "rqkmeans")} == {
        "Causal", "Inter-item causal", "Intra-item causal", "w/o beam search", "Left2Right", "T=1", "RQ-VAE", "OPQ", "RQ-KMeans"}  # fmt: skip
    assert {by_dir[(f"alpha_{a:g}", "seed_0")].label for a in ALPHAS} == {"α=0.5", "α=2"}
    text = (out / "report" / "report.md").read_text()
    for label in [*labels.values(), "α=0.5", "α=2"]:
        assert f"| {label} |" in text, label
    table = table4(runs)
    assert table.splitlines()[2].endswith("| seeds |")
    assert "LLaDA-Rec | " in table and " ± " in table.split("| LLaDA-Rec |")[1].splitlines()[0]
    for name in ("attention", "order", "steps", "alpha", "tokenizer", "training", "inference"):
        assert (out / "report" / f"{name}.png").stat().st_size > 10_000, name


@pytest.mark.slow
def test_figures_json_has_every_figure_with_seed_counts_and_every_ordering(study: dict) -> None:
    figures = json.loads((study["out"] / "report" / "figures.json").read_text())
    assert set(figures["figures"]) == {"tokenizer", "training", "inference", "attention", "order", "steps", "alpha"}
    [attention] = figures["figures"]["attention"]["panels"].values()
    assert set(attention["series"]) == {"Bidirectional", "Causal", "Inter-item causal", "Intra-item causal"}
    assert attention["series"]["Bidirectional"]["n"] == [2, 2] and attention["series"]["Causal"]["n"] == [1, 1]
    assert attention["series"]["Bidirectional"]["spread"][0] is not None and attention["series"]["Causal"]["spread"] == [None, None]
    [alpha] = figures["figures"]["alpha"]["panels"].values()
    assert alpha["x"] == ["α=0.5", "α=1", "α=2"]
    claims = [row["claim"] for row in figures["orderings"]]
    assert len(claims) == len(ORDERINGS) + 1 and MIDDLE_ALPHA[1] in claims
    assert all(row["verdict"] in VERDICTS and row["spread"] is not None for row in figures["orderings"])


# -- the extra-seed pass and the verdicts, on runs with known numbers ------------------------
def fake_run(out: Path, name: str, seed: int, ndcg: float, init_args: dict | None = None, data: dict | None = None, ckpt: str | None = None) -> None:
    directory = out / name / f"seed_{seed}"
    directory.mkdir(parents=True)
    config = {
        "seed_everything": seed,
        "trainer": {"max_epochs": 1},
        "model": {"class_path": "llada_rec.models.LLaDARec", "init_args": {"alpha": 1.0, "attention": "bidirectional", "beam_size": 50, "num_steps": 4, "order": "adaptive", **(init_args or {})}},
        "data": {"format": "amazon2023", "category": DEMO_CATEGORY, "tokenizer_config": "experiments/tokenizer/demo.yaml", "tokenizer_overrides": [], **(data or {})},
        "ckpt_path": ckpt,
    }
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    (directory / "metrics.json").write_text(json.dumps({"test/ndcg@10": ndcg, "test/recall@5": ndcg, "test/ndcg@5": ndcg}))


def test_second_pass_adds_seeds_only_where_the_difference_is_within_twice_the_spread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "out"
    fake_run(out, "full", 0, 0.10)
    fake_run(out, "full", 1, 0.12)  # spread 0.0141: noise up to 0.0283
    fake_run(out, "causal", 0, 0.095, {"attention": "causal"})  # -0.016: within noise
    fake_run(out, "rqvae", 0, 0.05, data={"tokenizer_overrides": ["experiments/tokenizer/rqvae.yaml"]})  # -0.06: resolved
    for seed in SEEDS:  # decoding variants follow the full model's seeds already
        fake_run(out, "greedy", seed, 0.109, {"beam_size": 1}, ckpt=f"{out}/full/seed_{seed}/checkpoints/best.ckpt")
    opts, extra = ablations.parse_args(["--out", str(out), "--seeds", "0", "1", "--alphas"])
    study = ablations.Study(opts, extra)
    assert study.plan_extra_seeds() == ["causal"]
    assert [(t.params, t.status) for t in study.trials] == [({"variant": "causal", "seed": 0}, "done"), ({"variant": "causal", "seed": 1}, "pending")]
    assert study.trials[1].run_dir == str(out.resolve() / "causal" / "seed_1")
    assert "--seed_everything=1" in study.trials[1].args


def test_verdicts_reproduced_reversed_within_noise_and_not_run(tmp_path: Path) -> None:
    fake_run(tmp_path, "full", 0, 0.10)
    fake_run(tmp_path, "full", 1, 0.12)
    fake_run(tmp_path, "inter", 0, 0.05, {"attention": "inter_item_causal"})
    fake_run(tmp_path, "l2r", 0, 0.20, {"order": "left_to_right"}, ckpt="x.ckpt")
    fake_run(tmp_path, "l2r", 1, 0.30, {"order": "left_to_right"}, ckpt="y.ckpt")  # paired: not in the spread
    fake_run(tmp_path, "t2", 0, 0.105, {"num_steps": 2})
    runs = load_runs([tmp_path])
    assert seed_spread(cells(runs), "ndcg@10") == pytest.approx(0.02 / 2**0.5)
    rows = {r["claim"]: r for r in orderings(runs)}
    assert rows["bidirectional > inter-item causal"]["verdict"] == "reproduced"
    assert rows["adaptive > left-to-right"]["verdict"] == "reversed"
    assert rows["adaptive > left-to-right"]["worse_mean"] == pytest.approx(0.25) and rows["adaptive > left-to-right"]["worse_seeds"] == 2
    assert rows[f"more steps: T={DEFAULT_NUM_STEPS} > T=2"]["verdict"] == "within noise"
    assert rows["more steps: T=2 > T=1"]["verdict"] == rows[MIDDLE_ALPHA[1]]["verdict"] == "not run"
    assert "**reversed**" in orderings_table(list(rows.values()))
    fake_run(tmp_path / "one", "full", 0, 0.10)
    fake_run(tmp_path / "one", "inter", 0, 0.05, {"attention": "inter_item_causal"})
    [row] = [r for r in orderings(load_runs([tmp_path / "one"])) if r["claim"].startswith("bidirectional")]
    assert row["verdict"] == "no spread (one seed)"


def test_decoding_only_configs_are_told_from_training_ones() -> None:
    assert {p.stem for p in VARIANT_FILES if ablations.inference_only(p)} == DECODING
