"""The pre-columnar reader and preprocessing (list of tuples), kept only as the oracle the
columnar pipeline is tested and benchmarked against (issue 22).  Do not use it elsewhere.

From raw interactions to leave-one-out sequence samples (SPEC §1).

Item indices are 1-based everywhere after preprocessing: index 0 is the padding item, and
row ``i - 1`` of any per-item table (``item_ids``, embeddings, semantic-ID codes) belongs to
item ``i``.  User indices are 0-based.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llada_rec.data.dataset import DataError  # the library's error: tests match it

log = logging.getLogger(__name__)

PAD_ITEM = 0


@dataclass
class RawInteractions:
    """What every reader returns: parallel interaction columns plus item metadata.

    ``timestamps`` orders each user's items; readers of formats without time (LC-Rec json)
    give the position in the user's list.  ``skipped`` counts rows a reader dropped, by reason.
    """

    users: list[str]
    items: list[str]
    timestamps: list[float]
    item_meta: dict[str, dict[str, Any]]
    source: str = ""
    skipped: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if not (len(self.users) == len(self.items) == len(self.timestamps)):
            raise DataError(f"{self.source}: users, items and timestamps differ in length")


@dataclass
class SequenceData:
    """Filtered, time-ordered user sequences with the maps back to the original ids."""

    user_ids: list[str]  # user index -> original user id
    item_ids: list[str]  # item index i (1..N) -> item_ids[i - 1]
    sequences: list[list[int]]  # per user, item indices, oldest first
    item_meta: list[dict[str, Any]]  # aligned with item_ids
    skipped: Counter = field(default_factory=Counter)

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_interactions(self) -> int:
        return sum(len(s) for s in self.sequences)

    def stats(self) -> dict[str, float]:
        """The figures of the paper's Table 2."""
        n = self.num_interactions
        return {
            "users": self.num_users,
            "items": self.num_items,
            "interactions": n,
            "sparsity": 1.0 - n / max(1, self.num_users * self.num_items),
            "avg_length": n / max(1, self.num_users),
        }

    def train_items(self) -> np.ndarray:
        """Sorted indices of items that occur in some user's training part."""
        seen = {i for seq in self.sequences for i in seq[:-2]}
        return np.array(sorted(seen), dtype=np.int64)

    def samples(self, stage: str, max_history: int) -> list[tuple[int, list[int], int]]:
        """(user, history, target) triples of a split.

        ``train``: every prefix of the training part (target = item j >= 1, history = the
        items before it); ``val``: target = second-last item; ``test``: target = last item.
        Histories keep their last ``max_history`` items.
        """
        out: list[tuple[int, list[int], int]] = []
        for user, seq in enumerate(self.sequences):
            if stage == "train":
                train = seq[:-2]
                for j in range(1, len(train)):
                    out.append((user, train[max(0, j - max_history) : j], train[j]))
            elif stage in ("val", "test"):
                end = len(seq) - (2 if stage == "val" else 1)
                out.append((user, seq[max(0, end - max_history) : end], seq[end]))
            else:
                raise ValueError(f"unknown split {stage!r}; expected train, val or test")
        return out


def preprocess(
    raw: RawInteractions, kcore: int = 5, min_length: int = 3, repeats: str = "first"
) -> SequenceData:
    """Deduplicate, order by time (stable for ties), k-core filter to a fixed point.

    ``repeats``: ``"first"`` keeps only a user's earliest interaction with an item (as the
    official Amazon 2023 5-core files do), ``"keep"`` keeps repeat interactions at other
    times; exact duplicates (same user, item and time) are always dropped.  Items need
    ``kcore`` interactions, users ``max(kcore, min_length)`` (leave-one-out needs 3); the
    filter iterates until nothing changes.  Items missing from the metadata keep empty
    metadata and are counted.
    """
    if repeats not in ("first", "keep"):
        raise ValueError(f"repeats must be 'first' or 'keep', got {repeats!r}")
    skipped = Counter(raw.skipped)
    per_user: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    seen: set[tuple[str, str, float]] = set()
    for order, (user, item, ts) in enumerate(zip(raw.users, raw.items, raw.timestamps)):
        key = (user, item, ts)
        if key in seen:
            skipped["duplicate interaction"] += 1
            continue
        seen.add(key)
        per_user[user].append((ts, order, item))
    sequences: dict[str, list[str]] = {}
    for user, rows in per_user.items():
        ordered = [it for _, _, it in sorted(rows)]
        if repeats == "first":
            unique = list(dict.fromkeys(ordered))
            if len(unique) < len(ordered):
                skipped["repeat interaction (earliest kept)"] += len(ordered) - len(unique)
            ordered = unique
        sequences[user] = ordered

    item_threshold, user_threshold = max(kcore, 0), max(kcore, min_length)
    dropped_users = 0
    while True:
        item_count = Counter(it for seq in sequences.values() for it in seq)
        changed = False
        kept = {}
        for u, seq in sequences.items():
            new = [it for it in seq if item_count[it] >= item_threshold]
            changed |= len(new) != len(seq)
            if len(new) >= user_threshold:
                kept[u] = new
            else:
                changed = True
                dropped_users += 1
        sequences = kept
        if not changed:
            break
    if dropped_users:
        skipped[f"user with fewer than {user_threshold} items after filtering"] += dropped_users
    if not sequences:
        raise DataError(
            f"{raw.source}: no user is left after filtering (kcore={kcore}, "
            f"min_length={min_length}); lower --data.dataset.kcore or check the input"
        )

    user_ids = sorted(sequences)
    item_ids = sorted({it for seq in sequences.values() for it in seq})
    item_index = {it: i + 1 for i, it in enumerate(item_ids)}
    missing = [it for it in item_ids if it not in raw.item_meta]
    if missing:
        skipped["item without metadata (kept, empty text)"] += len(missing)
        log.warning(
            "%s: %d items have no metadata (e.g. %s); they keep an empty text",
            raw.source, len(missing), missing[:3],
        )
    return SequenceData(
        user_ids=user_ids,
        item_ids=item_ids,
        sequences=[[item_index[it] for it in sequences[u]] for u in user_ids],
        item_meta=[raw.item_meta.get(it, {}) for it in item_ids],
        skipped=skipped,
    )
