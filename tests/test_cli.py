import pytest

from llada_rec.cli import main
from llada_rec.data.dataset import DataError
from llada_rec.data.datamodule import RecDataModule

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
    dm = RecDataModule(format="lcrec", path=str(tmp_path / "data"), kcore=0, predict_histories=str(good))
    samples = dm.split("predict").samples
    index = {it: i + 1 for i, it in enumerate(dm.data.item_ids)}
    assert [s[1] for s in samples] == [[index["a"], index["b"]], [index["d"]]]
    row = dm.describe_prediction(0, [index["c"], 0], [-0.5, float("-inf")])
    assert row == {"user": "new", "history": ["a", "b"], "items": ["c"], "scores": [-0.5]}

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"user": "x", "history": ["a"]}\n{"user": "y", "history": ["zzz"]}\n')
    dm = RecDataModule(format="lcrec", path=str(tmp_path / "data"), kcore=0, predict_histories=str(bad))
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
    ],
)
def test_argument_errors_name_the_option_before_any_data_is_read(option, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-data"  # reading it would be a data error: the argument error comes first
    code, err = run_error(["fit", "--config", str(REPO / "experiments" / "demo.yaml"), "--data.path", str(missing),
                           "--data.generate_demo=false",
                           "--data.tokenizer_config", str(REPO / "experiments" / "tokenizer" / "demo.yaml"), option], capsys)  # fmt: skip
    assert code == 2 and message in err and not missing.exists() and not (tmp_path / "runs").exists()


def test_data_error_names_the_path_and_exits_1(tmp_path, capsys):
    code, err = run_error(["data", "stats", "--format", "lcrec", "--path", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and f"{tmp_path / 'nowhere'}: no such directory" in err


def test_missing_checkpoint_and_missing_artifact_are_one_line_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    demo = ["--config", str(REPO / "experiments" / "demo.yaml"), "--data.generate_demo=false"]
    code, err = run_error(["test", *demo, "--ckpt_path", str(tmp_path / "x.ckpt")], capsys)
    assert code == 2 and f"--ckpt_path {tmp_path / 'x.ckpt'}: no such file" in err
    code, err = run_error(["test", *demo, "--ckpt_path", "best"], capsys)
    assert code == 2 and "--ckpt_path best: no best checkpoint in runs/demo/*/checkpoints" in err
    (tmp_path / "ids").mkdir()
    code, err = run_error(["fit", *demo, "--data.semantic_ids", str(tmp_path / "ids")], capsys)
    assert code == 1 and "semantic-ID artifact" in err and "missing codes.npy" in err


def test_debug_shows_the_traceback(tmp_path, capsys):
    with pytest.raises(DataError):
        main(["data", "stats", "--format", "lcrec", "--path", str(tmp_path / "nowhere"), "--debug"])
