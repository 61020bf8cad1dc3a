"""What a recommend request may hold (llada_rec/serving/requests.py), the item id map, and
``recommend_new_items``, the ranking predict and the serving API share."""

from __future__ import annotations

import json

import pytest
import torch

from llada_rec.data.item_map import ItemMap
from llada_rec.models.base import DataInfo, SequentialRecommender
from llada_rec.serving.requests import MAX_QUERIES, Query, RequestError, parse_body, parse_query, response
from llada_rec.utils import UserError

ITEMS = ItemMap(["a", "b", "c", "7", "e"], max_history=3)


def test_item_map_encodes_the_newest_known_items_and_lists_unknown_ones():
    assert ITEMS.encode(["a", "zz", "b", "c", "7"]) == ([2, 3, 4], ["zz"])  # window 3 after skipping zz
    assert ITEMS.decode([5, 0, 1], [-0.5, float("-inf"), -1.0]) == (["e", "a"], [-0.5, -1.0])


def test_item_map_round_trips_and_refuses_broken_files(tmp_path):
    saved = ItemMap(["x", "y"], 4, [[0, 1], [1, 0]], 2)
    loaded = ItemMap.load(saved.save(tmp_path / "item_map.json"))
    assert (loaded.item_ids, loaded.max_history, loaded.codes, loaded.codebook_size) == (["x", "y"], 4, [[0, 1], [1, 0]], 2)
    with pytest.raises(UserError, match="no item id map"):
        ItemMap.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"item_ids": ["x"]}')
    with pytest.raises(UserError, match=r"bad.json: not an item id map \(KeyError"):
        ItemMap.load(tmp_path / "bad.json")
    (tmp_path / "rows.json").write_text(json.dumps({"item_ids": ["x", "y"], "max_history": 2, "codes": [[0]]}))
    with pytest.raises(UserError, match="1 rows of semantic IDs for 2 items"):
        ItemMap.load(tmp_path / "rows.json")


def test_a_good_request_becomes_a_query():
    assert parse_query({"history": ["a", 7, "nope"], "k": 3}, ITEMS, default_k=10) == Query([1, 4], ["nope"], 3)
    assert parse_query({"history": ["b"]}, ITEMS, default_k=10).k == 10
    queries, is_list = parse_body(b'[{"history": ["a"]}, {"history": ["b"], "k": 1}]', ITEMS, default_k=5)
    assert is_list and [q.items for q in queries] == [[1], [2]] and [q.k for q in queries] == [5, 1]


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'{"history": ["a"', 400, "body: not JSON"),
        (b"\xff\xfe", 400, "body: not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, 400, "body: "),
        (b'"just a string"', 400, "body: expected an object"),
        (b'{"k": 3}', 400, "history: missing"),
        (b'{"history": []}', 400, "history: empty"),
        (b'{"history": "a"}', 400, "history: expected a list"),
        (b'{"history": ["zz", "yy"]}', 400, "history: no known item id (unknown: zz, yy)"),
        (b'{"history": ["a", 1.5]}', 400, "history[1]: an item id is a string or an integer, got float"),
        (b'{"history": ["a", true]}', 400, "history[1]: an item id is a string or an integer, got bool"),
        (b'{"history": ["a"], "k": 0}', 400, "k: must be an integer in 1..100, got 0"),
        (b'{"history": ["a"], "k": 1000000000000}', 400, "k: must be an integer in 1..100"),
        (b'{"history": ["a"], "k": "5"}', 400, "k: must be an integer in 1..100, got '5'"),
        (b'{"history": ["a"], "k": 2.0}', 400, "k: must be an integer"),
        (b'{"history": ["a"], "histroy": []}', 400, "'histroy': unknown field (expected history, k)"),
        (b"[]", 400, "body: an empty list"),
        (b'[{"history": ["a"]}, {"history": []}]', 400, "[1].history: empty"),
        (json.dumps([{"history": ["a"]}] * (MAX_QUERIES + 1)).encode(), 413, f"at most {MAX_QUERIES}"),
    ],
)
def test_bad_requests_get_a_status_and_one_line(body, status, message):
    with pytest.raises(RequestError) as info:
        parse_body(body, ITEMS, default_k=10)
    assert info.value.status == status
    assert message in str(info.value) and "\n" not in str(info.value) and len(str(info.value)) < 200


def test_response_rounds_scores_like_predictions_jsonl():
    assert response(["a"], [-1.23456789], []) == {"items": ["a"], "scores": [-1.234568], "unknown": []}


class Ranked(SequentialRecommender):
    """Ranks every item by index (1 best) with score -index; records the k it was asked for."""

    def build(self, info: DataInfo, item_codes=None) -> None:
        self.asked: list[int] = []

    def recommend(self, history, k, stage):
        self.asked.append(k)
        n = self.data_info.num_items
        items = torch.arange(1, min(k, n) + 1).repeat(history.shape[0], 1)
        scores = -items.float()
        if k > n:
            items = torch.cat([items, items.new_zeros(history.shape[0], k - n)], dim=1)
            scores = torch.cat([scores, scores.new_full((history.shape[0], k - n), float("-inf"))], dim=1)
        return items, scores


def ranked(num_items: int) -> Ranked:
    model = Ranked(top_k=3, metric_ks=(1,))
    model.data_info = DataInfo(num_items=num_items, max_history=3)
    model.build(model.data_info)
    return model


def test_recommend_new_items_skips_the_history_and_fills_k_from_further_down():
    model = ranked(8)
    history = torch.tensor([[1, 3, 2], [0, 0, 5], [0, 0, 8]])
    items, scores = model.recommend_new_items(history, 3)
    assert items.tolist() == [[4, 5, 6], [1, 2, 3], [1, 2, 3]]
    assert scores.tolist() == [[-4.0, -5.0, -6.0], [-1.0, -2.0, -3.0], [-1.0, -2.0, -3.0]]
    assert model.asked == [3 + 3]  # k + the history's width, so k remain after dropping the history


def test_recommend_new_items_pads_when_the_model_has_too_few_items():
    items, scores = ranked(4).recommend_new_items(torch.tensor([[2, 3]]), 3)
    assert items.tolist() == [[1, 4, 0]] and scores[0, 2] == float("-inf")


def test_predict_step_returns_recommend_new_items():
    model = ranked(8)
    batch = {"history": torch.tensor([[1, 3, 2]]), "sample": torch.tensor([7])}
    out = model.predict_step(batch, 0)
    assert out["sample"].tolist() == [7] and out["items"].tolist() == [[4, 5, 6]]
