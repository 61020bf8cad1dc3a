import numpy as np
import pytest
import torch

from llada_rec.data.batches import EvalDistributedSampler, SequenceSamples, collate_sequences
from llada_rec.data.items import ItemDataModule
from llada_rec.data.dataset import DataError, RawInteractions, preprocess
from llada_rec.datamodule.settings import DatasetConfig, LoadersConfig


def make_raw(sequences: dict[str, list[str]]) -> RawInteractions:
    users, items, times = [], [], []
    for user, seq in sequences.items():
        for t, item in enumerate(seq):
            users.append(user)
            items.append(item)
            times.append(float(t))
    meta = {it: {"title": f"title {it}"} for it in set(items)}
    return RawInteractions(users, items, times, meta, source="test")


def test_collate_left_pads_to_longest_history():
    rows = [(0, 3, [5, 6, 7], 8), (1, 4, [2], 9)]
    batch = collate_sequences(rows)
    assert batch["history"].tolist() == [[5, 6, 7], [0, 0, 2]]
    assert batch["target"].tolist() == [8, 9]
    assert batch["user"].tolist() == [3, 4]
    assert batch["sample"].tolist() == [0, 1]
    assert batch["history"].dtype == torch.long


def test_collate_empty_history_gets_one_pad_column():
    batch = collate_sequences([(0, 0, [], 1)])
    assert batch["history"].tolist() == [[0]]


@pytest.mark.parametrize("size,replicas", [(10, 3), (7, 2), (2, 4), (12, 4)])
def test_eval_sampler_covers_every_sample_exactly_once(size, replicas):
    dataset = SequenceSamples([(i, [1] * (1 + (i * 7) % 5), 2) for i in range(size)])
    seen = []
    for rank in range(replicas):
        sampler = EvalDistributedSampler(dataset, replicas, rank)
        indices = list(sampler)
        assert len(indices) == len(sampler)
        lengths = [len(dataset.samples[i][1]) for i in indices]
        assert lengths == sorted(lengths)  # batches of similar length, little padding
        seen.extend(indices)
    assert sorted(seen) == list(range(size))


def test_leave_one_out_samples_and_history_cut():
    data = preprocess(make_raw({"u": list("abcdefg"), "v": list("gfedcba")}), kcore=0)
    index = {it: i + 1 for i, it in enumerate(data.item_ids)}
    u = data.user_ids.index("u")
    train = [s for s in data.samples("train", max_history=3) if s[0] == u]
    # training part a..e: targets b..e, histories cut to the last 3 items
    assert [s[2] for s in train] == [index[c] for c in "bcde"]
    assert train[-1][1] == [index[c] for c in "bcd"]
    val = [s for s in data.samples("val", 3) if s[0] == u][0]
    test = [s for s in data.samples("test", 3) if s[0] == u][0]
    assert val[2] == index["f"] and val[1] == [index[c] for c in "cde"]
    assert test[2] == index["g"] and test[1] == [index[c] for c in "def"]
    for _, history, target in train:  # nothing after the training part leaks in
        assert index["f"] not in history + [target] and index["g"] not in history + [target]


def test_kcore_reaches_fixed_point():
    # "z" appears twice; dropping it shortens user "w" below 3, which drops item "y" too.
    seqs = {"u": list("abcxy"), "v": list("abcxy"), "w": list("zzy"), "q": list("abcxz")}
    data = preprocess(make_raw(seqs), kcore=3)
    counts = {}
    for seq in data.sequences:
        assert len(seq) >= 3
        for i in seq:
            counts[i] = counts.get(i, 0) + 1
    assert all(c >= 3 for c in counts.values())
    assert "z" not in data.item_ids


def test_empty_after_filtering_is_a_clear_error():
    with pytest.raises(DataError, match="no user is left"):
        preprocess(make_raw({"u": list("abc")}), kcore=5)


def test_item_view_batches():
    embeddings = np.arange(12, dtype=np.float32).reshape(4, 3)
    dm = ItemDataModule(embeddings, ["a", "b", "c", "d"], np.array([2, 4]), batch_size=8)
    train = next(iter(dm.train_dataloader()))
    assert sorted(train["item"].tolist()) == [2, 4]
    for item, emb in zip(train["item"], train["embedding"]):
        assert torch.equal(emb, torch.as_tensor(embeddings[item - 1]))
    val = next(iter(dm.val_dataloader()))
    assert val["item"].tolist() == [1, 2, 3, 4]


def test_val_max_users_takes_a_fixed_subset(tmp_path):
    import json

    from llada_rec.datamodule.recommendation import RecDataModule

    inter = {f"u{u}": [f"i{(u + j) % 6}" for j in range(4)] for u in range(20)}
    (tmp_path / "toy.inter.json").write_text(json.dumps(inter))
    (tmp_path / "toy.item.json").write_text(json.dumps({f"i{i}": {"title": f"t{i}"} for i in range(6)}))
    full = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0))
    subset = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(val_max_users=7))
    again = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(val_max_users=7))
    chosen = subset.split("val").samples
    assert len(chosen) == 7 and len(full.split("val").samples) == 20
    assert chosen == again.split("val").samples  # seeded: the same users every epoch and run
    assert set(map(tuple, [(u, tuple(h), t) for u, h, t in chosen])) <= {(u, tuple(h), t) for u, h, t in full.split("val").samples}
    assert len(subset.split("test").samples) == 20  # test keeps every user
    both = RecDataModule(dataset=DatasetConfig(format="lcrec", path=str(tmp_path), kcore=0), loaders=LoadersConfig(val_max_users=7, test_max_users=7))
    assert [s[0] for s in both.split("test").samples] == [s[0] for s in chosen]  # same users in both splits
