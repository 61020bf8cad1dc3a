import json

import pytest

from llada_rec.cli import main
from llada_rec.data.dataset import DataError
from llada_rec.data.datamodule import RecDataModule


def write_lcrec(path, sequences):
    path.mkdir(parents=True, exist_ok=True)
    items = sorted({i for seq in sequences.values() for i in seq})
    (path / "toy.inter.json").write_text(json.dumps(sequences))
    (path / "toy.item.json").write_text(json.dumps({i: {"title": f"title {i}"} for i in items}))


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
