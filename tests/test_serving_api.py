"""The Python recommend API (llada_rec/serving/api.py) on runs trained by `llada-rec fit`:
the same top-k as `predict`, a run directory that works when copied, checkpoints refused
with one line when their item map or semantic IDs are missing or belong elsewhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from llada_rec.data.item_map import ITEM_MAP_FILE
from llada_rec.serving import Recommender, RequestError
from llada_rec.utils import UserError

from serving_runs import HISTORIES, MAX_HISTORY, MODELS, fit_and_predict, predictions, write_data

pytestmark = pytest.mark.slow  # four `fit` + `predict` runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = write_data(tmp_path_factory.mktemp("serving"))
    return {name: fit_and_predict(root, name) for name in MODELS}


@pytest.mark.parametrize("name", list(MODELS))
def test_api_answers_what_predict_wrote(runs, name):
    run = runs[name]
    rec = Recommender.load(run)
    answers = rec.recommend(HISTORIES, k=10)
    rows = predictions(run)
    assert [r["user"] for r in rows] == [f"h{i}" for i in range(len(HISTORIES))]
    for history, row, answer in zip(HISTORIES, rows, answers):
        assert row["history"] == history[-MAX_HISTORY:]  # predict keeps the newest window too
        assert answer.items == row["items"], (name, history)
        assert answer.scores == pytest.approx(row["scores"], abs=1e-5)
        assert not set(answer.items) & set(history[-MAX_HISTORY:])  # nothing of the window the model reads comes back
        assert len(answer.items) == len(set(answer.items)) and answer.scores == sorted(answer.scores, reverse=True)
    assert len(answers[0].items) == 10  # 12 items, 1 in the history: 10 remain for every model


def test_api_k_unknown_ids_and_window(runs):
    rec = Recommender.load(runs["SASRec"])
    [short, longer] = rec.recommend([["i1", "i2"], ["i1", "i2"]], k=3)[0], rec.recommend([["i1", "i2"]], k=6)[0]
    assert short.items == longer.items[:3]  # a smaller k is a prefix
    [skipped] = rec.recommend([["nope", "i1", "i2", "also-not"]], k=3)
    assert skipped.items == short.items and skipped.unknown == ["nope", "also-not"]
    [window] = rec.recommend([["i9", "i8", "i1", "i2", "i3", "i4"]], k=5)  # the newest MAX_HISTORY = 4 count
    [newest] = rec.recommend([["i1", "i2", "i3", "i4"]], k=5)
    assert window.items == newest.items and window.scores == newest.scores
    with pytest.raises(RequestError, match=r"\[0\].k: must be an integer in 1..100, got 101"):
        rec.recommend([["i1"]], k=101)
    with pytest.raises(RequestError, match=r"\[1\].history: empty"):
        rec.recommend([["i1"], []])


def test_a_copied_run_directory_is_self_contained(runs, tmp_path):
    copy = tmp_path / "elsewhere" / "run"
    shutil.copytree(runs["LLaDARec"], copy)
    original = Recommender.load(runs["LLaDARec"]).recommend(HISTORIES, k=5)
    away = runs["LLaDARec"].with_name("moved_away")
    runs["LLaDARec"].rename(away)  # nothing of the original run is reachable while the copy loads
    try:
        copied = Recommender.load(copy).recommend(HISTORIES, k=5)
    finally:
        away.rename(runs["LLaDARec"])
    assert [a.items for a in copied] == [a.items for a in original]
    single = tmp_path / "single"  # a checkpoint alone, with its item map beside it
    single.mkdir()
    ckpt = next((copy / "checkpoints").glob("best*.ckpt"))
    shutil.copy(ckpt, single / "model.ckpt")
    shutil.copy(copy / ITEM_MAP_FILE, single / ITEM_MAP_FILE)
    assert [a.items for a in Recommender.load(single / "model.ckpt").recommend(HISTORIES, k=5)] == [a.items for a in original]


def one_line_error(path, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        Recommender.load(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_missing_or_foreign_item_maps_and_semantic_ids_are_refused(runs, tmp_path):
    llada = tmp_path / "llada"
    shutil.copytree(runs["LLaDARec"], llada)
    (llada / ITEM_MAP_FILE).unlink()
    assert "no item id map" in one_line_error(llada)
    # TIGER's and LLaDA-Rec's runs share items and codes: swap in a map with other codes
    item_map = json.loads((runs["LLaDARec"] / ITEM_MAP_FILE).read_text())
    item_map["codes"][0], item_map["codes"][1] = item_map["codes"][1], item_map["codes"][0]
    (llada / ITEM_MAP_FILE).write_text(json.dumps(item_map))
    assert "semantic IDs differ from" in one_line_error(llada) and "(2 items)" in one_line_error(llada)
    item_map["codes"] = None
    (llada / ITEM_MAP_FILE).write_text(json.dumps(item_map))
    assert "has no semantic IDs" in one_line_error(llada)
    fewer = json.loads((runs["LLaDARec"] / ITEM_MAP_FILE).read_text())
    fewer["item_ids"], fewer["codes"] = fewer["item_ids"][:-1], fewer["codes"][:-1]
    (llada / ITEM_MAP_FILE).write_text(json.dumps(fewer))
    assert "11 item ids, but" in one_line_error(llada) and "12 items" in one_line_error(llada)
    # a checkpoint whose code table is gone
    ckpt = next((runs["LLaDARec"] / "checkpoints").glob("best*.ckpt"))
    state = torch.load(ckpt, weights_only=True)
    del state["state_dict"]["item_code_table"]
    torch.save(state, tmp_path / "no_table.ckpt")
    shutil.copy(runs["LLaDARec"] / ITEM_MAP_FILE, tmp_path / ITEM_MAP_FILE)
    assert "does not load as LLaDARec" in one_line_error(tmp_path / "no_table.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    assert "not a readable checkpoint" in one_line_error(tmp_path / "junk.ckpt")
    assert "no such checkpoint or run directory" in one_line_error(tmp_path / "absent")


def test_decoding_overrides_and_bf16_on_cpu(runs):
    run = runs["LLaDARec"]
    greedy = Recommender.load(run, decoding={"beam_size": 1})
    assert greedy.model.decoding.beam_size == 1
    assert all(len(a.items) <= 1 for a in greedy.recommend(HISTORIES, k=5))  # one beam, one item (or none)
    half = Recommender.load(run, precision="bf16")
    for history, answer in zip(HISTORIES, half.recommend(HISTORIES, k=5)):
        assert len(answer.items) == 5 and set(answer.items) <= set(half.item_map.item_ids)
        assert not set(answer.items) & set(history[-MAX_HISTORY:])
        assert answer.scores == sorted(answer.scores, reverse=True) and all(-100 < s <= 0 for s in answer.scores)  # log-probabilities
    sasrec_full, sasrec_half = Recommender.load(runs["SASRec"]), Recommender.load(runs["SASRec"], precision="bf16")
    for full, half_answer in zip(sasrec_full.recommend(HISTORIES, k=10), sasrec_half.recommend(HISTORIES, k=1)):
        # bf16's best item is (within bf16 rounding) as good as float32's best
        assert full.scores[full.items.index(half_answer.items[0])] >= full.scores[0] - 0.05 * max(1.0, abs(full.scores[0]))
    with pytest.raises(UserError, match="SASRec has no decoding settings"):
        Recommender.load(runs["SASRec"], decoding={"beam_size": 3})
    with pytest.raises(UserError, match="precision='16'"):
        Recommender.load(run, precision="16")
