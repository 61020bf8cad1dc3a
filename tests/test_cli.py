import pytest

from llada_rec.cli import main
from llada_rec.data.dataset import DataError
from llada_rec.datamodule.recommendation import RecDataModule
from llada_rec.datamodule.settings import DatasetConfig, LoadersConfig

from lcrec_files import write_lcrec_files


def write_lcrec(path, sequences):
    items = sorted({i for seq in sequences.values() for i in seq})
    write_lcrec_files(path, sequences, {i: f"title {i}" for i in items})


def test_data_stats_prints_the_table_figures(tmp_path, capsys):
    write_lcrec(tmp_path, {"u1": ["a", "b", "c", "d"], "u2": ["b", "c", "d"], "u3": ["a", "c", "d"]})
    main(["data", "stats", "--format", "lcrec", "--path", str(tmp_path), "--kcore", "0"])
    out = capsys.readouterr().out
    # 3 users, 4 items, 10 interactions, sparsity 1 - 10/12, average length 10/3
    assert "| 3 | 4 | 10 | 16.6667% | 3.33 |" in out


def test_unknown_command_exits_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fitt"])
    assert exit_info.value.code == 2
    assert "unknown command 'fitt'" in capsys.readouterr().err


def test_predict_histories_file_maps_ids_and_names_bad_lines(tmp_path):
    write_lcrec(tmp_path / "data", {"u1": ["a", "b", "c", "d"], "u2": ["b", "c", "d", "a"]})
    good = tmp_path / "good.jsonl"
    good.write_text('{"user": "new", "history": ["a", "b"]}\n\n{"user": "u1", "history": ["d"]}\n')
    dm = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path / "data"), kcore=0), loaders=LoadersConfig(predict_histories=str(good)))
    samples = dm.split("predict").samples
    index = {it: i + 1 for i, it in enumerate(dm.data.item_ids)}
    assert [s[1] for s in samples] == [[index["a"], index["b"]], [index["d"]]]
    row = dm.describe_prediction(0, [index["c"], 0], [-0.5, float("-inf")])
    assert row == {"user": "new", "history": ["a", "b"], "items": ["c"], "scores": [-0.5]}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user": "x", "history": ["a"]}\n{"user": "y", "history": ["zzz"]}\n')
    dm = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path / "data"), kcore=0), loaders=LoadersConfig(predict_histories=str(bad)))
    with pytest.raises(DataError, match=r"bad.jsonl:2: unknown item ids \['zzz'\]"):
        dm.split("predict")


# -- discoverability and user errors ---------------------------------------------------
REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_help_lists_every_command_and_data_help_works(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict", "data stats", "demo", "report", "sweep"):
        assert f"\n  {command} " in out, command
    main(["data", "--help"])
    assert "llada-rec data stats --format FORMAT --path DIR" in capsys.readouterr().out


def run_error(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return exit_info.value.code, err


@pytest.mark.parametrize(
    "option, message",
    [
        ("--model.init_args.lr=-1", "--model.init_args.lr=-1.0: must be > 0"),
        ("--model.init_args.network.dropout=1.5", "--model.init_args.network.dropout=1.5: must be in [0, 1)"),
        ("--model.init_args.alpha=-1", "--model.init_args.alpha=-1.0: must be >= 0"),
        ("--model.init_args.decoding.beam_size=0", "--model.init_args.decoding.beam_size=0: must be >= 1"),
        ("--model.init_args.temperature=0", "--model.init_args.temperature=0.0: must be > 0"),
        ("--model.init_args.decoding.num_steps=3", "num_steps=3: must divide the number of codes per item M=4"),
        ("--model.init_args.decoding.beam_size=abc", "--model.decoding.beam_size: Expected a <class 'int'>. Got value: abc"),
        ("--trainer.max_epochs=-2", "--trainer.max_epochs=-2: must be >= 1 (or -1, no limit, with --trainer.max_steps N)"),
        ("--trainer.max_epochs=-1", "--trainer.max_epochs=-1: the learning-rate schedule needs an end; give --trainer.max_steps N"),
        ("--trainer.max_epochs=0", "--trainer.max_epochs=0: must be >= 1"),
        ("--trainer.max_steps=0", "--trainer.max_steps=0: must be >= 1 (or -1, no limit)"),
        ("--trainer.check_val_every_n_epoch=0", "--trainer.check_val_every_n_epoch=0: must be >= 1"),
        ("--trainer.accumulate_grad_batches=0", "--trainer.accumulate_grad_batches=0: must be >= 1"),
        ("--trainer.limit_train_batches=1.5", "--trainer.limit_train_batches=1.5: must be > 0 (a count, or a fraction up to 1.0)"),
        ("--trainer.gradient_clip_val=-1", "--trainer.gradient_clip_val=-1: must be >= 0"),
        ("--data.loaders.batch_size=0", "--data.loaders.batch_size=0: must be >= 1"),
        ("--data.loaders.num_workers=-1", "--data.loaders.num_workers=-1: must be >= 0"),
        ("--data.loaders.val_max_users=0", "--data.loaders.val_max_users=0: must be >= 1"),
        ("--data.dataset.format=xml", "--data.dataset.format=xml: must be one of amazon2023, amazon2023-benchmark, lcrec, recbole"),
        ("--data.items.pca_dim=0", "--data.items.pca_dim=0: must be >= 1"),
        ("--data.max_history=0", "--data.max_history=0: must be >= 1"),
    ],
)
def test_argument_errors_name_the_option_before_any_data_is_read(option, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-data"  # reading it would be a data error: the argument error comes first
    code, err = run_error(["fit", "--config", str(REPO / "experiments" / "demo.yaml"), "--data.dataset.path", str(missing),
                           "--data.dataset.generate_demo=false",
                           "--data.items.tokenizer_config", str(REPO / "experiments" / "tokenizer" / "demo.yaml"), option], capsys)  # fmt: skip
    assert code == 2 and message in err and not missing.exists() and not (tmp_path / "runs").exists()


def test_data_error_names_the_path_and_exits_1(tmp_path, capsys):
    code, err = run_error(["data", "stats", "--format", "lcrec", "--path", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and f"{tmp_path / 'nowhere'}: no such directory" in err


def test_missing_checkpoint_and_missing_artifact_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = ["--config", str(REPO / "experiments" / "demo.yaml"), "--data.dataset.generate_demo=false"]
    code, err = run_error(["test", *demo, "--ckpt_path", str(tmp_path / "x.ckpt")], capsys)
    assert code == 2 and f"--ckpt_path {tmp_path / 'x.ckpt'}: no such file" in err
    code, err = run_error(["test", *demo, "--ckpt_path", "best"], capsys)
    assert code == 2 and "--ckpt_path best: no best checkpoint in runs/demo/*/checkpoints" in err
    (tmp_path / "ids").mkdir()
    code, err = run_error(["fit", *demo, "--data.items.semantic_ids", str(tmp_path / "ids")], capsys)
    assert code == 1 and "semantic-ID artifact" in err and "missing codes.npy" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(DataError):
        main(["data", "stats", "--format", "lcrec", "--path", str(tmp_path / "nowhere"), "--debug"])


def test_a_checkpoint_naming_a_module_outside_the_project_is_refused_unimported(tmp_path, capsys, monkeypatch):
    """Its ``_class_path`` is looked up among the project's model classes; the module it names
    (here one that would write a file when imported) is never imported."""
    import sys

    import torch

    monkeypatch.chdir(tmp_path)
    (tmp_path / "planted_module.py").write_text("open('imported.txt', 'w').write('ran')\nclass Model: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "crafted.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": {"_class_path": "planted_module.Model"}, "state_dict": {}}, ckpt)
    demo = ["--config", str(REPO / "experiments" / "demo.yaml"), "--data.dataset.generate_demo=false"]
    code, err = run_error(["test", *demo, "--ckpt_path", str(ckpt)], capsys)
    assert code == 2 and f"--ckpt_path {ckpt}: names the model class 'planted_module.Model'" in err
    assert "GRU4Rec" in err and "LLaDARec" in err  # the classes it may name
    assert "planted_module" not in sys.modules and not (tmp_path / "imported.txt").exists()


def test_an_output_folder_that_cannot_be_written_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    missing = tmp_path / "no-data"  # reading it would be a data error: the folder error comes first
    demo = ["--config", str(REPO / "experiments" / "demo.yaml"), "--data.dataset.generate_demo=false", "--data.dataset.path", str(missing),
            "--data.items.tokenizer_config", str(REPO / "experiments" / "tokenizer" / "demo.yaml")]
    code, err = run_error(["fit", *demo, "--trainer.logger.init_args.save_dir", "blocker/runs"], capsys)
    assert code == 1 and "blocker/runs/demo: cannot write there (blocker is not a folder)" in err
    assert "--trainer.logger.init_args.save_dir" in err

    def read_only(*args, **kwargs):  # the probe file cannot be created (tests run as root: chmod is no test)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", read_only)
    code, err = run_error(["test", *demo, "--output_dir", "out"], capsys)
    assert code == 1 and "out: cannot write there (Permission denied); choose another --output_dir" in err
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_model_settings_the_checkpoint_overrides_are_named(tmp_path, capsys):
    """An explicit network size on test with a checkpoint of another size: the checkpoint's wins, and says so."""
    import torch

    from llada_rec.models.baselines import SASRec

    hparams = {"_class_path": "llada_rec.models.baselines.SASRec", **dict(SASRec().hparams)}
    hparams["network"]["d_model"] = 32
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"hyper_parameters": hparams, "state_dict": {}}, ckpt)
    with pytest.raises(SystemExit):  # no data here: it stops at reading them, after the note
        main(["test", "--model", "SASRec", "--model.init_args.network.d_model", "64", "--data.dataset.format", "lcrec",
              "--data.dataset.path", str(tmp_path / "none"), "--trainer.logger=false", "--ckpt_path", str(ckpt)])
    err = capsys.readouterr().err
    assert f"note: --ckpt_path {ckpt}: the checkpoint's model settings are used; the config's d_model=64 ignored" in err


def test_help_names_every_model_and_cites_no_file_users_lack(capsys):
    import llada_rec.models.baselines as baselines
    from llada_rec.run_checks import model_names

    names = model_names()
    assert {"LLaDARec", "GRU4Rec", "BERT4Rec", "RPG", "MultiHeadVQVAE", *baselines.__all__} <= set(names)
    assert "SequentialRecommender" not in names and "VQAutoencoder" not in names  # bases are not models to pick
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(models: {', '.join(names)})" in text and "SPEC" not in text
    for name in names:
        with pytest.raises(SystemExit):
            main(["fit", "--model.help", name])
        out = capsys.readouterr().out
        assert f"Help for --model.help={name}" in out or "--model." in out, name
        assert "SPEC" not in out, (name, [line for line in out.splitlines() if "SPEC" in line])
